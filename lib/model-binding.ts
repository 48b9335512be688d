import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { ModelBucket, type IModelVersion, type ModelBucketProps } from './model-bucket';
import { ModelSource } from './model-source';

/** Where the server gets the model from. */
export enum ModelDelivery {
  /** An immutable version in the model bucket, read at start and checked against its sha256. */
  S3 = 'S3',
  /** Inside the Lambda code asset or the container image: for small models; no bucket read at start. */
  BUNDLED = 'BUNDLED',
}

/** Where a construct that runs a model gets it: the same choices for an endpoint, a batch job or a stream. */
export interface ModelSourceProps {
  /** A model folder: `model.onnx` and `model.json` (name, version, sha256). @default - none */
  readonly modelDir?: string;
  /**
   * Where the model comes from: `ModelSource.fromFolder(dir)` (the same as `modelDir`) or
   * `ModelSource.fromRegistry(group)`, the newest Approved package, resolved at deploy.
   * @default - none
   */
  readonly modelSource?: ModelSource;
  /**
   * A model version another construct already published, e.g. an endpoint's `artifact`: the same bytes,
   * with no second copy in S3.
   * @default - none
   */
  readonly model?: IModelVersion;
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
}

/** What `bindModel` made: the model in S3, or a folder to bundle. */
export interface BoundModel {
  /** The model bucket (created or wrapped), when delivery is S3 and the version is not given. */
  readonly modelBucket?: ModelBucket;
  /** The model version in S3, when delivery is S3. */
  readonly artifact?: IModelVersion;
  /** The model folder, when delivery is BUNDLED. */
  readonly bundledModelDir?: string;
  /** Where it came from, for the caller's own checks. */
  readonly source?: ModelSource;
}

/**
 * Turns the model props into a version in S3 (publishing a folder, or resolving a registry package, under
 * `scope`) or a folder to bundle, after checking that they agree.
 */
export function bindModel(scope: Construct, owner: string, props: ModelSourceProps): BoundModel {
  const delivery = props.delivery ?? ModelDelivery.S3;
  const given = [props.modelDir, props.modelSource, props.model].filter((x) => x !== undefined).length;
  if (given !== 1) {
    throw new Error(
      `${owner}: give exactly one of modelDir, modelSource or model, got ${given === 0 ? 'none' : given}`,
    );
  }
  if (props.model) {
    if (delivery === ModelDelivery.BUNDLED) {
      throw new Error(`${owner}: model is a version in S3; delivery BUNDLED needs modelDir`);
    }
    if (props.existingBucket || props.bucketProps || props.versionLockFile) {
      throw new Error(
        `${owner}: existingBucket, bucketProps and versionLockFile publish a model; model is already published`,
      );
    }
    return { artifact: props.model };
  }
  const source = props.modelSource ?? ModelSource.fromFolder(props.modelDir as string);
  if (delivery === ModelDelivery.BUNDLED) {
    if (source.modelDir === undefined) {
      throw new Error(
        `${owner}: delivery BUNDLED needs a model folder at synth; a registry model is read from S3`,
      );
    }
    if (props.existingBucket || props.bucketProps || props.versionLockFile) {
      throw new Error(
        `${owner}: existingBucket, bucketProps and versionLockFile apply to S3 delivery, but delivery is BUNDLED`,
      );
    }
    return { bundledModelDir: source.modelDir, source };
  }
  const modelBucket = new ModelBucket(scope, 'Models', {
    ...(props.bucketProps ?? {}),
    existingBucket: props.existingBucket,
  });
  const artifact = source.bind(scope, 'Model', {
    bucket: modelBucket.bucket,
    versionLockFile: props.versionLockFile,
  });
  return { modelBucket, artifact, source };
}
