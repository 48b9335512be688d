/**
 * Reads a model folder at synth: `model.onnx` and its `model.json` manifest. lib/ never imports the
 * runtime, so this reads only the manifest fields the infrastructure needs.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The manifest fields the constructs use; the file may hold more (metrics, baseline, sample). */
export interface ModelManifestInfo {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  readonly sha256?: string;
  readonly [key: string]: unknown;
}

export interface ModelFolder {
  readonly dir: string;
  readonly modelPath: string;
  readonly manifestPath: string;
  readonly manifest: ModelManifestInfo;
  /** sha256 of model.onnx, hex. */
  readonly sha256: string;
  /** sha256 of model.json, hex. */
  readonly manifestSha256: string;
  readonly modelBytes: number;
}

/** The two files of a model folder, and of a published version under its prefix. */
export const MODEL_FILES = ['model.onnx', 'model.json'] as const;
export type ModelFile = (typeof MODEL_FILES)[number];

/** S3 keys and CloudFormation allow these; so do semver and dates (lambda/core/types.ts has the runtime's copy). */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
export const MODEL_VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/;

const HASH_CHUNK_BYTES = 8 * 1024 * 1024;

/** In chunks: a model can be larger than the biggest Buffer Node will allocate. */
function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const chunk = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n = fs.readSync(fd, chunk); n > 0; n = fs.readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

export function readModelFolder(dir: string): ModelFolder {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
    throw new Error(`Model folder ${abs} does not exist: give a folder that holds model.onnx and model.json`);
  }
  const modelPath = path.join(abs, 'model.onnx');
  const manifestPath = path.join(abs, 'model.json');
  for (const file of [modelPath, manifestPath]) {
    if (!fs.existsSync(file)) {
      throw new Error(
        `Model folder ${abs} has no ${path.basename(file)}: a model folder holds model.onnx and model.json`,
      );
    }
  }
  let manifest: ModelManifestInfo;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as ModelManifestInfo;
  } catch (err) {
    throw new Error(`${manifestPath} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof manifest.name !== 'string' || !MODEL_NAME_PATTERN.test(manifest.name)) {
    throw new Error(
      `${manifestPath}: "name" must be 1-63 letters, digits, '.', '_' or '-', got ${JSON.stringify(manifest.name)}`,
    );
  }
  if (typeof manifest.version !== 'string' || !MODEL_VERSION_PATTERN.test(manifest.version)) {
    throw new Error(
      `${manifestPath}: "version" must be 1-64 letters, digits, '.', '_', '+' or '-' (like 1.2.0), got ${JSON.stringify(manifest.version)}`,
    );
  }
  const sha256 = sha256File(modelPath);
  if (manifest.sha256 !== undefined && manifest.sha256.toLowerCase() !== sha256) {
    throw new Error(
      `${modelPath} hashes to sha256 ${sha256}, but ${manifestPath} says ${manifest.sha256} for ${manifest.name} ${manifest.version}. ` +
        'The model bytes changed without a new version: versions are immutable, so give the model a new version and update the manifest.',
    );
  }
  return {
    dir: abs,
    modelPath,
    manifestPath,
    manifest,
    sha256,
    manifestSha256: sha256File(manifestPath),
    modelBytes: fs.statSync(modelPath).size,
  };
}
