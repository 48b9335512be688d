import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  DEFAULT_API_STAGE_NAME,
  InferenceApi,
  InferenceBackend,
  type InferenceApiProps,
} from './inference-api';
import { CanaryRelease, type TrafficShift } from './canary-release';
import { grantReadModelVersions, type IModelVersion, type ModelBucket } from './model-bucket';
import { bindModel, ModelDelivery, type ModelSourceProps } from './model-binding';
import { ModelMonitoring, type ModelMonitoringProps } from './model-monitoring';
import { OnnxContainerService, type OnnxContainerServiceProps } from './onnx-container-service';
import { OnnxFunction, type OnnxFunctionProps } from './onnx-function';
import { ModelSource } from './model-source';

export { ModelDelivery } from './model-binding';

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

  /** The infer URL of this endpoint's model. */
  public get inferUrl(): string {
    return this.api.inferUrl(this.modelName);
  }
}
