/**
 * The Distributed Map's batch function against moto's S3, given batches exactly as Step Functions sends
 * them: the ItemBatcher's {Items, BatchInput}, each item as the ItemSelector made it ({index, value}), CSV
 * values as the CSV ItemReader gives them (strings keyed by the header row).
 */
import * as path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import * as ort from 'onnxruntime-node';
import { loadHandlerInMoto, motoS3Client, startMoto, type MotoServer } from '../../support/moto';

type Handler = typeof import('../../../lambda/handlers/batch-items');

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const BUCKET = 'jobs';

let moto: MotoServer;
let s3: S3Client;
let items: Handler;
const savedEnv = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  process.env.MODEL_URI = IRIS;
  items = loadHandlerInMoto<Handler>(moto.endpoint, 'batch-items');
  await items.ready;
});

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  await moto?.stop();
});

async function text(key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await res.Body?.transformToString('utf8')) ?? '';
}

async function keys(prefix: string): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key ?? '').sort();
}

const jsonLines = (t: string) =>
  t
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id: unknown; line: number; outputs: { label: unknown } });

async function irisLabels(rows: number[][]): Promise<number[]> {
  const session = await ort.InferenceSession.create(path.join(IRIS, 'model.onnx'));
  const out = await session.run({
    input: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 4]),
  });
  return Array.from(out.label?.data as BigInt64Array, Number);
}

const csvRow = (id: string, v: (string | number)[]) => ({
  id,
  sepal_length: String(v[0]),
  sepal_width: String(v[1]),
  petal_length: String(v[2]),
  petal_width: String(v[3]),
});

test('a CSV batch: predictions and errors parts named by the first index, lines counted past the header', async () => {
  const event = {
    Items: [
      { index: 0, value: csvRow('r1', [5.1, 3.5, 1.4, 0.2]) },
      { index: 1, value: csvRow('r2', [5.0, 'abc', 1.4, 0.2]) },
      { index: 2, value: csvRow('r3', [6.7, 3.0, 5.2, 2.3]) },
    ],
    BatchInput: { bucket: BUCKET, job: 'big', format: 'csv' },
  };
  const result = await items.handler(event);
  expect(result).toEqual({
    firstIndex: 0,
    items: 3,
    rows: 3,
    predicted: 2,
    failed: 1,
    predictions: 'output/big/parts/predictions-000000000000.jsonl',
    errors: 'output/big/parts/errors-000000000000.jsonl',
    model: { name: 'iris', version: '1.1.0' },
  });
  // The Map keeps every batch's result: it must stay small.
  expect(JSON.stringify(result).length).toBeLessThan(1024);
  const predictions = jsonLines(await text(result.predictions));
  const labels = await irisLabels([
    [5.1, 3.5, 1.4, 0.2],
    [6.7, 3.0, 5.2, 2.3],
  ]);
  expect(predictions.map((p) => [p.id, p.line, p.outputs.label])).toEqual([
    ['r1', 2, labels[0]],
    ['r3', 4, labels[1]],
  ]);
  expect(await text('output/big/parts/errors-000000000000.jsonl')).toBe(
    `${JSON.stringify({ id: 'r2', line: 3, error: 'column 3 (sepal_width): "abc" is not a number' })}\n`,
  );
});

test('a JSONL batch later in the file: its part sorts after the first, and no errors part when none failed', async () => {
  const event = {
    Items: [
      { index: 1000, value: { id: 'x', input: [6.4, 3.2, 4.5, 1.5] } },
      { index: 1001, value: { input: [4.7, 3.2, 1.3, 0.2] } },
    ],
    BatchInput: { bucket: BUCKET, job: 'big-jsonl', format: 'jsonl' },
  };
  const result = await items.handler(event);
  expect(result).toMatchObject({ firstIndex: 1000, rows: 2, predicted: 2, failed: 0, errors: undefined });
  expect(await keys('output/big-jsonl/')).toEqual(['output/big-jsonl/parts/predictions-000000001000.jsonl']);
  const predictions = jsonLines(await text(result.predictions));
  // Line = index + 1; without an id field the id is the data row number.
  expect(predictions.map((p) => [p.id, p.line, p.outputs.label])).toEqual([
    ['x', 1001, 1],
    [1002, 1002, 0],
  ]);
});

test('an event that is not an ItemBatcher batch fails the batch (a wiring fault, not a row)', async () => {
  await expect(
    items.handler({ Items: [], BatchInput: { bucket: BUCKET, job: 'j', format: 'csv' } }),
  ).rejects.toThrow(/ItemBatcher batch/);
  await expect(
    items.handler({
      Items: [{ index: 0, value: {} }],
      BatchInput: { bucket: BUCKET, job: '../j', format: 'csv' },
    }),
  ).rejects.toThrow(/job "..\/j"/);
  await expect(
    items.handler({ Items: [{ value: 1 }], BatchInput: { bucket: BUCKET, job: 'j', format: 'csv' } }),
  ).rejects.toThrow(/ItemSelector/);
});
