/** `mdk baseline` end to end on a copy of the iris model folder (real onnxruntime). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ModelBaseline, ModelManifest } from '../../lambda/core/types';
import { irisSplit } from '../../models/build';
import { runMdk as mdk } from '../support/mdk-cli';

const ROOT = path.join(__dirname, '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');
const manifest = JSON.parse(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8')) as ModelManifest;
const FEATURES = manifest.baseline?.features.map((f) => f.name) ?? [];

describe('mdk baseline', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-baseline-'));
  const folder = path.join(dir, 'iris');
  const train = path.join(dir, 'train.csv');
  const { xTrain } = irisSplit();

  beforeAll(() => {
    fs.cpSync(IRIS, folder, { recursive: true });
    fs.writeFileSync(train, [FEATURES.join(','), ...xTrain.map((r) => r.join(','))].join('\n') + '\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("writes the training data's baseline into the folder's model.json, prints its columns and the version note", async () => {
    const run = await mdk(['baseline', '--model', folder, '--data', train]);
    expect(run.code).toBe(0);
    const written = JSON.parse(fs.readFileSync(path.join(folder, 'model.json'), 'utf8')) as ModelManifest;
    // the same rows as the build script used: the same feature statistics
    expect(written.baseline?.features).toEqual(manifest.baseline?.features);
    // predictions are the model's on these rows (120 training rows, not the 30 held out)
    const [label] = written.baseline?.predictions ?? [];
    expect(label).toMatchObject({ output: 'label', name: 'label', kind: 'categorical', count: 120 });
    expect(written.baseline?.source).toEqual({
      features: 'train.csv, 120 rows',
      predictions: "the model's predictions on train.csv, 120 rows",
    });
    // everything else in the manifest is kept as it was
    expect({ ...written, baseline: null }).toEqual({ ...manifest, baseline: null });

    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^COLUMN +SOURCE +KIND +COUNT +SUMMARY$/);
    expect(lines[1]).toMatch(
      /^sepal_length +input input +numeric +120 +mean 5\.818, std 0\.8214, \[4\.3, 7\.9\]$/,
    );
    expect(lines[5]).toMatch(/^label +output label +categorical +120 +[012] \d+%, [012] \d+%, [012] \d+%$/);
    expect(lines).toHaveLength(6);
    expect(run.stderr).toContain(
      `mdk: baseline of 120 rows written into ${path.join(folder, 'model.json')}\n`,
    );
    expect(run.stderr).toContain(
      `a deployed version is immutable; give model.json a new "version" (it is "${manifest.version}") before you deploy it`,
    );
    expect(run.stderr).toContain(
      "no prediction baseline for output 'probabilities': 3 values per row, not one",
    );
  });

  test('a bare .onnx needs --output; with it, columns are named by the CSV header', async () => {
    const onnx = path.join(dir, 'bare.onnx');
    fs.copyFileSync(path.join(IRIS, 'model.onnx'), onnx);
    const csv = path.join(dir, 'named.csv');
    fs.writeFileSync(csv, ['id,a,b,c,d', ...xTrain.map((r, i) => [`row-${i}`, ...r].join(','))].join('\n'));

    const refused = await mdk(['baseline', '--model', onnx, '--data', csv]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'is not a model folder, so there is no model.json to write the baseline into; pass --output FILE',
    );

    const out = path.join(dir, 'baseline.json');
    const run = await mdk(['baseline', '--model', onnx, '--data', csv, '--output', out]);
    expect(run.code).toBe(0);
    const baseline = JSON.parse(fs.readFileSync(out, 'utf8')) as ModelBaseline;
    expect(baseline.features.map((f) => [f.input, f.index, f.name])).toEqual([
      ['input', 0, 'a'],
      ['input', 1, 'b'],
      ['input', 2, 'c'],
      ['input', 3, 'd'],
    ]);
    expect(baseline.features.map(({ name: _n, ...s }) => s)).toEqual(
      manifest.baseline?.features.map(({ name: _n, ...s }) => s),
    );
    expect(run.stderr).toContain(`mdk: baseline of 120 rows written to ${out}\n`);
  });

  test('bad data exits 1 naming the line and what is wrong, and leaves model.json alone', async () => {
    const before = fs.readFileSync(path.join(folder, 'model.json'), 'utf8');
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, `${FEATURES.join(',')}\n5.1,3.5,1.4,0.2\n5.0,wide,1.4,0.2\n`);
    const run = await mdk(['baseline', '--model', folder, '--data', bad]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`mdk: ${bad}: line 3: column 2 (sepal_width): "wide" is not a number\n`);
    expect(fs.readFileSync(path.join(folder, 'model.json'), 'utf8')).toBe(before);

    const empty = path.join(dir, 'empty.csv');
    fs.writeFileSync(empty, `${FEATURES.join(',')}\n`);
    expect((await mdk(['baseline', '--model', folder, '--data', empty])).stderr).toContain(
      'the data file has no rows',
    );
    const gone = await mdk(['baseline', '--model', folder, '--data', path.join(dir, 'nope.csv')]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/data file .*nope\.csv does not exist/);
  });

  test('a long file reports its progress on stderr, in rows so far', async () => {
    const big = path.join(dir, 'big.jsonl');
    const lines = Array.from({ length: 100_001 }, (_, i) => JSON.stringify(xTrain[i % xTrain.length]));
    fs.writeFileSync(big, lines.join('\n'));
    const run = await mdk([
      'baseline',
      '--model',
      folder,
      '--data',
      big,
      '--output',
      path.join(dir, 'big.json'),
    ]);
    expect(run.code).toBe(0);
    // a line each time another 100,000 rows have been read (counted a batch of 256 at a time)
    expect(run.stderr).toMatch(/^mdk: 100,\d{3} rows so far$/m);
    expect(run.stderr).toContain('mdk: baseline of 100001 rows written to');
  });

  test('usage errors exit 2', async () => {
    const noData = await mdk(['baseline', '--model', folder]);
    expect(noData.code).toBe(2);
    expect(noData.stderr).toContain('--data is required');
    const header = await mdk(['baseline', '--model', folder, '--data', train, '--header', 'maybe']);
    expect(header.code).toBe(2);
    expect(header.stderr).toContain('--header must be auto, present or absent, got "maybe"');
    const help = await mdk(['baseline', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: mdk baseline --model DIR --data FILE/);
  });
});
