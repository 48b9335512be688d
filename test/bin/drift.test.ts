/**
 * `mdk drift` end to end: capture records written by a real `mdk serve --capture` of the iris model (real
 * onnxruntime), from the iris data as it is and with petal_length shifted, then compared with the model's
 * baseline by the CLI.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { DriftReport } from '../../lambda/core/drift';
import type { ModelManifest } from '../../lambda/core/types';
import { irisSplit } from '../../models/build';
import { runMdk as mdk, serveMdk, type MdkRun as Run } from '../support/mdk-cli';

const ROOT = path.join(__dirname, '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');
const MANIFEST = path.join(IRIS, 'model.json');
const manifest = JSON.parse(fs.readFileSync(MANIFEST, 'utf8')) as ModelManifest;
const FEATURES = manifest.baseline?.features.map((f) => f.name) ?? [];

/** Serves iris with capture on, sends the rows in requests of 25, and stops: `file` then holds their records. */
async function capture(rows: readonly (readonly number[])[], file: string): Promise<void> {
  const server = await serveMdk(['--model', IRIS, '--port', '0', '--quiet', '--capture', file], 'iris');
  const url = server.url;
  for (let i = 0; i < rows.length; i += 25) {
    const batch = rows.slice(i, i + 25);
    const res = await fetch(`${url}/v2/models/iris/infer`, {
      method: 'POST',
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [batch.length, 4], datatype: 'FP32', data: batch.flat() }],
      }),
    });
    expect(res.status).toBe(200);
  }
  expect(await server.stop()).toBe(0);
}

const PETAL_LENGTH = FEATURES.indexOf('petal_length');

describe('mdk drift', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-drift-'));
  const unshifted = path.join(dir, 'unshifted.jsonl');
  const shifted = path.join(dir, 'shifted.jsonl');
  const { xTrain, xHold } = irisSplit();
  const all = [...xTrain, ...xHold];

  beforeAll(async () => {
    const f = manifest.baseline?.features[PETAL_LENGTH];
    if (f?.kind === 'categorical' || f === undefined) throw new Error('petal_length should be numeric');
    // Every flower's petals two standard deviations longer: the data moved, the model still answers.
    const moved = all.map((r) => r.map((v, j) => (j === PETAL_LENGTH ? v + 2 * f.std : v)));
    await Promise.all([capture(all, unshifted), capture(moved, shifted)]);
  }, 60_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('data like the training data: no drift, exit 0, a table and a chart with an <svg> per column', async () => {
    const run = await mdk(['drift', '--baseline', MANIFEST, '--data', unshifted, '--fail-on-drift']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^iris ${manifest.version.replace(/\./g, '\\.')}: 150 rows, \\S+ to \\S+; no drift \\(PSI threshold 0\\.2\\)\\n`,
      ),
    );
    expect(run.stdout).toMatch(/^COLUMN +SOURCE +KIND +ROWS +MISSING +PSI +CHI2 P +STATUS$/m);
    for (const name of FEATURES) {
      expect(run.stdout).toMatch(new RegExp(`^${name} +input +numeric +150 +0 +0\\.\\d{3} +- +ok$`, 'm'));
    }
    expect(run.stdout).toMatch(/^label +output +categorical +150 +0 +0\.\d{3} +[\d.e-]+ +ok$/m);
    expect(run.stdout).toMatch(/^class mix: setosa \d+\.\d%, versicolor \d+\.\d%, virginica \d+\.\d%$/m);
    const chart = path.join(dir, 'unshifted.drift.html');
    expect(run.stdout).toMatch(new RegExp(`chart: ${chart.replace(/[.\\]/g, '\\$&')}\\n$`));
    const html = fs.readFileSync(chart, 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(FEATURES.length + 1);
    expect(html).not.toMatch(/<script|src=|href=/i);
    expect(html).not.toContain('class="column drifted"');
  });

  test('shifted petal_length: listed as drift, first and marked in the chart; --fail-on-drift exits 3', async () => {
    const chart = path.join(dir, 'shifted-chart.html');
    const run = await mdk([
      'drift',
      '--baseline',
      MANIFEST,
      '--data',
      shifted,
      '--chart',
      chart,
      '--fail-on-drift',
    ]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/: 150 rows, .*; DRIFT in petal_length/);
    expect(run.stdout).toMatch(/^petal_length +input +numeric +150 +0 +\d+\.\d{3} +- +drift$/m);
    expect(run.stdout).toMatch(/^sepal_width +input +numeric +150 +0 +0\.\d{3} +- +ok$/m);
    const html = fs.readFileSync(chart, 'utf8');
    const first = /<figure class="([^"]+)"><figcaption><strong>([^<]+)<\/strong>/.exec(html);
    expect(first?.slice(1)).toEqual(['column drifted', 'petal_length']);
    // without the flag, drift is reported but is not a failure
    expect((await mdk(['drift', '--baseline', MANIFEST, '--data', shifted, '--chart', chart])).code).toBe(0);
  });

  test('--json prints the reports: the shifted feature over the threshold, the others under it', async () => {
    const [still, moved] = await Promise.all(
      [unshifted, shifted].map((data) =>
        mdk(['drift', '--baseline', MANIFEST, '--data', data, '--json', '--chart', path.join(dir, 'j.html')]),
      ),
    );
    const report = (run: Run | undefined): DriftReport => {
      const reports = JSON.parse(run?.stdout ?? '') as DriftReport[];
      expect(reports).toHaveLength(1);
      return reports[0] as DriftReport;
    };
    const a = report(still);
    const b = report(moved);
    expect(still?.stderr).toBe(`mdk: chart: ${path.join(dir, 'j.html')}\n`);
    expect([a.model, a.version, a.rows, a.threshold]).toEqual(['iris', manifest.version, 150, 0.2]);
    expect(a.drifted).toEqual([]);
    expect(a.maxFeaturePsi).toBeLessThan(0.2);
    const psiOf = (r: DriftReport, name: string) => r.features.find((f) => f.name === name)?.psi ?? NaN;
    expect(psiOf(b, 'petal_length')).toBeGreaterThanOrEqual(0.2);
    for (const name of FEATURES.filter((n) => n !== 'petal_length')) {
      expect(psiOf(b, name)).toBeCloseTo(psiOf(a, name), 10);
    }
    expect(b.drifted).toContain('petal_length');
    // the model's answers moved with the data
    expect(b.classShare?.virginica).toBeGreaterThan(a.classShare?.virginica ?? Infinity);
  });

  test('gzipped records read the same; lines that are not capture records are counted and left out', async () => {
    const text = fs.readFileSync(unshifted, 'utf8');
    const gz = path.join(dir, 'mixed.jsonl.gz');
    fs.writeFileSync(gz, gzipSync(`{"level":"INFO","message":"model loaded"}\nnot json\n${text}`));
    const [plain, zipped] = await Promise.all([
      mdk([
        'drift',
        '--baseline',
        MANIFEST,
        '--data',
        unshifted,
        '--json',
        '--chart',
        path.join(dir, 'p.html'),
      ]),
      mdk(['drift', '--baseline', MANIFEST, '--data', gz, '--json']),
    ]);
    expect(zipped.code).toBe(0);
    expect(JSON.parse(zipped.stdout)).toEqual(JSON.parse(plain.stdout));
    expect(zipped.stderr).toContain('mdk: 2 lines were not capture records and were left out\n');
    expect(fs.existsSync(path.join(dir, 'mixed.drift.html'))).toBe(true);
  });

  test("a CSV whose header names the baseline's features: feature drift only", async () => {
    const csv = path.join(dir, 'fresh.csv');
    const rows = all.map((r, i) => [...r.map((v, j) => (j === PETAL_LENGTH ? v + 3 : v)), `flower-${i}`]);
    fs.writeFileSync(csv, [[...FEATURES, 'note'].join(','), ...rows.map((r) => r.join(','))].join('\n'));
    const run = await mdk(['drift', '--baseline', MANIFEST, '--data', csv, '--json']);
    expect(run.code).toBe(0);
    const [report] = JSON.parse(run.stdout) as DriftReport[];
    expect(report?.rows).toBe(150);
    expect(report?.drifted).toEqual(['petal_length']);
    expect(report?.predictions.every((p) => p.skipped === 'no values')).toBe(true);
    expect(run.stderr).toContain('left out columns the baseline does not name: note');
    expect(run.stderr).toContain('a CSV file has no predictions: feature drift only');

    fs.writeFileSync(path.join(dir, 'partial.csv'), 'sepal_length,petal_width\n1,2\n');
    const partial = await mdk(['drift', '--baseline', MANIFEST, '--data', path.join(dir, 'partial.csv')]);
    expect(partial.code).toBe(1);
    expect(partial.stderr).toMatch(
      /a CSV file needs a header naming the baseline's features .*; missing: sepal_width, petal_length/,
    );
  });

  test('the chart escapes every name: a hostile feature and category become text, never markup', async () => {
    const evil = '<script>alert(1)</script>';
    const category = '"><img onerror=x>';
    const baseline = {
      features: [
        {
          input: 'x',
          index: 0,
          name: evil,
          kind: 'categorical',
          count: 4,
          categories: { [category]: 2, b: 2 },
        },
      ],
    };
    const file = path.join(dir, 'evil-baseline.json');
    fs.writeFileSync(file, JSON.stringify(baseline));
    const records = Array.from({ length: 120 }, (_, i) =>
      JSON.stringify({
        mdk_capture: 1,
        time: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
        model: 'm<b>',
        version: '1',
        row: 0,
        rows: 1,
        latency_ms: 1,
        inputs: { x: [i % 2 === 0 ? category : 'c'] },
        outputs: {},
      }),
    );
    const data = path.join(dir, 'evil.jsonl');
    fs.writeFileSync(data, records.join('\n'));
    const run = await mdk(['drift', '--baseline', file, '--data', data]);
    expect(run.code).toBe(0);
    const html = fs.readFileSync(path.join(dir, 'evil.drift.html'), 'utf8');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&gt;&lt;img onerror=x&gt;');
    expect(html.match(/<svg /g)).toHaveLength(1);
  });

  test('usage errors exit 2; files it cannot use exit 1 and say what to fix', async () => {
    const missing = await mdk(['drift', '--baseline', MANIFEST]);
    expect(missing).toMatchObject({ code: 2 });
    expect(missing.stderr).toContain('--data is required');
    const bad = await mdk(['drift', '--baseline', MANIFEST, '--data', unshifted, '--threshold', 'high']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--threshold must be a number over 0, got "high"');

    const noBaseline = path.join(dir, 'plain.json');
    fs.writeFileSync(noBaseline, JSON.stringify({ name: 'x', version: '1' }));
    const none = await mdk(['drift', '--baseline', noBaseline, '--data', unshifted]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('has no baseline');
    expect(none.stderr).toContain('mdk baseline --model DIR --data TRAINING_DATA');

    const broken = path.join(dir, 'broken.json');
    fs.writeFileSync(broken, JSON.stringify({ features: [{ input: 'x', index: 0, name: 'f', count: 1 }] }));
    // a column the baseline cannot bin is reported as skipped, with why, not a failure
    const partial = await mdk([
      'drift',
      '--baseline',
      broken,
      '--data',
      unshifted,
      '--chart',
      path.join(dir, 'b.html'),
    ]);
    expect(partial.code).toBe(0);
    expect(partial.stdout).toMatch(/^f +input +numeric +0 +0 +- +- +skipped: baseline has no histogram$/m);

    const junk = path.join(dir, 'junk.jsonl');
    fs.writeFileSync(junk, '{"a":1}\n{"b":2}\n');
    const empty = await mdk(['drift', '--baseline', MANIFEST, '--data', junk]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain(
      'has no capture records (lines with "mdk_capture": 1); its 2 lines are something else',
    );
    const gone = await mdk(['drift', '--baseline', MANIFEST, '--data', path.join(dir, 'nope.jsonl')]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/data file .*nope.jsonl does not exist/);
  });
});
