import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { computeBaseline, type BaselineResult } from '../../lambda/core/baseline';
import { InferenceError } from '../../lambda/core/errors';
import { resolveLimits } from '../../lambda/core/limits';
import { MANIFEST_FILE } from '../../lambda/core/model-store';
import { openModel } from '../../lambda/core/open';
import type { ColumnStats, ModelBaseline } from '../../lambda/core/types';
import { CliError, parse, required, ROW_FILE_OPTIONS, rowFileOptions, str, UsageError } from './args';
import { READ_BUFFER_BYTES } from './predict';

const HELP = `Usage: mdk baseline --model DIR --data FILE [options]

Computes the baseline drift is measured against, from a data file (the training data, say), and writes it
into the model folder's model.json:
  features     per input column: count, mean, std, min, max, quantiles and a 10-bin histogram, or for
               strings, booleans and integers with at most 20 distinct values, the count of each value
  predictions  the model's own predictions on the same rows, for each output with one value per row
               (a class label, a score): its class mix or its statistics
Columns are named by the manifest's baseline when it has the same columns, else by the CSV header, else
'input[i]'. The file is streamed; numeric columns keep their values for exact quantiles (8 bytes each).

Options:
  --model DIR        model folder (model.onnx + model.json), or a .onnx file with --output (required)
  --data FILE        JSONL or CSV rows, as 'mdk predict' reads them (required)
  --output FILE      write the baseline here as JSON instead of into DIR/model.json
  --format F         jsonl or csv (default: from the data file's extension, else jsonl)
  --header H         CSV header: auto, present or absent (default auto)
  --id-field NAME    JSONL key or CSV column holding a row id, not a feature (default id)
  -h, --help         this help

Exit status: 0 written, 1 the data or model cannot be used (the message says what to fix), 2 usage.
`;

/** Rows between progress lines when stderr is not a terminal. */
const PROGRESS_EVERY = 100_000;

const num = (x: number): string => String(Number(x.toPrecision(4)));

function describe(s: ColumnStats): string {
  if (s.kind === 'categorical') {
    const top = Object.entries(s.categories)
      .sort(([, a], [, b]) => b - a)
      .slice(0, 3)
      .map(([k, c]) => `${k} ${Math.round((c / s.count) * 100)}%`);
    const more = Object.keys(s.categories).length - top.length;
    return top.join(', ') + (more > 0 ? ` (+${more} more)` : '');
  }
  return `mean ${num(s.mean)}, std ${num(s.std)}, [${num(s.min)}, ${num(s.max)}]`;
}

/** A table of the baseline's columns: what a data scientist checks before trusting it. */
export function baselineTable(baseline: ModelBaseline): string {
  const rows: string[][] = [
    ['COLUMN', 'SOURCE', 'KIND', 'COUNT', 'SUMMARY'],
    ...baseline.features.map((f) => [
      f.name,
      `input ${f.input}`,
      f.kind ?? 'numeric',
      String(f.count),
      describe(f),
    ]),
    ...(baseline.predictions ?? []).map((p) => [
      p.name,
      `output ${p.output}`,
      p.kind ?? 'numeric',
      String(p.count),
      describe(p),
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

async function isDirectory(p: string): Promise<boolean> {
  return (await fs.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

export async function baselineCommand(argv: string[]): Promise<number> {
  const p = parse(argv, {
    model: { type: 'string' },
    data: { type: 'string' },
    output: { type: 'string' },
    ...ROW_FILE_OPTIONS,
  });
  if (p.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const location = required(p, 'model');
  const dataPath = required(p, 'data');
  const outputPath = str(p, 'output');
  const { format, header, idField } = rowFileOptions(p, dataPath);
  const manifestPath = (await isDirectory(location)) ? path.join(location, MANIFEST_FILE) : undefined;
  if (outputPath === undefined && manifestPath === undefined) {
    throw new UsageError(
      `--model ${location} is not a model folder, so there is no model.json to write the baseline into; pass --output FILE`,
    );
  }
  if (outputPath === undefined && manifestPath !== undefined) {
    await fs.access(manifestPath).catch(() => {
      throw new CliError(
        `${location} has no ${MANIFEST_FILE} to write the baseline into; pass --output FILE, or add a manifest`,
      );
    });
  }
  await fs.stat(dataPath).catch(() => {
    throw new CliError(`data file ${dataPath} does not exist`);
  });

  const { model } = await openModel({ location }, { session: { allowSpinning: false } }).catch(
    (err: Error) => {
      throw new CliError(err.message);
    },
  );
  const tty = process.stderr.isTTY;
  let nextLine = PROGRESS_EVERY;
  const progress = (rows: number): void => {
    if (tty) process.stderr.write(`\r\x1b[K${rows.toLocaleString()} rows`);
    else if (rows >= nextLine) {
      process.stderr.write(`mdk: ${rows.toLocaleString()} rows so far\n`);
      nextLine += PROGRESS_EVERY;
    }
  };
  let result: BaselineResult;
  try {
    result = await computeBaseline({
      model,
      limits: resolveLimits({}),
      format,
      csvHeader: header,
      idField,
      sourceName: path.basename(dataPath),
      lines: createInterface({
        input: createReadStream(dataPath, { highWaterMark: READ_BUFFER_BYTES }),
        crlfDelay: Infinity,
      }),
      onProgress: progress,
    });
  } catch (err) {
    if (err instanceof InferenceError) throw new CliError(`${dataPath}: ${err.message}`);
    throw err;
  } finally {
    if (tty) process.stderr.write('\r\x1b[K');
    await model.release();
  }

  const { baseline } = result;
  process.stdout.write(`${baselineTable(baseline)}\n`);
  for (const s of result.skippedOutputs) {
    process.stderr.write(`mdk: no prediction baseline for output '${s.name}': ${s.reason}\n`);
  }
  if (result.csv?.ignored.length) {
    process.stderr.write(`mdk: left out columns no input uses: ${result.csv.ignored.join(', ')}\n`);
  }
  if (outputPath !== undefined) {
    await fs.writeFile(outputPath, `${JSON.stringify(baseline, null, 2)}\n`);
    process.stderr.write(`mdk: baseline of ${result.rows} rows written to ${outputPath}\n`);
    return 0;
  }
  const target = manifestPath as string;
  const manifest = JSON.parse(await fs.readFile(target, 'utf8')) as Record<string, unknown>;
  await fs.writeFile(target, `${JSON.stringify({ ...manifest, baseline }, null, 2)}\n`);
  process.stderr.write(
    `mdk: baseline of ${result.rows} rows written into ${target}\n` +
      `mdk: note: a deployed version is immutable; give model.json a new "version" (it is ${JSON.stringify(manifest.version)}) before you deploy it\n`,
  );
  return 0;
}
