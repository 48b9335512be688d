import * as cdk from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { StageConfig } from './config/types';
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
    });
    this.apiUrlOutput = new cdk.CfnOutput(this, 'ApiUrl', {
      description: 'The API stage base URL; GET <this>v2/health/ready',
      value: this.endpoint.api.url,
    });
    this.inferUrlOutput = new cdk.CfnOutput(this, 'InferUrl', {
      description: `POST a V2 infer request here (${c.api.authorization} auth)`,
      value: this.endpoint.inferUrl,
    });
    if (this.endpoint.artifact) {
      this.modelUriOutput = new cdk.CfnOutput(this, 'ModelUri', {
        description: 'The model version this stage serves',
        value: this.endpoint.artifact.s3Uri,
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
