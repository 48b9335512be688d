import * as cdk from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BatchInference } from './batch-inference';
import type { StageConfig } from './config/types';
import type { ModelSourceProps } from './model-binding';
import { StreamDestination, StreamInference, StreamSource } from './stream-inference';
import type { ModelSource } from './model-source';
import { OnnxModelEndpoint, ServingBackend } from './onnx-model-endpoint';

/** A bucket that exists already, by name: e.g. the one `mdk registry register --bucket` uploads to. */
export interface ModelBucketRef {
  readonly bucketName: string;
  /** Its KMS key, when it has one, so the servers may decrypt. @default - none (SSE-S3) */
  readonly encryptionKeyArn?: string;
}

/** What a stage serves, and how: shared by ModelServingStack and ServingStage. */
export interface ServingOptions {
  /** The stage's settings: one of `devConfig`, `stageConfig`, `prodConfig`, or your own. */
  readonly config: StageConfig;
  /** The model folder to serve. Give this or `modelSource`. @default - none */
  readonly modelDir?: string;
  /** Where the model comes from, e.g. `ModelSource.fromRegistry(group)`. @default - none */
  readonly modelSource?: ModelSource;
  /** @default - none; see ModelArtifactProps.versionLockFile */
  readonly versionLockFile?: string;
  /**
   * Serve from this existing bucket instead of one the stack creates (and owns, with the stage's removal
   * policy). Needed for a registry model: packages point into the bucket they were registered in, and a
   * bucket the stack creates does not exist until it is deployed.
   * @default - a new model bucket per stage
   */
  readonly modelBucket?: ModelBucketRef;
}

export interface ModelServingStackProps extends cdk.StackProps, ServingOptions {}

/** One model endpoint, configured for one stage. */
export class ModelServingStack extends cdk.Stack {
  public readonly endpoint: OnnxModelEndpoint;
  /** The API's base URL (`https://.../api/`): smoke tests and pipelines read it. */
  public readonly apiUrlOutput: cdk.CfnOutput;
  public readonly inferUrlOutput: cdk.CfnOutput;
  /** The API key's id, when the stage uses API keys. */
  public readonly apiKeyIdOutput?: cdk.CfnOutput;
  /** The model version's S3 folder, with S3 delivery: a smoke test reads the deployed manifest there. */
  public readonly modelUriOutput?: cdk.CfnOutput;
  /** The capture bucket's name, when the stage config has `capture`. */
  public readonly captureBucketOutput?: cdk.CfnOutput;
  /** Batch jobs, when the stage config has `batch`. */
  public readonly batch?: BatchInference;
  /** Queue-driven predictions, when the stage config has `stream`. */
  public readonly stream?: StreamInference;

  constructor(scope: Construct, id: string, props: ModelServingStackProps) {
    super(scope, id, props);
    const c = props.config;
    const backend = c.backend ?? ServingBackend.LAMBDA;
    if (backend === ServingBackend.CONTAINER && !c.container) {
      throw new Error(
        `ModelServingStack ${this.node.path}: stage ${c.stageName} runs the CONTAINER backend but its config has no container settings`,
      );
    }
    const existingBucket = props.modelBucket
      ? s3.Bucket.fromBucketAttributes(this, 'ModelBucket', {
          bucketName: props.modelBucket.bucketName,
          encryptionKey:
            props.modelBucket.encryptionKeyArn !== undefined
              ? kms.Key.fromKeyArn(this, 'ModelBucketKey', props.modelBucket.encryptionKeyArn)
              : undefined,
        })
      : undefined;
    this.endpoint = new OnnxModelEndpoint(this, 'Endpoint', {
      modelDir: props.modelDir,
      modelSource: props.modelSource,
      versionLockFile: props.versionLockFile,
      existingBucket,
      bucketProps: existingBucket
        ? undefined
        : { removalPolicy: c.removalPolicy, autoDeleteObjects: c.autoDeleteObjects },
      backend,
      functionProps:
        backend === ServingBackend.LAMBDA
          ? {
              memorySize: c.function.memorySize,
              reservedConcurrentExecutions: c.function.reservedConcurrency,
              provisionedConcurrentExecutions: c.function.provisionedConcurrency,
              logLevel: c.function.logLevel,
              tracing: c.function.tracing ? cdk.aws_lambda.Tracing.ACTIVE : cdk.aws_lambda.Tracing.DISABLED,
              logRetention: c.logRetention,
              liveVersion: c.function.liveVersion,
            }
          : undefined,
      containerProps:
        backend === ServingBackend.CONTAINER && c.container
          ? {
              cpu: c.container.cpu,
              memoryLimitMiB: c.container.memoryLimitMiB,
              minCapacity: c.container.minCapacity,
              maxCapacity: c.container.maxCapacity,
              targetCpuPercent: c.container.targetCpuPercent,
              requestsPerTarget: c.container.requestsPerTarget,
              batching: c.container.batching,
              logLevel: c.container.logLevel,
              logRetention: c.logRetention,
              accessLogs: { removalPolicy: c.removalPolicy, autoDeleteObjects: c.autoDeleteObjects },
            }
          : undefined,
      apiProps: {
        authorization: c.api.authorization,
        throttle: c.api.throttle,
        quota: c.api.quota,
        waf: c.api.waf ? {} : undefined,
        invokeAccounts: c.api.invokeAccounts,
        tracing: c.function.tracing,
        accessLogRetention: c.logRetention,
      },
      monitoringProps: { thresholds: c.alarms },
      release: backend === ServingBackend.LAMBDA ? c.release : undefined,
      capture: c.capture && {
        samplePercent: c.capture.samplePercent,
        redact: c.capture.redact,
        hash: c.capture.hash,
        maxRowsPerRequest: c.capture.maxRowsPerRequest,
        retention: cdk.Duration.days(c.capture.retentionDays),
        bucketProps: { removalPolicy: c.removalPolicy, autoDeleteObjects: c.autoDeleteObjects },
        logRetention: c.logRetention,
      },
      drift: c.drift && {
        schedule: events.Schedule.expression(c.drift.schedule),
        window: cdk.Duration.hours(c.drift.windowHours),
        minRows: c.drift.minRows,
        thresholds: {
          featurePsi: c.drift.featurePsiThreshold,
          predictionPsi: c.drift.predictionPsiThreshold,
        },
        logRetention: c.logRetention,
      },
    });
    this.apiUrlOutput = new cdk.CfnOutput(this, 'ApiUrl', {
      description: 'The API stage base URL; GET <this>v2/health/ready',
      value: this.endpoint.api.url,
    });
    this.inferUrlOutput = new cdk.CfnOutput(this, 'InferUrl', {
      description: `POST a V2 infer request here (${c.api.authorization} auth)`,
      value: this.endpoint.inferUrl,
    });
    if (this.endpoint.capture) {
      this.captureBucketOutput = new cdk.CfnOutput(this, 'CaptureBucket', {
        description:
          'Captured requests under captures/model=<name>/version=<version>/date=<day>/, drift reports under drift-reports/',
        value: this.endpoint.capture.bucket.bucketName,
      });
    }
    if (this.endpoint.artifact) {
      this.modelUriOutput = new cdk.CfnOutput(this, 'ModelUri', {
        description: 'The model version this stage serves',
        value: this.endpoint.artifact.s3Uri,
      });
    }
    // Batch and stream serve the endpoint's own model version: the same bytes, published once.
    const model: ModelSourceProps = this.endpoint.artifact
      ? { model: this.endpoint.artifact }
      : { modelDir: props.modelDir, modelSource: props.modelSource };
    const fnProps = (memorySize: number) => ({
      memorySize,
      logLevel: c.function.logLevel,
      logRetention: c.logRetention,
    });
    if (c.batch) {
      const b = c.batch;
      const expire = b.expireAfterDays !== undefined ? cdk.Duration.days(b.expireAfterDays) : undefined;
      this.batch = new BatchInference(this, 'Batch', {
        ...model,
        batchSize: b.batchSize,
        maxConcurrency: b.maxConcurrency,
        toleratedFailurePercentage: b.toleratedFailurePercentage,
        schedule: b.schedule && {
          schedule: events.Schedule.expression(b.schedule.expression),
          inputKey: b.schedule.inputKey,
        },
        functionProps: fnProps(b.memorySize),
        jobBucketProps: {
          removalPolicy: c.removalPolicy,
          autoDeleteObjects: c.autoDeleteObjects,
          inputExpiration: expire,
          outputExpiration: expire,
        },
        alarmTopic: this.endpoint.monitoring.alarmTopic,
        logRetention: c.logRetention,
      });
      new cdk.CfnOutput(this, 'BatchBucket', {
        description: 'Put a CSV or JSONL file under input/; results appear under output/<job>/',
        value: this.batch.jobBucket.bucketName,
      });
    }
    if (c.stream) {
      const st = c.stream;
      this.stream = new StreamInference(this, 'Stream', {
        ...model,
        source: StreamSource.sqs({
          batchSize: st.batchSize,
          maxBatchingWindow: cdk.Duration.seconds(st.maxBatchingWindowSeconds),
          maxReceiveCount: st.maxReceiveCount,
          maxConcurrency: st.maxConcurrency,
        }),
        destination: StreamDestination.sqs(),
        functionProps: fnProps(st.memorySize),
        alarmTopic: this.endpoint.monitoring.alarmTopic,
        removalPolicy: c.removalPolicy,
      });
      new cdk.CfnOutput(this, 'StreamInputQueueUrl', {
        description: 'Send one row (a JSONL line) or a V2 request per message',
        value: this.stream.sourceQueue?.queueUrl ?? '',
      });
      new cdk.CfnOutput(this, 'StreamOutputQueueUrl', {
        description: 'Predictions arrive here, one message each',
        value: this.stream.destinationQueue?.queueUrl ?? '',
      });
    }
    if (this.endpoint.api.apiKey) {
      this.apiKeyIdOutput = new cdk.CfnOutput(this, 'ApiKeyId', {
        description: 'aws apigateway get-api-key --include-value --api-key <this id> gives the key',
        value: this.endpoint.api.apiKey.keyId,
      });
    }
  }
}
