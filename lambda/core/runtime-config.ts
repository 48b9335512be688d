import type { Limits } from './limits';

/** What a deployed runtime is told through its environment. Parsed here so it can be tested without Lambda. */
export interface RuntimeConfig {
  /** MODEL_URI: a model folder, `.onnx` file, or s3:// URI of either. */
  readonly modelUri: string;
  /** MODEL_NAME @default - from the manifest */
  readonly modelName?: string;
  /** MODEL_SHA256 @default - the manifest's */
  readonly modelSha256?: string;
  /** MAX_PAYLOAD_BYTES, MAX_BATCH, MAX_ELEMENTS */
  readonly limits: Partial<Limits>;
  /** LOG_PAYLOADS=true logs request bodies (truncated). @default false */
  readonly logPayloads: boolean;
  /** ORT_INTRA_OP_THREADS @default - the CPUs available */
  readonly intraOpNumThreads?: number;
}

function positiveInt(env: Readonly<Record<string, string | undefined>>, key: string): number | undefined {
  const raw = env[key];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`${key} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export function runtimeConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  defaults: Partial<Limits> = {},
): RuntimeConfig {
  const modelUri = env.MODEL_URI;
  if (!modelUri)
    throw new Error('MODEL_URI is not set: give the model folder, .onnx file or s3:// URI to serve');
  const sha = env.MODEL_SHA256;
  if (sha !== undefined && sha !== '' && !/^[0-9a-fA-F]{64}$/.test(sha)) {
    throw new Error(`MODEL_SHA256 must be 64 hex characters, got ${JSON.stringify(sha)}`);
  }
  return {
    modelUri,
    modelName: env.MODEL_NAME || undefined,
    modelSha256: sha || undefined,
    limits: {
      maxPayloadBytes: positiveInt(env, 'MAX_PAYLOAD_BYTES') ?? defaults.maxPayloadBytes,
      maxBatch: positiveInt(env, 'MAX_BATCH') ?? defaults.maxBatch,
      maxElements: positiveInt(env, 'MAX_ELEMENTS') ?? defaults.maxElements,
    },
    logPayloads: env.LOG_PAYLOADS === 'true',
    intraOpNumThreads: positiveInt(env, 'ORT_INTRA_OP_THREADS'),
  };
}
