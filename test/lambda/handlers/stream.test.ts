/**
 * The stream handler as Lambda runs it: loaded with its environment, fed the events Lambda's pollers build, and
 * sending to real (moto) destinations. For SQS the test plays Lambda's poller against a real moto queue:
 * receive, invoke, delete what succeeded, let the rest become visible again; moto's redrive policy then moves
 * a poison message to the DLQ after maxReceiveCount receives.
 */
import * as path from 'node:path';
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
} from '@aws-sdk/client-kinesis';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Context, KinesisStreamEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import { IRIS_DIR } from '../../support/cdk';
import { motoClientConfig, motoLambdaEnv, startMoto, type MotoServer } from '../../support/moto';

type Stream = typeof import('../../../lambda/handlers/stream');

const SETOSA = [4.7, 3.2, 1.3, 0.2];
const VERSICOLOR = [6.4, 3.2, 4.5, 1.5];
const VIRGINICA = [7.7, 3.0, 6.1, 2.3];

/** A prediction message, as the destination receives it. */
interface Prediction {
  id: string | number;
  model_name: string;
  model_version: string;
  outputs: { probabilities: number[] | number[][]; label: number | number[] };
  source: Record<string, string>;
}

const context: Context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'stream-fn',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:stream-fn',
  memoryLimitInMB: '2048',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
  logGroupName: '/aws/lambda/stream-fn',
  logStreamName: '2026/11/22/[$LATEST]abcdef',
  getRemainingTimeInMillis: () => 30_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
};

/** The SQS event Lambda's poller builds from received messages. */
function sqsEventFrom(messages: readonly Message[], queueArn: string): SQSEvent {
  return {
    Records: messages.map((m): SQSRecord => ({
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      body: m.Body ?? '',
      attributes: {
        ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: m.Attributes?.SentTimestamp ?? '',
        SenderId: m.Attributes?.SenderId ?? '',
        ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? '',
      },
      messageAttributes: {},
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: 'us-east-1',
    })),
  };
}

function kinesisEvent(
  records: readonly { seq: string; body: string }[],
  streamArn: string,
): KinesisStreamEvent {
  return {
    Records: records.map(({ seq, body }, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: `pk-${i}`,
        sequenceNumber: seq,
        data: Buffer.from(body).toString('base64'),
        approximateArrivalTimestamp: 1763776000.5,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${seq}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/stream-fn',
      awsRegion: 'us-east-1',
      eventSourceARN: streamArn,
    })),
  };
}

describe('stream handler', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  const savedEnv = { ...process.env };
  let output: string[];
  const spies: jest.SpyInstance[] = [];

  /** Loads a fresh copy of the handler module with its environment, as a Lambda init would. */
  async function load(env: Record<string, string>, waitForModel = true): Promise<Stream> {
    process.env = { ...savedEnv, ...motoLambdaEnv(moto.endpoint), MODEL_URI: IRIS_DIR, ...env };
    let loaded: Stream | undefined;
    jest.isolateModules(() => {
      loaded = jest.requireActual<Stream>(
        path.join(__dirname, '..', '..', '..', 'lambda', 'handlers', 'stream'),
      );
    });
    if (!loaded) throw new Error('handler module did not load');
    if (waitForModel) await loaded.ready;
    return loaded;
  }

  const newQueue = async (name: string, attributes?: Record<string, string>) => {
    const url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
      .QueueUrl as string;
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    return { url, arn: Attributes?.QueueArn as string };
  };

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

  beforeAll(async () => {
    moto = await startMoto();
    sqs = new SQSClient(motoClientConfig(moto.endpoint));
    output = [];
    for (const stream of [process.stdout, process.stderr]) {
      spies.push(
        jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
          output.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
          return true;
        }),
      );
    }
  });
  afterAll(async () => {
    spies.forEach((s) => s.mockRestore());
    process.env = savedEnv;
    sqs.destroy();
    await moto.stop();
  });
  beforeEach(() => {
    output.length = 0;
  });

  const jsonLines = () =>
    output
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('SQS to SQS: good messages flow to the output queue with predictions; a poison one ends in the DLQ', async () => {
    const dlq = await newQueue('requests-dlq');
    const input = await newQueue('requests', {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }),
    });
    const out = await newQueue('predictions');
    const stream = await load({
      DESTINATION_TYPE: 'sqs',
      DESTINATION_QUEUE_URL: out.url,
      POWERTOOLS_LOG_LEVEL: 'INFO',
    });

    const good = [
      JSON.stringify(VERSICOLOR),
      JSON.stringify({ input: SETOSA, id: 'order-1' }),
      JSON.stringify({ input: VIRGINICA, id: 'order-2' }),
      JSON.stringify({
        id: 'order-3',
        inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: SETOSA }],
      }),
    ];
    const poison = [
      '{"input": [1, 2',
      JSON.stringify({ input: [1, 2, 3] }),
      JSON.stringify({ sepal: [1, 2, 3, 4] }),
    ];
    const bodies = [good[0], poison[0], good[1], poison[1], good[2], poison[2], good[3]] as string[];
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: input.url,
        Entries: bodies.map((MessageBody, i) => ({ Id: `e${i}`, MessageBody })),
      }),
    );

    // Lambda's poller: receive a batch, invoke, delete the successes; a failed message comes back once its
    // visibility timeout ends (here at once), and after maxReceiveCount receives the queue moves it to the DLQ.
    let invocations = 0;
    const failedIds = new Set<string>();
    for (let round = 0; round < 10; round++) {
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: input.url,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 30,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      if (!Messages?.length) break;
      const response = await stream.handler(sqsEventFrom(Messages, input.arn), context);
      invocations++;
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      for (const m of Messages) {
        if (failed.has(m.MessageId ?? '')) {
          failedIds.add(m.MessageId ?? '');
          await sqs.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: input.url,
              ReceiptHandle: m.ReceiptHandle,
              VisibilityTimeout: 0,
            }),
          );
        } else {
          await sqs.send(new DeleteMessageCommand({ QueueUrl: input.url, ReceiptHandle: m.ReceiptHandle }));
        }
      }
    }
    // The first batch predicted the good ones; the poison ones failed twice, then moved.
    expect(invocations).toBe(2);
    expect(failedIds.size).toBe(3);

    const predictions = (await receiveAll(out.url)).map((m) => JSON.parse(m.Body ?? '') as Prediction);
    expect(predictions).toHaveLength(4);
    const byId = new Map(predictions.map((p) => [p.id, p]));
    expect(byId.get('order-1')).toMatchObject({
      model_name: 'iris',
      model_version: '1.1.0',
      outputs: { label: 0 },
    });
    expect(byId.get('order-2')).toMatchObject({ outputs: { label: 2 } });
    expect(byId.get('order-3')).toMatchObject({ outputs: { label: [0] } });
    const unnamed = predictions.find((p) => !['order-1', 'order-2', 'order-3'].includes(String(p.id)));
    // Without an id field, a prediction carries its message's id.
    expect(unnamed).toMatchObject({
      outputs: { label: 1 },
      source: { eventSourceARN: input.arn },
    });
    expect(unnamed?.id).toBe(unnamed?.source.messageId);
    const probs = unnamed?.outputs.probabilities as number[];
    expect(probs).toHaveLength(3);
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);

    expect((await receiveAll(dlq.url)).map((m) => m.Body).sort()).toEqual([...poison].sort());
    expect(await receiveAll(input.url)).toEqual([]);

    // Each failure is logged with its reason and without its payload; the metrics count both kinds.
    const lines = jsonLines();
    const warnings = lines.filter((l) => l.message === 'record failed');
    expect(warnings).toHaveLength(6);
    expect(warnings.map((w) => w.reason)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/not valid JSON/),
        expect.stringMatching(/expected 4 values, got 3/),
        expect.stringMatching(/unknown input 'sepal'/),
      ]),
    );
    expect(warnings[0]).toMatchObject({ stage: 'parse', function_name: 'stream-fn' });
    expect(warnings.some((w) => 'payload' in w)).toBe(false);
    const emf = lines.filter((l) => 'RecordsPredicted' in l);
    expect(emf.map((l) => [l.RecordsPredicted, l.RecordsFailed])).toEqual([
      [4, 3],
      [0, 3],
    ]);
    expect(emf[0]).toMatchObject({ model: 'iris', service: 'model-deploy-kit' });
    expect(typeof emf[0]?.PredictionLatency).toBe('number');
  });

  it('logs a failed record payload only with LOG_PAYLOADS=true', async () => {
    const out = await newQueue('payload-logs');
    const stream = await load({
      DESTINATION_TYPE: 'sqs',
      DESTINATION_QUEUE_URL: out.url,
      POWERTOOLS_LOG_LEVEL: 'INFO',
      LOG_PAYLOADS: 'true',
    });
    const msg = { MessageId: 'm-1', ReceiptHandle: 'h', Body: '[1, 2, "secret"]' };
    const res = await stream.handler(sqsEventFrom([msg], 'arn:aws:sqs:us-east-1:123456789012:q'), context);
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: 'm-1' }]);
    expect(jsonLines().find((l) => l.message === 'record failed')).toMatchObject({
      itemIdentifier: 'm-1',
      payload: '[1, 2, "secret"]',
    });
  });

  it('Kinesis to Kinesis: predictions land on the stream; bad records fail by sequence number', async () => {
    const kinesis = new KinesisClient({
      ...motoClientConfig(moto.endpoint),
      requestHandler: new NodeHttpHandler(),
    });
    await kinesis.send(new CreateStreamCommand({ StreamName: 'predictions', ShardCount: 1 }));
    const { StreamDescription } = await kinesis.send(
      new DescribeStreamCommand({ StreamName: 'predictions' }),
    );
    const stream = await load({
      DESTINATION_TYPE: 'kinesis',
      DESTINATION_STREAM_ARN: StreamDescription?.StreamARN as string,
    });
    const source = 'arn:aws:kinesis:us-east-1:123456789012:stream/requests';
    const seq = (n: number) => `4959033827149025660855969253836157109592157598913658889${n}`;
    const response = await stream.handler(
      kinesisEvent(
        [
          { seq: seq(1), body: JSON.stringify({ input: VIRGINICA, id: 'v' }) },
          { seq: seq(2), body: 'not json' },
          { seq: seq(3), body: JSON.stringify(SETOSA) },
          { seq: seq(4), body: JSON.stringify(['a', 'b', 'c', 'd']) },
        ],
        source,
      ),
      context,
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: seq(2) }, { itemIdentifier: seq(4) }]);

    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: 'predictions',
        ShardId: StreamDescription?.Shards?.[0]?.ShardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const { Records } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
    const got = (Records ?? []).map((r) => ({
      partitionKey: r.PartitionKey,
      body: JSON.parse(Buffer.from(r.Data ?? []).toString('utf8')) as Record<string, unknown>,
    }));
    expect(got).toHaveLength(2);
    expect(got.find((g) => g.partitionKey === 'v')?.body).toMatchObject({
      id: 'v',
      outputs: { label: 2 },
      source: { sequenceNumber: seq(1), partitionKey: 'pk-0', eventSourceARN: source },
    });
    expect(got.find((g) => g.partitionKey === seq(3))?.body).toMatchObject({
      id: seq(3),
      outputs: { label: 0 },
    });
    kinesis.destroy();
  });

  it('SQS to EventBridge: predictions are events on the bus, with the configured source and detail type', async () => {
    const events = new EventBridgeClient(motoClientConfig(moto.endpoint));
    const target = await newQueue('bus-target');
    await events.send(new CreateEventBusCommand({ Name: 'scores' }));
    await events.send(
      new PutRuleCommand({
        Name: 'predictions',
        EventBusName: 'scores',
        EventPattern: JSON.stringify({ source: ['iris.stream'], 'detail-type': ['IrisPrediction'] }),
      }),
    );
    await events.send(
      new PutTargetsCommand({
        Rule: 'predictions',
        EventBusName: 'scores',
        Targets: [{ Id: 'q', Arn: target.arn }],
      }),
    );
    const stream = await load({
      DESTINATION_TYPE: 'eventbridge',
      DESTINATION_BUS_NAME: 'scores',
      EVENT_SOURCE: 'iris.stream',
      EVENT_DETAIL_TYPE: 'IrisPrediction',
    });
    const messages = [
      { MessageId: 'a', ReceiptHandle: 'ha', Body: JSON.stringify({ input: VERSICOLOR, id: 'x1' }) },
      { MessageId: 'b', ReceiptHandle: 'hb', Body: JSON.stringify({ input: [1, 2, 3, 4, 5] }) },
      { MessageId: 'c', ReceiptHandle: 'hc', Body: JSON.stringify({ input: SETOSA, id: 'x2' }) },
    ];
    const response = await stream.handler(
      sqsEventFrom(messages, 'arn:aws:sqs:us-east-1:123456789012:requests'),
      context,
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'b' }]);
    const envelopes = (await receiveAll(target.url)).map(
      (m) => JSON.parse(m.Body ?? '') as { source: string; 'detail-type': string; detail: Prediction },
    );
    expect(envelopes).toHaveLength(2);
    expect(envelopes.every((e) => e.source === 'iris.stream' && e['detail-type'] === 'IrisPrediction')).toBe(
      true,
    );
    const details = new Map(envelopes.map((e) => [e.detail.id, e.detail]));
    expect(details.get('x1')).toMatchObject({ outputs: { label: 1 }, source: { messageId: 'a' } });
    expect(details.get('x2')).toMatchObject({ outputs: { label: 0 }, source: { messageId: 'c' } });
    events.destroy();
  });

  it('fails the whole invocation (so Lambda retries it) when the model cannot load', async () => {
    const broken = await load(
      {
        MODEL_URI: path.join(IRIS_DIR, 'missing.onnx'),
        DESTINATION_TYPE: 'sqs',
        DESTINATION_QUEUE_URL: 'http://unused',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
      false,
    );
    const event = sqsEventFrom(
      [{ MessageId: 'm', ReceiptHandle: 'h', Body: '[1,2,3,4]' }],
      'arn:aws:sqs:us-east-1:1:q',
    );
    await expect(broken.handler(event, context)).rejects.toThrow(/missing\.onnx/);
    expect(jsonLines().find((l) => l.level === 'ERROR')).toMatchObject({
      message: 'model failed to load; no record will be predicted',
    });
  });

  it('refuses to start without a destination', async () => {
    await expect(load({ DESTINATION_TYPE: 'sns' })).rejects.toThrow(
      'DESTINATION_TYPE must be sqs, eventbridge or kinesis, got "sns"',
    );
  });
});
