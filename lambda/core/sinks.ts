/**
 * Where stream predictions go: an SQS queue, an EventBridge bus or a Kinesis stream. Each sender packs
 * messages into as few calls as its API allows (entries and bytes per call), and reports every message
 * that did not get through, whether its entry failed or its whole call did, so that only its own input
 * record is retried.
 */
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { PutRecordsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

export type DestinationType = 'sqs' | 'eventbridge' | 'kinesis';

export type DestinationConfig =
  | { readonly type: 'sqs'; readonly queueUrl: string }
  | {
      readonly type: 'eventbridge';
      /** A bus name or ARN. */
      readonly busName: string;
      readonly source: string;
      readonly detailType: string;
    }
  | { readonly type: 'kinesis'; readonly streamArn: string };

/** EventBridge's `Source` when none is configured (a source may not start with `aws.`). */
export const DEFAULT_EVENT_SOURCE = 'model-deploy-kit';
export const DEFAULT_EVENT_DETAIL_TYPE = 'Prediction';

/**
 * DESTINATION_TYPE (sqs | eventbridge | kinesis) and its target: DESTINATION_QUEUE_URL,
 * DESTINATION_BUS_NAME (with EVENT_SOURCE and EVENT_DETAIL_TYPE) or DESTINATION_STREAM_ARN.
 */
export function destinationFromEnv(env: Readonly<Record<string, string | undefined>>): DestinationConfig {
  const type = env.DESTINATION_TYPE;
  const need = (key: string): string => {
    const v = env[key];
    if (!v) throw new Error(`${key} is not set: DESTINATION_TYPE=${type} needs it`);
    return v;
  };
  switch (type) {
    case 'sqs':
      return { type, queueUrl: need('DESTINATION_QUEUE_URL') };
    case 'eventbridge': {
      const source = env.EVENT_SOURCE || DEFAULT_EVENT_SOURCE;
      if (source.startsWith('aws.')) {
        throw new Error(`EVENT_SOURCE ${JSON.stringify(source)} may not start with "aws." (AWS's own)`);
      }
      return {
        type,
        busName: need('DESTINATION_BUS_NAME'),
        source,
        detailType: env.EVENT_DETAIL_TYPE || DEFAULT_EVENT_DETAIL_TYPE,
      };
    }
    case 'kinesis':
      return { type, streamArn: need('DESTINATION_STREAM_ARN') };
    default:
      throw new Error(
        `DESTINATION_TYPE must be sqs, eventbridge or kinesis, got ${JSON.stringify(type ?? '(unset)')}`,
      );
  }
}

export interface OutMessage {
  /** The input record it answers for (SQS messageId, Kinesis sequenceNumber): a failure is reported on it. */
  readonly key: string;
  /** The prediction's id: the Kinesis partition key, so one id's predictions land on one shard. */
  readonly id: string;
  /** JSON text. */
  readonly body: string;
}

export interface SendFailure {
  readonly key: string;
  readonly reason: string;
}

export interface Sink {
  readonly type: DestinationType;
  /** Sends every message; the ones that did not arrive come back, each with the reason. */
  send(messages: readonly OutMessage[]): Promise<SendFailure[]>;
}

export interface SinkClients {
  readonly sqs?: SQSClient;
  readonly eventBridge?: EventBridgeClient;
  readonly kinesis?: KinesisClient;
}

// SendMessageBatch and PutEvents: 10 entries and 256 KiB a call. PutRecords: 500 records and 5 MiB a
// call, 1 MiB a record (data and partition key together).
// Up to 8 SQS or EventBridge calls at once hide their latency; Kinesis calls go one after another, as 500
// records already fill a call and a shard takes 1,000 records a second.
export const SQS_LIMITS = { entries: 10, callBytes: 256 * 1024, entryBytes: 256 * 1024, concurrency: 8 };
export const EVENTS_LIMITS = { entries: 10, callBytes: 256 * 1024, entryBytes: 256 * 1024, concurrency: 8 };
export const KINESIS_LIMITS = {
  entries: 500,
  callBytes: 5 * 1024 * 1024,
  entryBytes: 1024 * 1024,
  concurrency: 1,
};
const MAX_PARTITION_KEY_CHARS = 256;

interface CallLimits {
  readonly entries: number;
  readonly callBytes: number;
  readonly entryBytes: number;
  /** Calls in flight at once. */
  readonly concurrency?: number;
}

/**
 * Packs entries into calls of at most `limits.entries` entries and `limits.callBytes` bytes, in order.
 * An entry bigger than `limits.entryBytes` can never be sent: it is returned in `tooBig`.
 */
export function packCalls<T>(
  items: readonly T[],
  sizeOf: (item: T) => number,
  limits: CallLimits,
): { calls: T[][]; tooBig: { item: T; bytes: number }[] } {
  const calls: T[][] = [];
  const tooBig: { item: T; bytes: number }[] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (size > limits.entryBytes || size > limits.callBytes) {
      tooBig.push({ item, bytes: size });
      continue;
    }
    if (current.length === limits.entries || bytes + size > limits.callBytes) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) calls.push(current);
  return { calls, tooBig };
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');
const callError = (err: unknown) =>
  err instanceof Error ? `${err.name}: ${err.message}` : `call failed: ${String(err)}`;

/** Runs the calls, turning per-entry errors and failed calls into failures of their messages. */
async function sendPacked(
  messages: readonly OutMessage[],
  sizeOf: (m: OutMessage) => number,
  limits: CallLimits,
  what: string,
  call: (batch: readonly OutMessage[]) => Promise<(string | undefined)[]>,
): Promise<SendFailure[]> {
  const { calls, tooBig } = packCalls(messages, sizeOf, limits);
  const failures: SendFailure[] = tooBig.map(({ item, bytes }) => ({
    key: item.key,
    reason: `the prediction is ${bytes} bytes; ${what} takes at most ${Math.min(limits.entryBytes, limits.callBytes)}`,
  }));
  await eachLimited(calls, limits.concurrency ?? 1, async (batch) => {
    let errors: (string | undefined)[];
    try {
      errors = await call(batch);
    } catch (err) {
      const reason = callError(err);
      errors = batch.map(() => reason);
    }
    batch.forEach((m, i) => {
      const reason = errors[i];
      if (reason !== undefined) failures.push({ key: m.key, reason });
    });
  });
  const order = new Map(messages.map((m, i) => [m.key, i]));
  return failures.sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
}

export function sqsSink(client: SQSClient, queueUrl: string): Sink {
  return {
    type: 'sqs',
    send: (messages) =>
      sendPacked(
        messages,
        (m) => utf8(m.body),
        SQS_LIMITS,
        'SQS',
        async (batch) => {
          // Entry ids are only unique within a call; the position is enough.
          const out = await client.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: batch.map((m, i) => ({ Id: `m${i}`, MessageBody: m.body })),
            }),
          );
          const ok = new Set((out.Successful ?? []).map((s) => s.Id));
          const failed = new Map((out.Failed ?? []).map((f) => [f.Id, `${f.Code}: ${f.Message ?? ''}`]));
          return batch.map(
            (_, i) =>
              failed.get(`m${i}`) ?? (ok.has(`m${i}`) ? undefined : 'SQS returned no result for this entry'),
          );
        },
      ),
  };
}

export function eventBridgeSink(
  client: EventBridgeClient,
  config: { readonly busName: string; readonly source: string; readonly detailType: string },
): Sink {
  const fixed = utf8(config.source) + utf8(config.detailType);
  return {
    type: 'eventbridge',
    send: (messages) =>
      sendPacked(
        messages,
        // EventBridge counts Source, DetailType and Detail (and Time, Resources: not sent).
        (m) => fixed + utf8(m.body),
        EVENTS_LIMITS,
        'EventBridge',
        async (batch) => {
          const out = await client.send(
            new PutEventsCommand({
              Entries: batch.map((m) => ({
                EventBusName: config.busName,
                Source: config.source,
                DetailType: config.detailType,
                Detail: m.body,
              })),
            }),
          );
          // Result entries are in the order of the request's.
          return batch.map((_, i) => {
            const e = out.Entries?.[i];
            if (!e) return 'EventBridge returned no result for this entry';
            return e.ErrorCode ? `${e.ErrorCode}: ${e.ErrorMessage ?? ''}` : undefined;
          });
        },
      ),
  };
}

/** Kinesis partition keys are 1 to 256 Unicode characters. */
export function partitionKey(id: string, fallback: string): string {
  const chars = [...(id || fallback)];
  return chars.length > MAX_PARTITION_KEY_CHARS
    ? chars.slice(0, MAX_PARTITION_KEY_CHARS).join('')
    : chars.join('');
}

export function kinesisSink(client: KinesisClient, streamArn: string): Sink {
  return {
    type: 'kinesis',
    send: (messages) =>
      sendPacked(
        messages,
        (m) => utf8(m.body) + utf8(partitionKey(m.id, m.key)),
        KINESIS_LIMITS,
        'Kinesis',
        async (batch) => {
          const out = await client.send(
            new PutRecordsCommand({
              StreamARN: streamArn,
              Records: batch.map((m) => ({
                Data: Buffer.from(m.body, 'utf8'),
                PartitionKey: partitionKey(m.id, m.key),
              })),
            }),
          );
          return batch.map((_, i) => {
            const r = out.Records?.[i];
            if (!r) return 'Kinesis returned no result for this record';
            return r.ErrorCode ? `${r.ErrorCode}: ${r.ErrorMessage ?? ''}` : undefined;
          });
        },
      ),
  };
}

/** The sink a destination config names, with the client it needs. */
export function createSink(config: DestinationConfig, clients: SinkClients): Sink {
  const missing = (name: string) => new Error(`DESTINATION_TYPE=${config.type} needs a ${name} client`);
  switch (config.type) {
    case 'sqs':
      if (!clients.sqs) throw missing('SQS');
      return sqsSink(clients.sqs, config.queueUrl);
    case 'eventbridge':
      if (!clients.eventBridge) throw missing('EventBridge');
      return eventBridgeSink(clients.eventBridge, config);
    case 'kinesis':
      if (!clients.kinesis) throw missing('Kinesis');
      return kinesisSink(clients.kinesis, config.streamArn);
  }
}
