import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BaselineDataError,
  categoricalStats,
  ColumnAccumulator,
  computeBaseline,
  flattenRow,
  MAX_INTEGER_CATEGORIES,
  numericStats,
  type ComputeBaselineOptions,
} from '../../../lambda/core/baseline';
import { DEFAULT_LIMITS } from '../../../lambda/core/limits';
import type { OnnxModel } from '../../../lambda/core/model';
import { openModel } from '../../../lambda/core/open';
import type { ModelManifest } from '../../../lambda/core/types';
import { irisSplit } from '../../../models/build';
import { mixedModel, mlpModel, removeDir, writeModel, type WrittenModel } from '../../fixtures/models';

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const manifest = JSON.parse(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8')) as ModelManifest;
const HEADER = manifest.baseline?.features.map((f) => f.name).join(',') ?? '';

async function* linesOf(text: string): AsyncIterable<string> {
  for (const l of text.split('\n')) yield l;
  await Promise.resolve();
}

const csv = (rows: readonly (readonly number[])[], header = HEADER) =>
  [header, ...rows.map((r) => r.join(','))].join('\n');

function run(
  model: OnnxModel,
  format: 'csv' | 'jsonl',
  text: string,
  extra: Partial<ComputeBaselineOptions> = {},
) {
  return computeBaseline({ model, limits: DEFAULT_LIMITS, format, lines: linesOf(text), ...extra });
}

describe('numericStats', () => {
  test('mean, population std, type-7 quantiles and a histogram of equal-width bins over [min, max]', () => {
    const s = numericStats([10, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(s).toEqual({
      kind: 'numeric',
      count: 10,
      mean: 5.5,
      std: 2.87228, // sqrt(8.25)
      min: 1,
      max: 10,
      quantiles: [1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1],
      histogram: {
        edges: [1, 1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1, 10],
        counts: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
      },
    });
  });

  test('bins are [lo, hi) against the published (rounded) edges, the last closed; a min rounded up lands in the first', () => {
    const s = numericStats([0, 0.5, 1, 1, 2], 2);
    expect(s.histogram).toEqual({ edges: [0, 1, 2], counts: [2, 3] });
    // 1.0000001 rounds to the edge 1, above the value itself: still the first bin, not an error.
    expect(numericStats([1.0000001, 3], 2).histogram).toEqual({ edges: [1, 2, 3], counts: [1, 1] });
  });

  test('a constant column has all its values in the last bin', () => {
    expect(numericStats([4, 4, 4]).histogram.counts).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
  });

  test('refuses no values and non-finite ones', () => {
    expect(() => numericStats([])).toThrow('no values to describe');
    expect(() => numericStats([1, Infinity])).toThrow('values must be finite numbers');
  });
});

describe('categorical columns', () => {
  test('keys in numeric order when all are numbers, else as text; count is their sum', () => {
    expect(
      categoricalStats(
        new Map([
          ['10', 1],
          ['2', 3],
          ['-1', 2],
        ]),
      ),
    ).toEqual({
      kind: 'categorical',
      count: 6,
      categories: { '-1': 2, '2': 3, '10': 1 },
    });
    expect(
      Object.keys(
        categoricalStats(
          new Map([
            ['b', 1],
            ['a', 1],
            ['10', 1],
          ]),
        ).categories,
      ),
    ).toEqual(['10', 'a', 'b']);
  });

  test('strings and booleans are counted by their text; null is missing', () => {
    const acc = new ColumnAccumulator('categorical');
    for (const v of ['red', 'blue', 'red', true, null, undefined]) acc.add(v);
    expect(acc.stats()).toEqual({ kind: 'categorical', count: 4, categories: { blue: 1, red: 2, true: 1 } });
    expect(acc.missing).toBe(2);
  });

  test(`integers with at most ${MAX_INTEGER_CATEGORIES} distinct values are categorical, more are numeric`, () => {
    const few = new ColumnAccumulator('integer');
    for (let i = 0; i < 200; i++) few.add(i % MAX_INTEGER_CATEGORIES);
    expect(few.stats()).toMatchObject({ kind: 'categorical', count: 200 });
    expect(Object.keys((few.stats() as { categories: object }).categories)).toHaveLength(
      MAX_INTEGER_CATEGORIES,
    );

    const many = new ColumnAccumulator('integer');
    for (let i = 0; i <= MAX_INTEGER_CATEGORIES; i++) many.add(i);
    expect(many.stats()).toMatchObject({ kind: 'numeric', count: MAX_INTEGER_CATEGORIES + 1, min: 0 });
  });

  test('an INT64 beyond 2^53 keeps its exact text as a category', () => {
    const acc = new ColumnAccumulator('integer');
    acc.add('9007199254740993');
    acc.add(9007199254740993n);
    acc.add('not a number');
    expect(acc.stats()).toEqual({ kind: 'categorical', count: 2, categories: { '9007199254740993': 2 } });
    expect(acc.missing).toBe(1);
  });
});

test('flattenRow flattens nested rows row-major and keeps a scalar as one element', () => {
  expect(
    flattenRow([
      [1, 2],
      [3, 4],
    ]),
  ).toEqual([1, 2, 3, 4]);
  expect(flattenRow(7)).toEqual([7]);
});

describe('computeBaseline on iris (real onnxruntime)', () => {
  let iris: OnnxModel;
  beforeAll(async () => {
    iris = (await openModel({ location: IRIS })).model;
  });
  afterAll(async () => {
    await iris.release();
  });

  test("the training split reproduces the manifest's feature statistics, named by the manifest", async () => {
    const { xTrain } = irisSplit();
    const result = await run(iris, 'csv', csv(xTrain), { sourceName: 'train.csv' });
    expect(result.rows).toBe(xTrain.length);
    expect(result.naming).toBe('manifest');
    expect(result.baseline.features).toEqual(manifest.baseline?.features);
    // probabilities has three values per row: not a prediction column
    expect(result.skippedOutputs).toEqual([{ name: 'probabilities', reason: '3 values per row, not one' }]);
    expect(result.baseline.source).toEqual({
      features: 'train.csv, 120 rows',
      predictions: "the model's predictions on train.csv, 120 rows",
    });
  });

  test("the holdout split reproduces the manifest's prediction baseline (the model's class mix)", async () => {
    const { xHold } = irisSplit();
    const progress: number[] = [];
    const result = await run(iris, 'csv', csv(xHold), { batchSize: 8, onProgress: (n) => progress.push(n) });
    expect(result.baseline.predictions).toEqual(manifest.baseline?.predictions);
    expect(progress).toEqual([8, 16, 24, 30]);
  });

  test('JSONL rows give the same statistics as the same rows in CSV', async () => {
    const { xTrain } = irisSplit();
    const jsonl = xTrain.map((r, i) => JSON.stringify({ id: `r${i}`, input: r })).join('\n');
    expect((await run(iris, 'jsonl', jsonl)).baseline.features).toEqual(manifest.baseline?.features);
  });

  test('a bad row stops the baseline with its line number', async () => {
    const text = csv([
      [5.1, 3.5, 1.4, 0.2],
      [5, 'x' as unknown as number, 1, 1],
    ]);
    const err = await run(iris, 'csv', text).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BaselineDataError);
    expect((err as Error).message).toMatch(/^line 3: column 2 \(sepal_width\): "x" is not a number/);
    await expect(run(iris, 'csv', HEADER)).rejects.toThrow('the data file has no rows');
  });
});

describe('computeBaseline without a manifest baseline', () => {
  let written: WrittenModel[] = [];
  afterAll(() => written.forEach((w) => removeDir(w.root)));
  const open = async (w: WrittenModel) => (await openModel({ location: w.modelPath })).model;

  test('a CSV header names the columns when it maps them by position; else input[i]', async () => {
    const bare = writeModel(mlpModel(), { fileName: 'mlp.onnx' });
    written = [...written, bare];
    const model = await open(bare);
    try {
      const rows = Array.from({ length: 40 }, (_, i) => [i, i % 7, 2 * i, -i]);
      // the id column is a row id, not a feature
      const named = await run(
        model,
        'csv',
        csv(
          rows.map((r, i) => [i + 100, ...r]),
          'id,w,x,y,z',
        ),
      );
      expect(named.naming).toBe('header');
      expect(named.baseline.features.map((f) => [f.input, f.index, f.name])).toEqual([
        ['input', 0, 'w'],
        ['input', 1, 'x'],
        ['input', 2, 'y'],
        ['input', 3, 'z'],
      ]);
      const plain = await run(model, 'csv', rows.map((r) => r.join(',')).join('\n'));
      expect(plain.naming).toBe('tensor');
      expect(plain.baseline.features.map((f) => f.name)).toEqual([
        'input[0]',
        'input[1]',
        'input[2]',
        'input[3]',
      ]);
      // output has 3 values per row: no prediction baseline at all
      expect(plain.baseline.predictions).toBeUndefined();
      expect(plain.baseline.source).toEqual({ features: '40 rows' });
    } finally {
      await model.release();
    }
  });

  test('BYTES, BOOL and few-valued INT64 inputs are categorical, named by their input; so are such outputs', async () => {
    const w = writeModel(mixedModel(), { fileName: 'mixed.onnx' });
    written = [...written, w];
    const model = await open(w);
    try {
      const rows = Array.from({ length: 30 }, (_, i) =>
        JSON.stringify({ ids: i % 3, mask: i % 2 === 0, text: i < 10 ? 'a' : 'b' }),
      );
      const result = await run(model, 'jsonl', rows.join('\n'), { batchSize: 7 });
      expect(result.baseline.features).toEqual([
        {
          input: 'ids',
          index: 0,
          name: 'ids',
          kind: 'categorical',
          count: 30,
          categories: { 0: 10, 1: 10, 2: 10 },
        },
        {
          input: 'mask',
          index: 0,
          name: 'mask',
          kind: 'categorical',
          count: 30,
          categories: { false: 15, true: 15 },
        },
        {
          input: 'text',
          index: 0,
          name: 'text',
          kind: 'categorical',
          count: 30,
          categories: { a: 10, b: 20 },
        },
      ]);
      expect(result.baseline.predictions).toEqual([
        {
          output: 'next_ids',
          index: 0,
          name: 'next_ids',
          kind: 'categorical',
          count: 30,
          categories: { 1: 10, 2: 10, 3: 10 },
        },
        {
          output: 'not_mask',
          index: 0,
          name: 'not_mask',
          kind: 'categorical',
          count: 30,
          categories: { false: 15, true: 15 },
        },
        {
          output: 'text_out',
          index: 0,
          name: 'text_out',
          kind: 'categorical',
          count: 30,
          categories: { a: 10, b: 20 },
        },
      ]);
    } finally {
      await model.release();
    }
  });
});
