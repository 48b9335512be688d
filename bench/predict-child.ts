/**
 * The batch phase: `mdk predict` rows/s on a CSV and a JSONL file of the same rows, against the two things
 * it does, each alone on the same rows in the same run:
 *   (a) raw session.run at the same batch size, on tensors built before the clock starts;
 *   (b) reading and parsing the file (readline + the core's RowReader, mdk predict's read size), no model run.
 * If parsing and inference overlap, mdk predict comes close to the slower of the two; if they add up, it
 * cannot pass about half of it. Rounds alternate the three so background load hits them alike.
 * Writes one JSON result to stdout.
 */
import { spawn } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import { sessionOptions } from '../lambda/core/model';
import { openModel } from '../lambda/core/open';
import { RowReader, type RowFormat } from '../lambda/core/rows';
import { READ_BUFFER_BYTES } from '../bin/cli/predict';
import { ROOT, TSX_ARGS } from './children';

export interface PredictChildArgs {
  readonly modelDir: string;
  readonly files: Readonly<Record<RowFormat, string>>;
  readonly rows: number;
  readonly features: number;
  readonly batchSize: number;
  readonly rounds: number;
  readonly workDir: string;
}

export interface PredictPoint {
  readonly format: RowFormat;
  readonly fileBytes: number;
  /** rows/s, median over rounds. */
  readonly predict: number;
  readonly parse: number;
  readonly raw: number;
  readonly perRound: { predict: number; parse: number; raw: number }[];
}

export interface PredictChildResult {
  readonly rows: number;
  readonly batchSize: number;
  readonly points: PredictPoint[];
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** (a): the same rows as batches of tensors, then session.run over all of them with the same options mdk predict uses. */
async function rawRate(
  a: PredictChildArgs,
  session: ort.InferenceSession,
  batches: Float32Array[],
): Promise<number> {
  const name = session.inputNames[0] as string;
  const fetches = [...session.outputNames];
  const started = performance.now();
  for (const data of batches) {
    await session.run(
      { [name]: new ort.Tensor('float32', data, [data.length / a.features, a.features]) },
      fetches,
    );
  }
  return a.rows / ((performance.now() - started) / 1000);
}

/** (b): read and parse, nothing else. */
async function parseRate(a: PredictChildArgs, format: RowFormat, reader: RowReader): Promise<number> {
  const started = performance.now();
  let line = 0;
  let rows = 0;
  for await (const text of createInterface({
    input: createReadStream(a.files[format], { highWaterMark: READ_BUFFER_BYTES }),
    crlfDelay: Infinity,
  })) {
    if (reader.line(++line, text)) rows++;
  }
  if (rows !== a.rows) throw new Error(`parsed ${rows} rows of ${a.rows}`);
  return rows / ((performance.now() - started) / 1000);
}

/** The real CLI; its own summary times the job (not node's start-up or the model load). */
async function predictRate(a: PredictChildArgs, format: RowFormat): Promise<number> {
  const summary = path.join(a.workDir, `summary-${format}.json`);
  const child = spawn(
    process.execPath,
    [
      ...TSX_ARGS,
      path.join(ROOT, 'bin', 'mdk.ts'),
      'predict',
      '--model',
      a.modelDir,
      '--input',
      a.files[format],
      '--output',
      path.join(a.workDir, `out-${format}.jsonl`),
      '--summary',
      summary,
      '--batch-size',
      String(a.batchSize),
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`mdk predict exited ${code}: ${stderr}`);
  const s = JSON.parse(await fs.readFile(summary, 'utf8')) as { predicted: number; durationMs: number };
  if (s.predicted !== a.rows) throw new Error(`mdk predict predicted ${s.predicted} rows of ${a.rows}`);
  return s.predicted / (s.durationMs / 1000);
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] as string) as PredictChildArgs;
  const bytes = readFileSync(path.join(a.modelDir, 'model.onnx'));
  const session = await ort.InferenceSession.create(bytes, sessionOptions({ allowSpinning: false }));
  const { model } = await openModel({ location: a.modelDir });
  // (a)'s tensors hold the CSV's rows, parsed before the clock starts.
  const all = new Float32Array(a.rows * a.features);
  let at = 0;
  const reader = new RowReader(model, 'csv');
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(a.files.csv), crlfDelay: Infinity })) {
    const row = reader.line(++line, text);
    if (row) for (const v of row.row[model.inputs[0]?.name ?? ''] as number[]) all[at++] = v;
  }
  const batches: Float32Array[] = [];
  for (let i = 0; i < a.rows; i += a.batchSize) {
    batches.push(all.slice(i * a.features, Math.min(a.rows, i + a.batchSize) * a.features));
  }
  await rawRate(a, session, batches.slice(0, 4)); // warm-up

  const points: PredictPoint[] = [];
  for (const format of ['csv', 'jsonl'] as const) {
    const perRound: PredictPoint['perRound'] = [];
    for (let r = 0; r < a.rounds; r++) {
      const raw = await rawRate(a, session, batches);
      const parse = await parseRate(a, format, new RowReader(model, format));
      const predict = await predictRate(a, format);
      perRound.push({ predict, parse, raw });
    }
    points.push({
      format,
      fileBytes: (await fs.stat(a.files[format])).size,
      predict: median(perRound.map((p) => p.predict)),
      parse: median(perRound.map((p) => p.parse)),
      raw: median(perRound.map((p) => p.raw)),
      perRound,
    });
  }
  await session.release();
  await model.release();
  const result: PredictChildResult = { rows: a.rows, batchSize: a.batchSize, points };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
