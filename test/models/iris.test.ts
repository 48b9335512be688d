/**
 * The shipped example model: model.json must describe model.onnx exactly, and its sample must be what
 * the model really returns, since the server, the docs and the smoke tests all rely on it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';

import { numericStats } from '../../lambda/core/baseline';
import type { ModelManifest } from '../../lambda/core/types';
import { irisSplit } from '../../models/build';

const MODEL_DIR = path.join(__dirname, '..', '..', 'models', 'iris');
const onnxBytes = readFileSync(path.join(MODEL_DIR, 'model.onnx'));
const manifest = JSON.parse(readFileSync(path.join(MODEL_DIR, 'model.json'), 'utf8')) as ModelManifest;

function numbers(data: unknown): number[] {
  if (!Array.isArray(data) || !data.every((v): v is number => typeof v === 'number')) {
    throw new Error('expected a flat array of numbers');
  }
  return data;
}

describe('models/iris', () => {
  let session: ort.InferenceSession;

  beforeAll(async () => {
    session = await ort.InferenceSession.create(onnxBytes);
  });

  afterAll(async () => {
    await session.release();
  });

  it('manifest sha256 matches model.onnx', () => {
    expect(manifest.sha256).toBe(createHash('sha256').update(onnxBytes).digest('hex'));
  });

  it('manifest declares the inputs and outputs the model has', () => {
    expect(manifest.name).toBe('iris');
    expect(manifest.inputs.map((i) => i.name)).toEqual(session.inputNames);
    expect(manifest.outputs.map((o) => o.name)).toEqual(session.outputNames);
    expect(manifest.inputs).toEqual([
      { name: 'input', datatype: 'FP32', shape: [-1, 4], dimNames: ['batch', null] },
    ]);
    expect(manifest.outputs.map((o) => [o.datatype, o.shape])).toEqual([
      ['FP32', [-1, 3]],
      ['INT64', [-1]],
    ]);
  });

  it('manifest has labels, metrics and a per-feature baseline', () => {
    expect(manifest.labels).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(manifest.metrics?.holdout_accuracy).toBeGreaterThanOrEqual(0.85);
    const features = manifest.baseline?.features ?? [];
    expect(features.map((f) => [f.input, f.index, f.name])).toEqual([
      ['input', 0, 'sepal_length'],
      ['input', 1, 'sepal_width'],
      ['input', 2, 'petal_length'],
      ['input', 3, 'petal_width'],
    ]);
    for (const f of features) {
      expect(f.count).toBe(manifest.training?.train_rows);
      if (f.kind === 'categorical') throw new Error(`${f.name} should be numeric`);
      expect(f.quantiles).toHaveLength(9);
      expect([...f.quantiles].sort((a, b) => a - b)).toEqual(f.quantiles);
      expect(f.min).toBeLessThanOrEqual(f.quantiles[0] ?? NaN);
      expect(f.max).toBeGreaterThanOrEqual(f.quantiles[8] ?? NaN);
      expect(f.histogram.edges).toHaveLength(11);
      expect(f.histogram.counts).toHaveLength(10);
      expect(f.histogram.edges[0]).toBe(f.min);
      expect(f.histogram.edges[10]).toBe(f.max);
      expect(f.histogram.counts.reduce((s, c) => s + c, 0)).toBe(f.count);
    }
  });

  it('manifest has the class mix of its predictions on the holdout split, and says where both came from', async () => {
    const predictions = manifest.baseline?.predictions ?? [];
    expect(predictions.map((p) => [p.output, p.index, p.name, p.kind])).toEqual([
      ['label', 0, 'label', 'categorical'],
    ]);
    const [label] = predictions;
    if (label?.kind !== 'categorical') throw new Error('label should be categorical');
    expect(label.count).toBe(manifest.training?.holdout_rows);
    // Keys are label indices as text, each a class of manifest.labels.
    expect(Object.keys(label.categories).map((k) => manifest.labels?.[Number(k)])).toEqual(manifest.labels);
    // Really the model's own labels for the holdout rows, counted.
    const { xHold } = irisSplit();
    const out = await session.run({
      input: new ort.Tensor('float32', Float32Array.from(xHold.flat()), [xHold.length, 4]),
    });
    const counts: Record<string, number> = {};
    for (const k of out.label?.data as BigInt64Array) counts[String(k)] = (counts[String(k)] ?? 0) + 1;
    expect(label.categories).toEqual(counts);
    expect(manifest.baseline?.source).toEqual({
      features: `train split, ${manifest.training?.train_rows} rows`,
      predictions: `the model's label on the holdout split, ${manifest.training?.holdout_rows} rows`,
    });
  });

  it('manifest feature baseline is the training split described by lambda/core/baseline', () => {
    const { xTrain } = irisSplit();
    const features = manifest.baseline?.features ?? [];
    features.forEach((f, j) => {
      const { input, index, name, ...stats } = f;
      expect([input, index, name]).toEqual(['input', j, f.name]);
      expect(stats).toEqual(numericStats(xTrain.map((r) => r[j] ?? NaN)));
    });
  });

  it('sample response is what the model returns for the sample request', async () => {
    const sample = manifest.sample;
    if (sample === undefined) throw new Error('manifest has no sample');
    const [input] = sample.request.inputs;
    if (input === undefined) throw new Error('sample request has no input');
    expect(input.datatype).toBe('FP32');

    const result = await session.run({
      [input.name]: new ort.Tensor('float32', Float32Array.from(numbers(input.data)), [...input.shape]),
    });

    expect(sample.response).toMatchObject({
      model_name: 'iris',
      model_version: '1.1.0',
      id: sample.request.id,
    });
    expect(sample.response.outputs.map((o) => o.name)).toEqual(session.outputNames);
    const [probs, label] = sample.response.outputs;
    if (probs === undefined || label === undefined) throw new Error('sample response needs two outputs');

    const ortProbs = result[probs.name];
    expect(probs.datatype).toBe('FP32');
    expect(ortProbs?.dims).toEqual(probs.shape);
    expect(ortProbs?.data).toBeInstanceOf(Float32Array);
    const got = Array.from(ortProbs?.data as Float32Array);
    const want = numbers(probs.data);
    expect(got).toHaveLength(want.length);
    want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 6));

    const ortLabel = result[label.name];
    expect(label.datatype).toBe('INT64');
    expect(ortLabel?.dims).toEqual(label.shape);
    expect(ortLabel?.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(ortLabel?.data as BigInt64Array, (v) => Number(v))).toEqual(numbers(label.data));
    // Every label is a valid index into manifest.labels.
    for (const k of numbers(label.data)) expect(manifest.labels?.[k]).toBeDefined();
  });
});
