/**
 * `mdk predict` streams: a 1,000,000-row CSV goes through with its peak resident memory (the kernel's
 * ru_maxrss, which the job summary reports) under 300 MB, and every row comes out, in order.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { once } from 'node:events';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { makeTempDir, removeDir } from '../fixtures/models';

const ROOT = path.join(__dirname, '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');
const ROWS = 1_000_000;
const LIMIT_BYTES = 300 * 1024 * 1024;

async function writeCsv(file: string): Promise<void> {
  const out = fs.createWriteStream(file);
  if (!out.write('sepal_length,sepal_width,petal_length,petal_width\n')) await once(out, 'drain');
  let chunk = '';
  for (let i = 0; i < ROWS; i++) {
    // Deterministic, varied rows in the iris ranges.
    chunk += `${(4.3 + (i % 37) / 10).toFixed(1)},${(2 + (i % 23) / 10).toFixed(1)},${(1 + (i % 59) / 10).toFixed(1)},${(0.1 + (i % 25) / 10).toFixed(1)}\n`;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

describe('mdk predict on 1,000,000 rows', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir('mdk-million-');
  });
  afterAll(() => removeDir(dir));

  it('keeps peak RSS under 300 MB and writes every row in order', async () => {
    const input = path.join(dir, 'rows.csv');
    const output = path.join(dir, 'predictions.jsonl');
    const summaryFile = path.join(dir, 'summary.json');
    await writeCsv(input);
    expect(fs.statSync(input).size).toBeGreaterThan(15_000_000);

    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'bin', 'mdk.ts'),
        'predict',
        '--model',
        IRIS,
        '--input',
        input,
        '--output',
        output,
        '--summary',
        summaryFile,
        '--batch-size',
        '1024',
      ],
      { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });

    const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as {
      rows: number;
      predicted: number;
      failed: number;
      peakRssBytes: number;
    };
    expect(summary).toMatchObject({ rows: ROWS, predicted: ROWS, failed: 0 });
    // A real reading (the model and onnxruntime alone take tens of MB), and under the bound.
    expect(summary.peakRssBytes).toBeGreaterThan(30 * 1024 * 1024);
    expect(summary.peakRssBytes).toBeLessThan(LIMIT_BYTES);

    // Every row, in input order: ids are the data row numbers, lines are one past them (the header).
    let n = 0;
    for await (const line of createInterface({ input: fs.createReadStream(output), crlfDelay: Infinity })) {
      n++;
      if (n === 1 || n === ROWS || n % 99_991 === 0) {
        const p = JSON.parse(line) as { id: number; line: number; outputs: { label: number } };
        expect([p.id, p.line]).toEqual([n, n + 1]);
        expect([0, 1, 2]).toContain(p.outputs.label);
      }
    }
    expect(n).toBe(ROWS);
  }, 180_000);
});
