import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  DEFAULT_API_STAGE_NAME,
  InferenceApi,
  InferenceBackend,
  type InferenceApiProps,
} from './inference-api';
import { ModelArtifact } from './model-artifact';
import { ModelBucket, type ModelBucketProps } from './model-bucket';
import { ModelMonitoring, type ModelMonitoringProps } from './model-monitoring';
import { OnnxContainerService, type OnnxContainerServiceProps } from './onnx-container-service';
import { OnnxFunction, type OnnxFunctionProps } from './onnx-function';

/** Where the server gets the model from. */
export enum ModelDelivery {
  /** An immutable version in the model bucket, read at start and checked against its sha256. */
  S3 = 'S3',
  /** Inside the Lambda code asset or the container image: for small models; no bucket read at start. */
  BUNDLED = 'BUNDLED',
}

/** What runs the model. */
export enum ServingBackend {
  /** OnnxFunction: pay per request, scales to zero, up to Lambda's 10 GB memory and 250 MB code. */
  LAMBDA = 'LAMBDA',
  /** OnnxContainerService: Fargate tasks behind an internal ALB, with dynamic batching; for big or busy models. */
  CONTAINER = 'CONTAINER',
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
    'onnxFunction' | 'containerService' | 'api' | 'alarmTopic'
  >;
}

/**
 * One ONNX model behind an authenticated V2 API: model bucket and version, the inference Lambda or a
 * Fargate service, REST API, alarms and dashboard. Every part is a public property; the bucket, integration
 * and alarm topic can be brought from outside.
 */
export class OnnxModelEndpoint extends Construct {
  /** The model bucket (created or wrapped), when delivery is S3. */
  public readonly modelBucket?: ModelBucket;
  /** The deployed model version, when delivery is S3. */
  public readonly artifact?: ModelArtifact;
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
    const delivery = props.delivery ?? ModelDelivery.S3;
    this.backend = props.backend ?? ServingBackend.LAMBDA;
    const container = this.backend === ServingBackend.CONTAINER;
    if (
      delivery === ModelDelivery.BUNDLED &&
      (props.existingBucket || props.bucketProps || props.versionLockFile)
    ) {
      throw new Error(
        `OnnxModelEndpoint ${this.node.path}: existingBucket, bucketProps and versionLockFile apply to S3 delivery, but delivery is BUNDLED`,
      );
    }
    if (container && (props.functionProps || props.integration)) {
      throw new Error(
        `OnnxModelEndpoint ${this.node.path}: functionProps and integration apply to the LAMBDA backend, but backend is CONTAINER`,
      );
    }
    if (!container && props.containerProps) {
      throw new Error(
        `OnnxModelEndpoint ${this.node.path}: containerProps apply to the CONTAINER backend, but backend is LAMBDA`,
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
    const bundled = delivery === ModelDelivery.BUNDLED ? props.modelDir : undefined;
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
    });
  }

  /** The infer URL of this endpoint's model. */
  public get inferUrl(): string {
    return this.api.inferUrl(this.modelName);
  }
}
