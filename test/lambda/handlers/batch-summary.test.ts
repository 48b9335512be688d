/**
 * The summary step of a Distributed Map job against moto's S3. The Map Run's ResultWriter files are laid out
 * as Step Functions writes them (manifest.json listing SUCCEEDED, FAILED and PENDING files, each a JSON array
 * of child executions with Input and Output as JSON text), and the succeeded batches' outputs are what the
 * real batch function returned for those items.
 */
import * as path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ItemsEvent, JobReport } from '../../../lambda/core/batch-s3';
import { loadHandlerInMoto, motoS3Client, startMoto, type MotoServer } from '../../support/moto';

type Summary = typeof import('../../../lambda/handlers/batch-summary');
type Items = typeof import('../../../lambda/handlers/batch-items');

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const BUCKET = 'jobs';
const MAP_RUN = 'arn:aws:states:us-east-1:123456789012:mapRun:batch-jobs/PredictJsonl:5a1b2c3d';
const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:batch-jobs/PredictJsonl';

let moto: MotoServer;
let s3: S3Client;
let summary: Summary;
let items: Items;
const savedEnv = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  Object.assign(process.env, { MODEL_URI: IRIS, MODEL_NAME: 'iris' });
  summary = loadHandlerInMoto<Summary>(moto.endpoint, 'batch-summary');
  items = loadHandlerInMoto<Items>(moto.endpoint, 'batch-items');
  await items.ready;
});

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  await moto?.stop();
});

async function putJson(key: string, value: unknown): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: JSON.stringify(value) }));
}

async function readJson(key: string): Promise<unknown> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return JSON.parse((await res.Body?.transformToString('utf8')) ?? '') as unknown;
}

function batch(job: string, first: number, rows: unknown[]): ItemsEvent {
  return {
    Items: rows.map((value, i) => ({ index: first + i, value })),
    BatchInput: { bucket: BUCKET, job, format: 'jsonl' },
  };
}

/** One child execution as a ResultWriter result file lists it. */
function childExecution(
  n: number,
  input: ItemsEvent,
  outcome: { output: unknown } | { error: string; cause: string },
) {
  const base = {
    ExecutionArn: `arn:aws:states:us-east-1:123456789012:execution:batch-jobs/PredictJsonl:child-${n}`,
    Input: JSON.stringify(input),
    InputDetails: { Included: true },
    Name: `child-${n}`,
    RedriveCount: 0,
    RedriveStatus: 'NOT_REDRIVABLE',
    StartDate: '2026-11-22T02:00:01.000Z',
    StateMachineArn: STATE_MACHINE,
    StopDate: '2026-11-22T02:00:02.000Z',
  };
  return 'output' in outcome
    ? {
        ...base,
        Output: JSON.stringify(outcome.output),
        OutputDetails: { Included: true },
        Status: 'SUCCEEDED',
      }
    : { ...base, Error: outcome.error, Cause: outcome.cause, Status: 'FAILED' };
}

const good = (n: number) => Array.from({ length: n }, () => ({ input: [5.1, 3.5, 1.4, 0.2] }));

/** A Map Run of `job`: two batches that ran (one with a bad row), one that failed and one that never ran. */
async function writeMapRun(job: string, runId: string): Promise<string> {
  const prefix = `output/${job}/map/${runId}`;
  const b0 = batch(job, 0, [...good(2), { input: [1, 2] }]);
  const b1 = batch(job, 3, good(3));
  const b2 = batch(job, 6, good(3));
  const b3 = batch(job, 9, good(2));
  const ran = [await items.handler(b0), await items.handler(b1)];
  await putJson(`${prefix}/SUCCEEDED_0.json`, [
    childExecution(0, b0, { output: ran[0] }),
    childExecution(1, b1, { output: ran[1] }),
  ]);
  await putJson(`${prefix}/FAILED_0.json`, [
    childExecution(2, b2, { error: 'Lambda.Unknown', cause: 'The function timed out' }),
  ]);
  await putJson(`${prefix}/PENDING_0.json`, [
    {
      ExecutionArn: 'arn:aws:states:us-east-1:123456789012:execution:batch-jobs/PredictJsonl:child-3',
      Input: JSON.stringify(b3),
      InputDetails: { Included: true },
      Name: 'child-3',
      Status: 'PENDING',
    },
  ]);
  const manifest = `${prefix}/manifest.json`;
  await putJson(manifest, {
    DestinationBucket: BUCKET,
    MapRunArn: MAP_RUN,
    ResultFiles: {
      FAILED: [{ Key: `${prefix}/FAILED_0.json`, Size: 1 }],
      PENDING: [{ Key: `${prefix}/PENDING_0.json`, Size: 1 }],
      SUCCEEDED: [{ Key: `${prefix}/SUCCEEDED_0.json`, Size: 1 }],
    },
  });
  return manifest;
}

const STARTED = '2026-11-22T02:00:00.000Z';

/** The EMF records printed while `run` runs (Powertools writes them to stdout for CloudWatch Logs). */
async function emf<T>(run: () => Promise<T>): Promise<{ result: T; metrics: unknown[] }> {
  const printed: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(chunk.toString());
    return true;
  });
  try {
    const result = await run();
    const lines = printed.flatMap((p) => p.split('\n')).filter((l) => l.includes('"_aws"'));
    return { result, metrics: lines.map((l) => JSON.parse(l) as unknown) };
  } finally {
    spy.mockRestore();
  }
}

test('the Map finished: batch counts added up, failed and never-run batches counted with their rows', async () => {
  const manifestKey = await writeMapRun('big', '0f1e2d3c');
  const report: JobReport = await summary.handler({
    bucket: BUCKET,
    key: 'input/big.jsonl',
    job: 'big',
    format: 'jsonl',
    startedAt: STARTED,
    executionArn: 'arn:aws:states:us-east-1:123456789012:execution:batch-jobs:big-1',
    manifestKey,
  });
  expect(report).toMatchObject({
    job: 'big',
    status: 'SUCCEEDED',
    mode: 'distributed-map',
    input: 's3://jobs/input/big.jsonl',
    format: 'jsonl',
    rows: 11,
    predicted: 5,
    failed: 1,
    failedBatches: 2,
    unprocessedRows: 5,
    model: { name: 'iris', version: '1.1.0' },
    startedAt: STARTED,
    executionArn: 'arn:aws:states:us-east-1:123456789012:execution:batch-jobs:big-1',
    outputs: { summary: 'output/big/summary.json', parts: 'output/big/parts/', mapResults: manifestKey },
    batchErrors: [
      { firstIndex: 6, error: 'Lambda.Unknown: The function timed out' },
      { firstIndex: 9, error: 'never ran: the Map Run stopped first' },
    ],
  });
  expect(report.error).toBeUndefined();
  expect(report.durationMs).toBe(Date.parse(report.finishedAt as string) - Date.parse(STARTED));
  expect(await readJson('output/big/summary.json')).toEqual(report);
});

test('the Catch path: no manifest key given, the newest manifest is found; the job FAILED with the Map error', async () => {
  await writeMapRun('tolerance', 'aaaa');
  const { result: report, metrics } = await emf(() =>
    summary.handler({
      bucket: BUCKET,
      key: 'input/tolerance.jsonl',
      job: 'tolerance',
      format: 'jsonl',
      startedAt: STARTED,
      error: {
        Error: 'States.ExceedToleratedFailureThreshold',
        Cause: 'The specified tolerated failure threshold was exceeded',
      },
    }),
  );
  // The JobsFailed alarm's metric, with the model dimension the object function uses too.
  expect(metrics).toEqual([
    expect.objectContaining({
      service: 'model-deploy-kit',
      model: 'iris',
      JobsFailed: 1,
      RowsPredicted: 5,
      RowsFailed: 6,
    }),
  ]);
  expect(report).toMatchObject({
    status: 'FAILED',
    error: 'States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold was exceeded',
    rows: 11,
    predicted: 5,
    failedBatches: 2,
    outputs: { mapResults: 'output/tolerance/map/aaaa/manifest.json' },
  });
  expect(await readJson('output/tolerance/summary.json')).toEqual(report);
});

test('the Map wrote nothing (the reader failed): FAILED, with the reason, and nothing counted', async () => {
  const report = await summary.handler({
    bucket: BUCKET,
    key: 'input/gone.csv',
    job: 'gone',
    format: 'csv',
    startedAt: STARTED,
    error: { Error: 'States.ItemReaderFailed', Cause: 'The specified key does not exist.' },
  });
  expect(report).toMatchObject({
    status: 'FAILED',
    rows: 0,
    predicted: 0,
    failedBatches: 0,
    error: 'States.ItemReaderFailed: The specified key does not exist.',
  });
  expect(report.outputs.mapResults).toBeUndefined();
});
