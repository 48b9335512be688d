import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { resolveLimits } from '../../../lambda/core/limits';
import type { OnnxModel } from '../../../lambda/core/model';
import { openModel } from '../../../lambda/core/open';
import { sqsSink } from '../../../lambda/core/sinks';
import { parseRecord, processRecords, streamRecords } from '../../../lambda/core/stream';
import type { ModelManifest } from '../../../lambda/core/types';
import { IRIS_DIR } from '../../support/cdk';
import { motoClientConfig, startMoto, type MotoServer } from '../../support/moto';

const manifest = JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as ModelManifest;
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:requests';
const STREAM_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/requests';

/** An SQS event as Lambda's poller sends it. */
function sqsEvent(bodies: Record<string, string>): SQSEvent {
  return {
    Records: Object.entries(bodies).map(([messageId, body]) => ({
      messageId,
      receiptHandle: `AQEB${messageId}`,
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: '1763776000000',
        SenderId: 'AIDAIENQZJOLO23YVJ4VO',
        ApproximateFirstReceiveTimestamp: '1763776000010',
      },
      messageAttributes: {},
      md5OfBody: crypto.createHash('md5').update(body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: QUEUE_ARN,
      awsRegion: 'us-east-1',
    })),
  };
}

/** A Kinesis event as Lambda's poller sends it: data in base64. */
function kinesisEvent(bodies: Record<string, string>): KinesisStreamEvent {
  return {
    Records: Object.entries(bodies).map(([sequenceNumber, body], i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: `pk-${i}`,
        sequenceNumber,
        data: Buffer.from(body, 'utf8').toString('base64'),
        approximateArrivalTimestamp: 1763776000.123,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/stream-fn',
      awsRegion: 'us-east-1',
      eventSourceARN: STREAM_ARN,
    })),
  };
}

const SETOSA = [4.7, 3.2, 1.3, 0.2];
const VERSICOLOR = [6.4, 3.2, 4.5, 1.5];
const sampleProbs = (manifest.sample?.response as { outputs: { name: string; data: number[] }[] }).outputs[0]
  ?.data as number[];
const v2 = (shape: number[], data: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...extra, inputs: [{ name: 'input', shape, datatype: 'FP32', data }] });
const tenThousandRows = Array.from({ length: 10_000 }, () => VERSICOLOR);

/** Good and bad records, by id, and the failure each bad one must report. */
const GOOD: Record<string, string> = {
  'a-row': JSON.stringify(VERSICOLOR),
  'b-row-with-id': JSON.stringify({ input: SETOSA, id: 'customer-42' }),
  'c-v2': v2([2, 4], [...VERSICOLOR, ...SETOSA], { id: 'req-7' }),
  'd-numeric-id': JSON.stringify({ input: SETOSA, id: 7 }),
};
const BAD: Record<string, RegExp> = {
  'e-bad-json': /not valid JSON/,
  'f-three-features': /^input 'input': expected 4 values, got 3 \(each row is shaped \[4\]\)$/,
  'g-unknown-input': /unknown input 'petal'/,
  'h-strings': /^input 'input'\[0\]: FP32 values must be numbers, got "a"$/,
  'i-oversized': /body is 1100036 bytes; the limit is 1048576/,
  'j-10k-rows-v2': /a batch of 10000 rows; the limit is 1024/,
  'k-10k-rows-row': /^input 'input': expected 4 values, got 10000 \(each row is shaped \[4\]\)$/,
  'l-bad-id': /^"id" must be a non-empty string or a number, got an object$/,
  'm-v2-int': /datatype INT64 but the model expects FP32/,
};
const BAD_BODIES: Record<string, string> = {
  'e-bad-json': '{"input": [1, 2',
  'f-three-features': '[1, 2, 3]',
  'g-unknown-input': JSON.stringify({ input: VERSICOLOR, petal: [1] }),
  'h-strings': JSON.stringify(['a', 'b', 'c', 'd']),
  'i-oversized': JSON.stringify({ input: VERSICOLOR, pad: 'x'.repeat(1_100_000) }),
  'j-10k-rows-v2': v2([10_000, 4], tenThousandRows),
  'k-10k-rows-row': JSON.stringify(tenThousandRows),
  'l-bad-id': JSON.stringify({ input: SETOSA, id: { nested: true } }),
  'm-v2-int': JSON.stringify({
    inputs: [{ name: 'input', shape: [1, 4], datatype: 'INT64', data: [1, 2, 3, 4] }],
  }),
};
// Interleaved, so a bad record sits between good ones.
const MIXED: Record<string, string> = Object.fromEntries(
  Object.entries({ ...GOOD, ...BAD_BODIES }).sort(([a], [b]) => a.localeCompare(b)),
);

describe('streamRecords', () => {
  it('reads SQS bodies, and base64 Kinesis data, keyed by messageId or sequenceNumber', () => {
    expect(streamRecords(sqsEvent({ 'm-1': '[1,2,3,4]' }))).toEqual([
      { key: 'm-1', body: '[1,2,3,4]', source: { messageId: 'm-1', eventSourceARN: QUEUE_ARN } },
    ]);
    const seq = '49590338271490256608559692538361571095921575989136588898';
    expect(streamRecords(kinesisEvent({ [seq]: '{"input":[1,2,3,4]}' }))).toEqual([
      {
        key: seq,
        body: '{"input":[1,2,3,4]}',
        source: {
          sequenceNumber: seq,
          partitionKey: 'pk-0',
          eventID: `shardId-000000000000:${seq}`,
          eventSourceARN: STREAM_ARN,
        },
      },
    ]);
    expect(streamRecords({ Records: [] })).toEqual([]);
  });

  it('refuses an event from anything else', () => {
    const s3Event = { Records: [{ eventSource: 'aws:s3', s3: {} }] } as unknown as SQSEvent;
    expect(() => streamRecords(s3Event)).toThrow(
      'a record from "aws:s3": only SQS (aws:sqs) and Kinesis (aws:kinesis) events are read',
    );
    expect(() => streamRecords({} as SQSEvent)).toThrow(/no Records/);
  });
});

describe('stream inference with iris', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  let model: OnnxModel;
  const limits = resolveLimits({ maxPayloadBytes: 1024 * 1024 });

  beforeAll(async () => {
    [moto, { model }] = await Promise.all([startMoto(), openModel({ location: IRIS_DIR })]);
    sqs = new SQSClient(motoClientConfig(moto.endpoint));
  });
  afterAll(async () => {
    sqs.destroy();
    await model.release();
    await moto.stop();
  });

  const newQueue = async (name: string) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl as string;
  async function receiveAll(url: string): Promise<Message[]> {
    const got: Message[] = [];
    for (;;) {
      const r = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }),
      );
      if (!r.Messages?.length) return got;
      got.push(...r.Messages);
    }
  }

  it('tells a V2 request from a row, and reads the id', () => {
    const rec = (body: string) => ({ key: 'm', body, source: {} });
    expect(parseRecord(model, limits, rec('[1,2,3,4]'), 0)).toMatchObject({
      id: 'm',
      row: { input: [1, 2, 3, 4] },
    });
    expect(parseRecord(model, limits, rec('{"input":[1,2,3,4],"id":"x"}'), 0)).toMatchObject({
      id: 'x',
      row: { input: [1, 2, 3, 4] },
    });
    const request = parseRecord(model, limits, rec(v2([1, 4], [1, 2, 3, 4], { id: 'r' })), 0);
    expect(request).toMatchObject({ id: 'r', request: { id: 'r' } });
    expect(request.row).toBeUndefined();
    // A V2 request without an id takes the record's.
    expect(parseRecord(model, limits, rec(v2([1, 4], [1, 2, 3, 4])), 0).id).toBe('m');
  });

  it('SQS: bad records fail alone with their reasons; the others reach the queue with real predictions', async () => {
    const url = await newQueue('predictions');
    const outcome = await processRecords(streamRecords(sqsEvent(MIXED)), {
      model,
      limits,
      sink: sqsSink(sqs, url),
    });
    expect(outcome.batchItemFailures).toEqual(Object.keys(BAD).map((itemIdentifier) => ({ itemIdentifier })));
    for (const [key, reason] of Object.entries(BAD)) {
      const f = outcome.failures.find((x) => x.key === key);
      expect({ key, reason: f?.reason }).toEqual({ key, reason: expect.stringMatching(reason) as unknown });
    }
    expect(outcome.failures.find((f) => f.key === 'e-bad-json')?.stage).toBe('parse');
    // A row is checked on its own when it is read, before it joins a stacked run.
    expect(outcome.failures.find((f) => f.key === 'f-three-features')?.stage).toBe('parse');
    // A V2 request is checked by the online path's codec when it runs.
    expect(outcome.failures.filter((f) => f.stage === 'predict').map((f) => f.key)).toEqual(
      expect.arrayContaining(['j-10k-rows-v2', 'm-v2-int']),
    );
    expect(outcome.predicted).toBe(4);
    expect(outcome.predictMs).toBeGreaterThan(0);

    const byId = new Map(
      (await receiveAll(url)).map((m) => {
        const body = JSON.parse(m.Body ?? '') as { id: string | number };
        return [body.id, body];
      }),
    );
    expect([...byId.keys()].sort()).toEqual(['a-row', 'customer-42', 'req-7', 7].sort());
    expect(byId.get('a-row')).toEqual({
      id: 'a-row',
      model_name: 'iris',
      model_version: '1.1.0',
      outputs: {
        probabilities: sampleProbs.slice(0, 3).map((p) => expect.closeTo(p, 5) as unknown),
        label: 1,
      },
      source: { messageId: 'a-row', eventSourceARN: QUEUE_ARN },
    });
    expect(byId.get('customer-42')).toMatchObject({
      outputs: { label: 0, probabilities: sampleProbs.slice(3).map((p) => expect.closeTo(p, 5) as unknown) },
      source: { messageId: 'b-row-with-id' },
    });
    expect(byId.get(7)).toMatchObject({ outputs: { label: 0 } });
    // A V2 request keeps its batch: two rows in, two out.
    expect(byId.get('req-7')).toMatchObject({
      outputs: {
        label: [1, 0],
        probabilities: [
          sampleProbs.slice(0, 3).map((p) => expect.closeTo(p, 5) as unknown),
          sampleProbs.slice(3).map((p) => expect.closeTo(p, 5) as unknown),
        ],
      },
      source: { messageId: 'c-v2' },
    });
  });

  it('Kinesis: the same, keyed by sequence number', async () => {
    const url = await newQueue('kinesis-predictions');
    const seqs = Object.keys(MIXED).map(
      (_, i) => `4959033827149025660855969253836157109592157598913658${1000 + i}`,
    );
    const bodies = Object.fromEntries(Object.values(MIXED).map((b, i) => [seqs[i] as string, b]));
    const badSeqs = Object.keys(MIXED)
      .map((k, i) => (k in BAD ? seqs[i] : undefined))
      .filter((s) => s !== undefined);
    const outcome = await processRecords(streamRecords(kinesisEvent(bodies)), {
      model,
      limits,
      sink: sqsSink(sqs, url),
    });
    expect(outcome.batchItemFailures).toEqual(badSeqs.map((itemIdentifier) => ({ itemIdentifier })));
    const got = (await receiveAll(url)).map((m) => JSON.parse(m.Body ?? '') as Record<string, unknown>);
    expect(got).toHaveLength(4);
    const aRow = got.find((b) => (b.source as { sequenceNumber: string }).sequenceNumber === seqs[0]);
    expect(aRow).toMatchObject({
      id: seqs[0],
      outputs: { label: 1 },
      source: { partitionKey: 'pk-0', eventSourceARN: STREAM_ARN },
    });
  });

  it('a record whose prediction cannot be sent fails at the send, with the reason', async () => {
    const gone = `${moto.endpoint}/123456789012/no-such-queue`;
    const outcome = await processRecords(streamRecords(sqsEvent({ ...GOOD, 'e-bad-json': '[' })), {
      model,
      limits,
      sink: sqsSink(sqs, gone),
    });
    expect(outcome.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([
      ...Object.keys(GOOD),
      'e-bad-json',
    ]);
    expect(outcome.failures.filter((f) => f.stage === 'send').map((f) => f.key)).toEqual(Object.keys(GOOD));
    expect(outcome.failures[0]?.reason).toMatch(/QueueDoesNotExist|NonExistentQueue|does not exist/);
    expect(outcome.predicted).toBe(0);
  });

  it('stacks rows into runs of at most maxBatch rows and predicts them all', async () => {
    const url = await newQueue('many');
    // moto's SQS takes ~15 ms a message, so a small maxBatch stands in for a big event.
    const bodies = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [
        `r${String(i).padStart(2, '0')}`,
        JSON.stringify(i % 2 ? SETOSA : VERSICOLOR),
      ]),
    );
    bodies.r17 = '[1, 2]';
    const outcome = await processRecords(streamRecords(sqsEvent(bodies)), {
      model,
      limits: resolveLimits({ maxBatch: 16 }),
      sink: sqsSink(sqs, url),
    });
    expect(outcome.batchItemFailures).toEqual([{ itemIdentifier: 'r17' }]);
    expect(outcome.predicted).toBe(39);
    const labels = new Map(
      (await receiveAll(url)).map((m) => {
        const b = JSON.parse(m.Body ?? '') as { id: string; outputs: { label: number } };
        return [b.id, b.outputs.label];
      }),
    );
    expect(labels.size).toBe(39);
    for (const [id, label] of labels)
      expect({ id, label }).toEqual({ id, label: Number(id.slice(1)) % 2 ? 0 : 1 });
  });
});
