import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct, type IConstruct } from 'constructs';
import { CustomResourceProvider } from './custom-resource-provider';
import { grantReadModelVersion, ModelBucket, type IModelVersion } from './model-bucket';
import { MODEL_FILES, readModelFolder, type ModelFile, type ModelManifestInfo } from './model-folder';

export interface ModelArtifactProps {
  /** The model bucket; the version goes to `s3://<bucket>/<name>/<version>/`. */
  readonly bucket: s3.IBucket;
  /** A folder that holds `model.onnx` and its `model.json` manifest (name, version, sha256). */
  readonly modelDir: string;
  /**
   * A JSON file that records the sha256 of both files of every version this app has deployed, committed
   * with the app. A version already in it must have the same bytes; a new version is added to it at synth.
   * @default - versions are checked within this app and by the bucket at deploy time only
   */
  readonly versionLockFile?: string;
}

/** What makes a version: the sha256 of each of its two files. */
type VersionHashes = Readonly<Record<ModelFile, string>>;

function differences(was: VersionHashes, now: VersionHashes): string {
  return MODEL_FILES.filter((file) => was[file] !== now[file])
    .map((file) => `${file} was sha256 ${was[file]}, is now ${now[file]}`)
    .join('; ');
}

/** Every artifact in an app, by name and version, so two stages cannot disagree about a version's bytes. */
const versionsByApp = new WeakMap<IConstruct, Map<string, { hashes: VersionHashes; dir: string }>>();

function checkVersionLock(file: string, name: string, version: string, hashes: VersionHashes): void {
  let lock: Record<string, Record<string, VersionHashes>> = {};
  if (fs.existsSync(file)) {
    try {
      lock = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof lock;
    } catch (err) {
      throw new Error(`Version lock file ${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const recorded = lock[name]?.[version];
  if (recorded !== undefined) {
    const changed = differences(recorded, hashes);
    if (changed === '') return;
    throw new Error(
      `${name} ${version} is recorded in ${file} with other bytes (${changed}). ` +
        'Versions are immutable: give the new bytes a new version in model.json.',
    );
  }
  const versions = { ...(lock[name] ?? {}), [version]: hashes };
  lock[name] = Object.fromEntries(Object.entries(versions).sort(([a], [b]) => a.localeCompare(b)));
  const sorted = Object.fromEntries(Object.entries(lock).sort(([a], [b]) => a.localeCompare(b)));
  fs.writeFileSync(file, JSON.stringify(sorted, null, 2) + '\n');
}

/** The one Lambda per stack that copies model versions into place for `Custom::ModelVersion`. */
function modelPublisher(scope: Construct): lambda.Function {
  return CustomResourceProvider.of(scope, {
    id: 'ModelDeployKitPublisher',
    handler: 'publish-model',
    description: 'model-deploy-kit: publishes immutable model versions (Custom::ModelVersion)',
    purpose: 'Copies model versions from CDK assets into the model bucket',
    timeout: cdk.Duration.minutes(10),
  }).function;
}

/**
 * One immutable model version in the model bucket, uploaded at deploy from a local model folder.
 * Synth fails if the folder's bytes disagree with its manifest, with another stage's copy of the same
 * version, or with the version lock file; the deploy fails if the bucket already holds other bytes there.
 */
export class ModelArtifact extends Construct implements IModelVersion {
  public readonly bucket: s3.IBucket;
  public readonly modelName: string;
  public readonly version: string;
  /** `<name>/<version>/` */
  public readonly keyPrefix: string;
  /** `s3://<bucket>/<name>/<version>/`, ready once this construct's resource is deployed. */
  public readonly s3Uri: string;
  /** sha256 of model.onnx, hex. */
  public readonly sha256: string;
  public readonly manifest: ModelManifestInfo;
  public readonly modelSizeBytes: number;
  /** The `Custom::ModelVersion` resource that copies the version into place; depend on it to read the model. */
  public readonly resource: cdk.CustomResource;

  constructor(scope: Construct, id: string, props: ModelArtifactProps) {
    super(scope, id);
    const folder = readModelFolder(props.modelDir);
    this.bucket = props.bucket;
    this.manifest = folder.manifest;
    this.modelName = folder.manifest.name;
    this.version = folder.manifest.version;
    this.sha256 = folder.sha256;
    this.modelSizeBytes = folder.modelBytes;
    this.keyPrefix = ModelBucket.keyPrefix(this);

    const key = `${this.modelName}@${this.version}`;
    const root = this.node.root;
    const hashes: VersionHashes = { 'model.onnx': folder.sha256, 'model.json': folder.manifestSha256 };
    const seen = versionsByApp.get(root) ?? new Map<string, { hashes: VersionHashes; dir: string }>();
    versionsByApp.set(root, seen);
    const other = seen.get(key);
    const changed = other ? differences(other.hashes, hashes) : '';
    if (other && changed !== '') {
      throw new Error(
        `${this.modelName} ${this.version} has different bytes in ${other.dir} and ${folder.dir} (${changed}). ` +
          'Versions are immutable: give one of them a new version.',
      );
    }
    seen.set(key, { hashes, dir: folder.dir });
    if (props.versionLockFile)
      checkVersionLock(path.resolve(props.versionLockFile), this.modelName, this.version, hashes);

    const modelAsset = new s3assets.Asset(this, 'Model', { path: folder.modelPath });
    const manifestAsset = new s3assets.Asset(this, 'Manifest', { path: folder.manifestPath });
    const publisher = modelPublisher(this);
    // Exact objects, no wildcards: the two assets it copies from and the two objects it may create.
    publisher.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [modelAsset, manifestAsset].map((a) => a.bucket.arnForObjects(a.s3ObjectKey)),
      }),
    );
    publisher.addToRolePolicy(
      new iam.PolicyStatement({
        // Delete only takes back a copy whose checksum did not match, so a retry starts clean.
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: MODEL_FILES.map((file) => props.bucket.arnForObjects(`${this.keyPrefix}${file}`)),
      }),
    );
    // Without it S3 answers 403 instead of 404 for an object that is not there yet.
    publisher.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.bucket.bucketArn] }),
    );
    props.bucket.encryptionKey?.grant(publisher, 'kms:Decrypt', 'kms:GenerateDataKey');

    this.resource = new cdk.CustomResource(this, 'Version', {
      serviceToken: publisher.functionArn,
      resourceType: 'Custom::ModelVersion',
      properties: {
        SourceBucket: modelAsset.s3BucketName,
        ModelSourceKey: modelAsset.s3ObjectKey,
        ManifestSourceKey: manifestAsset.s3ObjectKey,
        DestinationBucket: props.bucket.bucketName,
        DestinationPrefix: this.keyPrefix,
        ModelSha256: this.sha256,
        ManifestSha256: folder.manifestSha256,
      },
      // Versions are immutable and other stages or a rollback may still use them.
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    this.s3Uri = `s3://${props.bucket.bucketName}/${this.keyPrefix}`;
  }

  /** Read access to this version's two objects only. */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return grantReadModelVersion(this.bucket, grantee, this.keyPrefix);
  }
}
