import { predictItems, runBatchJob, type JobSummary } from '../../../lambda/core/batch-job';
import { resolveLimits } from '../../../lambda/core/limits';
import { CsvHeaderError } from '../../../lambda/core/rows';
import type { OnnxModel } from '../../../lambda/core/model';
import { openModel } from '../../../lambda/core/open';
import { IRIS_DIR } from '../../support/cdk';

const limits = resolveLimits({});

async function* linesOf(text: string): AsyncIterable<string> {
  for (const l of text.split('\n')) yield await Promise.resolve(l);
}

async function job(
  model: OnnxModel,
  format: 'csv' | 'jsonl',
  text: string,
  batchSize = 2,
): Promise<{ predictions: Record<string, unknown>[]; errors: string; summary: JobSummary; calls: number }> {
  let predictions = '';
  let errors = '';
  let calls = 0;
  const summary = await runBatchJob({
    model,
    limits,
    format,
    batchSize,
    lines: linesOf(text),
    writePredictions: (t) => {
      calls++;
      predictions += t;
      return Promise.resolve();
    },
    writeErrors: (t) => {
      errors += t;
      return Promise.resolve();
    },
  });
  return {
    predictions: predictions
      .split('\n')
      .filter((l) => l)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
    errors,
    summary,
    calls,
  };
}

describe('runBatchJob', () => {
  let iris: OnnxModel;
  let threaded: OnnxModel;
  let expected: Map<string, unknown>;
  beforeAll(async () => {
    iris = (await openModel({ location: IRIS_DIR })).model;
    threaded = (await openModel({ location: IRIS_DIR }, { sessionThread: true })).model;
    // What the model says for each row on its own, to compare the batched job against.
    expected = new Map();
    for (const row of [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.1, 4.4, 1.4],
      [6.3, 3.3, 6, 2.5],
      [5, 3.4, 1.5, 0.2],
    ]) {
      const out = await iris.run(
        { input: new (await import('onnxruntime-node')).Tensor('float32', Float32Array.from(row), [1, 4]) },
        ['label'],
      );
      expected.set(row.join(','), Number((out.label as { data: BigInt64Array }).data[0]));
    }
  });
  afterAll(async () => {
    await iris.release();
    await threaded.release();
  });

  it('JSONL: predictions in input order with ids, bad rows in the errors file in order, exact', async () => {
    const text = [
      '[5.1, 3.5, 1.4, 0.2]',
      '{"id": "b", "input": [6.7, 3.1, 4.4, 1.4]}',
      '{"input": [6.7, 3.1',
      '',
      '[1, 2, 3]',
      '{"id": "c", "input": [6.3, 3.3, 6, 2.5]}',
      '{"inputs": [5, 3.4, 1.5, 0.2]}',
      '[5, 3.4, 1.5, 0.2]',
    ].join('\n');
    for (const model of [iris, threaded]) {
      const r = await job(model, 'jsonl', text);
      expect(r.predictions.map((p) => [p.id, p.line])).toEqual([
        [1, 1],
        ['b', 2],
        ['c', 6],
        [7, 8],
      ]);
      expect(r.predictions.map((p) => (p.outputs as { label: number }).label)).toEqual([
        expected.get('5.1,3.5,1.4,0.2'),
        expected.get('6.7,3.1,4.4,1.4'),
        expected.get('6.3,3.3,6,2.5'),
        expected.get('5,3.4,1.5,0.2'),
      ]);
      const probs = (r.predictions[0]?.outputs as { probabilities: number[] }).probabilities;
      expect(probs).toHaveLength(3);
      expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      // V8 words JSON errors differently from one Node version to the next: the rest is exact.
      const errorLines = r.errors.split('\n');
      expect(errorLines[0]).toMatch(/^\{"id":3,"line":3,"error":"not valid JSON: [^"]+"\}$/);
      expect(errorLines.slice(1)).toEqual([
        '{"id":4,"line":5,"error":"input \'input\': expected 4 values, got 3 (each row is shaped [4])"}',
        '{"id":6,"line":7,"error":"unknown input \'inputs\'; the model\'s inputs are: input (and \\"id\\" for a row id)"}',
        '',
      ]);
      expect(r.summary).toMatchObject({
        rows: 7,
        predicted: 4,
        failed: 3,
        format: 'jsonl',
        batchSize: 2,
        model: { name: 'iris', version: '1.1.0' },
      });
      expect(Date.parse(r.summary.finishedAt)).toBeGreaterThanOrEqual(Date.parse(r.summary.startedAt));
    }
  });

  it('CSV with a feature-name header: the same predictions, writes once per batch', async () => {
    const text = [
      'id,sepal_length,sepal_width,petal_length,petal_width,species',
      'r1,5.1,3.5,1.4,0.2,setosa',
      'r2,6.7,3.1,4.4,1.4,versicolor',
      'r3,6.3,x,6,2.5,virginica',
      'r4,6.3,3.3,6,2.5,virginica',
      'r5,5,3.4,1.5',
    ].join('\n');
    const r = await job(threaded, 'csv', text, 2);
    expect(r.predictions.map((p) => [p.id, p.line, (p.outputs as { label: number }).label])).toEqual([
      ['r1', 2, expected.get('5.1,3.5,1.4,0.2')],
      ['r2', 3, expected.get('6.7,3.1,4.4,1.4')],
      ['r4', 5, expected.get('6.3,3.3,6,2.5')],
    ]);
    expect(r.errors).toBe(
      '{"id":"r3","line":4,"error":"column 3 (sepal_width): \\"x\\" is not a number"}\n' +
        '{"id":"r5","line":6,"error":"has 4 columns; the header has 6"}\n',
    );
    expect(r.summary).toMatchObject({
      rows: 5,
      predicted: 3,
      failed: 2,
      csv: { header: true, by: 'feature name', idColumn: 'id', ignored: ['species'] },
    });
    expect(r.calls).toBe(2);
  });

  it('a CSV header the model cannot use fails the job once, instead of failing every row', async () => {
    const text = 'id,petal_width\nr1,0.2\nr2,1.4';
    await expect(job(iris, 'csv', text)).rejects.toThrow(CsvHeaderError);
    // One input: columns that name no feature are taken by position, and must be as many as it takes.
    await expect(job(iris, 'csv', text)).rejects.toThrow(
      "1 CSV column feed input 'input', which takes 4 values per row; name the columns (e.g. input[0],...,input[3])",
    );
  });

  it('a long run of bad lines is written as it goes, a batch at a time, not held to the end', async () => {
    const bad = Array.from({ length: 1000 }, (_, i) => `[${i}, "x", 1, 2]`);
    let writes = 0;
    let largest = 0;
    let lines = 0;
    const summary = await runBatchJob({
      model: iris,
      limits,
      format: 'jsonl',
      batchSize: 10,
      lines: linesOf([...bad, '[5.1, 3.5, 1.4, 0.2]'].join('\n')),
      writePredictions: () => Promise.resolve(),
      writeErrors: (t) => {
        const n = t.trim().split('\n').length;
        writes++;
        lines += n;
        largest = Math.max(largest, n);
        return Promise.resolve();
      },
    });
    expect(summary).toMatchObject({ rows: 1001, predicted: 1, failed: 1000 });
    expect(lines).toBe(1000);
    expect(largest).toBeLessThanOrEqual(10);
    expect(writes).toBeGreaterThanOrEqual(100);
  });

  it('refuses a batch size outside 1..maxBatch before reading anything', async () => {
    await expect(job(iris, 'jsonl', '[1,2,3,4]', 0)).rejects.toThrow(
      'batch size must be an integer from 1 to 1024, got 0',
    );
  });
});

describe('predictItems (one ItemBatcher batch)', () => {
  let iris: OnnxModel;
  beforeAll(async () => {
    iris = (await openModel({ location: IRIS_DIR })).model;
  });
  afterAll(() => iris.release());

  it('CSV records keyed by header: line = index + 2, ids from the data row number', async () => {
    const items = [
      {
        index: 10,
        value: { sepal_length: '5.1', sepal_width: '3.5', petal_length: '1.4', petal_width: '0.2' },
      },
      {
        index: 11,
        value: { sepal_length: 'oops', sepal_width: '3.5', petal_length: '1.4', petal_width: '0.2' },
      },
      {
        index: 12,
        value: { sepal_length: '6.3', sepal_width: '3.3', petal_length: '6', petal_width: '2.5' },
      },
    ];
    const r = await predictItems({ model: iris, limits, format: 'csv', items });
    const lines = r.predictions
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; line: number });
    expect(lines.map((p) => [p.id, p.line])).toEqual([
      [11, 12],
      [13, 14],
    ]);
    expect(r.errors).toBe(
      '{"id":12,"line":13,"error":"column 1 (sepal_length): \\"oops\\" is not a number"}\n',
    );
    expect(r.counts).toEqual({ rows: 3, predicted: 2, failed: 1 });
  });

  it('JSONL values: line = index + 1', async () => {
    const r = await predictItems({
      model: iris,
      limits,
      format: 'jsonl',
      items: [
        { index: 0, value: [5.1, 3.5, 1.4, 0.2] },
        { index: 1, value: { id: 'k', input: [1, 2] } },
      ],
    });
    expect(JSON.parse(r.predictions) as unknown).toMatchObject({ id: 1, line: 1 });
    expect(r.errors).toBe(
      '{"id":"k","line":2,"error":"input \'input\': expected 4 values, got 2 (each row is shaped [4])"}\n',
    );
  });
});
