import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { mockClient } from 'aws-sdk-client-mock';
import {
  createSink,
  destinationFromEnv,
  eventBridgeSink,
  kinesisSink,
  packCalls,
  partitionKey,
  sqsSink,
  type OutMessage,
} from '../../../lambda/core/sinks';
import { motoClientConfig, startMoto, type MotoServer } from '../../support/moto';

describe('destinationFromEnv', () => {
  it('reads each destination type and its target', () => {
    expect(destinationFromEnv({ DESTINATION_TYPE: 'sqs', DESTINATION_QUEUE_URL: 'https://q' })).toEqual({
      type: 'sqs',
      queueUrl: 'https://q',
    });
    expect(destinationFromEnv({ DESTINATION_TYPE: 'eventbridge', DESTINATION_BUS_NAME: 'bus' })).toEqual({
      type: 'eventbridge',
      busName: 'bus',
      source: 'model-deploy-kit',
      detailType: 'Prediction',
    });
    expect(
      destinationFromEnv({
        DESTINATION_TYPE: 'eventbridge',
        DESTINATION_BUS_NAME: 'bus',
        EVENT_SOURCE: 'fraud.scores',
        EVENT_DETAIL_TYPE: 'Score',
      }),
    ).toMatchObject({ source: 'fraud.scores', detailType: 'Score' });
    expect(
      destinationFromEnv({ DESTINATION_TYPE: 'kinesis', DESTINATION_STREAM_ARN: 'arn:aws:kinesis:x' }),
    ).toEqual({ type: 'kinesis', streamArn: 'arn:aws:kinesis:x' });
  });

  it('names what is missing or wrong', () => {
    expect(() => destinationFromEnv({})).toThrow(
      'DESTINATION_TYPE must be sqs, eventbridge or kinesis, got "(unset)"',
    );
    expect(() => destinationFromEnv({ DESTINATION_TYPE: 'sns' })).toThrow(/got "sns"/);
    expect(() => destinationFromEnv({ DESTINATION_TYPE: 'sqs' })).toThrow(
      'DESTINATION_QUEUE_URL is not set: DESTINATION_TYPE=sqs needs it',
    );
    expect(() => destinationFromEnv({ DESTINATION_TYPE: 'kinesis' })).toThrow(/DESTINATION_STREAM_ARN/);
    expect(() =>
      destinationFromEnv({
        DESTINATION_TYPE: 'eventbridge',
        DESTINATION_BUS_NAME: 'b',
        EVENT_SOURCE: 'aws.x',
      }),
    ).toThrow(/may not start with "aws."/);
    expect(() => createSink({ type: 'sqs', queueUrl: 'q' }, {})).toThrow(
      'DESTINATION_TYPE=sqs needs a SQS client',
    );
  });
});

describe('packCalls', () => {
  const limits = { entries: 3, callBytes: 10, entryBytes: 6 };
  it('fills calls up to the entry and byte limits, in order, and sets aside entries that never fit', () => {
    const sizes = [2, 2, 2, 2, 5, 5, 7, 1, 4];
    const { calls, tooBig } = packCalls(sizes, (n) => n, limits);
    expect(calls).toEqual([
      [2, 2, 2],
      [2, 5],
      [5, 1, 4],
    ]);
    expect(tooBig).toEqual([{ item: 7, bytes: 7 }]);
    expect(packCalls([], (n: number) => n, limits)).toEqual({ calls: [], tooBig: [] });
  });
});

describe('partitionKey', () => {
  it('is the id, cut to 256 characters, or the fallback when the id is empty', () => {
    expect(partitionKey('abc', 'seq')).toBe('abc');
    expect(partitionKey('', 'seq')).toBe('seq');
    // Characters, not UTF-16 units: an emoji is one.
    expect([...partitionKey('😀'.repeat(300), 'x')]).toHaveLength(256);
  });
});

const messages = (n: number, size = 10): OutMessage[] =>
  Array.from({ length: n }, (_, i) => ({
    key: `k${i}`,
    id: `id-${i}`,
    body: JSON.stringify({ id: `id-${i}`, pad: 'x'.repeat(size) }),
  }));

async function drain(sqs: SQSClient, url: string, want: number): Promise<Message[]> {
  const got: Message[] = [];
  for (let i = 0; i < 50 && got.length < want; i++) {
    const r = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }),
    );
    got.push(...(r.Messages ?? []));
    if (!r.Messages?.length) break;
  }
  return got;
}

describe('sinks against moto', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  beforeAll(async () => {
    moto = await startMoto();
    sqs = new SQSClient(motoClientConfig(moto.endpoint));
  });
  afterAll(async () => {
    sqs.destroy();
    await moto.stop();
  });

  const newQueue = async (name: string) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl as string;

  it('SQS: sends every message in batches of 10 and 256 KiB, and fails only one too big to send', async () => {
    const url = await newQueue('out-sqs');
    // 23 small ones (three calls by count), two of 100 KiB (a call by bytes), one over 256 KiB.
    const small = messages(23);
    const big = messages(2, 100 * 1024).map((m, i) => ({ ...m, key: `big${i}` }));
    const huge = { key: 'huge', id: 'huge', body: JSON.stringify({ pad: 'x'.repeat(300 * 1024) }) };
    const failures = await sqsSink(sqs, url).send([...small, ...big, huge]);
    expect(failures).toEqual([
      { key: 'huge', reason: `the prediction is ${huge.body.length} bytes; SQS takes at most 262144` },
    ]);
    const got = await drain(sqs, url, 25);
    expect(got.map((m) => m.Body).sort()).toEqual([...small, ...big].map((m) => m.body).sort());
  });

  it('SQS: a call that fails fails each of its messages with the reason', async () => {
    const url = `${moto.endpoint}/123456789012/no-such-queue`;
    const failures = await sqsSink(sqs, url).send(messages(12));
    expect(failures.map((f) => f.key)).toEqual(messages(12).map((m) => m.key));
    expect(failures[0]?.reason).toMatch(/QueueDoesNotExist|NonExistentQueue|does not exist/);
  });

  it('EventBridge: events reach the bus (read back through a rule to SQS); a malformed entry fails alone', async () => {
    const events = new EventBridgeClient(motoClientConfig(moto.endpoint));
    const url = await newQueue('from-bus');
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    await events.send(new CreateEventBusCommand({ Name: 'predictions' }));
    await events.send(
      new PutRuleCommand({
        Name: 'all',
        EventBusName: 'predictions',
        EventPattern: JSON.stringify({ source: ['fraud.scores'] }),
      }),
    );
    await events.send(
      new PutTargetsCommand({
        Rule: 'all',
        EventBusName: 'predictions',
        Targets: [{ Id: 'q', Arn: Attributes?.QueueArn }],
      }),
    );
    const sink = eventBridgeSink(events, {
      busName: 'predictions',
      source: 'fraud.scores',
      detailType: 'Score',
    });
    const good = messages(12);
    const bad = { key: 'bad', id: 'bad', body: 'not json' };
    const failures = await sink.send([...good.slice(0, 5), bad, ...good.slice(5)]);
    expect(failures).toEqual([{ key: 'bad', reason: 'MalformedDetail: Detail is malformed.' }]);
    const got = await drain(sqs, url, 12);
    const envelopes = got.map((m) => JSON.parse(m.Body ?? '') as Record<string, unknown>);
    expect(
      envelopes.map((e) => e.detail).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual(
      good
        .map((m) => JSON.parse(m.body) as unknown)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    expect(envelopes[0]).toMatchObject({ source: 'fraud.scores', 'detail-type': 'Score' });
    events.destroy();
  });

  it('Kinesis: records reach the stream with the id as partition key, over 500 a call; a missing stream fails them all', async () => {
    const kinesis = new KinesisClient({
      ...motoClientConfig(moto.endpoint),
      requestHandler: new NodeHttpHandler(),
    });
    await kinesis.send(new CreateStreamCommand({ StreamName: 'out', ShardCount: 1 }));
    const { StreamDescription } = await kinesis.send(new DescribeStreamCommand({ StreamName: 'out' }));
    const arn = StreamDescription?.StreamARN as string;
    const sent = messages(620);
    expect(await kinesisSink(kinesis, arn).send(sent)).toEqual([]);
    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: 'out',
        ShardId: StreamDescription?.Shards?.[0]?.ShardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const got: { key: string; body: string }[] = [];
    let iterator = ShardIterator;
    while (iterator && got.length < sent.length) {
      const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      if (!r.Records?.length) break;
      for (const rec of r.Records) {
        got.push({ key: rec.PartitionKey ?? '', body: Buffer.from(rec.Data ?? []).toString('utf8') });
      }
      iterator = r.NextShardIterator;
    }
    // Calls run side by side (PutRecords keeps no order anyway): compare as sets.
    const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key);
    expect(got.sort(byKey)).toEqual(sent.map((m) => ({ key: m.id, body: m.body })).sort(byKey));

    const missing = arn.replace(/stream\/out$/, 'stream/missing');
    const failures = await kinesisSink(kinesis, missing).send(messages(3));
    expect(failures.map((f) => f.key)).toEqual(['k0', 'k1', 'k2']);
    expect(failures[0]?.reason).toMatch(/ResourceNotFound/);
    kinesis.destroy();
  });
});

// moto never fails one entry of a SendMessageBatch or PutRecords call (AWS does: throttling, KMS, internal
// errors), so these two answers are scripted; everything else above is moto's.
describe('per-entry failures moto cannot produce', () => {
  test('SQS: a failed entry fails its own message only, matched by entry id', async () => {
    const sqs = new SQSClient({ region: 'us-east-1' });
    const mock = mockClient(sqs);
    mock.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.filter((e) => e.Id !== 'm3').map((e) => ({ Id: e.Id })),
      Failed: [{ Id: 'm3', Code: 'KMS.ThrottlingException', SenderFault: false, Message: 'Rate exceeded' }],
    }));
    const sent = messages(14);
    const failures = await sqsSink(sqs, 'https://sqs.us-east-1.amazonaws.com/123456789012/out').send(sent);
    // Entry ids restart in each call of 10: m3 is the 4th message of both calls.
    expect(failures).toEqual([
      { key: 'k3', reason: 'KMS.ThrottlingException: Rate exceeded' },
      { key: 'k13', reason: 'KMS.ThrottlingException: Rate exceeded' },
    ]);
    expect(mock.commandCalls(SendMessageBatchCommand)).toHaveLength(2);
    mock.restore();
  });

  test('Kinesis: a throttled record fails its own message only, matched by position', async () => {
    const kinesis = new KinesisClient({ region: 'us-east-1' });
    const mock = mockClient(kinesis);
    mock.on(PutRecordsCommand).callsFake((input: { Records: unknown[] }) => ({
      FailedRecordCount: 1,
      Records: input.Records.map((_, i) =>
        i === 1
          ? { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'Rate exceeded for shard' }
          : { SequenceNumber: `${i}`, ShardId: 'shardId-000000000000' },
      ),
    }));
    const failures = await kinesisSink(kinesis, 'arn:aws:kinesis:us-east-1:123456789012:stream/out').send(
      messages(3),
    );
    expect(failures).toEqual([
      { key: 'k1', reason: 'ProvisionedThroughputExceededException: Rate exceeded for shard' },
    ]);
    mock.restore();
  });
});
