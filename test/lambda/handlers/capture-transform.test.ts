/**
 * The capture delivery path against moto: a log group subscribed to a Firehose stream, the serving path's
 * lines put into it, and the object Firehose writes run through the transform handler, in process and as its
 * Lambda bundle.
 *
 * What moto does not do, and so this test cannot show: moto sends every log event to the subscription,
 * whatever its filter pattern (its pattern matcher knows plain terms only, not JSON patterns such as
 * `{ $.mdk_capture = 1 }`), and its Firehose writes the raw records to S3 without calling a processor or
 * evaluating dynamic partitioning prefixes. So the object here is exactly what the transform receives in AWS
 * (a gzipped CloudWatch Logs envelope, as a Firehose record), only with more lines than the filter would pass;
 * that the transform drops those lines itself is what keeps the captures clean if a filter is ever wrong.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
  PutSubscriptionFilterCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  CreateDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  FirehoseClient,
} from '@aws-sdk/client-firehose';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { FirehoseTransformationEvent, FirehoseTransformationResult } from 'aws-lambda';
import {
  bundleHandler,
  clearBundleCache,
  LAMBDA_UNZIPPED_LIMIT_BYTES,
  runtimeEntry,
} from '../../../lib/bundling';
import { CAPTURE_FILTER_PATTERN } from '../../../lib/data-capture';
import { CAPTURE_FORMAT, type CaptureRecord } from '../../../lambda/core/capture-record';
import { handler } from '../../../lambda/handlers/capture-transform';
import { runBundle } from '../../support/bundle-run';
import {
  motoClientConfig,
  motoLambdaEnv,
  motoS3Client,
  startMoto,
  type MotoServer,
} from '../../support/moto';

const BUCKET = 'captures';
const LOG_GROUP = '/aws/lambda/iris-api';
const LOG_STREAM = '2026/11/22/[$LATEST]0123456789abcdef';
const ARCH = process.arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;

let moto: MotoServer;
let s3: S3Client;
let logsClient: CloudWatchLogsClient;
let firehose: FirehoseClient;
let streamArn: string;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-capture-transform-'));

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  logsClient = new CloudWatchLogsClient(motoClientConfig(moto.endpoint));
  firehose = new FirehoseClient(motoClientConfig(moto.endpoint));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await firehose.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'capture',
      DeliveryStreamType: 'DirectPut',
      ExtendedS3DestinationConfiguration: {
        RoleARN: 'arn:aws:iam::123456789012:role/capture-delivery',
        BucketARN: `arn:aws:s3:::${BUCKET}`,
        // moto writes under this prefix as it is; the construct's partitioned prefix would be taken literally.
        Prefix: 'raw/',
        CompressionFormat: 'UNCOMPRESSED',
      },
    }),
  );
  const described = await firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'capture' }));
  streamArn = described.DeliveryStreamDescription?.DeliveryStreamARN ?? '';
  await logsClient.send(new CreateLogGroupCommand({ logGroupName: LOG_GROUP }));
  await logsClient.send(new CreateLogStreamCommand({ logGroupName: LOG_GROUP, logStreamName: LOG_STREAM }));
  await logsClient.send(
    new PutSubscriptionFilterCommand({
      logGroupName: LOG_GROUP,
      filterName: 'capture',
      filterPattern: CAPTURE_FILTER_PATTERN,
      destinationArn: streamArn,
      roleArn: 'arn:aws:iam::123456789012:role/capture-subscription',
    }),
  );
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  logsClient?.destroy();
  firehose?.destroy();
  await moto?.stop();
  fs.rmSync(work, { recursive: true, force: true });
  clearBundleCache();
});

function capture(row: number, rows: number): CaptureRecord {
  return {
    mdk_capture: CAPTURE_FORMAT,
    time: new Date(Date.UTC(2026, 10, 22, 4, 0, row)).toISOString(),
    model: 'iris',
    version: '1.1.0',
    request_id: 'req-7',
    row,
    rows,
    latency_ms: 0.84,
    inputs: { input: [5.1 + row, 3.5, 1.4, 0.2] },
    outputs: { label: row % 3, probabilities: [0.8, 0.1, 0.1] },
    hashed: ['customer'],
  };
}

/** What a serving Lambda's log stream holds around a captured request. */
function servingLines(captures: CaptureRecord[]): string[] {
  return [
    'START RequestId: 7d3c1f Version: 3',
    JSON.stringify({ level: 'INFO', message: 'model loaded', service: 'model-deploy-kit', model: 'iris' }),
    ...captures.map((c) => JSON.stringify(c)),
    JSON.stringify({
      _aws: {
        Timestamp: 1_795_000_000_000,
        CloudWatchMetrics: [
          { Namespace: 'ModelDeployKit', Dimensions: [['model']], Metrics: [{ Name: 'RequestLatency' }] },
        ],
      },
      model: 'iris',
      RequestLatency: 0.84,
    }),
    'END RequestId: 7d3c1f',
    'REPORT RequestId: 7d3c1f\tDuration: 1.93 ms\tBilled Duration: 2 ms',
  ];
}

/** Puts lines into the log stream and returns the one object moto's Firehose wrote for them. */
async function deliver(lines: string[]): Promise<Buffer> {
  const before = await rawKeys();
  const now = Date.now();
  await logsClient.send(
    new PutLogEventsCommand({
      logGroupName: LOG_GROUP,
      logStreamName: LOG_STREAM,
      logEvents: lines.map((message, i) => ({ timestamp: now + i, message })),
    }),
  );
  const added = (await rawKeys()).filter((k) => !before.includes(k));
  expect(added).toHaveLength(1);
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: added[0] }));
  return Buffer.from((await res.Body?.transformToByteArray()) ?? []);
}

async function rawKeys(): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'raw/' }));
  return (res.Contents ?? []).map((o) => o.Key ?? '');
}

/** The Firehose invocation for delivered records, as Firehose would make it: each record's data in base64. */
function transformEvent(records: Buffer[]): FirehoseTransformationEvent {
  return {
    invocationId: 'invocation-1',
    deliveryStreamArn: streamArn,
    region: 'us-east-1',
    records: records.map((data, i) => ({
      recordId: `record-${i}`,
      approximateArrivalTimestamp: Date.now(),
      data: data.toString('base64'),
    })),
  };
}

const decoded = (data: string | undefined): string => Buffer.from(data ?? '', 'base64').toString('utf8');

/** Runs the handler and returns what it wrote to stdout and stderr (its log lines) besides its answer. */
async function withLogs(
  event: FirehoseTransformationEvent,
): Promise<{ result: FirehoseTransformationResult; logs: string }> {
  const written: string[] = [];
  const spies = [process.stdout, process.stderr].map((stream) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    }),
  );
  try {
    return { result: await handler(event), logs: written.join('') };
  } finally {
    spies.forEach((spy) => spy.mockRestore());
  }
}

test('a delivered envelope becomes exactly its capture lines, under the model and version', async () => {
  const captures = [0, 1, 2].map((i) => capture(i, 3));
  const lines = servingLines(captures);
  const delivered = await deliver(lines);

  // What arrived is the CloudWatch Logs envelope, gzipped, with every line (moto applies no filter pattern).
  const envelope = JSON.parse(gunzipSync(delivered).toString('utf8')) as {
    messageType: string;
    logGroup: string;
    logStream: string;
    logEvents: { message: string }[];
  };
  expect(envelope).toMatchObject({ messageType: 'DATA_MESSAGE', logGroup: LOG_GROUP, logStream: LOG_STREAM });
  expect(envelope.logEvents.map((e) => e.message)).toEqual(lines);

  const { result, logs } = await withLogs(transformEvent([delivered]));
  expect(result.records).toHaveLength(1);
  expect(result.records[0]).toMatchObject({
    recordId: 'record-0',
    result: 'Ok',
    metadata: { partitionKeys: { model: 'iris', version: '1.1.0' } },
  });
  const out = decoded(result.records[0]?.data);
  expect(out).toBe(`${captures.map((c) => JSON.stringify(c)).join('\n')}\n`);
  expect(
    out
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as unknown),
  ).toEqual(captures);
  // The handler logs its counts, never a row: captures may hold personal data.
  expect(logs).toContain('"captureLines":3');
  expect(logs).toContain('"otherLines":5');
  expect(logs).not.toContain('req-7');
  // And its counts as EMF metrics, by the stream the event names.
  const emf = logs
    .split('\n')
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(emf).toHaveLength(1);
  expect(emf[0]).toMatchObject({
    service: 'model-deploy-kit',
    stream: 'capture',
    CaptureRowsDelivered: 3,
    CaptureRecordsFailed: 0,
    _aws: { CloudWatchMetrics: [{ Namespace: 'ModelDeployKit', Dimensions: [['service', 'stream']] }] },
  });
  expect(logs).not.toContain('5.1');
});

test('an envelope of ordinary log lines only is dropped, next to one with captures', async () => {
  const ordinary = await deliver(servingLines([]));
  const withCaptures = await deliver(servingLines([capture(0, 1)]));
  const { result } = await withLogs(transformEvent([ordinary, withCaptures]));
  expect(result.records.map((r) => [r.recordId, r.result])).toEqual([
    ['record-0', 'Dropped'],
    ['record-1', 'Ok'],
  ]);
  expect(decoded(result.records[1]?.data)).toBe(`${JSON.stringify(capture(0, 1))}\n`);
});

test('the Lambda bundle gives the same answer in a fresh node process', async () => {
  const dir = path.join(work, 'bundle');
  bundleHandler(
    {
      entry: runtimeEntry('capture-transform'),
      architecture: ARCH,
      includeOnnxRuntime: false,
      maxBytes: LAMBDA_UNZIPPED_LIMIT_BYTES,
    },
    dir,
  );
  const captures = [0, 1].map((i) => capture(i, 2));
  const event = transformEvent([await deliver(servingLines(captures)), Buffer.from('corrupt')]);
  const { result: expected } = await withLogs(event);
  const run = await runBundle<FirehoseTransformationResult>(dir, { ...motoLambdaEnv(moto.endpoint) }, [
    event,
  ]);
  expect(run.results).toEqual([expected]);
  expect(expected.records.map((r) => r.result)).toEqual(['Ok', 'ProcessingFailed']);
}, 60_000);
