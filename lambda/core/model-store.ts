/**
 * Finds a model's bytes and manifest, locally or in S3, and checks its sha256.
 * S3 objects are cached in the temp dir: a deployed version is immutable, so a
 * cached file whose hash matches needs no second download.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { ModelIntegrityError } from './errors';
import type { ModelManifest } from './types';

export const MODEL_FILE = 'model.onnx';
export const MANIFEST_FILE = 'model.json';

export interface ModelFiles {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly manifest: ModelManifest | undefined;
  /** Where the model came from, for logs. */
  readonly source: string;
  /** The file's base name without extension, the fallback model name. */
  readonly stem: string;
}

export interface LoadModelOptions {
  /** Hex sha256 the model must have; checked as well as the manifest's. */
  readonly expectedSha256?: string;
  /** @default - a client built from the environment */
  readonly s3?: S3Client;
  /** @default - `<tmpdir>/mdk-models` */
  readonly cacheDir?: string;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m?.[1]) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1], key: m[2] ?? '' };
}

function checkManifest(raw: unknown, where: string): ModelManifest {
  const m = raw as Partial<ModelManifest> | null;
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    throw new Error(`${where} must be a JSON object`);
  for (const field of ['name', 'version', 'sha256'] as const) {
    if (typeof m[field] !== 'string' || m[field] === '') {
      throw new Error(`${where} needs a non-empty string "${field}"`);
    }
  }
  return m as ModelManifest;
}

/** A manifest's JSON, parsed; `where` names the file in the error when it is not JSON. */
export function parseManifestJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${where} is not valid JSON: ${(err as Error).message}`);
  }
}

function parseManifest(text: string, where: string): ModelManifest {
  return checkManifest(parseManifestJson(text, where), where);
}

function verify(files: Omit<ModelFiles, 'sha256'>, sha256: string, expected: string | undefined): ModelFiles {
  const wanted: [string, string][] = [];
  if (expected) wanted.push(['the expected sha256', expected.toLowerCase()]);
  if (files.manifest) wanted.push([`the manifest's sha256`, files.manifest.sha256.toLowerCase()]);
  for (const [what, hash] of wanted) {
    if (hash !== sha256) {
      throw new ModelIntegrityError(
        `${files.source}: model.onnx has sha256 ${sha256}, but ${what} is ${hash}. The file is corrupt or not the version deployed; refusing to serve it`,
      );
    }
  }
  return { ...files, sha256 };
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

async function loadLocal(location: string, expected: string | undefined): Promise<ModelFiles> {
  const resolved = path.resolve(location);
  const stat = await fs.stat(resolved).catch(() => {
    throw new Error(`model path ${location} does not exist`);
  });
  let modelPath = resolved;
  let manifest: ModelManifest | undefined;
  if (stat.isDirectory()) {
    modelPath = path.join(resolved, MODEL_FILE);
    if (!(await exists(modelPath))) throw new Error(`model folder ${location} has no ${MODEL_FILE}`);
    const manifestPath = path.join(resolved, MANIFEST_FILE);
    if (await exists(manifestPath)) {
      manifest = parseManifest(await fs.readFile(manifestPath, 'utf8'), manifestPath);
    }
  }
  const bytes = await fs.readFile(modelPath);
  const stem = stat.isDirectory() ? path.basename(resolved) : path.basename(resolved, path.extname(resolved));
  return verify({ bytes, manifest, source: modelPath, stem }, sha256Hex(bytes), expected);
}

/** Loaded on first use: the SDK takes ~50 ms to import, which a bundled or local model never needs. */
export async function s3Sdk(): Promise<typeof import('@aws-sdk/client-s3')> {
  return import('@aws-sdk/client-s3');
}

/**
 * Streams an object to a temp file, keeping its bytes and hashing them on the way, so
 * nothing is read back. The caller moves the file into the cache only once it is verified.
 */
async function download(
  s3: S3Client,
  bucket: string,
  key: string,
  tmp: string,
): Promise<{ bytes: Buffer; sha256: string }> {
  const { GetObjectCommand } = await s3Sdk();
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!res.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  await fs.mkdir(path.dirname(tmp), { recursive: true });
  await pipeline(
    res.Body as Readable,
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        chunks.push(chunk);
        cb(null, chunk);
      },
    }),
    createWriteStream(tmp),
  );
  return { bytes: Buffer.concat(chunks), sha256: hash.digest('hex') };
}

/** An S3 object's text (undefined when S3 gives no body); errors are S3's own. */
export async function readS3Text(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  const { GetObjectCommand } = await s3Sdk();
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body?.transformToString('utf8');
}

/** readS3Text, undefined when the object is not there. */
async function getText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    return await readS3Text(s3, bucket, key);
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
    throw err;
  }
}

async function loadS3(uri: string, options: LoadModelOptions): Promise<ModelFiles> {
  const { bucket, key } = parseS3Uri(uri);
  // The key becomes a path in the cache; '..' would climb out of it.
  if (key.split('/').some((part) => part === '..' || part === '.')) {
    throw new Error(`${uri}: S3 keys with '.' or '..' segments are not supported`);
  }
  const s3 = options.s3 ?? new (await s3Sdk()).S3Client({});
  const isFile = key.endsWith('.onnx');
  const prefix = isFile ? '' : key === '' || key.endsWith('/') ? key : `${key}/`;
  const modelKey = isFile ? key : `${prefix}${MODEL_FILE}`;
  let manifest: ModelManifest | undefined;
  if (!isFile) {
    const text = await getText(s3, bucket, `${prefix}${MANIFEST_FILE}`);
    if (text !== undefined) manifest = parseManifest(text, `s3://${bucket}/${prefix}${MANIFEST_FILE}`);
  }
  const expected = (options.expectedSha256 ?? manifest?.sha256)?.toLowerCase();
  const cacheDir = options.cacheDir ?? path.join(os.tmpdir(), 'mdk-models');
  const cached = path.join(cacheDir, bucket, ...modelKey.split('/'));
  const source = `s3://${bucket}/${modelKey}`;
  const stem = isFile
    ? path.posix.basename(modelKey, '.onnx')
    : path.posix.basename(prefix.replace(/\/$/, '')) || bucket;
  if (expected && (await exists(cached))) {
    const bytes = await fs.readFile(cached);
    const sha = sha256Hex(bytes);
    if (sha === expected) return verify({ bytes, manifest, source, stem }, sha, options.expectedSha256);
  }
  const tmp = `${cached}.${randomUUID()}.part`;
  try {
    const { bytes, sha256 } = await download(s3, bucket, modelKey, tmp);
    // Verified before it enters the cache, so a bad file is never found by the next start.
    const files = verify({ bytes, manifest, source, stem }, sha256, options.expectedSha256);
    await fs.rename(tmp, cached);
    return files;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Loads `model.onnx` (and `model.json` if present) from a file, a folder, or an s3:// URI. */
export async function loadModelFiles(location: string, options: LoadModelOptions = {}): Promise<ModelFiles> {
  if (location.startsWith('s3://')) return loadS3(location, options);
  return loadLocal(location, options.expectedSha256);
}
