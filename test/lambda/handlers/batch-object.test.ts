/**
 * The batch object function end to end against moto: S3 notifications and direct invokes, the iris model
 * run by onnxruntime, outputs streamed back to S3; and a large object handed to a state machine in moto.
 */
import * as path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import type { S3Event } from 'aws-lambda';
import * as ort from 'onnxruntime-node';
import {
  loadHandlerInMoto,
  motoClientConfig,
  motoS3Client,
  startMoto,
  type MotoServer,
} from '../../support/moto';

type Handler = typeof import('../../../lambda/handlers/batch-object');

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const BUCKET = 'jobs';

let moto: MotoServer;
let s3: S3Client;
let sfn: SFNClient;
let small: Handler;
let large: Handler;
let stateMachineArn: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  sfn = new SFNClient(motoClientConfig(moto.endpoint));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const created = await sfn.send(
    new CreateStateMachineCommand({
      name: 'batch-jobs',
      definition: JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Succeed' } } }),
      roleArn: 'arn:aws:iam::123456789012:role/batch-jobs',
    }),
  );
  stateMachineArn = created.stateMachineArn as string;
  // Two instances, as two deployments would have: everything runs here, or anything over 200 bytes goes to
  // the state machine.
  Object.assign(process.env, { MODEL_URI: IRIS, BATCH_SIZE: '2', STATE_MACHINE_ARN: stateMachineArn });
  process.env.LARGE_JOB_BYTES = String(1024 * 1024);
  small = loadHandlerInMoto<Handler>(moto.endpoint, 'batch-object');
  process.env.LARGE_JOB_BYTES = '200';
  large = loadHandlerInMoto<Handler>(moto.endpoint, 'batch-object');
  await Promise.all([small.ready, large.ready]);
});

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  sfn?.destroy();
  await moto?.stop();
});

async function put(key: string, body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

async function text(key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await res.Body?.transformToString('utf8')) ?? '';
}

/** The EMF records a call prints: Powertools writes them to stdout, where CloudWatch Logs reads them. */
async function emf<T>(run: () => Promise<T>): Promise<{ result: T; metrics: Record<string, unknown>[] }> {
  const printed: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(chunk.toString());
    return true;
  });
  try {
    const result = await run();
    const metrics = printed
      .flatMap((p) => p.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { result, metrics };
  } finally {
    spy.mockRestore();
  }
}

const jsonLines = (t: string) =>
  t
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

function s3Event(key: string, size: number): S3Event {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: '2026-11-22T02:00:00.000Z',
        eventName: 'ObjectCreated:Put',
        userIdentity: { principalId: 'AWS:EXAMPLE' },
        requestParameters: { sourceIPAddress: '127.0.0.1' },
        responseElements: { 'x-amz-request-id': 'r', 'x-amz-id-2': 'i' },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'batch',
          bucket: { name: BUCKET, ownerIdentity: { principalId: 'EXAMPLE' }, arn: `arn:aws:s3:::${BUCKET}` },
          // Notifications form-encode keys.
          object: {
            key: encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+'),
            size,
            eTag: 'e',
            sequencer: '1',
          },
        },
      },
    ],
  };
}

/** The iris model run directly by onnxruntime on these rows: what the job must have written. */
async function irisDirect(rows: number[][]): Promise<{ probabilities: number[]; label: number }[]> {
  const session = await ort.InferenceSession.create(path.join(IRIS, 'model.onnx'));
  const feeds = { input: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 4]) };
  const out = await session.run(feeds);
  const probs = out.probabilities?.data as Float32Array;
  const labels = out.label?.data as BigInt64Array;
  return rows.map((_, i) => ({
    probabilities: Array.from(probs.slice(i * 3, i * 3 + 3)),
    label: Number(labels[i]),
  }));
}

const GOOD = [
  [5.1, 3.5, 1.4, 0.2],
  [6.7, 3.0, 5.2, 2.3],
  [6.4, 3.2, 4.5, 1.5],
  [4.7, 3.2, 1.3, 0.2],
];

function expectPredictions(
  got: unknown[],
  want: { id: string | number; line: number }[],
  direct: { probabilities: number[]; label: number }[],
): void {
  expect(got).toHaveLength(want.length);
  got.forEach((p, i) => {
    const line = p as {
      id: unknown;
      line: number;
      outputs: { probabilities: number[][] | number[]; label: unknown };
    };
    expect({ id: line.id, line: line.line }).toEqual(want[i]);
    expect(line.outputs.label).toEqual(direct[i]?.label);
    const probs = (line.outputs.probabilities as unknown[]).flat() as number[];
    probs.forEach((v, j) => expect(v).toBeCloseTo(direct[i]?.probabilities[j] ?? NaN, 6));
  });
}

describe('a small job runs in the function', () => {
  test('JSONL with bad rows: predictions in input order with ids, every bad row in errors.jsonl, a summary', async () => {
    const input = [
      JSON.stringify({ id: 'a', input: GOOD[0] }),
      JSON.stringify({ id: 'b', input: GOOD[1] }),
      BAD_JSON,
      JSON.stringify({ id: 'd', input: [1, 2, 3] }),
      '',
      JSON.stringify({ id: 'e', input: [5.9, 'x', 4.2, 1.5] }),
      JSON.stringify({ id: 'f', input: 'abc' }),
      JSON.stringify({ id: 'g', input: GOOD[2] }),
      JSON.stringify({ id: 'h', input: GOOD[3] }),
    ].join('\n');
    await put('input/flowers.jsonl', input);
    const { result, metrics } = await emf(() => small.handler(s3Event('input/flowers.jsonl', input.length)));
    const [report] = result;
    // What the JobsFailed alarm and the dashboards read: per model, as the construct's metrics name them.
    expect(metrics).toEqual([
      expect.objectContaining({
        service: 'model-deploy-kit',
        model: 'iris',
        JobsSucceeded: 1,
        RowsPredicted: 4,
        RowsFailed: 4,
      }),
    ]);

    const direct = await irisDirect(GOOD);
    expectPredictions(
      jsonLines(await text('output/flowers/predictions.jsonl')),
      [
        { id: 'a', line: 1 },
        { id: 'b', line: 2 },
        { id: 'g', line: 8 },
        { id: 'h', line: 9 },
      ],
      direct,
    );
    expect(await text('output/flowers/errors.jsonl')).toBe(ERRORS_JSONL);
    const summary = JSON.parse(await text('output/flowers/summary.json')) as Record<string, unknown>;
    expect(summary).toEqual(report);
    expect(summary).toMatchObject({
      job: 'flowers',
      status: 'SUCCEEDED',
      mode: 'lambda',
      input: 's3://jobs/input/flowers.jsonl',
      format: 'jsonl',
      rows: 8,
      predicted: 4,
      failed: 4,
      batchSize: 2,
      model: { name: 'iris', version: '1.1.0' },
      outputs: {
        summary: 'output/flowers/summary.json',
        predictions: 'output/flowers/predictions.jsonl',
        errors: 'output/flowers/errors.jsonl',
      },
    });
    expect(
      Date.parse(summary.finishedAt as string) - Date.parse(summary.startedAt as string),
    ).toBeGreaterThanOrEqual(0);
  });

  test('CSV with a header: columns by position, the id column, bad rows reported by line', async () => {
    const input = [
      'id,sepal_length,sepal_width,petal_length,petal_width',
      `r1,${GOOD[0]?.join(',')}`,
      'r2,5.0,abc,1.4,0.2',
      'r3,5.0,3.4,1.5',
      `r4,${GOOD[2]?.join(',')}`,
      '',
      `r5,${GOOD[3]?.join(',')}`,
    ].join('\r\n');
    // A space in the name: the notification form-encodes it, the job name replaces it.
    await put('input/daily flowers.csv', input);
    const [report] = await small.handler(s3Event('input/daily flowers.csv', input.length));
    expect(report?.job).toBe('daily-flowers');

    const direct = await irisDirect([GOOD[0], GOOD[2], GOOD[3]] as number[][]);
    expectPredictions(
      jsonLines(await text('output/daily-flowers/predictions.jsonl')),
      [
        { id: 'r1', line: 2 },
        { id: 'r4', line: 5 },
        { id: 'r5', line: 7 },
      ],
      direct,
    );
    expect(await text('output/daily-flowers/errors.jsonl')).toBe(CSV_ERRORS_JSONL);
    expect(JSON.parse(await text('output/daily-flowers/summary.json'))).toMatchObject({
      status: 'SUCCEEDED',
      format: 'csv',
      rows: 5,
      predicted: 3,
      failed: 2,
    });
  });

  test('a scheduled run is named after the file and its time; a given job name is used as is', async () => {
    const input = `${JSON.stringify({ input: GOOD[0] })}\n`;
    await put('input/nightly.ndjson', input);
    const [scheduled] = await small.handler({
      bucket: BUCKET,
      key: 'input/nightly.ndjson',
      scheduledAt: '2026-11-22T02:00:00Z',
    });
    expect(scheduled?.job).toBe('nightly-20261122T020000Z');
    // No id field: the id is the data row number.
    expect(jsonLines(await text('output/nightly-20261122T020000Z/predictions.jsonl'))).toEqual([
      expect.objectContaining({ id: 1, line: 1 }),
    ]);
    const [named] = await small.handler({ bucket: BUCKET, key: 'input/nightly.ndjson', job: 'rerun-1' });
    expect(named).toMatchObject({ job: 'rerun-1', status: 'SUCCEEDED', predicted: 1 });
  });

  test('an unknown extension gets a FAILED summary saying why, and no retry', async () => {
    await put('input/notes.txt', '1,2,3,4\n');
    const { result, metrics } = await emf(() => small.handler(s3Event('input/notes.txt', 8)));
    const [report] = result;
    expect(metrics).toEqual([expect.objectContaining({ model: 'iris', JobsFailed: 1 })]);
    const summary = JSON.parse(await text('output/notes/summary.json')) as Record<string, unknown>;
    expect(summary).toEqual(report);
    expect(summary).toMatchObject({
      job: 'notes',
      status: 'FAILED',
      rows: 0,
      error:
        'cannot tell the format of input/notes.txt: name it .csv, .jsonl, .ndjson, .json (CSV or JSON Lines)',
    });
  });

  test('a job name that could escape output/, or a key outside input/, is refused without a throw', async () => {
    await expect(
      small.handler({ bucket: BUCKET, key: 'input/flowers.jsonl', job: '../etc' }),
    ).resolves.toEqual([]);
    await expect(small.handler({ bucket: BUCKET, key: 'input/flowers.jsonl', job: 'a/b' })).resolves.toEqual(
      [],
    );
    await expect(small.handler(s3Event('output/flowers/summary.json', 10))).resolves.toEqual([]);
    await expect(small.handler(s3Event('input/team-a/', 0))).resolves.toEqual([]);
  });

  test('a missing object throws, so Lambda retries it and the dead-letter queue keeps it', async () => {
    await expect(small.handler({ bucket: BUCKET, key: 'input/missing.jsonl' })).rejects.toThrow();
  });
});

describe('a large job goes to the Distributed Map', () => {
  test('StartExecution with the job, and a RUNNING summary that points at it', async () => {
    const input = [...GOOD, ...GOOD].map((r, i) => JSON.stringify({ id: i, input: r })).join('\n');
    expect(input.length).toBeGreaterThan(200);
    await put('input/big.jsonl', input);
    const [report] = await large.handler(s3Event('input/big.jsonl', input.length));

    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
    const execution = listed.executions?.find((e) => e.executionArn === report?.executionArn);
    expect(execution?.name).toMatch(/^big-\d{8}T\d{9}Z$/);
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: execution?.executionArn }));
    expect(JSON.parse(described.input ?? '')).toEqual({
      bucket: BUCKET,
      key: 'input/big.jsonl',
      job: 'big',
      format: 'jsonl',
      resultPrefix: 'output/big/map',
    });
    expect(JSON.parse(await text('output/big/summary.json'))).toMatchObject({
      job: 'big',
      status: 'RUNNING',
      mode: 'distributed-map',
      executionArn: execution?.executionArn,
      outputs: { summary: 'output/big/summary.json', parts: 'output/big/parts/' },
    });
  });

  test('a large CSV without a header is refused: the Map reader would take its first row for column names', async () => {
    const input = [...GOOD, ...GOOD, ...GOOD, ...GOOD].map((r) => r.join(',')).join('\n');
    expect(input.length).toBeGreaterThan(200);
    await put('input/headless.csv', input);
    const [report] = await large.handler({ bucket: BUCKET, key: 'input/headless.csv' });
    expect(report).toMatchObject({ job: 'headless', status: 'FAILED', mode: 'distributed-map' });
    expect(report?.error).toMatch(/needs a header line/);
    expect(JSON.parse(await text('output/headless/summary.json'))).toEqual(report);
    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
    expect(listed.executions?.some((e) => e.name?.startsWith('headless-'))).toBe(false);
  });

  test('a large CSV with a header is started', async () => {
    const input = ['a,b,c,d', ...[...GOOD, ...GOOD, ...GOOD, ...GOOD].map((r) => r.join(','))].join('\n');
    await put('input/wide.csv', input);
    const [report] = await large.handler({ bucket: BUCKET, key: 'input/wide.csv' });
    expect(report).toMatchObject({ job: 'wide', status: 'RUNNING', format: 'csv' });
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: report?.executionArn }));
    expect(JSON.parse(described.input ?? '')).toMatchObject({ format: 'csv', key: 'input/wide.csv' });
  });

  test('an object under the threshold still runs in the function', async () => {
    await put('input/tiny.jsonl', `${JSON.stringify({ input: GOOD[1] })}\n`);
    const [report] = await large.handler({ bucket: BUCKET, key: 'input/tiny.jsonl' });
    expect(report).toMatchObject({ mode: 'lambda', status: 'SUCCEEDED', predicted: 1 });
  });
});

const BAD_JSON = '{"id": "c", "input": [1, 2, 3}';
/** V8's own words for the bad line, whichever Node runs the test. */
function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`${text} is valid JSON`);
}
const ERRORS_JSONL = [
  JSON.stringify({ id: 3, line: 3, error: `not valid JSON: ${jsonError(BAD_JSON)}` }),
  `{"id":"d","line":4,"error":"input 'input': expected 4 values, got 3 (each row is shaped [4])"}`,
  `{"id":"e","line":6,"error":"input 'input'[1]: FP32 values must be numbers, got \\"x\\""}`,
  `{"id":"f","line":7,"error":"input 'input': expected a list of 4 values, got \\"abc\\""}`,
  '',
].join('\n');
const CSV_ERRORS_JSONL = [
  `{"id":"r2","line":3,"error":"column 3 (sepal_width): \\"abc\\" is not a number"}`,
  `{"id":"r3","line":4,"error":"has 4 columns; the header has 5"}`,
  '',
].join('\n');
