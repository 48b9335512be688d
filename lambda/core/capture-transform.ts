/**
 * The Firehose data transformation behind data capture. A CloudWatch Logs subscription filter sends the
 * endpoint's capture lines to Firehose, one gzipped envelope (many log events) per Firehose record; this keeps
 * the capture records, as JSON lines, and gives Firehose the partition keys it files them under
 * (`captures/model=<m>/version=<v>/date=<yyyy-MM-dd>/`).
 */
import { gunzipSync } from 'node:zlib';
import type { FirehoseTransformationEventRecord, FirehoseTransformationResultRecord } from 'aws-lambda';
import { isCaptureRecord } from './capture-record';
import { MODEL_NAME_PATTERN, MODEL_VERSION_PATTERN } from './types';

/** What CloudWatch Logs sends a subscription's destination, gzipped. */
export interface LogsSubscriptionEnvelope {
  readonly messageType: 'DATA_MESSAGE' | 'CONTROL_MESSAGE';
  readonly owner?: string;
  readonly logGroup: string;
  readonly logStream: string;
  readonly subscriptionFilters?: readonly string[];
  readonly logEvents: readonly {
    readonly id: string;
    readonly timestamp: number;
    readonly message: string;
  }[];
}

/**
 * Lambda's synchronous response may be 6 MiB. The output is decompressed, keeps only capture lines and is
 * base64 (a third larger), so a buffer of gzipped envelopes can still outgrow it: records that would pass this
 * are failed rather than the whole invocation (Firehose then retries the whole batch, and fails it again).
 */
export const MAX_RESPONSE_BYTES = Math.floor(5.5 * 1024 * 1024);

/** A result record's JSON around its data: ids, status, partition keys and punctuation. */
export const RECORD_OVERHEAD_BYTES = 512;

/** Why a record was failed; never its content. */
export type FailureReason = 'gzip' | 'json' | 'envelope' | 'partition' | 'too-large';

/** One envelope that held captures of more than one model version (all filed under the first). */
export interface MixedPartitions {
  readonly recordId: string;
  readonly logGroup: string;
  readonly logStream: string;
  /** Capture lines per `model/version`. */
  readonly counts: Readonly<Record<string, number>>;
}

export interface TransformStats {
  readonly records: number;
  readonly ok: number;
  readonly dropped: number;
  readonly failed: Readonly<Partial<Record<FailureReason, number>>>;
  /** Log events kept, and the ones that were not capture records. */
  readonly captureLines: number;
  readonly otherLines: number;
  /** Bytes of JSON lines handed back (before base64). */
  readonly outputBytes: number;
}

export interface TransformResult {
  readonly records: FirehoseTransformationResultRecord[];
  readonly stats: TransformStats;
  readonly mixed: readonly MixedPartitions[];
}

export interface TransformOptions {
  /** @default MAX_RESPONSE_BYTES */
  readonly maxResponseBytes?: number;
}

type Outcome =
  | { kind: 'ok'; lines: string[]; model: string; version: string; mixed?: MixedPartitions; other: number }
  | { kind: 'dropped'; other: number }
  | { kind: 'failed'; reason: FailureReason };

function parseEnvelope(data: string, maxBytes: number): LogsSubscriptionEnvelope | FailureReason {
  let text: string;
  try {
    // Capped: an envelope bigger than the whole response could never be handed back.
    text = gunzipSync(Buffer.from(data, 'base64'), { maxOutputLength: maxBytes }).toString('utf8');
  } catch (err) {
    return err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
      ? 'too-large'
      : 'gzip';
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'json';
  }
  const e = value as Partial<LogsSubscriptionEnvelope> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    (e.messageType !== 'DATA_MESSAGE' && e.messageType !== 'CONTROL_MESSAGE') ||
    !Array.isArray(e.logEvents)
  ) {
    return 'envelope';
  }
  return e as LogsSubscriptionEnvelope;
}

/** The capture line a log message is, or undefined: EMF metrics, Powertools logs and plain text are not. */
function captureLine(message: unknown): { line: string; model: string; version: string } | undefined {
  if (typeof message !== 'string') return undefined;
  const text = message.trim();
  // Cheap test first: most lines of a busy function are not captures.
  if (!text.startsWith('{') || !text.includes('"mdk_capture"')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isCaptureRecord(value)) return undefined;
  // A line is a line: re-serialize the rare record that was written across several.
  const line = /[\r\n]/.test(text) ? JSON.stringify(value) : text;
  return { line, model: value.model, version: value.version };
}

function transformOne(record: FirehoseTransformationEventRecord, maxBytes: number): Outcome {
  const envelope = parseEnvelope(record.data, maxBytes);
  if (typeof envelope === 'string') return { kind: 'failed', reason: envelope };
  // CloudWatch Logs sends a control message when the subscription is set up, to check the destination.
  if (envelope.messageType === 'CONTROL_MESSAGE') return { kind: 'dropped', other: 0 };
  const lines: string[] = [];
  const counts: Record<string, number> = {};
  let first: { model: string; version: string } | undefined;
  let other = 0;
  for (const event of envelope.logEvents) {
    const found = captureLine((event as { message?: unknown } | null)?.message);
    if (!found) {
      other++;
      continue;
    }
    first ??= found;
    lines.push(found.line);
    const key = `${found.model}/${found.version}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  if (!first) return { kind: 'dropped', other };
  if (!MODEL_NAME_PATTERN.test(first.model) || !MODEL_VERSION_PATTERN.test(first.version)) {
    return { kind: 'failed', reason: 'partition' };
  }
  // One log stream is one Lambda instance or one task, which serves one model version, so an envelope (one
  // stream's events) holds one partition. Should one hold more, splitting it is not possible (a record has one
  // set of partition keys): all of it goes under the first record's, and the caller warns with the counts.
  const mixed =
    Object.keys(counts).length > 1
      ? { recordId: record.recordId, logGroup: envelope.logGroup, logStream: envelope.logStream, counts }
      : undefined;
  return { kind: 'ok', lines, model: first.model, version: first.version, mixed, other };
}

/**
 * Transforms a Firehose batch of CloudWatch Logs envelopes: per record (same recordId) `Ok` with the capture
 * records as JSON lines and partition keys {model, version}; `Dropped` for a control message or an envelope
 * with no capture record; `ProcessingFailed` (original data, which Firehose files under the error prefix)
 * for one that cannot be read, and for those whose output would take the response past `maxResponseBytes`.
 */
export function transformCaptureRecords(
  records: readonly FirehoseTransformationEventRecord[],
  options: TransformOptions = {},
): TransformResult {
  const maxBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  const failedSize = (r: FirehoseTransformationEventRecord) => r.data.length + RECORD_OVERHEAD_BYTES;
  // Every record starts counted as failed (its original data back, the largest a failure can be), so the
  // response is within the limit whatever is decided below, provided the request itself was.
  let responseBytes = records.reduce((sum, r) => sum + failedSize(r), 0);
  const out: FirehoseTransformationResultRecord[] = [];
  const failed: Partial<Record<FailureReason, number>> = {};
  const mixed: MixedPartitions[] = [];
  let ok = 0;
  let dropped = 0;
  let captureLines = 0;
  let otherLines = 0;
  let outputBytes = 0;
  const fail = (record: FirehoseTransformationEventRecord, reason: FailureReason) => {
    failed[reason] = (failed[reason] ?? 0) + 1;
    out.push({ recordId: record.recordId, result: 'ProcessingFailed', data: record.data });
  };

  for (const record of records) {
    const outcome = transformOne(record, maxBytes);
    if (outcome.kind === 'failed') {
      fail(record, outcome.reason);
      continue;
    }
    otherLines += outcome.other;
    if (outcome.kind === 'dropped') {
      responseBytes -= record.data.length;
      dropped++;
      out.push({ recordId: record.recordId, result: 'Dropped', data: '' });
      continue;
    }
    const jsonl = Buffer.from(`${outcome.lines.join('\n')}\n`, 'utf8');
    const data = jsonl.toString('base64');
    const grown = responseBytes - failedSize(record) + data.length + RECORD_OVERHEAD_BYTES;
    if (grown > maxBytes) {
      fail(record, 'too-large');
      continue;
    }
    responseBytes = grown;
    ok++;
    captureLines += outcome.lines.length;
    outputBytes += jsonl.length;
    if (outcome.mixed) mixed.push(outcome.mixed);
    out.push({
      recordId: record.recordId,
      result: 'Ok',
      data,
      metadata: { partitionKeys: { model: outcome.model, version: outcome.version } },
    });
  }
  return {
    records: out,
    stats: { records: records.length, ok, dropped, failed, captureLines, otherLines, outputBytes },
    mixed,
  };
}
