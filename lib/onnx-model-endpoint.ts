import * as cdk from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  DEFAULT_API_STAGE_NAME,
  InferenceApi,
  InferenceBackend,
  type InferenceApiProps,
} from './inference-api';
import { CanaryRelease, type TrafficShift } from './canary-release';
import { thresholdAlarm } from './alarms';
import { DataCapture, type DataCaptureProps } from './data-capture';
import { DriftMonitor, type DriftMonitorProps } from './drift-monitor';
import { readModelFolder } from './model-folder';
import { grantReadModelVersions, type IModelVersion, type ModelBucket } from './model-bucket';
import { bindModel, ModelDelivery, type ModelSourceProps } from './model-binding';
import { ModelMonitoring, type ModelMonitoringProps } from './model-monitoring';
import { OnnxContainerService, type OnnxContainerServiceProps } from './onnx-container-service';
import { OnnxFunction, type OnnxFunctionProps } from './onnx-function';
import { ModelSource } from './model-source';
import { checkPositiveInteger } from './validate';

export { ModelDelivery } from './model-binding';

/** Three 5-minute buffers: older undelivered rows mean Firehose is failing, not buffering. */
const CAPTURE_FRESHNESS_ALARM_SECONDS = 900;

/** The names capture.redact and capture.hash may use for a model folder: its inputs and baseline features. */
function captureFieldNames(dir: string): { model: string; names: Set<string> } {
  const { manifest } = readModelFolder(dir);
  const names = new Set<string>();
  const inputs = manifest.inputs as readonly { name?: unknown }[] | undefined;
  const baseline = manifest.baseline as { features?: readonly { name?: unknown }[] } | undefined;
  for (const item of [...(inputs ?? []), ...(baseline?.features ?? [])]) {
    if (typeof item.name === 'string') names.add(item.name);
  }
  return { model: `${manifest.name} ${manifest.version}`, names };
}

/** What runs the model. */
export enum ServingBackend {
  /** OnnxFunction: pay per request, scales to zero, up to Lambda's 10 GB memory and 250 MB code. */
  LAMBDA = 'LAMBDA',
  /** OnnxContainerService: Fargate tasks behind an internal ALB, with dynamic batching; for big or busy models. */
  CONTAINER = 'CONTAINER',
}

/** A/B: a second model version served beside the first, as SageMaker's production variants are. */
export interface EndpointChallenger {
  /** A model folder. Give this or `modelSource`. @default - none */
  readonly modelDir?: string;
  /** Where the model comes from, e.g. `ModelSource.fromRegistry(group)`. @default - none */
  readonly modelSource?: ModelSource;
  /** The share of requests it gets: more than 0, less than 1. */
  readonly weight: number;
  /** @default 'challenger' */
  readonly name?: string;
}

/** How a deploy that changes the Lambda backend reaches its clients. */
export interface ReleaseOptions {
  /** @default - a canary: 10 % for 5 minutes, then all */
  readonly trafficShift?: TrafficShift;
  /** Run the manifest's sample against the new version before it gets traffic. @default true */
  readonly preTrafficCheck?: boolean;
}

/**
 * Data capture: a sample of requests, each row one JSON line on the server's log stream (no network call on
 * the request), delivered by a subscription filter and Firehose to S3 under
 * `captures/model=<name>/version=<version>/date=<yyyy-MM-dd>/`.
 */
export interface CaptureOptions {
  /**
   * Share of requests captured, 0 to 100 (decimals allowed). 0 keeps the delivery path in place and captures
   * nothing, so turning it on is a change of this number.
   */
  readonly samplePercent: number;
  /**
   * Inputs or baseline feature names written as null. Checked against the model folder when it is known at
   * synth; the server also refuses to capture with a name its model does not have.
   * @default - none
   */
  readonly redact?: string[];
  /** Inputs or baseline feature names written as `sha256:<16 hex>` (unsalted: redact small sets instead). @default - none */
  readonly hash?: string[];
  /** Rows captured per request at most, spread over a bigger request. @default 1000 */
  readonly maxRowsPerRequest?: number;
  /** How long captured rows are kept. @default - DataCapture's: Duration.days(30) */
  readonly retention?: cdk.Duration;
  /** How long drift reports are kept. @default - DataCapture's: Duration.days(365) */
  readonly reportRetention?: cdk.Duration;
  /** Write captures and reports to this bucket instead of a new one. @default - a new capture bucket */
  readonly existingBucket?: s3.IBucket;
  /** Settings for the capture bucket this endpoint creates. @default - DataCapture's defaults */
  readonly bucketProps?: DataCaptureProps['bucketProps'];
  /** Retention of the capture transform's and Firehose's error logs. @default - DataCapture's: one year */
  readonly logRetention?: DataCaptureProps['logRetention'];
}

/** The scheduled drift job (DriftMonitor) on the captured rows; the model bucket, name and alarm topic are the endpoint's. */
export type DriftOptions = Omit<DriftMonitorProps, 'capture' | 'modelBucket' | 'modelName' | 'alarmTopic'>;

export interface OnnxModelEndpointProps extends ModelSourceProps {
  /** @default ServingBackend.LAMBDA */
  readonly backend?: ServingBackend;
  /** For the LAMBDA backend. @default - OnnxFunction's defaults */
  readonly functionProps?: Omit<OnnxFunctionProps, 'artifact' | 'bundledModelDir'>;
  /** For the CONTAINER backend. @default - OnnxContainerService's defaults */
  readonly containerProps?: Omit<OnnxContainerServiceProps, 'artifact' | 'bakedModelDir' | 'pathPrefix'>;
  /**
   * Front the API with this one integration instead of the function (LAMBDA backend only: the container is
   * reached through its VPC link).
   * @default - a Lambda proxy integration to the function's `live` alias
   */
  readonly integration?: apigw.Integration;
  /** @default - InferenceApi's defaults: IAM auth, 100 req/s */
  readonly apiProps?: Omit<InferenceApiProps, 'integration' | 'backend'>;
  /**
   * Notify this topic instead of a new one.
   * @default - a new encrypted topic
   */
  readonly existingAlarmTopic?: sns.ITopic;
  /** @default - ModelMonitoring's defaults */
  readonly monitoringProps?: Omit<
    ModelMonitoringProps,
    'onnxFunction' | 'containerService' | 'api' | 'alarmTopic' | 'watchNewVersion'
  >;
  /**
   * A/B test a second model version (LAMBDA backend, S3 delivery): the `live` alias splits traffic by weight;
   * `X-Model-Variant` pins a request; metrics and alarms are per variant.
   * @default - one model
   */
  readonly challenger?: EndpointChallenger;
  /** The first model's variant name, with a challenger. @default 'primary' */
  readonly variantName?: string;
  /**
   * LAMBDA backend: release each new version through CodeDeploy (pre-traffic check, traffic shifting,
   * automatic rollback on the monitoring's release alarms). The CONTAINER backend always rolls back through
   * ECS's circuit breaker and deployment alarms.
   * @default - none: a deploy moves the alias at once
   */
  readonly release?: ReleaseOptions;
  /**
   * Capture a sample of requests (inputs, outputs, model version, latency) to S3, through the server's log
   * group, a subscription filter and Firehose. With a challenger, both variants capture, each record naming its
   * variant and version.
   * @default - no capture
   */
  readonly capture?: CaptureOptions;
  /**
   * Measure drift of the captured rows against each version's baseline on a schedule, with alarms on the
   * monitoring's topic and graphs on its dashboard. Needs `capture` and S3 delivery (the job reads the baselines
   * from the model bucket).
   * @default - no drift job
   */
  readonly drift?: DriftOptions;
}

/**
 * One ONNX model behind an authenticated V2 API: model bucket and version, the inference Lambda or a
 * Fargate service, REST API, alarms and dashboard. Every part is a public property; the bucket, integration
 * and alarm topic can be brought from outside.
 */
export class OnnxModelEndpoint extends Construct {
  /** The model bucket (created or wrapped), when delivery is S3. */
  public readonly modelBucket?: ModelBucket;
  /** The deployed model version, when delivery is S3: a ModelArtifact, or a RegistryModel. */
  public readonly artifact?: IModelVersion;
  /** The challenger's model version, in an A/B test. */
  public readonly challengerArtifact?: IModelVersion;
  /** CodeDeploy's deployment group and the pre-traffic hook, with `release`. */
  public readonly release?: CanaryRelease;
  /** The inference function, with the LAMBDA backend. */
  public readonly onnxFunction?: OnnxFunction;
  /** The Fargate service, with the CONTAINER backend. */
  public readonly containerService?: OnnxContainerService;
  public readonly backend: ServingBackend;
  public readonly api: InferenceApi;
  public readonly monitoring: ModelMonitoring;
  public readonly modelName: string;
  /** The capture delivery path and bucket, with `capture`. */
  public readonly capture?: DataCapture;
  /**
   * With `capture`: captured rows not delivered to S3 within 15 minutes, and log batches the capture transform
   * failed. On the dashboard and the alarm topic; never release alarms.
   */
  public readonly captureAlarms: cloudwatch.Alarm[] = [];
  /** The drift job and its alarms, with `drift`. */
  public readonly drift?: DriftMonitor;

  constructor(scope: Construct, id: string, props: OnnxModelEndpointProps) {
    super(scope, id);
    const owner = `OnnxModelEndpoint ${this.node.path}`;
    const delivery = props.delivery ?? ModelDelivery.S3;
    this.backend = props.backend ?? ServingBackend.LAMBDA;
    const container = this.backend === ServingBackend.CONTAINER;
    if (container && (props.functionProps || props.integration)) {
      throw new Error(
        `${owner}: functionProps and integration apply to the LAMBDA backend, but backend is CONTAINER`,
      );
    }
    if (!container && props.containerProps) {
      throw new Error(`${owner}: containerProps apply to the CONTAINER backend, but backend is LAMBDA`);
    }
    if (props.challenger) {
      const c = props.challenger;
      if (container) {
        throw new Error(
          `${owner}: challenger (A/B) needs the LAMBDA backend, whose alias splits traffic; backend is CONTAINER`,
        );
      }
      if (delivery === ModelDelivery.BUNDLED) {
        throw new Error(
          `${owner}: challenger (A/B) needs S3 delivery: its model is read from the model bucket`,
        );
      }
      if ((c.modelDir === undefined) === (c.modelSource === undefined)) {
        throw new Error(
          `${owner}: give the challenger exactly one of modelDir or modelSource, got ${c.modelDir ? 'both' : 'neither'}`,
        );
      }
      if (props.release) {
        throw new Error(
          `${owner}: release and challenger cannot be combined: CodeDeploy shifts the live alias's weights itself. ` +
            'Finish the A/B test (promote one model), then release with CodeDeploy',
        );
      }
    }
    if (container && props.release) {
      throw new Error(
        `${owner}: release (CodeDeploy) applies to the LAMBDA backend; the CONTAINER backend rolls back through ` +
          "ECS's circuit breaker and deployment alarms",
      );
    }
    if (props.drift && !props.capture) {
      throw new Error(
        `${owner}: drift reads the captured rows; give capture too (samplePercent 0 keeps it off)`,
      );
    }
    if (props.drift && delivery === ModelDelivery.BUNDLED) {
      throw new Error(
        `${owner}: drift needs S3 delivery: the drift job reads each version's baseline (model.json) from the model bucket, and a BUNDLED model has none`,
      );
    }
    const captureEnv = props.capture ? OnnxModelEndpoint.captureEnvironment(owner, props) : {};
    const bound = bindModel(this, owner, props);
    this.modelBucket = bound.modelBucket;
    this.artifact = bound.artifact;
    if (props.challenger && this.artifact) {
      const c = props.challenger;
      const challengerSource = c.modelSource ?? ModelSource.fromFolder(c.modelDir as string);
      this.challengerArtifact = challengerSource.bind(this, 'ChallengerModel', {
        bucket: this.artifact.bucket,
        versionLockFile: props.versionLockFile,
      });
    }
    const bundled = bound.bundledModelDir;
    let backend: InferenceBackend;
    if (container) {
      const service = new OnnxContainerService(this, 'Container', {
        ...(props.containerProps ?? {}),
        environment: { ...(props.containerProps?.environment ?? {}), ...captureEnv },
        artifact: this.artifact,
        bakedModelDir: bundled,
        // API Gateway sends `/<stage>/v2/...` through the VPC link.
        pathPrefix: `/${props.apiProps?.stageName ?? DEFAULT_API_STAGE_NAME}`,
      });
      this.containerService = service;
      this.modelName = service.modelName;
      backend = service.inferenceBackend();
    } else {
      const fn = new OnnxFunction(this, 'Inference', {
        ...(props.functionProps ?? {}),
        environment: { ...(props.functionProps?.environment ?? {}), ...captureEnv },
        artifact: this.artifact,
        bundledModelDir: bundled,
        challenger:
          props.challenger && this.challengerArtifact
            ? { model: this.challengerArtifact, weight: props.challenger.weight, name: props.challenger.name }
            : undefined,
        variantName: props.variantName,
      });
      this.onnxFunction = fn;
      this.modelName = fn.modelName;
      backend = InferenceBackend.fromIntegration(
        props.integration ?? new apigw.LambdaIntegration(fn.alias, { allowTestInvoke: false }),
      );
    }
    this.api = new InferenceApi(this, 'Api', { ...(props.apiProps ?? {}), backend });
    this.monitoring = new ModelMonitoring(this, 'Monitoring', {
      ...(props.monitoringProps ?? {}),
      onnxFunction: this.onnxFunction,
      containerService: this.containerService,
      api: this.api,
      alarmTopic: props.existingAlarmTopic,
      watchNewVersion: props.release !== undefined,
    });
    if (this.artifact) {
      // A release runs the new and the previous version side by side, a rollback or a pin returns to an
      // earlier one; any of them may start instances at any time, and each must read its own model version.
      const reader = this.containerService?.taskRole ?? (this.onnxFunction as OnnxFunction).role;
      grantReadModelVersions(this.artifact.bucket, reader, this.modelName);
    }
    if (this.containerService) {
      // A new task definition that trips these is rolled back, as the circuit breaker rolls back one that cannot start.
      this.containerService.service.enableDeploymentAlarms(
        this.monitoring.releaseAlarms.map((a) => a.alarmName),
        { behavior: ecs.AlarmBehavior.ROLLBACK_ON_ALARM },
      );
    }
    if (props.capture) {
      const c = props.capture;
      this.capture = new DataCapture(this, 'Capture', {
        // The server's own log group: the function's (every variant's version logs there) or the tasks'.
        logGroups: [(this.onnxFunction ?? (this.containerService as OnnxContainerService)).logGroup],
        existingBucket: c.existingBucket,
        bucketProps: c.bucketProps,
        retention: c.retention,
        reportRetention: c.reportRetention,
        logRetention: c.logRetention,
      });
      const capture = this.capture;
      this.monitoring.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Data capture: records in and delivered to S3; oldest not yet delivered (s)',
          left: [
            capture.metricIncomingRecords({ label: 'Records in' }),
            capture.metricDeliveredRecords({ label: 'Delivered to S3' }),
            capture.metricTransformFailedRecords({ label: 'Transform failed' }),
          ],
          right: [capture.metricDataFreshness({ label: 'Data freshness (s)' })],
          width: 24,
          height: 6,
        }),
      );
      // Broken delivery is quiet: the drift job just sees no rows, and no data is not a breach of its alarms.
      const topic = this.monitoring.alarmTopic;
      const period = cdk.Duration.minutes(5);
      this.captureAlarms.push(
        thresholdAlarm(capture, 'DeliveryDelayAlarm', {
          metric: capture.metricDataFreshness({ period }),
          threshold: CAPTURE_FRESHNESS_ALARM_SECONDS,
          evaluationPeriods: 3,
          datapointsToAlarm: 2,
          description: `${this.modelName}: captured rows ${CAPTURE_FRESHNESS_ALARM_SECONDS / 60} minutes or more old are not yet in S3 (Firehose delivery is failing or behind)`,
          topic,
          notifyOk: true,
        }),
        thresholdAlarm(capture, 'TransformFailuresAlarm', {
          metric: capture.metricTransformFailedRecords({ period }),
          threshold: 1,
          description: `${this.modelName}: the capture transform failed log batches; they are in the capture bucket under ${capture.errorPrefix}`,
          topic,
          notifyOk: true,
        }),
      );
      this.monitoring.addDashboardAlarms(...this.captureAlarms);
    }
    if (props.drift && this.capture && this.artifact) {
      this.drift = new DriftMonitor(this, 'Drift', {
        ...props.drift,
        capture: this.capture,
        modelBucket: this.artifact.bucket,
        modelName: this.modelName,
        alarmTopic: this.monitoring.alarmTopic,
      });
      this.monitoring.addWidgets(...this.drift.widgets());
      this.monitoring.addDashboardAlarms(...this.drift.alarms);
    }
    if (props.release && this.onnxFunction) {
      this.release = new CanaryRelease(this, 'Release', {
        alias: this.onnxFunction.alias,
        version: this.onnxFunction.liveVersion,
        modelVersion: this.artifact,
        modelDir: this.artifact ? undefined : bundled,
        trafficShift: props.release.trafficShift,
        // A pinned version may serve an earlier model than this deploy's manifest describes.
        preTrafficCheck:
          props.functionProps?.liveVersion !== undefined ? false : props.release.preTrafficCheck,
        alarms: this.monitoring.releaseAlarms,
        logRetention: props.functionProps?.logRetention,
      });
    }
  }

  /**
   * The CAPTURE_* environment of the server, after checking the options: the percentage, the row cap, and the
   * redact and hash names, which must not overlap and, when the model folders are known at synth, must each
   * name an input or a baseline feature of every model served (a misspelt name would otherwise leave the real
   * field unredacted; the server would refuse to capture at all).
   */
  private static captureEnvironment(owner: string, props: OnnxModelEndpointProps): Record<string, string> {
    const c = props.capture as CaptureOptions;
    if (!Number.isFinite(c.samplePercent) || c.samplePercent < 0 || c.samplePercent > 100) {
      throw new Error(
        `${owner}: capture.samplePercent must be a number from 0 to 100, got ${c.samplePercent}`,
      );
    }
    checkPositiveInteger(owner, 'capture.maxRowsPerRequest', c.maxRowsPerRequest);
    const redact = c.redact ?? [];
    const hash = c.hash ?? [];
    for (const name of [...redact, ...hash]) {
      if (name.trim() === '' || name !== name.trim() || name.includes(',')) {
        throw new Error(
          `${owner}: capture.redact and capture.hash take input or feature names (no commas or spaces around them), got ${JSON.stringify(name)}`,
        );
      }
    }
    const both = redact.filter((n) => hash.includes(n));
    if (both.length > 0) {
      throw new Error(
        `${owner}: ${both.map((n) => `'${n}'`).join(', ')} is in both capture.redact and capture.hash; choose one (redact writes null, hash writes sha256:...)`,
      );
    }
    const folders = [
      props.modelDir ?? props.modelSource?.modelDir,
      props.challenger && (props.challenger.modelDir ?? props.challenger.modelSource?.modelDir),
    ].filter((d): d is string => d !== undefined);
    for (const dir of folders) {
      const known = captureFieldNames(dir);
      const unknown = [...redact, ...hash].filter((n) => !known.names.has(n));
      if (unknown.length > 0) {
        throw new Error(
          `${owner}: capture names ${unknown.map((n) => `'${n}'`).join(', ')} are neither inputs nor baseline features of ${known.model}; it has ${[...known.names].map((n) => `'${n}'`).join(', ')}`,
        );
      }
    }
    const env: Record<string, string> = { CAPTURE_PERCENT: String(c.samplePercent) };
    if (redact.length > 0) env.CAPTURE_REDACT = redact.join(',');
    if (hash.length > 0) env.CAPTURE_HASH = hash.join(',');
    if (c.maxRowsPerRequest !== undefined) env.CAPTURE_MAX_ROWS = String(c.maxRowsPerRequest);
    return env;
  }

  /** The infer URL of this endpoint's model. */
  public get inferUrl(): string {
    return this.api.inferUrl(this.modelName);
  }
}
