import type { S3Client } from '@aws-sdk/client-s3';
import { OnnxModel, sessionOptions, type SessionTuning } from './model';
import { SessionThread } from './session-thread';
import { loadModelFiles } from './model-store';

export interface ModelSpec {
  /** A `.onnx` file, a model folder, or an `s3://` URI of either. */
  readonly location: string;
  /** @default - the manifest's name, else the file or folder name */
  readonly name?: string;
  /** @default - the manifest's sha256, if there is a manifest */
  readonly expectedSha256?: string;
}

export interface OpenOptions {
  readonly session?: SessionTuning;
  readonly s3?: S3Client;
  readonly cacheDir?: string;
  /** Run the model on a worker thread (SessionThread), so the caller's thread stays free to parse. @default false */
  readonly sessionThread?: boolean;
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Finds, verifies and loads a model: the one path from a location to a ready session. */
export async function openModel(
  spec: ModelSpec,
  options: OpenOptions = {},
): Promise<{ model: OnnxModel; source: string }> {
  const files = await loadModelFiles(spec.location, {
    expectedSha256: spec.expectedSha256,
    s3: options.s3,
    cacheDir: options.cacheDir,
  });
  const name = spec.name ?? files.manifest?.name ?? files.stem;
  if (!MODEL_NAME.test(name)) {
    throw new Error(
      `model name ${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits, '.', '_' or '-'; pass a name`,
    );
  }
  let model: OnnxModel;
  try {
    model = await OnnxModel.create(files.bytes, {
      name,
      version: files.manifest?.version ?? '1',
      manifest: files.manifest,
      sha256: files.sha256,
      session: options.session,
    });
  } catch (err) {
    throw new Error(`onnxruntime cannot load ${files.source}: ${(err as Error).message}`);
  }
  if (options.sessionThread) {
    model.useRunner(await SessionThread.start(files.bytes, sessionOptions(options.session)));
  }
  return { model, source: files.source };
}
