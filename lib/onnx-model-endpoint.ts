import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { InferenceApi, type InferenceApiProps } from './inference-api';
import { ModelArtifact } from './model-artifact';
import { ModelBucket, type ModelBucketProps } from './model-bucket';
import { ModelMonitoring, type ModelMonitoringProps } from './model-monitoring';
import { OnnxFunction, type OnnxFunctionProps } from './onnx-function';

/** Where the function gets the model from. */
export enum ModelDelivery {
  /** An immutable version in the model bucket, read at init and checked against its sha256. */
  S3 = 'S3',
  /** Inside the code asset: for small models; no bucket read at cold start. */
  BUNDLED = 'BUNDLED',
}

export interface OnnxModelEndpointProps {
  /** A model folder: `model.onnx` and `model.json` (name, version, sha256). */
  readonly modelDir: string;
  /** @default ModelDelivery.S3 */
  readonly delivery?: ModelDelivery;
  /**
   * Put model versions in this bucket instead of a new one.
   * @default - a new ModelBucket with `bucketProps`
   */
  readonly existingBucket?: s3.IBucket;
  /** Settings for the bucket this construct creates. @default - ModelBucket's defaults */
  readonly bucketProps?: Omit<ModelBucketProps, 'existingBucket'>;
  /** See ModelArtifactProps.versionLockFile. @default - none */
  readonly versionLockFile?: string;
  /** @default - OnnxFunction's defaults */
  readonly functionProps?: Omit<OnnxFunctionProps, 'artifact' | 'bundledModelDir'>;
  /**
   * Front the function with this integration instead (for example a container backend).
   * @default - a Lambda proxy integration to the function's `live` alias
   */
  readonly integration?: apigw.Integration;
  /** @default - InferenceApi's defaults: IAM auth, 100 req/s */
  readonly apiProps?: Omit<InferenceApiProps, 'integration'>;
  /**
   * Notify this topic instead of a new one.
   * @default - a new encrypted topic
   */
  readonly existingAlarmTopic?: sns.ITopic;
  /** @default - ModelMonitoring's defaults */
  readonly monitoringProps?: Omit<ModelMonitoringProps, 'onnxFunction' | 'api' | 'alarmTopic'>;
}

/**
 * One ONNX model behind an authenticated V2 API: model bucket and version, inference Lambda, REST API,
 * alarms and dashboard. Every part is a public property; the bucket, integration and alarm topic can be
 * brought from outside.
 */
export class OnnxModelEndpoint extends Construct {
  /** The model bucket (created or wrapped), when delivery is S3. */
  public readonly modelBucket?: ModelBucket;
  /** The deployed model version, when delivery is S3. */
  public readonly artifact?: ModelArtifact;
  public readonly onnxFunction: OnnxFunction;
  public readonly api: InferenceApi;
  public readonly monitoring: ModelMonitoring;
  public readonly modelName: string;

  constructor(scope: Construct, id: string, props: OnnxModelEndpointProps) {
    super(scope, id);
    const delivery = props.delivery ?? ModelDelivery.S3;
    if (
      delivery === ModelDelivery.BUNDLED &&
      (props.existingBucket || props.bucketProps || props.versionLockFile)
    ) {
      throw new Error(
        `OnnxModelEndpoint ${this.node.path}: existingBucket, bucketProps and versionLockFile apply to S3 delivery, but delivery is BUNDLED`,
      );
    }
    if (delivery === ModelDelivery.S3) {
      this.modelBucket = new ModelBucket(this, 'Models', {
        ...(props.bucketProps ?? {}),
        existingBucket: props.existingBucket,
      });
      this.artifact = new ModelArtifact(this, 'Model', {
        bucket: this.modelBucket.bucket,
        modelDir: props.modelDir,
        versionLockFile: props.versionLockFile,
      });
    }
    this.onnxFunction = new OnnxFunction(this, 'Inference', {
      ...(props.functionProps ?? {}),
      artifact: this.artifact,
      bundledModelDir: delivery === ModelDelivery.BUNDLED ? props.modelDir : undefined,
    });
    this.modelName = this.onnxFunction.modelName;
    this.api = new InferenceApi(this, 'Api', {
      ...(props.apiProps ?? {}),
      integration:
        props.integration ?? new apigw.LambdaIntegration(this.onnxFunction.alias, { allowTestInvoke: false }),
    });
    this.monitoring = new ModelMonitoring(this, 'Monitoring', {
      ...(props.monitoringProps ?? {}),
      onnxFunction: this.onnxFunction,
      api: this.api,
      alarmTopic: props.existingAlarmTopic,
    });
  }

  /** The infer URL of this endpoint's model. */
  public get inferUrl(): string {
    return this.api.inferUrl(this.modelName);
  }
}
