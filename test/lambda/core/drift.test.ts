/**
 * Drift math on known distributions: PSI by hand, chi-square against table values, a normal shifted by one
 * standard deviation, and the real iris manifest's baseline sampled as it is and shifted.
 */
import { CAPTURE_FORMAT, hashValue, type CaptureRecord } from '../../../lambda/core/capture-record';
import {
  chiSquare,
  chiSquareSurvival,
  DriftAccumulator,
  gammaQ,
  OTHER_LABEL,
  psi,
  type ColumnDrift,
} from '../../../lambda/core/drift';
import type { ModelBaseline, NumericStats } from '../../../lambda/core/types';
import { irisManifest, normal, sampleRecords, seeded } from '../../support/capture-samples';

/** A 10-bin histogram of values from their min to max, as a baseline is built. */
function histogramOf(values: readonly number[], bins = 10): NumericStats {
  const min = Math.min(...values);
  const max = Math.max(...values);
  const edges = Array.from({ length: bins + 1 }, (_, i) => min + ((max - min) * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - min) / (max - min)) * bins))]! += 1;
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
  return { count: values.length, mean, std, min, max, quantiles: [], histogram: { edges, counts } };
}

function record(
  inputs: CaptureRecord['inputs'],
  outputs: CaptureRecord['outputs'] = {},
  extra: Partial<CaptureRecord> = {},
): CaptureRecord {
  return {
    mdk_capture: CAPTURE_FORMAT,
    time: '2026-11-22T03:00:00.000Z',
    model: 'm',
    version: '1',
    row: 0,
    rows: 1,
    latency_ms: 1,
    inputs,
    outputs,
    ...extra,
  };
}

function column(cols: readonly ColumnDrift[], name: string): ColumnDrift {
  const c = cols.find((x) => x.name === name);
  if (!c) throw new Error(`no column ${name}`);
  return c;
}

describe('psi', () => {
  test('identical distributions give 0, whatever the scale of the counts', () => {
    expect(psi([7, 18, 13, 23], [7, 18, 13, 23])).toBe(0);
    expect(psi([7, 18, 13, 23], [70, 180, 130, 230])).toBeCloseTo(0, 12);
  });

  test('[0.5, 0.5] against [0.25, 0.75] by hand', () => {
    // (0.25 - 0.5)·ln(0.25/0.5) + (0.75 - 0.5)·ln(0.75/0.5) = 0.25·ln 2 + 0.25·ln 1.5 = 0.25·ln 3 = 0.2746531
    expect(psi([50, 50], [25, 75])).toBeCloseTo(0.25 * Math.log(3), 12);
    expect(psi([50, 50], [25, 75])).toBeCloseTo(0.2746531, 7);
    // Symmetric: swapping the sides flips both factors' signs.
    expect(psi([25, 75], [50, 50])).toBeCloseTo(psi([50, 50], [25, 75]), 12);
  });

  test('an empty expected bin is floored at 1e-4, so the result is large but finite', () => {
    // (0.5 - 1)·ln(0.5/1) + (0.5 - 1e-4)·ln(0.5/1e-4) = 0.3465736 + 0.4999·ln 5000 = 0.3465736 + 4.2577449
    expect(psi([100, 0], [50, 50])).toBeCloseTo(0.5 * Math.log(2) + 0.4999 * Math.log(5000), 10);
    expect(psi([100, 0], [50, 50])).toBeCloseTo(4.6043185, 6);
  });

  test('refuses bins that do not pair up, negative counts and an empty side', () => {
    expect(() => psi([1, 2], [1, 2, 3])).toThrow('same number of bins (at least 1), got 2 and 3');
    expect(() => psi([], [])).toThrow('got 0 and 0');
    expect(() => psi([1, -1], [1, 1])).toThrow('expected counts must be finite and >= 0, got -1');
    expect(() => psi([1, 1], [0, 0])).toThrow('actual counts are all zero');
  });
});

describe('chi-square', () => {
  test.each([
    // Critical values from the chi-square table: P(X >= x) for df degrees of freedom.
    [3.841, 1, 0.05],
    [6.635, 1, 0.01],
    [2.706, 1, 0.1],
    [5.991, 2, 0.05],
    [7.815, 3, 0.05],
    [18.307, 10, 0.05],
    [23.209, 10, 0.01],
    [124.342, 100, 0.05],
  ])('survival(%p, df %p) is the table p-value %p', (x, df, p) => {
    expect(chiSquareSurvival(x, df)).toBeCloseTo(p, 4);
  });

  test('df 2 is exp(-x/2) exactly, on both sides of the series/continued-fraction switch', () => {
    expect(chiSquareSurvival(1, 2)).toBeCloseTo(Math.exp(-0.5), 13);
    expect(chiSquareSurvival(4, 2)).toBeCloseTo(Math.exp(-2), 13);
    expect(chiSquareSurvival(60, 2)).toBeCloseTo(Math.exp(-30), 25);
    // Q(1/2, x) = erfc(√x); erfc(√2) = 0.0455003 (x = 4, df 1).
    expect(gammaQ(0.5, 2)).toBeCloseTo(0.0455003, 7);
    expect(chiSquareSurvival(0, 3)).toBe(1);
    expect(() => chiSquareSurvival(1, 0)).toThrow('df must be a positive integer, got 0');
  });

  test('60 and 40 against an even split: statistic 4, df 1, p 0.0455', () => {
    // Expected 50 each: (60 - 50)²/50 + (40 - 50)²/50 = 4.
    const r = chiSquare([0.5, 0.5], [60, 40]);
    expect(r.statistic).toBeCloseTo(4, 12);
    expect(r.df).toBe(1);
    expect(r.pValue).toBeCloseTo(0.0455003, 6);
    // Expected given as counts is the same test; a bin empty on both sides does not add a degree of freedom.
    expect(chiSquare([10, 10, 0], [60, 40, 0])).toEqual(r);
  });

  test('a category the baseline never saw makes the fit fail rather than divide by zero', () => {
    const r = chiSquare([0.5, 0.5, 0], [50, 45, 5]);
    expect(r.df).toBe(2);
    expect(Number.isFinite(r.statistic)).toBe(true);
    expect(r.pValue).toBeLessThan(1e-6);
  });
});

describe('DriftAccumulator', () => {
  test('a normal against itself is ≈ 0; shifted by one standard deviation it is ≈ 0.97', () => {
    const draw = normal(seeded(7));
    const train = Array.from({ length: 20000 }, draw);
    const baseline: ModelBaseline = {
      features: [{ input: 'x', index: 0, name: 'x', ...histogramOf(train) }],
    };
    const same = new DriftAccumulator(baseline);
    const shifted = new DriftAccumulator(baseline);
    for (let i = 0; i < 5000; i++) {
      same.add(record({ x: draw() }));
      shifted.add(record({ x: draw() + 1 }));
    }
    // Two samples of one distribution in 10 bins: PSI is noise of about 9·(1/20000 + 1/5000) ≈ 0.002.
    const unshifted = same.report({ model: 'm', version: '1' });
    expect(unshifted.maxFeaturePsi).toBeLessThan(0.02);
    expect(unshifted.drifted).toEqual([]);
    // Continuous N(0,1) against N(1,1) has PSI (Jeffreys divergence) exactly 1; on these 10 bins over
    // about ±3.9 with open ends the binned value is ≈ 0.97, and sampling moves it by a few hundredths.
    const moved = shifted.report({ model: 'm', version: '1' });
    expect(moved.maxFeaturePsi).toBeGreaterThan(0.85);
    expect(moved.maxFeaturePsi).toBeLessThan(1.1);
    expect(moved.drifted).toEqual(['x']);
    expect(column(moved.features, 'x').count).toBe(5000);
  });

  test('the real iris baseline: its own distribution is stable, petal_length + 2 std drifts', () => {
    const manifest = irisManifest();
    const baseline = manifest.baseline;
    const random = seeded(11);
    const sample = (shift: Record<string, number>) => {
      const acc = new DriftAccumulator(baseline, { labels: manifest.labels });
      const at = new Date('2026-11-22T03:00:00Z');
      const o = { model: manifest.name, version: manifest.version, shift, random, time: () => at };
      for (const r of sampleRecords(baseline, 3000, o)) acc.add(r);
      return acc.report({ model: manifest.name, version: manifest.version });
    };
    const petal = baseline.features.find((f) => f.name === 'petal_length') as NumericStats;

    const stable = sample({});
    expect(stable.features.map((c) => c.name)).toEqual(baseline.features.map((f) => f.name));
    for (const c of stable.features) {
      expect(c.psi).toBeLessThan(0.05);
      expect(c.count).toBe(3000);
    }
    expect(stable.drifted).toEqual([]);
    expect(stable.predictions).toHaveLength(baseline.predictions?.length ?? 0);
    for (const c of stable.predictions) expect(c.psi).toBeLessThan(0.05);

    const drifted = sample({ petal_length: 2 * petal.std });
    const moved = column(drifted.features, 'petal_length');
    expect(moved.psi).toBeGreaterThanOrEqual(0.2);
    expect(drifted.drifted).toEqual(['petal_length']);
    expect(drifted.maxFeaturePsi).toBe(moved.psi);
    // Shares, not counts: both sides add up to 1, and the top bin fills up.
    expect(moved.bins.expected.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
    expect(moved.bins.actual.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
    expect(moved.bins.actual.at(-1)).toBeGreaterThan(0.4);
    expect(moved.bins.labels[0]).toBe(`[${petal.histogram.edges[0]}, ${petal.histogram.edges[1]})`);
    expect(moved.bins.labels.at(-1)).toMatch(/\]$/);
  });

  test('values past either end land in the end bins; a bin is [lo, hi) and the last one closed', () => {
    const baseline: ModelBaseline = {
      features: [
        {
          input: 'x',
          index: 0,
          name: 'x',
          count: 4,
          mean: 1.5,
          std: 1,
          min: 0,
          max: 3,
          quantiles: [],
          histogram: { edges: [0, 1, 2, 3], counts: [1, 2, 1] },
        },
      ],
    };
    const acc = new DriftAccumulator(baseline);
    for (const x of [-5, 0, 0.999, 1, 2, 2.5, 3, 99]) acc.add(record({ x }));
    const c = column(acc.report({ model: 'm', version: '1', minRows: 0 }).features, 'x');
    // [-5, 0, 0.999] → bin 0; [1] → bin 1; [2, 2.5, 3, 99] → bin 2.
    expect(c.bins.actual).toEqual([3 / 8, 1 / 8, 4 / 8]);
    expect(c.bins.expected).toEqual([0.25, 0.5, 0.25]);
    expect(c.bins.labels).toEqual(['[0, 1)', '[1, 2)', '[2, 3]']);
  });

  test('a non-number in a numeric column, or a missing input, is missing; a scalar row is element 0', () => {
    const baseline: ModelBaseline = {
      features: [
        { input: 'v', index: 1, name: 'v1', ...histogramOf([0, 1, 2, 3]) },
        { input: 's', index: 0, name: 's', ...histogramOf([0, 1, 2, 3]) },
      ],
    };
    const acc = new DriftAccumulator(baseline);
    acc.add(record({ v: [9, 1.5], s: 2 }));
    acc.add(record({ v: [9, 'x'], s: null }));
    acc.add(record({ v: [9, null], s: [1] }));
    acc.add(record({ v: [9], s: true }));
    acc.add(record({}));
    const r = acc.report({ model: 'm', version: '1', minRows: 0 });
    expect(r.rows).toBe(5);
    expect(column(r.features, 'v1')).toMatchObject({ count: 1, missing: 4 });
    expect(column(r.features, 's')).toMatchObject({ count: 2, missing: 3 });
  });

  describe('categorical columns', () => {
    const baseline: ModelBaseline = {
      features: [
        {
          kind: 'categorical',
          input: 'color',
          index: 0,
          name: 'color',
          count: 100,
          categories: { a: 50, b: 30, c: 20 },
        },
        {
          kind: 'categorical',
          input: 'flags',
          index: 1,
          name: 'flag',
          count: 100,
          categories: { true: 60, false: 40 },
        },
        { input: 'age', index: 0, name: 'age', ...histogramOf([20, 30, 40, 50]) },
      ],
      predictions: [
        {
          kind: 'categorical',
          output: 'label',
          index: 0,
          name: 'label',
          count: 30,
          categories: { 0: 10, 1: 10, 2: 10 },
        },
      ],
    };
    const colors = (counts: Record<string, number>) =>
      Object.entries(counts).flatMap(([color, n]) => new Array<string>(n).fill(color));

    test('the same proportions give PSI 0 and a perfect fit; an unseen category is "(other)"', () => {
      const acc = new DriftAccumulator(baseline);
      for (const color of colors({ a: 500, b: 300, c: 200 })) acc.add(record({ color }));
      const same = column(acc.report({ model: 'm', version: '1' }).features, 'color');
      expect(same.psi).toBe(0);
      expect(same.chiSquare).toEqual({ statistic: 0, df: 2, pValue: 1 });
      expect(same.bins.labels).toEqual(['a', 'b', 'c', OTHER_LABEL]);

      const other = new DriftAccumulator(baseline);
      for (const color of colors({ a: 250, b: 150, c: 100, zebra: 500 })) other.add(record({ color }));
      const moved = column(other.report({ model: 'm', version: '1' }).features, 'color');
      expect(moved.bins.actual).toEqual([0.25, 0.15, 0.1, 0.5]);
      // Each known bin halves: (x/2 - x)·ln(1/2) summed over shares 1 → 0.5·ln 2; "(other)" adds
      // (0.5 - 1e-4)·ln(0.5/1e-4).
      expect(moved.psi).toBeCloseTo(0.5 * Math.log(2) + 0.4999 * Math.log(5000), 10);
      expect(moved.chiSquare?.pValue).toBeLessThan(1e-9);
    });

    test('booleans and numbers match the baseline keys by their text', () => {
      const acc = new DriftAccumulator(baseline);
      for (let i = 0; i < 100; i++) acc.add(record({ flags: [0, i < 60] }));
      const flag = column(acc.report({ model: 'm', version: '1' }).features, 'flag');
      expect(flag.bins.actual).toEqual([0.6, 0.4, 0]);
      expect(flag.psi).toBe(0);
    });

    test('a hashed column is compared through the hashes of the baseline categories', () => {
      const plain = new DriftAccumulator(baseline);
      const hashed = new DriftAccumulator(baseline);
      const byInput = new DriftAccumulator(baseline);
      for (const color of colors({ a: 100, b: 100, c: 100, d: 10 })) {
        plain.add(record({ color }));
        hashed.add(record({ color: hashValue(color) }, {}, { hashed: ['color'] }));
        byInput.add(record({ color: [hashValue(color)] }, {}, { hashed: ['color'] }));
      }
      const expected = column(plain.report({ model: 'm', version: '1' }).features, 'color');
      expect(expected.psi).toBeGreaterThan(0.1);
      expect(column(hashed.report({ model: 'm', version: '1' }).features, 'color')).toEqual(expected);
      expect(column(byInput.report({ model: 'm', version: '1' }).features, 'color')).toEqual(expected);
    });

    test('redacted columns and hashed numbers are skipped, with the reason', () => {
      const acc = new DriftAccumulator(baseline);
      for (let i = 0; i < 200; i++) {
        acc.add(
          record(
            { color: null, age: hashValue(30), flags: [0, true] },
            { label: 1 },
            { redacted: ['color'], hashed: ['age'] },
          ),
        );
      }
      const r = acc.report({ model: 'm', version: '1' });
      expect(column(r.features, 'color')).toMatchObject({ count: 0, missing: 200, skipped: 'redacted' });
      expect(column(r.features, 'color').psi).toBeUndefined();
      expect(column(r.features, 'age')).toMatchObject({
        count: 0,
        missing: 200,
        skipped: 'hashed numeric values',
      });
      expect(column(r.features, 'flag').psi).toBeGreaterThan(0.2);
      expect(r.maxFeaturePsi).toBe(column(r.features, 'flag').psi);
    });

    test('the class mix is named by the manifest labels, and prediction drift is its PSI', () => {
      const acc = new DriftAccumulator(baseline, { labels: ['setosa', 'versicolor', 'virginica'] });
      const labels = [
        ...new Array<number>(50).fill(0),
        ...new Array<number>(30).fill(1),
        ...new Array<number>(20).fill(2),
      ];
      labels.push(7);
      for (const label of labels) acc.add(record({ color: 'a' }, { label: [label] }));
      const r = acc.report({ model: 'm', version: '1' });
      expect(r.classShare).toEqual({
        setosa: Number(((100 * 50) / 101).toPrecision(6)),
        versicolor: Number(((100 * 30) / 101).toPrecision(6)),
        virginica: Number(((100 * 20) / 101).toPrecision(6)),
        [OTHER_LABEL]: Number((100 / 101).toPrecision(6)),
      });
      const label = column(r.predictions, 'label');
      expect(label.source).toBe('output');
      expect(r.predictionPsi).toBe(label.psi);
      expect(r.predictionPsi).toBeGreaterThan(0.1);
      expect(r.drifted).toContain('color');
    });
  });

  test('fewer rows than needed: no PSI anywhere, and the report says why', () => {
    const acc = new DriftAccumulator({
      features: [{ input: 'x', index: 0, name: 'x', ...histogramOf([0, 1, 2]) }],
    });
    for (let i = 0; i < 42; i++) acc.add(record({ x: 50 }));
    const r = acc.report({ model: 'm', version: '1', window: { start: 'a', end: 'b' } });
    expect(r.skipped).toBe('42 rows, fewer than the 100 needed');
    expect(r.maxFeaturePsi).toBeUndefined();
    expect(r.drifted).toEqual([]);
    expect(r.window).toEqual({ start: 'a', end: 'b' });
    expect(column(r.features, 'x')).toMatchObject({ count: 42, skipped: 'too few rows' });
    expect(acc.report({ model: 'm', version: '1', minRows: 42 }).drifted).toEqual(['x']);
  });

  test('a baseline column that cannot be binned is skipped with its problem; bad options are refused', () => {
    const acc = new DriftAccumulator({
      features: [
        {
          input: 'x',
          index: 0,
          name: 'x',
          count: 1,
          mean: 0,
          std: 0,
          min: 0,
          max: 1,
          quantiles: [],
          histogram: { edges: [0, 1], counts: [1, 2] },
        },
      ],
    });
    acc.add(record({ x: 0.5 }));
    const r = acc.report({ model: 'm', version: '1', minRows: 0 });
    expect(column(r.features, 'x').skipped).toBe(
      'baseline histogram needs one more edge than counts, got 2 edges and 2 counts',
    );
    expect(() => acc.report({ model: 'm', version: '1', threshold: 0 })).toThrow(
      'the PSI threshold must be a number over 0, got 0',
    );
    expect(() => new DriftAccumulator({} as ModelBaseline)).toThrow('the baseline needs a features array');
  });
});
