/**
 * Publishing a model version: the logic behind the `Custom::ModelVersion` CloudFormation resource.
 *
 * A model folder's two files arrive as CDK file assets (uploaded as they are, under content-hash keys).
 * Publishing copies them to `s3://<model bucket>/<name>/<version>/model.onnx` and `model.json`, each with
 * its sha256 in the object's user metadata. A version, once published, is immutable:
 * - an object already there with the same sha256 is left alone, so a redeploy is a no-op;
 * - an object already there with another sha256 (or none) fails the deployment, and nothing is written;
 * - the manifest is copied last, so a version folder that has a `model.json` is complete.
 *
 * Every copy asks S3 for the SHA-256 of the bytes it wrote (or, when S3 gives none for the whole object, reads
 * the copy back and hashes it), and a copy whose bytes do not have the expected hash is removed again: the
 * `sha256` metadata is never a claim nobody checked.
 *
 * This module knows S3 and the shape of CloudFormation's custom resource events and responses, but no HTTP
 * and no Lambda: the handler (`lambda/handlers/publish-model.ts`) does the I/O.
 */
import { createHash } from 'node:crypto';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type CopyObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { CustomResourceEvent, CustomResourceOutcome } from './custom-resource';
import { MANIFEST_FILE, MODEL_FILE } from './model-store';

/** The ResourceProperties of a `Custom::ModelVersion`, all strings, as the `ModelArtifact` construct sets them. */
export interface PublishRequest {
  /** The CDK asset bucket that holds both files. */
  readonly sourceBucket: string;
  readonly modelSourceKey: string;
  readonly manifestSourceKey: string;
  /** The model bucket. */
  readonly destinationBucket: string;
  /** `<name>/<version>/`: never starts with `/`, always ends with one. */
  readonly destinationPrefix: string;
  /** Lower-case hex sha256 of `model.onnx`'s bytes. */
  readonly modelSha256: string;
  /** Lower-case hex sha256 of `model.json`'s bytes. */
  readonly manifestSha256: string;
}

/** Publishing failed; the message says what to fix. */
export class PublishError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The version is already published with other bytes. */
export class VersionConflictError extends PublishError {}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

const PROPERTY_NAMES = {
  sourceBucket: 'SourceBucket',
  modelSourceKey: 'ModelSourceKey',
  manifestSourceKey: 'ManifestSourceKey',
  destinationBucket: 'DestinationBucket',
  destinationPrefix: 'DestinationPrefix',
  modelSha256: 'ModelSha256',
  manifestSha256: 'ManifestSha256',
} as const satisfies Record<keyof PublishRequest, string>;

/** Reads and checks a custom resource's ResourceProperties. Throws a PublishError that names every bad one. */
export function publishRequestFrom(
  properties: Readonly<Record<string, unknown>> | undefined,
): PublishRequest {
  const props = properties ?? {};
  const problems: string[] = [];
  const read = (name: string): string => {
    const value = props[name];
    if (typeof value !== 'string' || value === '') {
      problems.push(`${name} must be a non-empty string, got ${JSON.stringify(value) ?? 'nothing'}`);
      return '';
    }
    return value;
  };
  const request = Object.fromEntries(
    Object.entries(PROPERTY_NAMES).map(([field, name]) => [field, read(name)]),
  ) as Record<keyof PublishRequest, string>;

  const prefix = request.destinationPrefix;
  if (prefix !== '' && (!prefix.endsWith('/') || prefix.startsWith('/'))) {
    problems.push(
      `DestinationPrefix must look like "name/version/" (end with "/", not start with one), got "${prefix}"`,
    );
  }
  for (const field of ['modelSha256', 'manifestSha256'] as const) {
    const value = request[field];
    if (value !== '' && !SHA256_HEX.test(value)) {
      problems.push(`${PROPERTY_NAMES[field]} must be 64 hex digits, got "${value}"`);
    }
    request[field] = value.toLowerCase();
  }
  if (problems.length > 0)
    throw new PublishError(`bad Custom::ModelVersion properties: ${problems.join('; ')}`);
  return request;
}

/** `s3://bucket/key` */
export function s3Uri(bucket: string, key = ''): string {
  return `s3://${bucket}/${key}`;
}

export interface PublishedObject {
  readonly key: string;
  readonly sha256: string;
  /** `copied` now, or `unchanged`: already published with the same sha256. */
  readonly action: 'copied' | 'unchanged';
}

export interface PublishResult {
  /** `s3://<bucket>/<prefix>`: the model folder. */
  readonly modelUri: string;
  /** The model file's sha256. */
  readonly sha256: string;
  /** model.onnx, then model.json. */
  readonly objects: readonly PublishedObject[];
}

interface PlannedFile {
  readonly sourceKey: string;
  readonly key: string;
  readonly sha256: string;
  readonly contentType: string;
}

/**
 * Publishes the version: checks both destinations first, and fails on a conflict before anything is written;
 * then copies what is missing, the model before the manifest. Safe to run again after any failure.
 */
export async function publishModelVersion(s3: S3Client, request: PublishRequest): Promise<PublishResult> {
  const files: PlannedFile[] = [
    {
      sourceKey: request.modelSourceKey,
      key: request.destinationPrefix + MODEL_FILE,
      sha256: request.modelSha256,
      contentType: 'application/octet-stream',
    },
    {
      sourceKey: request.manifestSourceKey,
      key: request.destinationPrefix + MANIFEST_FILE,
      sha256: request.manifestSha256,
      contentType: 'application/json',
    },
  ];
  const bucket = request.destinationBucket;

  const present = await Promise.all(
    files.map((file) => objectSha256(s3, bucket, file.key, (err) => checkFailed(bucket, file.key, err))),
  );
  const conflicts = sha256Conflicts(bucket, files, present, "this deployment's");
  if (conflicts.length > 0) {
    throw new VersionConflictError(
      `${conflicts.join('; ')}. Published model versions are immutable: bump "version" in model.json to publish new bytes.`,
    );
  }

  const objects: PublishedObject[] = [];
  for (const [i, file] of files.entries()) {
    if (present[i] !== undefined) {
      objects.push({ key: file.key, sha256: file.sha256, action: 'unchanged' });
      continue;
    }
    await copyVerified(s3, request.sourceBucket, bucket, file);
    objects.push({ key: file.key, sha256: file.sha256, action: 'copied' });
  }
  return { modelUri: s3Uri(bucket, request.destinationPrefix), sha256: request.modelSha256, objects };
}

/**
 * A sentence for each object that is already there with other bytes (or no sha256 metadata) than wanted;
 * `whose` says where the wanted bytes come from ("the local", "this deployment's").
 */
export function sha256Conflicts(
  bucket: string,
  wanted: readonly { readonly key: string; readonly sha256: string }[],
  present: readonly ({ sha256: string | undefined } | undefined)[],
  whose: string,
): string[] {
  return wanted.flatMap((file, i) => {
    const existing = present[i];
    if (existing === undefined || existing.sha256 === file.sha256) return [];
    const has = existing.sha256 === undefined ? 'no sha256 metadata' : `sha256 ${existing.sha256}`;
    const name = file.key.slice(file.key.lastIndexOf('/') + 1);
    return [
      `${s3Uri(bucket, file.key)} already exists with ${has}, but ${whose} ${name} has sha256 ${file.sha256}`,
    ];
  });
}

/**
 * The `sha256` metadata of an object that exists (undefined inside when it has none); undefined when it is
 * absent (404). Any other error becomes `failed(err)`, which says what was being checked.
 */
export async function objectSha256(
  s3: S3Client,
  bucket: string,
  key: string,
  failed: (err: unknown) => Error,
): Promise<{ sha256: string | undefined } | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { sha256: head.Metadata?.['sha256']?.toLowerCase() };
  } catch (err) {
    if (httpStatus(err) === 404) return undefined;
    throw failed(err);
  }
}

function checkFailed(bucket: string, key: string, err: unknown): PublishError {
  const hint =
    httpStatus(err) === 403
      ? ' (without s3:ListBucket on the bucket, S3 answers 403 rather than 404 for a missing object)'
      : '';
  return new PublishError(`could not check ${s3Uri(bucket, key)}: ${describe(err)}${hint}`);
}

async function copyVerified(
  s3: S3Client,
  sourceBucket: string,
  bucket: string,
  file: PlannedFile,
): Promise<void> {
  const source = s3Uri(sourceBucket, file.sourceKey);
  const target = s3Uri(bucket, file.key);
  let copy: CopyObjectCommandOutput;
  try {
    copy = await s3.send(
      new CopyObjectCommand({
        CopySource: `${sourceBucket}/${file.sourceKey.split('/').map(encodeURIComponent).join('/')}`,
        Bucket: bucket,
        Key: file.key,
        MetadataDirective: 'REPLACE',
        Metadata: { sha256: file.sha256 },
        ContentType: file.contentType,
        ChecksumAlgorithm: 'SHA256',
      }),
    );
  } catch (err) {
    throw new PublishError(`could not copy ${source} to ${target}: ${describe(err)}`);
  }
  let copied: string;
  try {
    copied = fullObjectSha256(copy) ?? (await readSha256(s3, bucket, file.key));
  } catch (err) {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: file.key })).catch(() => undefined);
    throw new PublishError(`could not verify the copy of ${source} at ${target}: ${describe(err)}`);
  }
  if (copied === file.sha256) return;
  // Take the unverified copy away again, so the version stays unpublished and a fixed deployment can retry.
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: file.key })).catch(() => undefined);
  throw new PublishError(
    `${source} has sha256 ${copied}, not the expected ${file.sha256}: the asset does not match the hash the deployment was built with`,
  );
}

/** The copy's SHA-256 as S3 computed it, when S3 gave one for the whole object (not a composite of parts). */
function fullObjectSha256(copy: CopyObjectCommandOutput): string | undefined {
  const result = copy.CopyObjectResult;
  const checksum = result?.ChecksumSHA256;
  if (checksum === undefined || checksum.includes('-') || result?.ChecksumType === 'COMPOSITE')
    return undefined;
  return Buffer.from(checksum, 'base64').toString('hex');
}

/**
 * Reads the object and hashes it as it streams. The current version, which is the copy just made: reading a
 * given version would need s3:GetObjectVersion as well.
 */
async function readSha256(s3: S3Client, bucket: string, key: string): Promise<string> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!Body) throw new Error('GetObject returned no body');
  const hash = createHash('sha256');
  for await (const chunk of Body as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest('hex');
}

/** The HTTP status of an AWS SDK error, where it has one. */
export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const meta = (err as { $metadata?: { httpStatusCode?: number } }).$metadata;
  return meta?.httpStatusCode;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const status = httpStatus(err);
    const name = err.name !== 'Error' ? `${err.name}: ` : '';
    const message = err.message && err.message !== 'UnknownError' ? err.message : `HTTP ${status ?? '?'}`;
    return `${name}${message}`;
  }
  return String(err);
}

// ---------------------------------------------------------------------------------------------------------
// The Custom::ModelVersion event.

/**
 * Runs one event. Create and Update publish (an Update to another version gets a new physical id, and
 * CloudFormation later sends a Delete for the old one). Delete does nothing: versions are immutable, a stage
 * or a rollback may still point at the old one, and the model bucket's removal policy decides their fate.
 */
export async function modelVersionEvent(
  s3: S3Client,
  event: CustomResourceEvent,
): Promise<CustomResourceOutcome> {
  if (event.RequestType === 'Delete') {
    return { physicalResourceId: event.PhysicalResourceId ?? event.LogicalResourceId };
  }
  const result = await publishModelVersion(s3, publishRequestFrom(event.ResourceProperties));
  return { physicalResourceId: result.modelUri, data: { ModelUri: result.modelUri, Sha256: result.sha256 } };
}
