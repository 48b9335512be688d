import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CAPTURE_FORMAT, isCaptureRecord, type CaptureRecord } from '../../lambda/core/capture-record';
import {
  DEFAULT_MIN_ROWS,
  DEFAULT_PSI_THRESHOLD,
  DriftAccumulator,
  type ColumnDrift,
  type DriftReport,
} from '../../lambda/core/drift';
import { captureLines } from '../../lambda/core/capture-record';
import { splitCsvLine, strictNumber } from '../../lambda/core/rows';
import type { ModelBaseline } from '../../lambda/core/types';
import { CliError, int, parse, required, str, UsageError } from './args';
import { renderDriftChart } from './drift-chart';
import { READ_BUFFER_BYTES } from './predict';

const HELP = `Usage: mdk drift --baseline model.json --data FILE [options]

Compares data with a model's baseline, as the scheduled drift job does: per column the population
stability index (PSI) and, for categorical columns, a chi-square test; for predictions, the class mix.
Prints a table per model version and writes an HTML chart of the distributions.

FILE is either
  capture records  JSONL, plain or gzipped: the lines 'mdk serve --capture FILE' writes, or the objects the
                   capture stream files in S3 (other lines are counted and left out); grouped by model
                   and version
  a CSV file       whose header names the baseline's features: fresh data to check (features only,
                   there are no predictions in it)

Options:
  --baseline FILE     a model.json with a baseline (see 'mdk baseline'), or a baseline JSON (required)
  --data FILE         capture records or CSV, as above (required)
  --chart FILE        where to write the HTML chart (default: the data file's name with .drift.html)
  --threshold X       PSI at or over which a column has drifted (default ${DEFAULT_PSI_THRESHOLD})
  --min-rows N        rows a version needs before PSI means anything (default ${DEFAULT_MIN_ROWS})
  --json              print the drift reports as JSON instead of tables
  --fail-on-drift     exit 3 when any column has drifted (for CI)
  -h, --help          this help

Exit status: 0 done, 3 drift found with --fail-on-drift, 1 the files cannot be used, 2 usage.
`;

interface BaselineFile {
  readonly baseline: ModelBaseline;
  readonly labels?: readonly string[];
  readonly name?: string;
  readonly version?: string;
  /** Inputs whose row is a scalar, so a CSV value is written as one, like a capture record's. */
  readonly scalarInputs: ReadonlySet<string>;
}

async function readBaselineFile(file: string): Promise<BaselineFile> {
  const text = await fs.readFile(file, 'utf8').catch(() => {
    throw new CliError(`baseline file ${file} does not exist`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CliError(`baseline file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const o = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const isBaseline = (v: unknown): v is ModelBaseline =>
    typeof v === 'object' && v !== null && Array.isArray((v as Record<string, unknown>).features);
  const baseline = isBaseline(o.baseline) ? o.baseline : isBaseline(o) ? o : undefined;
  if (!baseline || baseline.features.length === 0) {
    throw new CliError(
      `${file} has no baseline (a "baseline" with "features"); make one with: mdk baseline --model DIR --data TRAINING_DATA`,
    );
  }
  try {
    // Checks the baseline's columns (histograms, categories) before any data is read.
    new DriftAccumulator(baseline);
  } catch (err) {
    throw new CliError(`${file}: the baseline cannot be used: ${(err as Error).message}`);
  }
  const strings = (v: unknown) => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined);
  const inputs = Array.isArray(o.inputs) ? (o.inputs as { name?: unknown; shape?: unknown }[]) : [];
  return {
    baseline,
    labels: strings(o.labels),
    name: typeof o.name === 'string' ? o.name : undefined,
    version: typeof o.version === 'string' ? o.version : undefined,
    scalarInputs: new Set(
      inputs
        .filter((i) => typeof i.name === 'string' && Array.isArray(i.shape) && i.shape.length <= 1)
        .map((i) => i.name as string),
    ),
  };
}

/**
 * The file's lines, gunzipped when it starts with gzip's magic number (whatever it is called): the drift job's
 * own reader, so a file reads here as it would from the capture bucket. A line too long to be a record is null.
 */
async function dataLines(file: string): Promise<AsyncGenerator<string | null>> {
  await fs.access(file).catch(() => {
    throw new CliError(`data file ${file} does not exist`);
  });
  return captureLines(createReadStream(file, { highWaterMark: READ_BUFFER_BYTES }));
}

interface Group {
  readonly model: string;
  readonly version: string;
  readonly acc: DriftAccumulator;
  start?: string;
  end?: string;
}

interface ReadResult {
  readonly groups: Group[];
  /** Lines that were not capture records (or, in a CSV, rows that could not be read). */
  readonly other: number;
  readonly format: 'capture records' | 'CSV';
}

/** Turns CSV rows into records with the baseline's features, so the same accumulator counts them. */
class CsvRows {
  private columns?: { tensor: string; index: number; col: number; numeric: boolean }[];
  private widths = new Map<string, number>();
  private width = 0;
  public ignored: string[] = [];

  constructor(
    private readonly b: BaselineFile,
    private readonly file: string,
  ) {}

  /** A record for a data row, undefined for the header; throws for a row that cannot be read. */
  public row(text: string, line: number): CaptureRecord | undefined {
    const cells = splitCsvLine(text, line).map((c) => c.trim());
    if (!this.columns) {
      const features = this.b.baseline.features;
      const missing = features.filter((f) => !cells.includes(f.name)).map((f) => f.name);
      if (missing.length > 0) {
        throw new CliError(
          `${this.file}: a CSV file needs a header naming the baseline's features (${features.map((f) => f.name).join(', ')}); missing: ${missing.join(', ')}`,
        );
      }
      this.columns = features.map((f) => ({
        tensor: f.input,
        index: f.index,
        col: cells.indexOf(f.name),
        numeric: f.kind !== 'categorical',
      }));
      for (const c of this.columns)
        this.widths.set(c.tensor, Math.max(this.widths.get(c.tensor) ?? 0, c.index + 1));
      this.ignored = cells.filter((name) => !features.some((f) => f.name === name));
      this.width = cells.length;
      return undefined;
    }
    if (cells.length !== this.width) throw new Error(`has ${cells.length} columns, the header ${this.width}`);
    const inputs: Record<string, (string | number | null)[]> = {};
    for (const [tensor, width] of this.widths)
      inputs[tensor] = new Array<string | number | null>(width).fill(null);
    for (const c of this.columns) {
      const cell = cells[c.col] ?? '';
      const n = strictNumber(cell);
      const value = cell === '' ? null : !Number.isNaN(n) ? n : c.numeric ? null : cell;
      (inputs[c.tensor] as (string | number | null)[])[c.index] = value;
    }
    return {
      mdk_capture: CAPTURE_FORMAT,
      time: '',
      model: this.b.name ?? 'model',
      version: this.b.version ?? 'data',
      row: 0,
      rows: 1,
      latency_ms: 0,
      inputs: Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => [k, this.b.scalarInputs.has(k) ? (v[0] ?? null) : v]),
      ),
      outputs: {},
    };
  }
}

async function readData(file: string, b: BaselineFile): Promise<ReadResult & { ignored: string[] }> {
  const groups = new Map<string, Group>();
  let other = 0;
  let format: ReadResult['format'] | undefined = /\.csv(\.gz)?$/i.test(file) ? 'CSV' : undefined;
  const csv = new CsvRows(b, file);
  const add = (r: CaptureRecord): void => {
    const key = `${r.model}\u0000${r.version}`;
    let g = groups.get(key);
    if (!g) {
      g = { model: r.model, version: r.version, acc: new DriftAccumulator(b.baseline, { labels: b.labels }) };
      groups.set(key, g);
    }
    g.acc.add(r);
    if (r.time !== '') {
      if (g.start === undefined || r.time < g.start) g.start = r.time;
      if (g.end === undefined || r.time > g.end) g.end = r.time;
    }
  };
  let line = 0;
  for await (const text of await dataLines(file)) {
    line++;
    if (text === null) {
      other++;
      continue;
    }
    if (text.trim() === '') continue;
    // Capture files are JSON lines; anything else is taken for a CSV file.
    format ??= text.trimStart().startsWith('{') ? 'capture records' : 'CSV';
    if (format === 'CSV') {
      let record: CaptureRecord | undefined;
      try {
        record = csv.row(text, line);
      } catch (err) {
        if (err instanceof CliError) throw err;
        other++;
        continue;
      }
      if (record) add(record);
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      other++;
      continue;
    }
    if (isCaptureRecord(value)) add(value);
    else other++;
  }
  return { groups: [...groups.values()], other, format: format ?? 'capture records', ignored: csv.ignored };
}

const fmt = (x: number | undefined, digits = 3): string => (x === undefined ? '-' : x.toFixed(digits));

function status(c: ColumnDrift, threshold: number): string {
  if (c.skipped !== undefined) return `skipped: ${c.skipped}`;
  return c.psi !== undefined && c.psi >= threshold ? 'drift' : 'ok';
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

/** One version's drift as text: a line on what was compared, a row per column, and the class mix. */
export function driftText(report: DriftReport): string {
  const window = report.window ? `, ${report.window.start} to ${report.window.end}` : '';
  const head =
    `${report.model} ${report.version}: ${report.rows} rows${window}; ` +
    (report.skipped !== undefined
      ? `no PSI: ${report.skipped}`
      : report.drifted.length > 0
        ? `DRIFT in ${report.drifted.join(', ')}`
        : 'no drift') +
    ` (PSI threshold ${report.threshold})`;
  const rows = [
    ['COLUMN', 'SOURCE', 'KIND', 'ROWS', 'MISSING', 'PSI', 'CHI2 P', 'STATUS'],
    ...[...report.features, ...report.predictions].map((c) => [
      c.name,
      c.source,
      c.kind,
      String(c.count),
      String(c.missing),
      fmt(c.psi),
      c.chiSquare ? c.chiSquare.pValue.toPrecision(3) : '-',
      status(c, report.threshold),
    ]),
  ];
  const mix = report.classShare
    ? `\nclass mix: ${Object.entries(report.classShare)
        .map(([k, v]) => `${k} ${v.toFixed(1)}%`)
        .join(', ')}`
    : '';
  return `${head}\n${table(rows)}${mix}\n`;
}

function threshold(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_PSI_THRESHOLD;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0) {
    throw new UsageError(`--threshold must be a number over 0, got ${JSON.stringify(raw)}`);
  }
  return v;
}

/** `captured.jsonl.gz` → `captured.drift.html`, beside it. */
export function defaultChartPath(dataPath: string): string {
  const base = path.basename(dataPath).replace(/\.gz$/i, '');
  const ext = path.extname(base);
  return path.join(path.dirname(dataPath), `${ext ? base.slice(0, -ext.length) : base}.drift.html`);
}

export async function driftCommand(argv: string[]): Promise<number> {
  const p = parse(argv, {
    baseline: { type: 'string' },
    data: { type: 'string' },
    chart: { type: 'string' },
    threshold: { type: 'string' },
    'min-rows': { type: 'string' },
    json: { type: 'boolean' },
    'fail-on-drift': { type: 'boolean' },
  });
  if (p.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const baselinePath = required(p, 'baseline');
  const dataPath = required(p, 'data');
  const limit = threshold(str(p, 'threshold'));
  const minRows = int(p, 'min-rows', 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_MIN_ROWS;
  const chartPath = str(p, 'chart') ?? defaultChartPath(dataPath);
  const json = p.values.json === true;

  const b = await readBaselineFile(baselinePath);
  let data: Awaited<ReturnType<typeof readData>>;
  try {
    data = await readData(dataPath, b);
  } catch (err) {
    if (err instanceof CliError) throw err;
    // A truncated gzip file, say: name the file.
    throw new CliError(`cannot read ${dataPath}: ${(err as Error).message}`);
  }
  if (data.groups.length === 0) {
    throw new CliError(
      data.format === 'CSV'
        ? `${dataPath} has no data rows${data.other > 0 ? ` (${data.other} rows could not be read)` : ''}`
        : `${dataPath} has no capture records (lines with "mdk_capture": 1)` +
            (data.other > 0 ? `; its ${data.other} lines are something else` : '; it is empty'),
    );
  }
  const reports = data.groups.map((g) =>
    g.acc.report({
      model: g.model,
      version: g.version,
      threshold: limit,
      minRows,
      ...(g.start !== undefined && g.end !== undefined ? { window: { start: g.start, end: g.end } } : {}),
    }),
  );
  const notes: string[] = [];
  if (data.other > 0) {
    notes.push(
      data.format === 'CSV'
        ? `${data.other} rows could not be read (a column too many or too few, or bad quoting) and were left out`
        : `${data.other} lines were not capture records and were left out`,
    );
  }
  if (data.ignored.length > 0)
    notes.push(`left out columns the baseline does not name: ${data.ignored.join(', ')}`);
  const others =
    b.name === undefined ? [] : data.groups.filter((g) => g.model !== b.name).map((g) => g.model);
  if (others.length > 0) {
    notes.push(
      `the baseline is ${b.name}'s, but records of ${[...new Set(others)].join(', ')} were compared with it`,
    );
  }
  if (data.format === 'CSV') notes.push('a CSV file has no predictions: feature drift only');

  await fs.writeFile(chartPath, renderDriftChart(reports, path.basename(dataPath))).catch((err: Error) => {
    throw new CliError(`cannot write the chart to ${chartPath}: ${err.message}`);
  });
  if (json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  else process.stdout.write(reports.map(driftText).join('\n'));
  for (const n of notes) process.stderr.write(`mdk: ${n}\n`);
  (json ? process.stderr : process.stdout).write(`${json ? 'mdk: ' : '\n'}chart: ${chartPath}\n`);
  const drifted = reports.some((r) => r.drifted.length > 0);
  return drifted && p.values['fail-on-drift'] === true ? 3 : 0;
}
