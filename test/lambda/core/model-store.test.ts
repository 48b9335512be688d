/** Finding a model's bytes and manifest on disk and in S3 (moto), and refusing any that fail their sha256. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

import { ModelIntegrityError } from '../../../lambda/core/errors';
import { loadModelFiles, parseS3Uri, sha256Hex } from '../../../lambda/core/model-store';
import {
  addMulModel,
  makeTempDir,
  manifestFor,
  mlpModel,
  removeDir,
  writeModel,
  type WrittenModel,
} from '../../fixtures/models';
import { motoS3Client, startMoto, type MotoServer } from '../../support/moto';

const addMul = addMulModel();
const mlp = mlpModel();
const ADDMUL_SHA = sha256Hex(addMul.bytes);
const MLP_SHA = sha256Hex(mlp.bytes);
const WRONG_SHA = 'ab'.repeat(32);

const dirs: string[] = [];
function written(w: WrittenModel): WrittenModel {
  dirs.push(w.root);
  return w;
}
function tempDir(): string {
  const d = makeTempDir();
  dirs.push(d);
  return d;
}

afterAll(() => {
  for (const d of dirs) removeDir(d);
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error(`expected a rejection with an Error, got ${String(err)}`);
  return err;
}

describe('parseS3Uri', () => {
  it.each([
    ['s3://bucket/a/b/model.onnx', { bucket: 'bucket', key: 'a/b/model.onnx' }],
    ['s3://bucket/prefix/', { bucket: 'bucket', key: 'prefix/' }],
    ['s3://bucket/', { bucket: 'bucket', key: '' }],
    ['s3://bucket', { bucket: 'bucket', key: '' }],
  ])('%s', (uri, want) => {
    expect(parseS3Uri(uri)).toEqual(want);
  });

  it.each(['s3:///key', 'http://bucket/key', 'bucket/key'])('rejects %s', (uri) => {
    expect(() => parseS3Uri(uri)).toThrow(`not an s3:// URI: ${uri}`);
  });
});

describe('local models', () => {
  it('a .onnx file: its bytes and sha256, no manifest, the file name as the stem', async () => {
    const w = written(writeModel(addMul, { fileName: 'add-mul.onnx' }));
    const files = await loadModelFiles(w.modelPath);
    expect(Buffer.from(files.bytes)).toEqual(Buffer.from(addMul.bytes));
    expect(files).toMatchObject({
      sha256: ADDMUL_SHA,
      manifest: undefined,
      source: w.modelPath,
      stem: 'add-mul',
    });
  });

  it('a folder with model.onnx and model.json', async () => {
    const w = written(
      writeModel(addMul, { manifest: { name: 'addmul', version: '3.1.0' }, folderName: 'addmul-v3' }),
    );
    const files = await loadModelFiles(w.dir);
    expect(Buffer.from(files.bytes)).toEqual(Buffer.from(addMul.bytes));
    expect(files.manifest).toEqual(manifestFor(addMul, { name: 'addmul', version: '3.1.0' }));
    expect(files).toMatchObject({
      sha256: ADDMUL_SHA,
      source: path.join(w.dir, 'model.onnx'),
      stem: 'addmul-v3',
    });
  });

  it('a folder with no manifest loads with none, named after the folder', async () => {
    const w = written(writeModel(mlp, { folderName: 'my-mlp' }));
    const files = await loadModelFiles(w.dir);
    expect(files).toMatchObject({ sha256: MLP_SHA, manifest: undefined, stem: 'my-mlp' });
  });

  it('a folder without model.onnx is refused', async () => {
    const w = written(writeModel(addMul, { fileName: 'other.onnx', manifest: true }));
    const err = await rejection(loadModelFiles(w.dir));
    expect(err.message).toBe(`model folder ${w.dir} has no model.onnx`);
  });

  it('a path that does not exist is refused', async () => {
    const missing = path.join(tempDir(), 'nope.onnx');
    expect((await rejection(loadModelFiles(missing))).message).toBe(`model path ${missing} does not exist`);
  });

  it.each([
    ['invalid JSON', '{"name": "x",', /model\.json is not valid JSON: /],
    ['a JSON array', '[]', /model\.json must be a JSON object/],
    [
      'no sha256',
      JSON.stringify({ name: 'x', version: '1' }),
      /model\.json needs a non-empty string "sha256"/,
    ],
    [
      'an empty name',
      JSON.stringify({ name: '', version: '1', sha256: ADDMUL_SHA }),
      /needs a non-empty string "name"/,
    ],
    [
      'a numeric version',
      JSON.stringify({ name: 'x', version: 1, sha256: ADDMUL_SHA }),
      /needs a non-empty string "version"/,
    ],
  ])('a manifest with %s is refused, naming the file', async (_title, text, message) => {
    const w = written(writeModel(addMul, { manifestText: text }));
    const err = await rejection(loadModelFiles(w.dir));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(path.join(w.dir, 'model.json'));
  });

  it("a model.onnx that does not match the manifest's sha256 is refused with both hashes", async () => {
    const w = written(writeModel(addMul, { manifest: { sha256: WRONG_SHA } }));
    const err = await rejection(loadModelFiles(w.dir));
    expect(err).toBeInstanceOf(ModelIntegrityError);
    expect(err.message).toContain(`model.onnx has sha256 ${ADDMUL_SHA}`);
    expect(err.message).toContain(`the manifest's sha256 is ${WRONG_SHA}`);
    expect(err.message).toContain('refusing to serve it');
  });

  it('expectedSha256 is checked too, in any letter case', async () => {
    const w = written(writeModel(addMul, { manifest: true }));
    await expect(loadModelFiles(w.dir, { expectedSha256: ADDMUL_SHA.toUpperCase() })).resolves.toMatchObject({
      sha256: ADDMUL_SHA,
    });
    await expect(loadModelFiles(w.modelPath, { expectedSha256: ADDMUL_SHA })).resolves.toMatchObject({
      sha256: ADDMUL_SHA,
    });
    for (const location of [w.dir, w.modelPath]) {
      const err = await rejection(loadModelFiles(location, { expectedSha256: MLP_SHA }));
      expect(err).toBeInstanceOf(ModelIntegrityError);
      expect(err.message).toContain(
        `model.onnx has sha256 ${ADDMUL_SHA}, but the expected sha256 is ${MLP_SHA}`,
      );
      expect(err.message).toContain('refusing');
    }
  });
});

describe('models in S3 (moto)', () => {
  const BUCKET = 'models';
  let moto: MotoServer;
  let s3: S3Client;

  beforeAll(async () => {
    moto = await startMoto();
    s3 = motoS3Client(moto.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  afterAll(async () => {
    s3?.destroy();
    await moto?.stop();
  });

  const put = (key: string, body: Uint8Array | string) =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const del = (key: string) => s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
  const manifestText = (overrides = {}) =>
    JSON.stringify(manifestFor(addMul, { name: 'addmul', version: '1.0.0', ...overrides }));

  /** What is left in a cache folder, as relative paths. */
  function cacheFiles(cacheDir: string): string[] {
    return fs.existsSync(cacheDir)
      ? fs
          .readdirSync(cacheDir, { recursive: true, encoding: 'utf8' })
          .filter((p) => fs.statSync(path.join(cacheDir, p)).isFile())
          .sort()
      : [];
  }

  it("refuses keys with '..' segments, which would climb out of the cache folder", async () => {
    const cacheDir = tempDir();
    await expect(loadModelFiles('s3://models/a/../../etc/model.onnx', { s3, cacheDir })).rejects.toThrow(
      /s3:\/\/models\/a\/..\/..\/etc\/model.onnx: S3 keys with '.' or '..' segments are not supported/,
    );
    expect(cacheFiles(cacheDir)).toEqual([]);
  });

  it('loads model.onnx and model.json from a prefix, with or without the trailing slash', async () => {
    await put('addmul/1.0.0/model.onnx', addMul.bytes);
    await put('addmul/1.0.0/model.json', manifestText());
    for (const uri of ['s3://models/addmul/1.0.0/', 's3://models/addmul/1.0.0']) {
      const cacheDir = tempDir();
      const files = await loadModelFiles(uri, { s3, cacheDir });
      expect(Buffer.from(files.bytes)).toEqual(Buffer.from(addMul.bytes));
      expect(files.manifest).toEqual(JSON.parse(manifestText()));
      expect(files).toMatchObject({
        sha256: ADDMUL_SHA,
        source: 's3://models/addmul/1.0.0/model.onnx',
        stem: '1.0.0',
      });
      expect(cacheFiles(cacheDir)).toEqual([path.join('models', 'addmul', '1.0.0', 'model.onnx')]);
    }
  });

  it('loads a key ending in .onnx as the model itself, with no manifest', async () => {
    await put('loose/mlp.onnx', mlp.bytes);
    const files = await loadModelFiles('s3://models/loose/mlp.onnx', { s3, cacheDir: tempDir() });
    expect(Buffer.from(files.bytes)).toEqual(Buffer.from(mlp.bytes));
    expect(files).toMatchObject({
      sha256: MLP_SHA,
      manifest: undefined,
      source: 's3://models/loose/mlp.onnx',
      stem: 'mlp',
    });
  });

  it('a prefix with no model.json loads with no manifest', async () => {
    await put('bare/model.onnx', mlp.bytes);
    const files = await loadModelFiles('s3://models/bare/', { s3, cacheDir: tempDir() });
    expect(files).toMatchObject({ sha256: MLP_SHA, manifest: undefined, stem: 'bare' });
  });

  it('a second load comes from the cache when the hash is known, even with the object gone', async () => {
    await put('cached/2/model.onnx', addMul.bytes);
    await put('cached/2/model.json', manifestText({ version: '2' }));
    const cacheDir = tempDir();
    await loadModelFiles('s3://models/cached/2/', { s3, cacheDir });
    await del('cached/2/model.onnx');
    await expect(
      s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'cached/2/model.onnx' })),
    ).rejects.toMatchObject({ name: 'NoSuchKey' });

    const again = await loadModelFiles('s3://models/cached/2/', { s3, cacheDir });
    expect(Buffer.from(again.bytes)).toEqual(Buffer.from(addMul.bytes));
    expect(again).toMatchObject({ sha256: ADDMUL_SHA, manifest: { version: '2' } });
    // Another cache folder has nothing, and the object is gone: that load must fail.
    await expect(loadModelFiles('s3://models/cached/2/', { s3, cacheDir: tempDir() })).rejects.toMatchObject({
      name: 'NoSuchKey',
    });
  });

  it('a single .onnx key is served from the cache only when expectedSha256 is given', async () => {
    await put('single/mlp.onnx', mlp.bytes);
    const cacheDir = tempDir();
    await loadModelFiles('s3://models/single/mlp.onnx', { s3, cacheDir, expectedSha256: MLP_SHA });
    await del('single/mlp.onnx');
    const again = await loadModelFiles('s3://models/single/mlp.onnx', {
      s3,
      cacheDir,
      expectedSha256: MLP_SHA,
    });
    expect(again.sha256).toBe(MLP_SHA);
    // With no hash to check the cached file against, it is not trusted: the download is tried, and fails.
    await expect(loadModelFiles('s3://models/single/mlp.onnx', { s3, cacheDir })).rejects.toMatchObject({
      name: 'NoSuchKey',
    });
  });

  it('a cached file that no longer matches is downloaded again', async () => {
    await put('stale/model.onnx', addMul.bytes);
    await put('stale/model.json', manifestText());
    const cacheDir = tempDir();
    const cached = path.join(cacheDir, 'models', 'stale', 'model.onnx');
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    fs.writeFileSync(cached, mlp.bytes);
    const files = await loadModelFiles('s3://models/stale/', { s3, cacheDir });
    expect(files.sha256).toBe(ADDMUL_SHA);
    expect(sha256Hex(fs.readFileSync(cached))).toBe(ADDMUL_SHA);
  });

  it('a tampered object is refused and not left in the cache', async () => {
    await put('tampered/model.onnx', mlp.bytes);
    await put('tampered/model.json', manifestText());
    const cacheDir = tempDir();
    const err = await rejection(loadModelFiles('s3://models/tampered/', { s3, cacheDir }));
    expect(err).toBeInstanceOf(ModelIntegrityError);
    expect(err.message).toContain('s3://models/tampered/model.onnx');
    expect(err.message).toContain(
      `model.onnx has sha256 ${MLP_SHA}, but the manifest's sha256 is ${ADDMUL_SHA}`,
    );
    expect(err.message).toContain('refusing');
    expect(cacheFiles(cacheDir)).toEqual([]);

    await put('tampered/mlp.onnx', mlp.bytes);
    const fileErr = await rejection(
      loadModelFiles('s3://models/tampered/mlp.onnx', { s3, cacheDir, expectedSha256: ADDMUL_SHA }),
    );
    expect(fileErr).toBeInstanceOf(ModelIntegrityError);
    expect(cacheFiles(cacheDir)).toEqual([]);
  });

  it('a bad model.json in S3 is refused, naming its URI', async () => {
    await put('badjson/model.onnx', addMul.bytes);
    await put('badjson/model.json', '{not json');
    const err = await rejection(loadModelFiles('s3://models/badjson/', { s3, cacheDir: tempDir() }));
    expect(err.message).toMatch(/^s3:\/\/models\/badjson\/model\.json is not valid JSON: /);
  });

  it('a missing object is an error, and leaves nothing in the cache', async () => {
    const cacheDir = tempDir();
    const err = await rejection(loadModelFiles('s3://models/absent/', { s3, cacheDir }));
    expect(err.name).toBe('NoSuchKey');
    expect(cacheFiles(cacheDir)).toEqual([]);
  });
});
