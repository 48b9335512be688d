/**
 * Queue and stream inference: the records of one SQS or Kinesis event become rows, the rows one model run,
 * the predictions messages to a destination. A record that cannot be parsed, predicted or sent is reported
 * on its own (Lambda's partial batch response), so a poison record never holds the others back.
 *
 * A record's body is one of:
 * - a V2 inference request: a JSON object with an `inputs` array (unless the model has an input named
 *   `inputs`, whose rows then win). It is validated as an online request is, and runs on its own;
 * - one row, exactly as a JSONL line of `mdk predict`: a value for the model's only input, or an object keyed
 *   by input name. Such rows are stacked into one run.
 * Either may carry an `id` (a string or number; for a row, only when the model has no input named `id`).
 */
import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { BatchPredictor } from './batch';
import { RowReader } from './rows';
import {
  checkPayloadSize,
  infoForTensor,
  isRecord,
  nest,
  parseJson,
  plainValues,
  prepareInference,
} from './codec';
import { InferenceError } from './errors';
import type { Limits } from './limits';
import type { OnnxModel } from './model';
import type { OutMessage, Sink } from './sinks';

/** One SQS message or Kinesis record, decoded. */
export interface StreamRecord {
  /** What Lambda's batchItemFailures names it by: the SQS messageId or the Kinesis sequenceNumber. */
  readonly key: string;
  /** The body (SQS) or the base64-decoded data (Kinesis), as UTF-8 text. */
  readonly body: string;
  /** Where it came from, copied into its prediction. */
  readonly source: Readonly<Record<string, string>>;
}

export type StreamEvent = SQSEvent | KinesisStreamEvent;

/** The records of an SQS or Kinesis event, in order. */
export function streamRecords(event: StreamEvent): StreamRecord[] {
  const records = (event as { Records?: unknown }).Records;
  if (!Array.isArray(records)) throw new Error('the event has no Records: not an SQS or Kinesis event');
  return (records as (SQSEvent['Records'][number] | KinesisStreamEvent['Records'][number])[]).map(
    (r): StreamRecord => {
      if (r.eventSource === 'aws:sqs' && 'messageId' in r) {
        return {
          key: r.messageId,
          body: r.body,
          source: { messageId: r.messageId, eventSourceARN: r.eventSourceARN },
        };
      }
      if (r.eventSource === 'aws:kinesis' && 'kinesis' in r) {
        return {
          key: r.kinesis.sequenceNumber,
          body: Buffer.from(r.kinesis.data, 'base64').toString('utf8'),
          source: {
            sequenceNumber: r.kinesis.sequenceNumber,
            partitionKey: r.kinesis.partitionKey,
            eventID: r.eventID,
            eventSourceARN: r.eventSourceARN,
          },
        };
      }
      throw new Error(
        `a record from ${JSON.stringify(r.eventSource)}: only SQS (aws:sqs) and Kinesis (aws:kinesis) events are read`,
      );
    },
  );
}

export type FailureStage = 'parse' | 'predict' | 'send';

export interface RecordFailure {
  readonly key: string;
  readonly stage: FailureStage;
  readonly reason: string;
}

export interface StreamOptions {
  readonly model: OnnxModel;
  readonly limits: Limits;
  readonly sink: Sink;
}

export interface StreamOutcome {
  /** Lambda's partial batch response: the records to retry, in event order. */
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly failures: RecordFailure[];
  /** Records whose prediction reached the destination. */
  readonly predicted: number;
  /** Time spent in the model, in milliseconds. */
  readonly predictMs: number;
}

type Id = string | number;

interface Parsed {
  readonly record: StreamRecord;
  readonly id: Id;
  readonly row?: Record<string, unknown>;
  readonly request?: Record<string, unknown>;
}

/** Tells a V2 request from a row, and reads its id (the message id or sequence number when it has none). */
export function parseRecord(
  model: OnnxModel,
  limits: Limits,
  record: StreamRecord,
  index: number,
  reader = new RowReader(model, 'jsonl'),
): Parsed {
  checkPayloadSize(Buffer.byteLength(record.body, 'utf8'), limits);
  const value = parseJson(record.body);
  if (isRecord(value) && Array.isArray(value.inputs) && !model.input('inputs')) {
    // prepareInference checks the request's id itself (a string), as the online path does.
    return {
      record,
      id: typeof value.id === 'string' && value.id !== '' ? value.id : record.key,
      request: value,
    };
  }
  // A row, read and checked as a line of a batch file is: the same shapes, types and id rules.
  const { id, row } = reader.item(index + 1, index, value, record.key);
  return { record, id, row };
}

function tensorOutputs(
  results: Awaited<ReturnType<OnnxModel['run']>>,
  fetches: readonly string[],
): Record<string, unknown> {
  return Object.fromEntries(
    fetches.map((name) => {
      const t = results[name];
      if (!t) throw new Error(`session returned no '${name}'`);
      return [name, nest(plainValues(infoForTensor(name, t), t.data), t.dims)];
    }),
  );
}

/**
 * Predicts every record it can and sends the predictions. Errors in a record (its body, its values, its send)
 * fail that record only; anything else (the model broken, a bug) throws, so Lambda retries the whole event.
 */
export async function processRecords(
  records: readonly StreamRecord[],
  options: StreamOptions,
): Promise<StreamOutcome> {
  const { model, limits, sink } = options;
  const failures: RecordFailure[] = [];
  const parsed: Parsed[] = [];
  const reader = new RowReader(model, 'jsonl');
  records.forEach((record, i) => {
    try {
      parsed.push(parseRecord(model, limits, record, i, reader));
    } catch (err) {
      if (!(err instanceof InferenceError)) throw err;
      failures.push({ key: record.key, stage: 'parse', reason: err.message });
    }
  });

  const outputs = new Map<Parsed, Record<string, unknown>>();
  let predictMs = 0;
  const predictor = new BatchPredictor(model, limits);
  const rows = parsed.filter((p) => p.row !== undefined);
  // Stacks at most maxBatch rows a run: a larger stack would only be refused and redone row by row.
  for (let start = 0; start < rows.length; start += limits.maxBatch) {
    const chunk = rows.slice(start, start + limits.maxBatch);
    const began = performance.now();
    const results = await predictor.predict(chunk.map((p, i) => ({ line: i, row: p.row ?? {} })));
    predictMs += performance.now() - began;
    for (const r of results) {
      if ('ok' in r) {
        const p = chunk[r.ok.line];
        if (p) outputs.set(p, r.ok.outputs);
      } else {
        const p = chunk[r.failed.line];
        if (p) failures.push({ key: p.record.key, stage: 'predict', reason: r.failed.error });
      }
    }
  }
  for (const p of parsed) {
    if (!p.request) continue;
    try {
      const prepared = prepareInference(model, { header: p.request, binary: undefined }, limits);
      const began = performance.now();
      const results = await model.run(prepared.feeds, prepared.fetches);
      predictMs += performance.now() - began;
      outputs.set(p, tensorOutputs(results, prepared.fetches));
    } catch (err) {
      if (!(err instanceof InferenceError)) throw err;
      failures.push({ key: p.record.key, stage: 'predict', reason: err.message });
    }
  }

  const messages: OutMessage[] = [];
  for (const p of parsed) {
    const out = outputs.get(p);
    if (!out) continue;
    messages.push({
      key: p.record.key,
      id: String(p.id),
      body: JSON.stringify({
        id: p.id,
        model_name: model.name,
        model_version: model.version,
        outputs: out,
        source: p.record.source,
      }),
    });
  }
  const sendFailures = messages.length > 0 ? await sink.send(messages) : [];
  for (const f of sendFailures) failures.push({ key: f.key, stage: 'send', reason: f.reason });

  const failed = new Set(failures.map((f) => f.key));
  const order = new Map(records.map((r, i) => [r.key, i]));
  failures.sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
  return {
    batchItemFailures: records.filter((r) => failed.has(r.key)).map((r) => ({ itemIdentifier: r.key })),
    failures,
    predicted: messages.length - sendFailures.length,
    predictMs,
  };
}
