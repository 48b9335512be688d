/**
 * The batch handlers as Lambda runs them: each bundled by the library's bundler, then loaded in a fresh node
 * process (no jest, no repository node_modules within reach) against moto. The object and batch bundles carry
 * onnxruntime and the model; the summary bundle must work without either.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  bundleHandler,
  clearBundleCache,
  LAMBDA_UNZIPPED_LIMIT_BYTES,
  runtimeEntry,
} from '../../../lib/bundling';
import type { ItemsResult, JobReport } from '../../../lambda/core/batch-s3';
import { runBundle, type BundleRun } from '../../support/bundle-run';
import { motoAwsEnv, motoClientConfig, motoS3Client, startMoto, type MotoServer } from '../../support/moto';

const ROOT = path.join(__dirname, '..', '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');
const BUCKET = 'jobs';
const ARCH = process.arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;

let moto: MotoServer;
let s3: S3Client;
let sfn: SFNClient;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-batch-bundles-'));

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  sfn = new SFNClient(motoClientConfig(moto.endpoint));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  s3?.destroy();
  sfn?.destroy();
  await moto?.stop();
  fs.rmSync(work, { recursive: true, force: true });
  clearBundleCache();
});

function bundle(handler: string, withModel: boolean): string {
  const dir = path.join(work, handler);
  bundleHandler(
    {
      entry: runtimeEntry(handler),
      architecture: ARCH,
      includeOnnxRuntime: withModel,
      awaitAtInit: withModel ? 'ready' : undefined,
      modelDir: withModel ? IRIS : undefined,
      maxBytes: LAMBDA_UNZIPPED_LIMIT_BYTES,
    },
    dir,
  );
  return dir;
}

/** Runs a bundle's handler on `events` in a fresh node process with only `env`, moto's endpoint and PATH. */
function run<T>(assetDir: string, env: Record<string, string>, events: unknown[]): Promise<BundleRun<T>> {
  return runBundle<T>(
    assetDir,
    { ...motoAwsEnv(moto.endpoint), POWERTOOLS_LOG_LEVEL: 'ERROR', ...env },
    events,
  );
}

async function text(key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await res.Body?.transformToString('utf8')) ?? '';
}

test('the object bundle runs a small job with its bundled model, and starts a large one with the bundled SFN client', async () => {
  const dir = bundle('batch-object', true);
  const machine = await sfn.send(
    new CreateStateMachineCommand({
      name: 'bundle-jobs',
      definition: JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Succeed' } } }),
      roleArn: 'arn:aws:iam::123456789012:role/bundle-jobs',
    }),
  );
  const rows = Array.from({ length: 40 }, (_, i) =>
    JSON.stringify({ id: `r${i}`, input: [5.1, 3.5, 1.4, 0.2] }),
  );
  await s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: 'input/small.jsonl', Body: rows.slice(0, 3).join('\n') }),
  );
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'input/large.jsonl', Body: rows.join('\n') }));
  const { results } = await run<JobReport[]>(
    dir,
    {
      MODEL_URI: path.join(dir, 'model'),
      LARGE_JOB_BYTES: '1000',
      STATE_MACHINE_ARN: machine.stateMachineArn ?? '',
    },
    [
      { bucket: BUCKET, key: 'input/small.jsonl' },
      { bucket: BUCKET, key: 'input/large.jsonl' },
    ],
  );
  expect(results[0]?.[0]).toMatchObject({
    job: 'small',
    status: 'SUCCEEDED',
    rows: 3,
    predicted: 3,
    mode: 'lambda',
  });
  expect((await text('output/small/predictions.jsonl')).split('\n').filter((l) => l)).toHaveLength(3);
  const large = results[1]?.[0];
  expect(large).toMatchObject({ job: 'large', status: 'RUNNING', mode: 'distributed-map' });
  const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: large?.executionArn }));
  expect(JSON.parse(execution.input ?? '')).toMatchObject({ key: 'input/large.jsonl', job: 'large' });
});

test('the batch bundle predicts an ItemBatcher batch', async () => {
  const dir = bundle('batch-items', true);
  const { results } = await run<ItemsResult>(dir, { MODEL_URI: path.join(dir, 'model') }, [
    {
      Items: [{ index: 0, value: { id: 'a', input: [6.4, 3.2, 4.5, 1.5] } }],
      BatchInput: { bucket: BUCKET, job: 'bundled', format: 'jsonl' },
    },
  ]);
  expect(results[0]).toMatchObject({ firstIndex: 0, predicted: 1, failed: 0 });
  expect(JSON.parse(await text('output/bundled/parts/predictions-000000000000.jsonl'))).toMatchObject({
    id: 'a',
    line: 1,
    outputs: { label: 1 },
  });
});

test('the summary bundle needs no onnxruntime: none in the asset, none loaded', async () => {
  const dir = bundle('batch-summary', false);
  expect(fs.existsSync(path.join(dir, 'node_modules'))).toBe(false);
  expect(fs.readFileSync(path.join(dir, 'index.mjs'), 'utf8')).not.toContain('onnxruntime');
  const { results, nativeLibs } = await run<JobReport>(dir, { MODEL_NAME: 'iris' }, [
    {
      bucket: BUCKET,
      key: 'input/none.jsonl',
      job: 'none',
      format: 'jsonl',
      startedAt: '2026-11-22T02:00:00.000Z',
      error: { Error: 'States.ItemReaderFailed', Cause: 'no such key' },
    },
  ]);
  expect(nativeLibs).toEqual([]);
  expect(results[0]).toMatchObject({
    job: 'none',
    status: 'FAILED',
    error: 'States.ItemReaderFailed: no such key',
  });
  expect(JSON.parse(await text('output/none/summary.json'))).toEqual(results[0]);
});
