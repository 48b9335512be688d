import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

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

/** A line longer than this is not a capture record (CloudWatch Logs caps an event at 256 KiB): skipped, counted bad. */
export const MAX_LINE_CHARS = 1024 * 1024;

/** The body's bytes, gunzipped when they start with gzip's magic number (Firehose's GZIP), else as they are. */
async function* decodedChunks(body: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 2 && !done) {
    const next = await it.next();
    if (next.done) done = true;
    else head = Buffer.concat([head, Buffer.from(next.value)]);
  }
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    while (!done) {
      const next = await it.next();
      if (next.done) done = true;
      else yield Buffer.from(next.value);
    }
  }
  if (head[0] !== 0x1f || head[1] !== 0x8b) {
    yield* rest();
    return;
  }
  // pipeline destroys the gunzip with the source's error, so iterating it rejects instead of hanging.
  const gunzip = pipeline(Readable.from(rest()), createGunzip(), () => undefined);
  for await (const chunk of gunzip) yield chunk as Buffer;
}

/**
 * An object's lines, streamed: one chunk and one line in memory at a time. A line longer than MAX_LINE_CHARS
 * is yielded as null (and dropped), so a corrupt object cannot grow a line without bound.
 */
export async function* captureLines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string | null> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let dropping = false;
  const split = function* (text: string): Generator<string | null> {
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      const piece = text.slice(from, nl);
      from = nl + 1;
      if (dropping) {
        dropping = false;
        continue;
      }
      const line = carry + piece;
      carry = '';
      yield line.length > MAX_LINE_CHARS ? null : line;
    }
    if (dropping) return;
    carry += text.slice(from);
    if (carry.length > MAX_LINE_CHARS) {
      carry = '';
      dropping = true;
      yield null;
    }
  };
  for await (const chunk of decodedChunks(body)) yield* split(decoder.write(chunk));
  yield* split(decoder.end());
  if (!dropping && carry !== '') yield carry;
}
