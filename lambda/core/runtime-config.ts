import { checkCaptureConfig, DEFAULT_CAPTURE_MAX_ROWS, type CaptureConfig } from './capture';
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
  /** ORT_ALLOW_SPINNING=false stops idle worker threads spinning. @default - onnxruntime's: they spin */
  readonly allowSpinning?: boolean;
  /** MODEL_VARIANT and MODEL_VARIANTS: the A/B variants of this endpoint. @default - none */
  readonly variants?: VariantsConfig;
  /**
   * CAPTURE_PERCENT (0 to 100), CAPTURE_REDACT and CAPTURE_HASH (comma-separated input or baseline feature
   * names), CAPTURE_MAX_ROWS (rows per request). @default - off
   */
  readonly capture?: CaptureConfig;
}

/** Where one A/B variant's model is. */
export interface VariantModel {
  readonly uri: string;
  readonly sha256?: string;
}

export interface VariantsConfig {
  /** The variant this instance serves unless a request asks for another. */
  readonly own: string;
  readonly models: Readonly<Record<string, VariantModel>>;
}

export const VARIANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** MODEL_VARIANTS is `{"<name>": {"uri": "...", "sha256": "..."}, ...}`; MODEL_VARIANT names one of them. */
function variantsFromEnv(env: Readonly<Record<string, string | undefined>>): VariantsConfig | undefined {
  const own = env.MODEL_VARIANT;
  const raw = env.MODEL_VARIANTS;
  if (!own && !raw) return undefined;
  if (!own || !raw) throw new Error('MODEL_VARIANT and MODEL_VARIANTS must be set together');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new Error(`MODEL_VARIANTS is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('MODEL_VARIANTS must be a JSON object of variant name to {"uri", "sha256"}');
  }
  const models: Record<string, VariantModel> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!VARIANT_NAME.test(name)) {
      throw new Error(
        `MODEL_VARIANTS: variant name ${JSON.stringify(name)} must match ${VARIANT_NAME.source}`,
      );
    }
    const v = value as { uri?: unknown; sha256?: unknown } | null;
    if (typeof v?.uri !== 'string' || v.uri === '') {
      throw new Error(`MODEL_VARIANTS.${name}.uri must be a non-empty string`);
    }
    if (v.sha256 !== undefined && (typeof v.sha256 !== 'string' || !SHA256_HEX.test(v.sha256))) {
      throw new Error(`MODEL_VARIANTS.${name}.sha256 must be 64 hex characters`);
    }
    models[name] = { uri: v.uri, sha256: v.sha256 };
  }
  if (!(own in models)) {
    throw new Error(
      `MODEL_VARIANT ${JSON.stringify(own)} is not in MODEL_VARIANTS (${Object.keys(models).join(', ')})`,
    );
  }
  return { own, models };
}

function names(env: Readonly<Record<string, string | undefined>>, key: string): string[] {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return [];
  const list = raw.split(',').map((n) => n.trim());
  if (list.some((n) => n === '')) throw new Error(`${key} has an empty name: ${JSON.stringify(raw)}`);
  return list;
}

/** Data capture, or undefined when CAPTURE_PERCENT is unset or 0. */
function captureFromEnv(env: Readonly<Record<string, string | undefined>>): CaptureConfig | undefined {
  const raw = env.CAPTURE_PERCENT;
  if (raw === undefined || raw.trim() === '') return undefined;
  const percent = Number(raw);
  if (raw.trim() !== raw || !/^\d+(\.\d+)?$/.test(raw) || percent > 100) {
    throw new Error(`CAPTURE_PERCENT must be a number from 0 to 100, got ${JSON.stringify(raw)}`);
  }
  if (percent === 0) return undefined;
  try {
    return checkCaptureConfig({
      percent,
      redact: names(env, 'CAPTURE_REDACT'),
      hash: names(env, 'CAPTURE_HASH'),
      maxRows: intVar(env, 'CAPTURE_MAX_ROWS') ?? DEFAULT_CAPTURE_MAX_ROWS,
    });
  } catch (err) {
    throw new Error(`CAPTURE_REDACT, CAPTURE_HASH: ${(err as Error).message}`);
  }
}

/** A whole number from the environment, at least `min` (1 or 0); unset or empty is undefined. */
export function intVar(
  env: Readonly<Record<string, string | undefined>>,
  key: string,
  min: 0 | 1 = 1,
): number | undefined {
  const raw = env[key];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    const what = min === 1 ? 'a positive integer' : '0 or a positive integer';
    throw new Error(`${key} must be ${what}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function flag(env: Readonly<Record<string, string | undefined>>, key: string): boolean | undefined {
  const raw = env[key];
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new Error(`${key} must be true or false, got ${JSON.stringify(raw)}`);
}

export function runtimeConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  defaults: Partial<Limits> = {},
): RuntimeConfig {
  const modelUri = env.MODEL_URI;
  if (!modelUri)
    throw new Error('MODEL_URI is not set: give the model folder, .onnx file or s3:// URI to serve');
  const sha = env.MODEL_SHA256;
  if (sha !== undefined && sha !== '' && !SHA256_HEX.test(sha)) {
    throw new Error(`MODEL_SHA256 must be 64 hex characters, got ${JSON.stringify(sha)}`);
  }
  return {
    modelUri,
    modelName: env.MODEL_NAME || undefined,
    modelSha256: sha || undefined,
    limits: {
      maxPayloadBytes: intVar(env, 'MAX_PAYLOAD_BYTES') ?? defaults.maxPayloadBytes,
      maxBatch: intVar(env, 'MAX_BATCH') ?? defaults.maxBatch,
      maxElements: intVar(env, 'MAX_ELEMENTS') ?? defaults.maxElements,
    },
    logPayloads: env.LOG_PAYLOADS === 'true',
    intraOpNumThreads: intVar(env, 'ORT_INTRA_OP_THREADS'),
    allowSpinning: flag(env, 'ORT_ALLOW_SPINNING'),
    variants: variantsFromEnv(env),
    capture: captureFromEnv(env),
  };
}

/** Where a SageMaker endpoint puts the model, and where the image bakes one in. */
export const CONTAINER_MODEL_DIR = '/opt/ml/model';

export type ServerLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** What the container's server is told through its environment, on top of RuntimeConfig. */
export interface ServerConfig extends RuntimeConfig {
  /** PORT @default 8080 (SageMaker's) */
  readonly port: number;
  /** HOST @default '0.0.0.0': a container must answer from outside itself */
  readonly host: string;
  /** BATCH_MAX_SIZE (2 or more turns batching on) and BATCH_MAX_LATENCY_MS. @default - off */
  readonly batching?: { readonly maxBatchSize: number; readonly maxLatencyMs: number };
  /** MAX_QUEUE: requests in flight before a 503 with Retry-After. @default 256 */
  readonly maxInFlight: number;
  /** DRAIN_TIMEOUT_MS: how long SIGTERM waits for in-flight requests. @default 25000, under ECS's 30 s stop timeout */
  readonly drainTimeoutMs: number;
  /** PATH_PREFIX, e.g. `/prod`, stripped from request paths. @default - none */
  readonly pathPrefix?: string;
  /** LOG_LEVEL @default 'INFO' */
  readonly logLevel: ServerLogLevel;
}

export function serverConfigFromEnv(env: Readonly<Record<string, string | undefined>>): ServerConfig {
  const base = runtimeConfigFromEnv({ ...env, MODEL_URI: env.MODEL_URI || CONTAINER_MODEL_DIR });
  const port = intVar(env, 'PORT', 0) ?? 8080;
  if (port > 65535) throw new Error(`PORT must be at most 65535, got ${port}`);
  const maxBatchSize = intVar(env, 'BATCH_MAX_SIZE', 0) ?? 0;
  const maxLatencyMs = intVar(env, 'BATCH_MAX_LATENCY_MS', 0) ?? 0;
  if (maxLatencyMs > 60_000)
    throw new Error(`BATCH_MAX_LATENCY_MS must be at most 60000, got ${maxLatencyMs}`);
  if (maxBatchSize < 2 && env.BATCH_MAX_LATENCY_MS) {
    throw new Error(
      'BATCH_MAX_LATENCY_MS is set but batching is off: set BATCH_MAX_SIZE to 2 or more as well',
    );
  }
  const logLevel = (env.LOG_LEVEL || 'INFO').toUpperCase();
  if (!['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(logLevel)) {
    throw new Error(
      `LOG_LEVEL must be one of DEBUG, INFO, WARN, ERROR, got ${JSON.stringify(env.LOG_LEVEL)}`,
    );
  }
  return {
    ...base,
    port,
    host: env.HOST || '0.0.0.0',
    batching: maxBatchSize >= 2 ? { maxBatchSize, maxLatencyMs } : undefined,
    maxInFlight: intVar(env, 'MAX_QUEUE') ?? 256,
    drainTimeoutMs: intVar(env, 'DRAIN_TIMEOUT_MS', 0) ?? 25_000,
    pathPrefix: env.PATH_PREFIX || undefined,
    logLevel: logLevel as ServerLogLevel,
  };
}
