/**
 * The S3 side of batch jobs: names and keys, lines streamed from a body, and the multipart writer and the
 * job runner against moto's S3 (with the iris model and the real job runner for the streamed job).
 */
import * as path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { runBatchJob } from '../../../lambda/core/batch-job';
import {
  checkJobName,
  decodeEventKey,
  executionName,
  formatOfKey,
  jobFromKey,
  jobKeys,
  jsonArrayElements,
  partKeys,
  runObjectJob,
  S3ObjectWriter,
  streamLines,
} from '../../../lambda/core/batch-s3';
import { BadRequestError } from '../../../lambda/core/errors';
import { resolveLimits } from '../../../lambda/core/limits';
import type { OnnxModel } from '../../../lambda/core/model';
import { openModel } from '../../../lambda/core/open';
import { motoS3Client, startMoto, type MotoServer } from '../../support/moto';

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const BUCKET = 'jobs';
const MIB = 1024 * 1024;
/** S3's (and moto's) smallest part but the last. */
const PART = 5 * MIB;

describe('names and keys', () => {
  test('the format comes from the extension, in any case', () => {
    expect(['a.csv', 'a.CSV', 'a.jsonl', 'a.ndjson', 'a.json', 'a.txt', 'a'].map(formatOfKey)).toEqual([
      'csv',
      'csv',
      'jsonl',
      'jsonl',
      'jsonl',
      undefined,
      undefined,
    ]);
  });

  test('a given job name may not leave output/<job>/', () => {
    for (const ok of ['daily', 'run-2026.11.22', 'a_b=c', 'x'.repeat(128)]) expect(checkJobName(ok)).toBe(ok);
    for (const bad of ['', '..', 'a..b', 'a/b', '/a', '.hidden', '-x', 'a b', 'x'.repeat(129), 42]) {
      expect(() => checkJobName(bad)).toThrow(/must be 1 to 128 letters/);
    }
  });

  test('a job named from its key: the file name without extension, made safe; a scheduled run adds its time', () => {
    expect(jobFromKey('input/flowers.jsonl')).toBe('flowers');
    expect(jobFromKey('input/team a/daily flowers.csv')).toBe('daily-flowers');
    expect(jobFromKey('input/.hidden.csv')).toBe('job-.hidden');
    expect(jobFromKey('input/a..b.csv')).toBe('a.b');
    expect(jobFromKey('input/nightly.csv', '2026-11-22T02:00:00Z')).toBe('nightly-20261122T020000Z');
    const long = jobFromKey(`input/${'y'.repeat(300)}.csv`, '2026-11-22T02:00:00Z');
    expect(long).toHaveLength(128);
    expect(long.endsWith('-20261122T020000Z')).toBe(true);
    expect(() => jobFromKey('input/a.csv', 'yesterday')).toThrow(/not a time/);
  });

  test('an execution name: the job and the time to the millisecond, valid characters, at most 80', () => {
    const at = new Date('2026-11-22T02:15:00.123Z');
    expect(executionName('daily', at)).toBe('daily-20261122T021500123Z');
    const long = executionName(`a.b=${'z'.repeat(100)}`, at);
    expect(long).toHaveLength(80);
    expect(long).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test('part keys sort in input order', () => {
    const keys = [0, 1000, 999, 1_000_000_000].map((i) => partKeys('big', i).predictions);
    expect(keys[0]).toBe('output/big/parts/predictions-000000000000.jsonl');
    expect([...keys].sort()).toEqual([keys[0], keys[2], keys[1], keys[3]]);
    expect(partKeys('big', 7).errors).toBe('output/big/parts/errors-000000000007.jsonl');
    expect(jobKeys('big')).toEqual({
      prefix: 'output/big/',
      predictions: 'output/big/predictions.jsonl',
      errors: 'output/big/errors.jsonl',
      summary: 'output/big/summary.json',
      parts: 'output/big/parts/',
      mapResults: 'output/big/map',
    });
  });

  test('keys from S3 notifications are form-decoded', () => {
    expect(decodeEventKey('input/daily+flowers%C3%A9.csv')).toBe('input/daily flowersé.csv');
  });
});

test('lines stream from a body split anywhere, CRLF or LF, a last line without a newline', async () => {
  const chunks = ['a,b\r', '\nc', ',d\n\ne', 'f'].map((c) => Buffer.from(c));
  const lines: string[] = [];
  for await (const line of streamLines(Readable.from(chunks))) lines.push(line);
  expect(lines).toEqual(['a,b', 'c,d', '', 'ef']);
});

describe('JSON array elements, streamed', () => {
  async function all(chunks: (string | Buffer)[]): Promise<unknown[]> {
    const out: unknown[] = [];
    for await (const el of jsonArrayElements(Readable.from(chunks), 'results.json')) out.push(el);
    return out;
  }

  const value = [
    { Input: '{"Items":[{"index":0,"value":"a,b]}"}]}', Output: 'say \\"hi\\"', Status: 'SUCCEEDED' },
    [1, [2, { x: 'é€' }]],
    'plain, string ] }',
    42,
    null,
    { deep: { er: [{}, []] } },
  ];

  test('split at every byte: the same elements, multi-byte characters and escapes intact', async () => {
    const bytes = Buffer.from(JSON.stringify(value, null, 1));
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(await all([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(value);
    }
    expect(await all([...JSON.stringify(value)])).toEqual(value);
  });

  test('an empty array; whitespace around; not an array; cut short', async () => {
    expect(await all([' \n[ ]\n'])).toEqual([]);
    await expect(all(['{"a": 1}'])).rejects.toThrow('results.json is not a JSON array');
    await expect(all(['[{"a": 1}, {"b"'])).rejects.toThrow('results.json ends before its JSON array does');
    await expect(all(['[{"a": }]'])).rejects.toThrow(/results.json: an element is not valid JSON/);
  });
});

describe('against S3', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let model: OnnxModel;

  beforeAll(async () => {
    moto = await startMoto();
    s3 = motoS3Client(moto.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    model = (await openModel({ location: IRIS })).model;
  });

  afterAll(async () => {
    s3?.destroy();
    await moto?.stop();
  });

  async function text(key: string): Promise<string> {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return (await res.Body?.transformToString('utf8')) ?? '';
  }

  async function openUploads(): Promise<number> {
    const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    return res.Uploads?.length ?? 0;
  }

  test('the writer sends parts as they fill and completes the upload; small text is one PutObject', async () => {
    const line = `${'x'.repeat(1023)}\n`;
    const writer = new S3ObjectWriter(s3, BUCKET, 'out/big.txt', { partBytes: PART });
    for (let i = 0; i < 11 * 1024; i++) await writer.write(line);
    await writer.close();
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'out/big.txt' }));
    expect(head.ContentLength).toBe(11 * MIB);
    // A multipart ETag ends with its part count: 5 + 5 + 1 MiB.
    expect(head.ETag).toMatch(/-3"$/);
    expect(writer.bytes).toBe(11 * MIB);

    const small = new S3ObjectWriter(s3, BUCKET, 'out/small.txt', { partBytes: PART });
    await small.write('one\n');
    await small.write('');
    await small.write('two\n');
    await small.close();
    expect(await text('out/small.txt')).toBe('one\ntwo\n');
    const empty = new S3ObjectWriter(s3, BUCKET, 'out/empty.txt');
    await empty.close();
    expect(await text('out/empty.txt')).toBe('');
  });

  test('abort leaves no object and no open upload', async () => {
    const writer = new S3ObjectWriter(s3, BUCKET, 'out/aborted.txt', { partBytes: PART });
    await writer.write('z'.repeat(PART + 1));
    expect(await openUploads()).toBe(1);
    await writer.abort();
    expect(await openUploads()).toBe(0);
    await expect(
      s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'out/aborted.txt' })),
    ).rejects.toThrow();
  });

  test('a job bigger than a part streams through: every row predicted, in order, in a multipart file', async () => {
    const rows = 60_000;
    const body = Array.from({ length: rows }, (_, i) =>
      JSON.stringify({ id: i, input: [5.1, 3.5, 1.4, (i % 25) / 10] }),
    );
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'input/many.jsonl', Body: body.join('\n') }));
    const limits = resolveLimits({});
    const started = performance.now();
    const report = await runObjectJob({
      s3,
      bucket: BUCKET,
      key: 'input/many.jsonl',
      job: 'many',
      partBytes: PART,
      run: (o) => runBatchJob({ ...o, model, limits }),
    });
    const seconds = (performance.now() - started) / 1000;
    // A figure for the report (largeJobBytes), not an assertion.
    console.info(
      `${rows} rows, ${(Buffer.byteLength(body.join('\n')) / MIB).toFixed(1)} MiB in ${seconds.toFixed(1)} s`,
    );
    expect(report).toMatchObject({ status: 'SUCCEEDED', rows, predicted: rows, failed: 0 });
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: BUCKET, Key: 'output/many/predictions.jsonl' }),
    );
    expect(head.ETag).toMatch(/-\d+"$/);
    const ids = (await text('output/many/predictions.jsonl'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { id: number }).id);
    expect(ids).toEqual(Array.from({ length: rows }, (_, i) => i));
    expect(await text('output/many/errors.jsonl')).toBe('');
    expect(await openUploads()).toBe(0);
  });

  test("the input's fault: a FAILED summary and no throw; any other fault: a FAILED summary, then the throw", async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'input/odd.csv', Body: 'a\n1\n' }));
    const refused = await runObjectJob({
      s3,
      bucket: BUCKET,
      key: 'input/odd.csv',
      job: 'odd',
      run: () => Promise.reject(new BadRequestError('the header maps to no input')),
    });
    expect(refused).toMatchObject({ status: 'FAILED', error: 'the header maps to no input', format: 'csv' });
    expect(JSON.parse(await text('output/odd/summary.json'))).toEqual(refused);

    await expect(
      runObjectJob({
        s3,
        bucket: BUCKET,
        key: 'input/odd.csv',
        job: 'odd-2',
        partBytes: PART,
        run: async (o) => {
          await o.writePredictions('p'.repeat(PART + 10));
          throw new Error('S3 went away');
        },
      }),
    ).rejects.toThrow('S3 went away');
    expect(JSON.parse(await text('output/odd-2/summary.json'))).toMatchObject({
      status: 'FAILED',
      error: 'S3 went away',
    });
    expect(await openUploads()).toBe(0);
  });
});
