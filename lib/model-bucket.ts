import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, type IDependable } from 'constructs';
import { MODEL_FILES } from './model-folder';
import { acknowledgeWildcards } from './nag';
import { checkWholeDays } from './validate';

/** How model objects are encrypted at rest. */
export enum ModelBucketEncryption {
  /** A customer-managed KMS key with rotation: key use shows in CloudTrail and grants can be revoked. */
  KMS = 'KMS',
  /** SSE-S3: no key to manage and no KMS request costs. */
  S3_MANAGED = 'S3_MANAGED',
}

/**
 * s3:GetObject on exactly `<prefix>model.onnx` and `<prefix>model.json`, and kms:Decrypt on the bucket's key.
 * No wildcards: a reader of one version cannot read another.
 */
export function grantReadModelVersion(
  bucket: s3.IBucket,
  grantee: iam.IGrantable,
  keyPrefix: string,
): iam.Grant {
  const grant = iam.Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject'],
    resourceArns: MODEL_FILES.map((file) => bucket.arnForObjects(`${keyPrefix}${file}`)),
  });
  bucket.encryptionKey?.grantDecrypt(grantee);
  return grant;
}

/**
 * s3:GetObject on every version of one model (`<name>/*`), or on every object when the name is not known
 * at synth, and kms:Decrypt. For a server whose earlier version may still start new instances or tasks:
 * during a canary, and after a rollback.
 */
export function grantReadModelVersions(
  bucket: s3.IBucket,
  grantee: iam.IGrantable,
  modelName: string | undefined,
): iam.Grant {
  const objects = bucket.arnForObjects(modelName !== undefined ? `${modelName}/*` : '*');
  const grant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [objects] });
  bucket.encryptionKey?.grantDecrypt(grantee);
  acknowledgeWildcards(
    grantee.grantPrincipal,
    [objects],
    modelName !== undefined
      ? `Reads every version of model ${modelName}: during a release and after a rollback the previous version still starts instances, and they must read their own model.`
      : 'Reads any model in the model bucket: the model is resolved at deploy (a registry package), so its name is not known at synth; give RegistryModel a modelName to narrow this.',
  );
  return grant;
}

/**
 * A model version a server can be pointed at: an S3 location, its sha256, and read access to it. A
 * `ModelArtifact` (uploaded from a folder) or a package resolved from the SageMaker Model Registry.
 * Every field may be a deploy-time token.
 */
export interface IModelVersion {
  readonly modelName: string;
  readonly version: string;
  readonly bucket: s3.IBucket;
  /** `s3://<bucket>/<name>/<version>/`: the folder with model.onnx and model.json. */
  readonly s3Uri: string;
  /** sha256 of model.onnx, hex; the server refuses other bytes. */
  readonly sha256: string;
  /** What must be deployed before a server can read the version. */
  readonly resource: IDependable;
  /** Read access to this version's objects only. */
  grantRead(grantee: iam.IGrantable): iam.Grant;
}

/** A model version, as the bucket lays it out: `<name>/<version>/`. */
export interface ModelVersionRef {
  readonly modelName: string;
  readonly version: string;
}

export interface ModelBucketProps {
  /**
   * Use this bucket instead of creating one. The other props are then ignored, except that grants
   * still work: bring its KMS key with the bucket (`s3.Bucket.fromBucketAttributes`).
   * @default - a new bucket with the settings below
   */
  readonly existingBucket?: s3.IBucket;
  /** @default ModelBucketEncryption.KMS */
  readonly encryption?: ModelBucketEncryption;
  /**
   * The key for KMS encryption.
   * @default - a new key with yearly rotation, when encryption is KMS
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the bucket (and its key) when it leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: cdk.RemovalPolicy;
  /**
   * Empty the bucket when the stack deletes it. Needs removalPolicy DESTROY.
   * @default false
   */
  readonly autoDeleteObjects?: boolean;
  /**
   * How long an overwritten or deleted object version is kept.
   * @default Duration.days(90)
   */
  readonly noncurrentVersionExpiration?: cdk.Duration;
  /**
   * Where server access logs go.
   * @default - a new bucket (SSE-S3, as log delivery requires), kept for `accessLogsRetention`
   */
  readonly serverAccessLogsBucket?: s3.IBucket;
  /**
   * How long access logs are kept in the bucket this construct creates for them.
   * @default Duration.days(365)
   */
  readonly accessLogsRetention?: cdk.Duration;
}

/** The bucket a bucket's server access logs go to, as `AccessLogs` under `scope`: private, SSL only, expiring. */
export function newAccessLogsBucket(
  scope: Construct,
  props: { retention?: cdk.Duration; removalPolicy: cdk.RemovalPolicy; autoDeleteObjects?: boolean },
): s3.Bucket {
  const created = new s3.Bucket(scope, 'AccessLogs', {
    // Log delivery cannot write to a KMS-encrypted bucket.
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: [{ expiration: props.retention ?? cdk.Duration.days(365) }],
    removalPolicy: props.removalPolicy,
    autoDeleteObjects: props.autoDeleteObjects,
  });
  cdk.Validations.of(created).acknowledge({
    id: 'AwsSolutions-S1',
    reason:
      'This is the access log bucket itself; logging it into another bucket would only move the question.',
  });
  return created;
}

/** How one construct's private bucket differs from the others'. */
export interface PrivateBucketOptions {
  /** Starts error messages, e.g. `BatchInference App/Batch`. */
  readonly owner: string;
  /** Where the props sit in the owner's props, in error messages, e.g. `jobBucketProps.`. */
  readonly propPrefix: string;
  readonly keyDescription: string;
  /** The prefix of this bucket's server access logs. */
  readonly accessLogsPrefix: string;
  /** How long noncurrent versions are kept when the props do not say. */
  readonly noncurrentVersionExpiration: cdk.Duration;
  /** Rules after the noncurrent-version and multipart rule, e.g. a prefix's expiry. @default - none */
  readonly lifecycleRules?: s3.LifecycleRule[];
}

/** The checks every private bucket's props get; they name the prop as the owner spells it. */
export function checkPrivateBucketProps(
  props: Omit<ModelBucketProps, 'existingBucket'>,
  o: PrivateBucketOptions,
): void {
  const removalPolicy = props.removalPolicy ?? cdk.RemovalPolicy.RETAIN;
  if (props.autoDeleteObjects && removalPolicy !== cdk.RemovalPolicy.DESTROY) {
    throw new Error(
      `${o.owner}: ${o.propPrefix}autoDeleteObjects needs removalPolicy DESTROY, got ${removalPolicy}`,
    );
  }
  if (props.encryptionKey && props.encryption === ModelBucketEncryption.S3_MANAGED) {
    throw new Error(`${o.owner}: ${o.propPrefix}encryptionKey was given but encryption is S3_MANAGED`);
  }
  checkWholeDays(o.owner, `${o.propPrefix}noncurrentVersionExpiration`, props.noncurrentVersionExpiration);
}

/**
 * A bucket for data that must stay private, as `Key`, `AccessLogs` and `Bucket` under `scope`: a KMS key with
 * rotation (unless S3_MANAGED or a key is given), versioned, SSL only, no public access, ACLs off, server access
 * logs to a new or given bucket. Call it before `scope` has children: it sets the access-log context there.
 */
export function newPrivateBucket(
  scope: Construct,
  props: Omit<ModelBucketProps, 'existingBucket'>,
  o: PrivateBucketOptions,
): { bucket: s3.Bucket; encryptionKey?: kms.IKey; accessLogsBucket?: s3.Bucket } {
  checkPrivateBucketProps(props, o);
  const removalPolicy = props.removalPolicy ?? cdk.RemovalPolicy.RETAIN;
  // Log delivery by bucket policy, not ACLs, whatever the app's feature flags say: ACLs stay disabled.
  scope.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
  let encryptionKey: kms.IKey | undefined;
  if ((props.encryption ?? ModelBucketEncryption.KMS) === ModelBucketEncryption.KMS) {
    encryptionKey =
      props.encryptionKey ??
      new kms.Key(scope, 'Key', { description: o.keyDescription, enableKeyRotation: true, removalPolicy });
  }
  const accessLogsBucket = props.serverAccessLogsBucket
    ? undefined
    : newAccessLogsBucket(scope, {
        retention: props.accessLogsRetention,
        removalPolicy,
        autoDeleteObjects: props.autoDeleteObjects,
      });
  const bucket = new s3.Bucket(scope, 'Bucket', {
    encryption: encryptionKey ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
    encryptionKey,
    bucketKeyEnabled: encryptionKey !== undefined,
    versioned: true,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    serverAccessLogsBucket: props.serverAccessLogsBucket ?? accessLogsBucket,
    serverAccessLogsPrefix: o.accessLogsPrefix,
    lifecycleRules: [
      {
        noncurrentVersionExpiration: props.noncurrentVersionExpiration ?? o.noncurrentVersionExpiration,
        abortIncompleteMultipartUploadAfter: cdk.Duration.days(7),
      },
      ...(o.lifecycleRules ?? []),
    ],
    removalPolicy,
    autoDeleteObjects: props.autoDeleteObjects,
  });
  return { bucket, encryptionKey, accessLogsBucket };
}

/**
 * The S3 bucket that holds model versions at `s3://<bucket>/<name>/<version>/`: encrypted, versioned,
 * SSL only, no public access, with server access logs.
 */
export class ModelBucket extends Construct {
  public readonly bucket: s3.IBucket;
  /** The KMS key, when the bucket has one. */
  public readonly encryptionKey?: kms.IKey;
  /** The access log bucket this construct created, if it made one. */
  public readonly accessLogsBucket?: s3.IBucket;

  constructor(scope: Construct, id: string, props: ModelBucketProps = {}) {
    super(scope, id);
    const { existingBucket, ...own } = props;
    const options: PrivateBucketOptions = {
      owner: `ModelBucket ${this.node.path}`,
      propPrefix: '',
      keyDescription: `Encrypts the model versions in ${this.node.path}`,
      accessLogsPrefix: 'model-bucket/',
      noncurrentVersionExpiration: cdk.Duration.days(90),
    };
    if (existingBucket) {
      checkPrivateBucketProps(own, options);
      this.bucket = existingBucket;
      this.encryptionKey = existingBucket.encryptionKey;
      return;
    }
    const made = newPrivateBucket(this, own, options);
    this.bucket = made.bucket;
    this.encryptionKey = made.encryptionKey;
    this.accessLogsBucket = made.accessLogsBucket;
  }

  /** The key prefix of one model version: `<name>/<version>/`. */
  public static keyPrefix(model: ModelVersionRef): string {
    return `${model.modelName}/${model.version}/`;
  }

  /** Read access to one model version's two objects only (and decrypt with the bucket's key). */
  public grantReadModel(grantee: iam.IGrantable, model: ModelVersionRef): iam.Grant {
    return grantReadModelVersion(this.bucket, grantee, ModelBucket.keyPrefix(model));
  }
}
