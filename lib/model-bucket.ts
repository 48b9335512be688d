import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, type IDependable } from 'constructs';
import { MODEL_FILES } from './model-folder';
import { acknowledgeWildcards } from './nag';

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

/**
 * The S3 bucket that holds model versions at `s3://<bucket>/<name>/<version>/`: encrypted, versioned,
 * SSL only, no public access, with server access logs.
 */
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

export class ModelBucket extends Construct {
  public readonly bucket: s3.IBucket;
  /** The KMS key, when the bucket has one. */
  public readonly encryptionKey?: kms.IKey;
  /** The access log bucket this construct created, if it made one. */
  public readonly accessLogsBucket?: s3.IBucket;

  constructor(scope: Construct, id: string, props: ModelBucketProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? cdk.RemovalPolicy.RETAIN;
    if (props.autoDeleteObjects && removalPolicy !== cdk.RemovalPolicy.DESTROY) {
      throw new Error(
        `ModelBucket ${this.node.path}: autoDeleteObjects needs removalPolicy DESTROY, got ${removalPolicy}`,
      );
    }
    if (props.encryptionKey && props.encryption === ModelBucketEncryption.S3_MANAGED) {
      throw new Error(`ModelBucket ${this.node.path}: encryptionKey was given but encryption is S3_MANAGED`);
    }
    const noncurrent = props.noncurrentVersionExpiration ?? cdk.Duration.days(90);
    const days = noncurrent.toDays({ integral: false });
    if (days < 1 || !Number.isInteger(days)) {
      throw new Error(
        `ModelBucket ${this.node.path}: noncurrentVersionExpiration must be a whole number of days, at least 1, got ${noncurrent.toHumanString()}`,
      );
    }

    if (props.existingBucket) {
      this.bucket = props.existingBucket;
      this.encryptionKey = props.existingBucket.encryptionKey;
      return;
    }

    // Log delivery by bucket policy, not ACLs, whatever the app's feature flags say: ACLs stay disabled.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    const encryption = props.encryption ?? ModelBucketEncryption.KMS;
    if (encryption === ModelBucketEncryption.KMS) {
      this.encryptionKey =
        props.encryptionKey ??
        new kms.Key(this, 'Key', {
          description: `Encrypts the model versions in ${this.node.path}`,
          enableKeyRotation: true,
          removalPolicy,
        });
    }

    let logsBucket = props.serverAccessLogsBucket;
    if (!logsBucket) {
      const created = newAccessLogsBucket(this, {
        retention: props.accessLogsRetention,
        removalPolicy,
        autoDeleteObjects: props.autoDeleteObjects,
      });
      logsBucket = created;
      this.accessLogsBucket = created;
    }

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: this.encryptionKey ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
      encryptionKey: this.encryptionKey,
      bucketKeyEnabled: this.encryptionKey !== undefined,
      versioned: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: logsBucket,
      serverAccessLogsPrefix: 'model-bucket/',
      lifecycleRules: [
        {
          noncurrentVersionExpiration: noncurrent,
          abortIncompleteMultipartUploadAfter: cdk.Duration.days(7),
        },
      ],
      removalPolicy,
      autoDeleteObjects: props.autoDeleteObjects,
    });
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
