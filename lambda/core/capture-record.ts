import { createHash } from 'node:crypto';

/**
 * The data capture record: one JSON line per row a model predicted. The serving path writes it to its log
 * stream (stdout), a subscription filter sends the lines to Firehose, and Firehose files them in S3 under
 * `captures/model=<name>/version=<version>/date=<yyyy-MM-dd>/` as gzipped JSONL. `mdk serve --capture FILE`
 * writes the same lines to a file, and `mdk drift` and the drift job read them.
 */

/** The format version. Also how a log line is known to be a capture record: `{ $.mdk_capture = 1 }`. */
export const CAPTURE_FORMAT = 1;

/** One row's value of a tensor: a scalar for a rank-0 row, else the row flattened row-major. */
export type CaptureValue = CaptureScalar | readonly CaptureScalar[];
/** INT64 beyond 2^53 is written as a decimal string; a redacted element is null; a hashed one `sha256:<16 hex>`. */
export type CaptureScalar = number | string | boolean | null;

export interface CaptureRecord {
  readonly mdk_capture: typeof CAPTURE_FORMAT;
  /** ISO 8601 UTC, when the prediction was made. */
  readonly time: string;
  readonly model: string;
  readonly version: string;
  /** The A/B variant that served it. @default - none */
  readonly variant?: string;
  /** The request's V2 `id`, when the client sent one. @default - none */
  readonly request_id?: string;
  /** The row's position in its request, from 0, and the request's row count. */
  readonly row: number;
  readonly rows: number;
  /** The whole request's time in the server, from parsing to the model's results, ms. */
  readonly latency_ms: number;
  readonly inputs: Readonly<Record<string, CaptureValue>>;
  readonly outputs: Readonly<Record<string, CaptureValue>>;
  /** Inputs or features (by name) whose values were replaced by null. @default - none */
  readonly redacted?: readonly string[];
  /** Inputs or features (by name) whose values were replaced by their hash. @default - none */
  readonly hashed?: readonly string[];
}

/** Whether a parsed JSON value is a capture record (the fields drift needs are present and typed). */
export function isCaptureRecord(value: unknown): value is CaptureRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    r.mdk_capture === CAPTURE_FORMAT &&
    typeof r.model === 'string' &&
    typeof r.version === 'string' &&
    typeof r.time === 'string' &&
    typeof r.inputs === 'object' &&
    r.inputs !== null &&
    typeof r.outputs === 'object' &&
    r.outputs !== null
  );
}

/** The S3 key prefix of a model version's captures on one day (UTC). */
export function capturePrefix(model: string, version: string, date: string, root = 'captures/'): string {
  return `${root}model=${model}/version=${version}/date=${date}/`;
}

/**
 * What a hashed element is written as: `sha256:` and the first 16 hex digits of the SHA-256 of its text
 * (the same text as a categorical baseline's keys), so drift can hash a baseline's categories to compare.
 * Unsalted: a value from a small set (a postcode, a yes/no) can be found by hashing every candidate, so
 * redact those instead.
 */
export function hashValue(value: string | number | boolean): string {
  return `sha256:${createHash('sha256').update(String(value)).digest('hex').slice(0, 16)}`;
}
