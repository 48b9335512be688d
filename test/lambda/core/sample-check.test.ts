/**
 * The sample check on real models through the real runtime (InferenceService and onnxruntime): iris passes
 * its own sample; a model with other weights, a missing output, a wrong shape, an error status or a manifest
 * without a sample fail, each with a difference a person can act on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  compareInferResponse,
  DEFAULT_MAX_DIFFERENCES,
  describeResult,
  readManifest,
  runSampleCheck,
  type Invoke,
} from '../../../lambda/core/sample-check';
import { InferenceService } from '../../../lambda/core/service';
import type { InferResponse, ModelManifest } from '../../../lambda/core/types';
import { motoS3Client, startMoto, type MotoServer } from '../../support/moto';
import { IRIS_DIR, irisManifest, writeIrisVariant } from '../../support/iris-variants';

const roots: string[] = [];
const services: InferenceService[] = [];

afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

/** A real service with the model folder loaded, and an Invoke that posts to its infer route. */
async function serve(dir: string): Promise<Invoke> {
  const service = new InferenceService({ session: { intraOpNumThreads: 1 } });
  services.push(service);
  const model = await service.load({ location: dir });
  if (!model) throw new Error(`${dir} did not load: ${service.notReadyReason()}`);
  return async (request) => {
    const res = await service.handle({
      method: 'POST',
      path: `/v2/models/${model.name}/infer`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    return { status: res.status, body: res.body.toString() };
  };
}

function variant(...args: Parameters<typeof writeIrisVariant>): string {
  const { root, dir } = writeIrisVariant(...args);
  roots.push(root);
  return dir;
}

const manifest = irisManifest();
const sample = manifest.sample as NonNullable<ModelManifest['sample']>;

describe('runSampleCheck on real models', () => {
  test('iris passes its own sample', async () => {
    const result = await runSampleCheck(manifest, await serve(IRIS_DIR));
    expect(result).toEqual({ passed: true, model: 'iris', status: 200, differences: [] });
    expect(describeResult(result)).toBe('sample check passed for iris');
  });

  test('a model with other weights fails, naming each value that differs', async () => {
    const result = await runSampleCheck(manifest, await serve(variant()));
    expect(result.passed).toBe(false);
    expect(result.status).toBe(200);
    // The variant's logits are petal length + width for class 2 and 0 for the others: softmax of [0, 0, 6]
    // and [0, 0, 1.5] for the two flowers, so every value differs and both labels become 2.
    expect(result.differences).toEqual([
      `output 'probabilities'[0]: expected 0.001111185, got 0.002466524`,
      `output 'probabilities'[1]: expected 0.9706579, got 0.002466524`,
      `output 'probabilities'[2]: expected 0.02823098, got 0.9950669`,
      `output 'probabilities'[3]: expected 0.9976744, got 0.1542808`,
      `output 'probabilities'[4]: expected 0.002325565, got 0.1542808`,
      `output 'probabilities'[5]: expected 1.133655e-12, got 0.6914384`,
      `output 'label'[0]: expected 1, got 2`,
      `output 'label'[1]: expected 0, got 2`,
    ]);
    expect(describeResult(result)).toMatch(/^sample check failed for iris:\n {2}output 'probabilities'\[0\]/);
  });

  test('a model that lacks an output fails with that output named', async () => {
    // The sample asks for no outputs, so all come back; ask for probabilities only to lose label.
    const invoke = await serve(IRIS_DIR);
    const onlyProbabilities: Invoke = (request) =>
      invoke({ ...request, outputs: [{ name: 'probabilities' }] });
    const result = await runSampleCheck(manifest, onlyProbabilities);
    expect(result.differences).toEqual([`output 'label' is missing from the response`]);
  });

  test('a wrong shape fails with both shapes', async () => {
    // The same flowers, one row only: the model answers [1, 3] where the sample expects [2, 3].
    const invoke = await serve(IRIS_DIR);
    const oneRow: Invoke = (request) =>
      invoke({
        ...request,
        inputs: request.inputs.map((i) => ({ ...i, shape: [1, 4], data: (i.data as number[]).slice(0, 4) })),
      });
    const result = await runSampleCheck(manifest, oneRow);
    expect(result.passed).toBe(false);
    expect(result.differences).toEqual([
      `output 'probabilities': shape expected [2, 3], got [1,3]`,
      `output 'label': shape expected [2], got [1]`,
    ]);
  });

  test("a 4xx fails with the server's error", async () => {
    // A manifest whose sample sends a wrong datatype: the runtime answers 400 before it runs anything.
    const bad = {
      ...manifest,
      sample: { ...sample, request: { inputs: [{ ...sample.request.inputs[0], datatype: 'INT64' }] } },
    } as ModelManifest;
    const result = await runSampleCheck(bad, await serve(IRIS_DIR));
    expect(result.passed).toBe(false);
    expect(result.status).toBe(400);
    expect(result.differences).toHaveLength(1);
    expect(result.differences[0]).toMatch(/^HTTP 400: .*INT64/);
  });

  test('a 404 (another model name) and a 5xx fail with the status and error', async () => {
    const service = new InferenceService({ session: { intraOpNumThreads: 1 } });
    services.push(service);
    // A model folder whose model.onnx is not ONNX: the service loads nothing and answers 503.
    const broken = variant(Buffer.from('not onnx'));
    await service.load({ location: broken });
    const post = async (path: string): Promise<{ status: number; body: unknown }> => {
      const res = await service.handle({
        method: 'POST',
        path,
        headers: {},
        body: JSON.stringify(sample.request),
      });
      return { status: res.status, body: res.body.toString() };
    };
    const unavailable = await runSampleCheck(manifest, () => post('/v2/models/iris/infer'));
    expect(unavailable.status).toBe(503);
    expect(unavailable.differences[0]).toMatch(/^HTTP 503: model 'iris' is not ready/);
    // iris is loaded, but the request goes to a name the service does not know.
    const iris = new InferenceService({ session: { intraOpNumThreads: 1 } });
    services.push(iris);
    await iris.load({ location: IRIS_DIR });
    const wrongName: Invoke = async (request) => {
      const res = await iris.handle({
        method: 'POST',
        path: '/v2/models/other/infer',
        headers: {},
        body: JSON.stringify(request),
      });
      return { status: res.status, body: res.body.toString() };
    };
    const notFound = await runSampleCheck(manifest, wrongName);
    expect(notFound.status).toBe(404);
    expect(notFound.differences[0]).toMatch(/^HTTP 404: /);
  });

  test('a manifest without a sample fails and says to add one; an unreachable endpoint fails', async () => {
    const bare: ModelManifest = { ...manifest, sample: undefined };
    const result = await runSampleCheck(bare, await serve(IRIS_DIR));
    expect(result).toEqual({
      passed: false,
      model: 'iris',
      differences: [expect.stringMatching(/iris 1\.1\.0 has no "sample": add one/) as string],
    });
    const down = await runSampleCheck(manifest, () => Promise.reject(new Error('connect ECONNREFUSED')));
    expect(down.differences).toEqual(['the request failed: connect ECONNREFUSED']);
  });

  test('a non-JSON 200 body fails', async () => {
    const result = await runSampleCheck(manifest, () => Promise.resolve({ status: 200, body: '<html>' }));
    expect(result.differences).toEqual(['the response body is not JSON: "<html>"']);
  });
});

describe('compareInferResponse', () => {
  const expected = sample.response;
  const copy = (): InferResponse => JSON.parse(JSON.stringify(expected)) as InferResponse;

  test('floats within the tolerance match; past it they do not; integers must be exact', () => {
    const near = copy();
    const probs = near.outputs[0]?.data as number[];
    const p1 = probs[1] ?? NaN;
    probs[1] = p1 + 5e-5;
    expect(compareInferResponse(expected, near)).toEqual([]);
    probs[1] = p1 + 1e-3;
    expect(compareInferResponse(expected, near)).toEqual([
      expect.stringMatching(/^output 'probabilities'\[1\]: expected 0\.9706579, got 0\.97/) as string,
    ]);
    expect(compareInferResponse(expected, near, { tolerance: { absolute: 1e-2 } })).toEqual([]);
    const labels = copy();
    (labels.outputs[1]?.data as number[])[0] = 2;
    expect(compareInferResponse(expected, labels)).toEqual([`output 'label'[0]: expected 1, got 2`]);
  });

  test('model name, version, datatype, extra outputs and nested data', () => {
    const other = copy();
    other.model_name = 'fraud';
    other.model_version = '2.0.0';
    (other.outputs[1] as { datatype: string }).datatype = 'INT32';
    other.outputs.push({ name: 'logits', shape: [2, 3], datatype: 'FP32', data: [0, 0, 0, 0, 0, 0] });
    expect(compareInferResponse(expected, other)).toEqual([
      'model_name: expected "iris", got "fraud"',
      'model_version: expected "1.1.0", got "2.0.0" (is the version under test the one answering?)',
      `output 'label': datatype expected INT64, got "INT32"`,
      `output 'logits' is in the response but not in the sample`,
    ]);
    const nested = copy();
    const flat = nested.outputs[0]?.data as number[];
    (nested.outputs[0] as { data: unknown[] }).data = [flat.slice(0, 3), flat.slice(3)];
    expect(compareInferResponse(expected, nested)).toEqual([]);
    expect(compareInferResponse(expected, { error: 'x' })).toEqual([
      'the response is not a V2 infer response (no "outputs" array): {"error":"x"}',
    ]);
  });

  test('differences are capped, and the rest counted', () => {
    const many: InferResponse = {
      model_name: 'm',
      model_version: '1',
      outputs: [{ name: 'y', shape: [30], datatype: 'INT64', data: Array.from({ length: 30 }, () => 0) }],
    };
    const got = { ...many, outputs: [{ ...many.outputs[0], data: Array.from({ length: 30 }, () => 1) }] };
    const diffs = compareInferResponse(many, got);
    expect(diffs).toHaveLength(DEFAULT_MAX_DIFFERENCES + 1);
    expect(diffs.at(-1)).toBe(`... and ${30 - DEFAULT_MAX_DIFFERENCES} more differences`);
    expect(compareInferResponse(many, got, { maxDifferences: 2 })).toHaveLength(3);
  });
});

describe('readManifest', () => {
  let moto: MotoServer;
  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto.stop();
  });

  test('reads model.json from a folder, a file, and an s3:// folder, never the model', async () => {
    expect((await readManifest(IRIS_DIR)).sample).toEqual(sample);
    expect((await readManifest(path.join(IRIS_DIR, 'model.json'))).name).toBe('iris');
    const s3 = motoS3Client(moto.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: 'models' }));
    // Only model.json is there: reading the manifest must not need model.onnx.
    await s3.send(
      new PutObjectCommand({
        Bucket: 'models',
        Key: 'iris/1.1.0/model.json',
        Body: JSON.stringify(manifest),
      }),
    );
    expect((await readManifest('s3://models/iris/1.1.0/', { s3 })).sample).toEqual(sample);
    expect((await readManifest('s3://models/iris/1.1.0', { s3 })).version).toBe('1.1.0');
    expect((await readManifest('s3://models/iris/1.1.0/model.json', { s3 })).name).toBe('iris');
    await expect(readManifest('s3://models/iris/2.0.0/', { s3 })).rejects.toThrow(
      /cannot read s3:\/\/models\/iris\/2\.0\.0\/model\.json: NoSuchKey/,
    );
  });

  test('a missing folder or invalid JSON is an error naming the file', async () => {
    await expect(readManifest('/nonexistent/model')).rejects.toThrow(/does not exist/);
    const dir = variant(undefined, () => undefined);
    fs.writeFileSync(path.join(dir, 'model.json'), '{');
    await expect(readManifest(dir)).rejects.toThrow(/model\.json is not valid JSON/);
  });
});
