/**
 * The SageMaker Model Registry as a catalogue of model versions in the model bucket.
 *
 * `registerModel` uploads a model folder to `s3://<bucket>/<name>/<version>/` (the layout ModelArtifact
 * publishes to, with the same immutability) and records it as a versioned model package in a model package
 * group. The package's CustomerMetadataProperties say which version it is and where its bytes are (`mdk.*`
 * keys); those, not the package's own version number, are what a server is pointed at.
 * `resolveLatestApproved` is what a deployment asks: the newest package a person approved.
 *
 * Both clients come from the caller: the CLI and the resolver Lambda build them from the environment.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  ListModelPackagesCommand,
  UpdateModelPackageCommand,
  type CreateModelPackageInput,
  type DescribeModelPackageCommandOutput,
  type ModelPackageSummary,
  type SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { loadModelFiles, MANIFEST_FILE, MODEL_FILE, parseS3Uri, sha256Hex as sha256 } from './model-store';
import type { CustomResourceEvent, CustomResourceOutcome } from './custom-resource';
import { httpStatus, objectSha256, s3Uri, sha256Conflicts } from './publish';
import { MODEL_NAME_PATTERN, MODEL_VERSION_PATTERN } from './types';

/** A registry call failed for a reason the user can fix; the message says which. */
export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export type ApprovalStatus = 'Approved' | 'Rejected' | 'PendingManualApproval';

/** The CustomerMetadataProperties keys this toolkit writes on a package. */
export const METADATA = {
  modelName: 'mdk.model-name',
  version: 'mdk.model-version',
  modelSha256: 'mdk.model-sha256',
  manifestSha256: 'mdk.manifest-sha256',
  s3Uri: 'mdk.s3-uri',
} as const;

/** Manifest metrics also go into the metadata, as `metric.<name>`, so the console's list shows them. */
const METRIC_PREFIX = 'metric.';
/** SageMaker's limits on CustomerMetadataProperties. */
const MAX_PROPERTIES = 50;
const PROPERTY_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}$/u;
const PROPERTY_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;

/** ModelPackageGroupName's pattern in the SageMaker API. */
export const GROUP_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/** The file beside model.json that ModelMetrics points at, when the manifest has metrics. */
export const METRICS_FILE = 'metrics.json';

export function checkGroupName(group: string): string {
  if (!GROUP_NAME.test(group)) {
    throw new RegistryError(
      `model package group name ${JSON.stringify(group)} is not valid: 1-63 letters, digits and hyphens, starting and ending with a letter or digit`,
    );
  }
  return group;
}

/** One registered version, as its package describes it. */
export interface RegisteredModel {
  readonly group: string;
  readonly packageArn: string;
  readonly packageVersion: number;
  /** Approved, Rejected or PendingManualApproval (ApprovalStatus), as SageMaker says. */
  readonly status: string;
  readonly created: Date | undefined;
  readonly description: string | undefined;
  readonly approvalDescription: string | undefined;
  /** The mdk.* metadata; undefined when the package was not registered by this toolkit. */
  readonly model: ModelLocation | undefined;
}

export interface ModelLocation {
  readonly modelName: string;
  readonly version: string;
  readonly modelSha256: string;
  readonly manifestSha256: string;
  /** `s3://<bucket>/<name>/<version>/` */
  readonly s3Uri: string;
}

export interface RegisterOptions {
  readonly group: string;
  /** A folder with model.onnx and model.json. */
  readonly modelDir: string;
  /** The model bucket. */
  readonly bucket: string;
  /** @default 'PendingManualApproval' */
  readonly status?: ApprovalStatus;
  /** Create the model package group when it does not exist. @default false: an unknown group is an error */
  readonly createGroup?: boolean;
  /**
   * An ECR image that serves the model on a SageMaker endpoint (this toolkit's container speaks SageMaker's
   * contract). With it the package gets an InferenceSpecification and can be deployed by SageMaker itself.
   * @default - no InferenceSpecification: the package catalogues the version for this toolkit's deployments
   */
  readonly image?: string;
  /** @default - the manifest's description */
  readonly description?: string;
  /** Progress lines, e.g. to stderr. */
  readonly log?: (line: string) => void;
}

export interface RegisterResult {
  readonly registered: RegisteredModel;
  /** false when the group already had a package for this name and version: nothing new was created. */
  readonly created: boolean;
  readonly createdGroup: boolean;
  /** Per file: uploaded now, or already there with the same bytes. */
  readonly uploads: readonly { readonly key: string; readonly action: 'uploaded' | 'unchanged' }[];
}

interface LocalFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly contentType: string;
}

function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as { name?: string }).name : undefined;
}

/** SageMaker answers a missing group or package with a ValidationException that says so. */
function isNotFound(err: unknown): boolean {
  return (
    errorName(err) === 'ResourceNotFound' ||
    (errorName(err) === 'ValidationException' &&
      /does not exist|not found|cannot be found/i.test((err as Error).message))
  );
}

async function groupExists(sm: SageMakerClient, group: string): Promise<boolean> {
  try {
    await sm.send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: group }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Fails with a clear error when the group does not exist. */
export async function requireGroup(sm: SageMakerClient, group: string): Promise<void> {
  checkGroupName(group);
  if (!(await groupExists(sm, group))) {
    const region = await sm.config.region();
    throw new RegistryError(`model package group "${group}" does not exist in ${region}`);
  }
}

/** Every package of the group, by one ListModelPackages page after another. */
async function listSummaries(sm: SageMakerClient, group: string): Promise<ModelPackageSummary[]> {
  const all: ModelPackageSummary[] = [];
  let token: string | undefined;
  do {
    const page = await sm.send(
      new ListModelPackagesCommand({
        ModelPackageGroupName: group,
        ModelPackageType: 'Versioned',
        MaxResults: 100,
        NextToken: token,
      }),
    );
    all.push(...(page.ModelPackageSummaryList ?? []));
    token = page.NextToken || undefined;
  } while (token);
  return all;
}

function locationFrom(props: Record<string, string> | undefined): ModelLocation | undefined {
  const get = (key: string) => props?.[key];
  const [modelName, version, modelSha256, manifestSha256, uri] = [
    get(METADATA.modelName),
    get(METADATA.version),
    get(METADATA.modelSha256),
    get(METADATA.manifestSha256),
    get(METADATA.s3Uri),
  ];
  if (!modelName || !version || !modelSha256 || !manifestSha256 || !uri) return undefined;
  return { modelName, version, modelSha256, manifestSha256, s3Uri: uri };
}

function registeredFrom(group: string, d: DescribeModelPackageCommandOutput): RegisteredModel {
  if (!d.ModelPackageArn || d.ModelPackageVersion === undefined) {
    throw new RegistryError(`SageMaker described a package of "${group}" without an ARN or version number`);
  }
  return {
    group,
    packageArn: d.ModelPackageArn,
    packageVersion: d.ModelPackageVersion,
    status: d.ModelApprovalStatus ?? 'PendingManualApproval',
    created: d.CreationTime,
    description: d.ModelPackageDescription,
    approvalDescription: d.ApprovalDescription,
    model: locationFrom(d.CustomerMetadataProperties),
  };
}

async function describe(sm: SageMakerClient, group: string, arn: string): Promise<RegisteredModel> {
  return registeredFrom(group, await sm.send(new DescribeModelPackageCommand({ ModelPackageName: arn })));
}

/** The group's packages, newest (highest package version) first, each described for its mdk metadata. */
export async function listModels(sm: SageMakerClient, group: string): Promise<RegisteredModel[]> {
  await requireGroup(sm, group);
  const summaries = await listSummaries(sm, group);
  // The summaries carry no CustomerMetadataProperties on AWS: each package is described.
  const described: RegisteredModel[] = [];
  for (const s of summaries) {
    if (s.ModelPackageArn) described.push(await describe(sm, group, s.ModelPackageArn));
  }
  return described.sort((a, b) => b.packageVersion - a.packageVersion);
}

/** A package of the group by its version number (1, 2, ...) or its ARN. */
export async function findPackage(
  sm: SageMakerClient,
  group: string,
  ref: number | string,
): Promise<RegisteredModel> {
  await requireGroup(sm, group);
  if (typeof ref === 'string') {
    let found: DescribeModelPackageCommandOutput;
    try {
      found = await sm.send(new DescribeModelPackageCommand({ ModelPackageName: ref }));
    } catch (err) {
      if (isNotFound(err)) throw new RegistryError(`model package ${ref} does not exist`);
      throw err;
    }
    if (found.ModelPackageGroupName !== undefined && found.ModelPackageGroupName !== group) {
      throw new RegistryError(
        `model package ${ref} belongs to group "${found.ModelPackageGroupName}", not "${group}"`,
      );
    }
    return registeredFrom(group, found);
  }
  const summaries = await listSummaries(sm, group);
  const match = summaries.find((s) => s.ModelPackageVersion === ref);
  if (!match?.ModelPackageArn) {
    const versions = summaries.map((s) => s.ModelPackageVersion).sort((a, b) => (a ?? 0) - (b ?? 0));
    throw new RegistryError(
      `model package group "${group}" has no version ${ref}` +
        (versions.length > 0 ? ` (it has ${versions.join(', ')})` : ' (it has no packages)'),
    );
  }
  return describe(sm, group, match.ModelPackageArn);
}

/**
 * Sets a package's approval status. The package's CustomerMetadataProperties are sent back as they are:
 * AWS keeps them anyway, but moto's UpdateModelPackage drops whatever the call does not send.
 */
export async function setApproval(
  sm: SageMakerClient,
  group: string,
  ref: number | string,
  status: ApprovalStatus,
  description?: string,
): Promise<RegisteredModel> {
  const found = await findPackage(sm, group, ref);
  const current = await sm.send(new DescribeModelPackageCommand({ ModelPackageName: found.packageArn }));
  await sm.send(
    new UpdateModelPackageCommand({
      ModelPackageArn: found.packageArn,
      ModelApprovalStatus: status,
      ...(description !== undefined ? { ApprovalDescription: description } : {}),
      ...(current.CustomerMetadataProperties
        ? { CustomerMetadataProperties: current.CustomerMetadataProperties }
        : {}),
    }),
  );
  return describe(sm, group, found.packageArn);
}

/**
 * The newest package (highest package version) whose status is Approved. Rejected and pending packages
 * are never returned, however new. A package without this toolkit's metadata is an error, not skipped:
 * an approval is a person's decision, and silently deploying an older one would hide it.
 */
export async function resolveLatestApproved(sm: SageMakerClient, group: string): Promise<RegisteredModel> {
  checkGroupName(group);
  const summaries = await listSummaries(sm, group);
  const approved = summaries
    .filter((s) => s.ModelApprovalStatus === 'Approved' && s.ModelPackageArn)
    .sort((a, b) => (b.ModelPackageVersion ?? 0) - (a.ModelPackageVersion ?? 0));
  const newest = approved[0];
  if (!newest?.ModelPackageArn) {
    const counts = new Map<string, number>();
    for (const s of summaries) {
      const status = s.ModelApprovalStatus ?? 'PendingManualApproval';
      counts.set(status, (counts.get(status) ?? 0) + 1);
    }
    const has =
      summaries.length === 0
        ? 'it has no packages, or does not exist'
        : `it has ${[...counts].map(([status, n]) => `${n} ${status}`).join(', ')}`;
    throw new RegistryError(
      `model package group "${group}" has no Approved model package (${has}); approve one with 'mdk registry approve --group ${group} --version N'`,
    );
  }
  const found = await describe(sm, group, newest.ModelPackageArn);
  if (!found.model) {
    throw new RegistryError(
      `the latest Approved package of "${group}", ${found.packageArn}, was not registered by mdk: it has no ${METADATA.s3Uri} metadata`,
    );
  }
  return found;
}

/** The metric properties that fit SageMaker's metadata rules; others stay in metrics.json only. */
function metricProperties(metrics: unknown, room: number): Record<string, string> {
  if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) return {};
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metrics as Record<string, unknown>)) {
    if (Object.keys(out).length >= room) break;
    if (typeof value !== 'number' && typeof value !== 'string') continue;
    const key = `${METRIC_PREFIX}${name}`;
    const text = String(value);
    if (PROPERTY_KEY.test(key) && PROPERTY_VALUE.test(text)) out[key] = text;
  }
  return out;
}

async function readFolder(
  dir: string,
): Promise<{ files: LocalFile[]; location: ModelLocation; manifest: Record<string, unknown> }> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new RegistryError(
      `model folder ${dir} does not exist: give a folder with ${MODEL_FILE} and ${MANIFEST_FILE}`,
    );
  }
  let loaded;
  try {
    // The runtime's own reader: it checks model.onnx against the manifest's sha256.
    loaded = await loadModelFiles(dir);
  } catch (err) {
    throw new RegistryError((err as Error).message);
  }
  if (!loaded.manifest) throw new RegistryError(`model folder ${dir} has no ${MANIFEST_FILE}`);
  const manifest = loaded.manifest as unknown as Record<string, unknown>;
  const { name, version } = loaded.manifest;
  if (!MODEL_NAME_PATTERN.test(name)) {
    throw new RegistryError(
      `${MANIFEST_FILE}: "name" must be 1-63 letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`,
    );
  }
  if (!MODEL_VERSION_PATTERN.test(version)) {
    throw new RegistryError(
      `${MANIFEST_FILE}: "version" must be 1-64 letters, digits, '.', '_', '+' or '-', got ${JSON.stringify(version)}`,
    );
  }
  const manifestBytes = await fs.readFile(path.join(dir, MANIFEST_FILE));
  const files: LocalFile[] = [
    { name: MODEL_FILE, bytes: loaded.bytes, sha256: loaded.sha256, contentType: 'application/octet-stream' },
  ];
  if (typeof manifest.metrics === 'object' && manifest.metrics !== null) {
    const bytes = Buffer.from(JSON.stringify(manifest.metrics, null, 2) + '\n');
    files.push({ name: METRICS_FILE, bytes, sha256: sha256(bytes), contentType: 'application/json' });
  }
  // The manifest last: a version folder with a model.json is complete.
  files.push({
    name: MANIFEST_FILE,
    bytes: manifestBytes,
    sha256: sha256(manifestBytes),
    contentType: 'application/json',
  });
  return {
    files,
    manifest,
    location: {
      modelName: name,
      version,
      modelSha256: loaded.sha256,
      manifestSha256: sha256(manifestBytes),
      s3Uri: '',
    },
  };
}

function checkFailed(bucket: string, key: string, err: unknown): RegistryError {
  if (httpStatus(err) === 403) {
    // Without s3:ListBucket, S3 answers 403 rather than 404 for an object that is not there.
    return new RegistryError(
      `access to ${s3Uri(bucket, key)} is denied (checking whether it exists needs s3:GetObject and s3:ListBucket on the bucket)`,
    );
  }
  return new RegistryError(
    `could not check ${s3Uri(bucket, key)}: ${(err as Error).message || errorName(err)}`,
  );
}

/** Which files are already in the bucket; refuses when one is there with other bytes. Writes nothing. */
async function planUploads(
  s3: S3Client,
  bucket: string,
  prefix: string,
  files: readonly LocalFile[],
): Promise<boolean[]> {
  // HeadObject answers a missing bucket with a bare 404, like a missing object: ask about the bucket first.
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const status = httpStatus(err);
    if (status === 404) throw new RegistryError(`bucket ${bucket} does not exist`);
    if (status === 403) throw new RegistryError(`access to bucket ${bucket} is denied`);
    throw new RegistryError(`could not check bucket ${bucket}: ${(err as Error).message || errorName(err)}`);
  }
  const wanted = files.map((f) => ({ key: prefix + f.name, sha256: f.sha256 }));
  const present = await Promise.all(
    wanted.map(({ key }) => objectSha256(s3, bucket, key, (err) => checkFailed(bucket, key, err))),
  );
  const conflicts = sha256Conflicts(bucket, wanted, present, 'the local');
  if (conflicts.length > 0) {
    throw new RegistryError(
      `${conflicts.join('; ')}. Model versions are immutable: bump "version" in ${MANIFEST_FILE} to register new bytes. Nothing was changed.`,
    );
  }
  return present.map((p) => p !== undefined);
}

/** Uploads the files not there yet, in order (the manifest last). */
async function upload(
  s3: S3Client,
  bucket: string,
  prefix: string,
  files: readonly LocalFile[],
  present: readonly boolean[],
  log: (line: string) => void,
): Promise<RegisterResult['uploads']> {
  const uploads: { key: string; action: 'uploaded' | 'unchanged' }[] = [];
  for (const [i, f] of files.entries()) {
    const key = prefix + f.name;
    if (present[i]) {
      uploads.push({ key, action: 'unchanged' });
      continue;
    }
    log(`uploading ${f.name} (${f.bytes.length} bytes) to ${s3Uri(bucket, key)}`);
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: f.bytes,
        ContentType: f.contentType,
        Metadata: { sha256: f.sha256 },
        // S3 checks the bytes it received against this, and refuses the upload if they differ.
        ChecksumSHA256: Buffer.from(f.sha256, 'hex').toString('base64'),
      }),
    );
    uploads.push({ key, action: 'uploaded' });
  }
  return uploads;
}

/**
 * Uploads a model folder to the bucket and registers it in the group. Safe to run again: the same bytes
 * upload nothing, and a name and version the group already has creates no second package.
 */
export async function registerModel(
  sm: SageMakerClient,
  s3: S3Client,
  options: RegisterOptions,
): Promise<RegisterResult> {
  const log = options.log ?? (() => undefined);
  const group = checkGroupName(options.group);
  const { files, manifest, location: local } = await readFolder(options.modelDir);
  const prefix = `${local.modelName}/${local.version}/`;
  const location: ModelLocation = { ...local, s3Uri: s3Uri(options.bucket, prefix) };
  // Every check before any change: a refused registration leaves the bucket and the registry as they were.
  const present = await planUploads(s3, options.bucket, prefix, files);

  let createdGroup = false;
  if (!(await groupExists(sm, group))) {
    if (!options.createGroup) {
      const region = await sm.config.region();
      throw new RegistryError(
        `model package group "${group}" does not exist in ${region}; pass --create-group to create it`,
      );
    }
    log(`creating model package group ${group}`);
    await sm.send(
      new CreateModelPackageGroupCommand({
        ModelPackageGroupName: group,
        ModelPackageGroupDescription: 'Model versions registered by model-deploy-kit (mdk registry register)',
      }),
    );
    createdGroup = true;
  }

  // Idempotence first, so a rerun neither uploads nor creates: is this name and version already here?
  const existing = (await listModels(sm, group)).find(
    (p) => p.model?.modelName === location.modelName && p.model.version === location.version,
  );
  if (existing?.model) {
    const same =
      existing.model.modelSha256 === location.modelSha256 &&
      existing.model.manifestSha256 === location.manifestSha256 &&
      existing.model.s3Uri === location.s3Uri;
    if (!same) {
      throw new RegistryError(
        `${location.modelName} ${location.version} is already registered in "${group}" as package ${existing.packageVersion} ` +
          `(model.onnx sha256 ${existing.model.modelSha256}, model.json sha256 ${existing.model.manifestSha256}, at ${existing.model.s3Uri}), ` +
          `but the local folder has model.onnx sha256 ${location.modelSha256}, model.json sha256 ${location.manifestSha256}, for ${location.s3Uri}. Nothing was changed. ` +
          `Versions are immutable: bump "version" in ${MANIFEST_FILE}.`,
      );
    }
  }

  const uploads = await upload(s3, options.bucket, prefix, files, present, log);
  if (existing) {
    log(
      `${location.modelName} ${location.version} is already package ${existing.packageVersion} of ${group}`,
    );
    return { registered: existing, created: false, createdGroup, uploads };
  }

  const hasMetrics = files.some((f) => f.name === METRICS_FILE);
  const properties: Record<string, string> = {
    [METADATA.modelName]: location.modelName,
    [METADATA.version]: location.version,
    [METADATA.modelSha256]: location.modelSha256,
    [METADATA.manifestSha256]: location.manifestSha256,
    [METADATA.s3Uri]: location.s3Uri,
  };
  Object.assign(
    properties,
    metricProperties(manifest.metrics, MAX_PROPERTIES - Object.keys(properties).length),
  );
  for (const [key, value] of Object.entries(properties)) {
    if (!PROPERTY_VALUE.test(value)) {
      throw new RegistryError(
        `metadata ${key}=${JSON.stringify(value)} has characters SageMaker does not allow`,
      );
    }
  }
  const description =
    options.description ?? (typeof manifest.description === 'string' ? manifest.description : undefined);
  const input: CreateModelPackageInput = {
    ModelPackageGroupName: group,
    // SageMaker allows no control characters (newlines) in a description.
    ModelPackageDescription: description?.replace(/\p{Cc}+/gu, ' ').slice(0, 1024),
    ModelApprovalStatus: options.status ?? 'PendingManualApproval',
    CustomerMetadataProperties: properties,
    ...(hasMetrics
      ? {
          ModelMetrics: {
            ModelQuality: {
              Statistics: {
                ContentType: 'application/json',
                S3Uri: s3Uri(options.bucket, prefix + METRICS_FILE),
              },
            },
          },
        }
      : {}),
    ...(options.image
      ? {
          InferenceSpecification: {
            Containers: [
              {
                Image: options.image,
                // Uncompressed: SageMaker copies the version folder to /opt/ml/model, where the container looks.
                ModelDataSource: {
                  S3DataSource: { S3Uri: location.s3Uri, S3DataType: 'S3Prefix', CompressionType: 'None' },
                },
                Environment: { MODEL_SHA256: location.modelSha256, MODEL_NAME: location.modelName },
              },
            ],
            SupportedContentTypes: ['application/json', 'text/csv'],
            SupportedResponseMIMETypes: ['application/json'],
          },
        }
      : {}),
  };
  log(`creating a model package in ${group} (${input.ModelApprovalStatus})`);
  const created = await sm.send(new CreateModelPackageCommand(input));
  if (!created.ModelPackageArn) throw new RegistryError('CreateModelPackage returned no ARN');
  return {
    registered: await describe(sm, group, created.ModelPackageArn),
    created: true,
    createdGroup,
    uploads,
  };
}

/** Checks that a resolved package points into `bucket`, under `<name>/<version>/`. */
export function checkLocation(found: RegisteredModel, bucket: string, modelName?: string): ModelLocation {
  const model = found.model;
  if (!model) throw new RegistryError(`package ${found.packageArn} has no ${METADATA.s3Uri} metadata`);
  let where: { bucket: string; key: string };
  try {
    where = parseS3Uri(model.s3Uri);
  } catch {
    throw new RegistryError(`package ${found.packageArn} has a bad ${METADATA.s3Uri}: ${model.s3Uri}`);
  }
  if (where.bucket !== bucket) {
    throw new RegistryError(
      `package ${found.packageArn} (${model.modelName} ${model.version}) points into bucket ${where.bucket}, not the model bucket ${bucket}`,
    );
  }
  const expected = `${model.modelName}/${model.version}/`;
  if (where.key !== expected) {
    throw new RegistryError(
      `package ${found.packageArn} points at ${model.s3Uri}, not s3://${bucket}/${expected}`,
    );
  }
  if (modelName !== undefined && model.modelName !== modelName) {
    throw new RegistryError(
      `the latest Approved package of "${found.group}", ${found.packageArn}, is model ${model.modelName}, not ${modelName}`,
    );
  }
  return model;
}

// ---------------------------------------------------------------------------------------------------------
// The `Custom::RegistryModel` CloudFormation resource (lambda/handlers/resolve-model.ts).

/**
 * Create and Update resolve the group's latest Approved package and check it points into the model bucket
 * (and is the expected model, when one is named). The physical id is the package ARN, so resolving another
 * package reads as a replacement; the Delete that follows for the old one does nothing, as does any Delete:
 * resolving creates nothing. `ResolveToken` is not read: it is there so a new value makes CloudFormation
 * send an Update, that is, resolve again.
 */
export async function registryModelEvent(
  sm: SageMakerClient,
  event: CustomResourceEvent,
): Promise<CustomResourceOutcome> {
  if (event.RequestType === 'Delete') {
    return { physicalResourceId: event.PhysicalResourceId ?? event.LogicalResourceId };
  }
  const props = event.ResourceProperties ?? {};
  const read = (name: string, optional = false): string | undefined => {
    const value = props[name];
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'string' || value === '') {
      throw new RegistryError(
        `bad Custom::RegistryModel properties: ${name} must be a non-empty string, got ${JSON.stringify(value) ?? 'nothing'}`,
      );
    }
    return value;
  };
  const group = checkGroupName(read('GroupName')!);
  const bucket = read('BucketName')!;
  const modelName = read('ModelName', true);
  const found = await resolveLatestApproved(sm, group);
  const model = checkLocation(found, bucket, modelName);
  return {
    physicalResourceId: found.packageArn,
    data: {
      ModelName: model.modelName,
      Version: model.version,
      S3Uri: model.s3Uri,
      Sha256: model.modelSha256,
      PackageArn: found.packageArn,
      PackageVersion: String(found.packageVersion),
    },
  };
}
