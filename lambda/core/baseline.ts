/**
 * Baselines for drift: per-column statistics of a model's inputs (features) and of its own predictions, in
 * the manifest's `baseline`. One algorithm for the example model's build script, `mdk baseline` and tests.
 *
 * Memory: a numeric column keeps every value (8 bytes each, in a growing Float64Array) because exact
 * quantiles need them all: 10 million rows of 4 numeric columns hold ~320 MB. A categorical column keeps one
 * count per distinct value; an integer column also keeps its values until it is known to be numeric.
 */
import { BatchPredictor, type RowInput } from './batch';
import { histogramBin } from './drift';
import { BadRequestError, InferenceError } from './errors';
import type { Limits } from './limits';
import type { OnnxModel, TensorIO } from './model';
import { RowReader, splitCsvLine, type CsvMapping, type RowFormat, type RowReaderOptions } from './rows';
import type {
  CategoricalStats,
  ColumnStats,
  FeatureBaseline,
  ModelBaseline,
  NumericStats,
  PredictionBaseline,
} from './types';

export const HISTOGRAM_BINS = 10;
export const QUANTILES: readonly number[] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/** An integer column with at most this many distinct values is categorical (a code, a count of children). */
export const MAX_INTEGER_CATEGORIES = 20;

/** 6 significant digits: readable JSON, and toPrecision is exact and deterministic. */
export const sig6 = (x: number): number => Number(x.toPrecision(6));

/** Linear interpolation between order statistics (numpy's default, "type 7"). */
function quantile(sorted: Float64Array, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo] as number;
  return a + (h - lo) * ((sorted[hi] as number) - a);
}

/**
 * Statistics of numeric values: population mean and std, quantiles, and a histogram of `bins` equal-width
 * bins over [min, max] whose edges are rounded to 6 significant digits. Values are binned against the
 * rounded edges that are published, so anyone re-binning with them gets the same counts.
 */
export function numericStats(values: ArrayLike<number>, bins = HISTOGRAM_BINS): NumericStats {
  const n = values.length;
  if (n === 0) throw new Error('no values to describe');
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`bins must be a whole number >= 1, got ${bins}`);
  const sorted = Float64Array.from(values).sort();
  const min = sorted[0] as number;
  const max = sorted[n - 1] as number;
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error('values must be finite numbers');
  // Summed in the given order, two passes: the same figures as the plain formula, however the rows came.
  let total = 0;
  for (let i = 0; i < n; i++) total += values[i] as number;
  const mean = total / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += ((values[i] as number) - mean) ** 2;
  const width = (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? sig6(max) : sig6(min + i * width)));
  const counts = new Array<number>(bins).fill(0);
  // The rule drift re-bins captured values with, so the two counts compare.
  for (let i = 0; i < n; i++) {
    const bin = histogramBin(edges, sorted[i] as number);
    counts[bin] = (counts[bin] as number) + 1;
  }
  return {
    kind: 'numeric',
    count: n,
    mean: sig6(mean),
    std: sig6(Math.sqrt(squares / n)),
    min: sig6(min),
    max: sig6(max),
    quantiles: QUANTILES.map((q) => sig6(quantile(sorted, q))),
    histogram: { edges, counts },
  };
}

/** A value's category key: the text the manifest's categories are keyed by (`String(3)` is `'3'`). */
export function categoryKey(value: string | number | boolean | bigint): string {
  return String(value);
}

/** Counts per category, keys in order: numerically when every key is a number, else as text. */
export function categoricalStats(counts: ReadonlyMap<string, number>): CategoricalStats {
  const keys = [...counts.keys()];
  const numeric = keys.every((k) => k.trim() !== '' && Number.isFinite(Number(k)));
  keys.sort(numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let count = 0;
  const categories: Record<string, number> = {};
  for (const k of keys) {
    const c = counts.get(k) ?? 0;
    categories[k] = c;
    count += c;
  }
  return { kind: 'categorical', count, categories };
}

/** How a column's values are described. `integer` becomes categorical or numeric by its distinct values. */
export type ColumnType = 'numeric' | 'integer' | 'categorical';

/** The column type of a tensor's elements: BYTES and BOOL are categorical, integers decided by their values. */
export function columnTypeOf(io: TensorIO): ColumnType {
  const kind = io.info.kind;
  if (kind === 'float') return 'numeric';
  if (kind === 'int' || kind === 'bigint') return 'integer';
  return 'categorical';
}

/** Collects one column's values, then describes them. */
export class ColumnAccumulator {
  /** Numeric values, for quantiles; categorical columns keep none. */
  private values: Float64Array;
  private n = 0;
  /** Counts per value: always for a categorical column, for an integer one while it has few values. */
  private categories?: Map<string, number>;
  /** Values that were null or not usable for the column's type. */
  public missing = 0;

  constructor(
    public readonly type: ColumnType,
    private readonly bins = HISTOGRAM_BINS,
  ) {
    this.values = new Float64Array(type === 'categorical' ? 0 : 1024);
    if (type !== 'numeric') this.categories = new Map();
  }

  /** Values counted so far (missing ones are not). */
  public get count(): number {
    return this.n;
  }

  public add(value: unknown): void {
    if (this.type === 'categorical') {
      if (
        typeof value === 'string' ||
        typeof value === 'number' ||
        typeof value === 'boolean' ||
        typeof value === 'bigint'
      ) {
        this.count1(categoryKey(value));
        this.n++;
      } else this.missing++;
      return;
    }
    // An INT64 beyond 2^53 may come as a decimal string or a bigint: its key stays exact, its number does not.
    const exact = typeof value === 'bigint' || (typeof value === 'string' && /^-?\d+$/.test(value));
    const num = typeof value === 'number' ? value : exact ? Number(value) : NaN;
    if (!Number.isFinite(num)) {
      this.missing++;
      return;
    }
    if (this.n === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.n++] = num;
    if (this.categories) {
      this.count1(exact ? String(value) : categoryKey(num));
      // Past the limit it is numeric: stop counting (and holding) its values by category.
      if (this.categories.size > MAX_INTEGER_CATEGORIES) this.categories = undefined;
    }
  }

  private count1(key: string): void {
    const c = this.categories as Map<string, number>;
    c.set(key, (c.get(key) ?? 0) + 1);
  }

  /** The column's statistics, or undefined when it had no values. */
  public stats(): ColumnStats | undefined {
    if (this.count === 0) return undefined;
    if (this.categories) return categoricalStats(this.categories);
    return numericStats(this.values.subarray(0, this.n), this.bins);
  }
}

/** Flattens one row's value of a tensor row-major; a scalar is one element. */
export function flattenRow(value: unknown): unknown[] {
  if (!Array.isArray(value)) return [value];
  const out: unknown[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else out.push(v);
  };
  walk(value);
  return out;
}

interface Column {
  readonly tensor: string;
  readonly index: number;
  readonly acc: ColumnAccumulator;
}

/** Where the feature names came from. */
export type FeatureNaming = 'manifest' | 'header' | 'tensor';

export interface ComputeBaselineOptions extends RowReaderOptions {
  readonly model: OnnxModel;
  readonly limits: Limits;
  readonly format: RowFormat;
  /** The data file's lines in order; a CSV may start with a header line. */
  readonly lines: AsyncIterable<string>;
  /** Rows per model run. @default 256 */
  readonly batchSize?: number;
  /** Histogram bins of numeric columns. @default 10 */
  readonly bins?: number;
  /** Describes the data as `source.features` and `source.predictions` say. @default - the row count */
  readonly sourceName?: string;
  /** Called after each batch with the rows read so far. */
  readonly onProgress?: (rows: number) => void;
}

export interface BaselineResult {
  readonly baseline: ModelBaseline;
  readonly rows: number;
  readonly naming: FeatureNaming;
  readonly csv?: CsvMapping;
  /** Outputs with no prediction baseline, and why. */
  readonly skippedOutputs: readonly { readonly name: string; readonly reason: string }[];
}

/** A row that cannot be used: a baseline of some of the rows would describe data nobody chose. */
export class BaselineDataError extends BadRequestError {}

/**
 * Computes a model's baseline from a data file: features from every input column, predictions from running
 * the model on the same rows, for each tensor output with one value per row. The file is streamed; the
 * first row that cannot be read or predicted stops it with its line number.
 */
export async function computeBaseline(o: ComputeBaselineOptions): Promise<BaselineResult> {
  const batchSize = o.batchSize ?? 256;
  const inputs = o.model.inputs.filter((i): i is TensorIO => i.tensor);
  const outputs = o.model.outputs.filter((i): i is TensorIO => i.tensor);
  const reader = new RowReader(o.model, o.format, o);
  const predictor = new BatchPredictor(o.model, o.limits);
  const widths = new Map<string, number>();
  const scalar = new Set<string>();
  const features = new Map<string, Column[]>();
  const predictions = new Map<string, ColumnAccumulator | null>();
  const skippedOutputs: { name: string; reason: string }[] = [];
  for (const io of o.model.outputs) {
    if (!io.tensor) skippedOutputs.push({ name: io.name, reason: io.reason });
  }
  let header: string[] | undefined;
  let rows = 0;

  const addFeatures = (r: RowInput): void => {
    for (const io of inputs) {
      const value = r.row[io.name];
      const flat = flattenRow(value);
      let cols = features.get(io.name);
      if (!cols) {
        widths.set(io.name, flat.length);
        if (!Array.isArray(value)) scalar.add(io.name);
        const type = columnTypeOf(io);
        cols = flat.map((_, index) => ({ tensor: io.name, index, acc: new ColumnAccumulator(type, o.bins) }));
        features.set(io.name, cols);
      }
      if (flat.length !== cols.length) {
        throw new BaselineDataError(
          `line ${r.line}: input '${io.name}' has ${flat.length} values; the first row had ${cols.length}, and a baseline needs the same columns in every row`,
        );
      }
      cols.forEach((c, i) => c.acc.add(flat[i]));
    }
  };

  const predict = async (batch: RowInput[]): Promise<void> => {
    for (const result of await predictor.predict(batch)) {
      if ('failed' in result) {
        throw new BaselineDataError(`line ${result.failed.line}: ${result.failed.error}`);
      }
      for (const io of outputs) {
        let acc = predictions.get(io.name);
        const flat = flattenRow(result.ok.outputs[io.name]);
        if (acc === undefined) {
          // Only outputs with one value per row: a vector of scores per row is not a prediction's class mix.
          acc =
            flat.length === 1
              ? new ColumnAccumulator(io.info.kind === 'float' ? 'numeric' : 'categorical', o.bins)
              : null;
          predictions.set(io.name, acc);
          if (!acc) {
            skippedOutputs.push({ name: io.name, reason: `${flat.length} values per row, not one` });
          }
        }
        if (acc) acc.add(flat[0]);
      }
    }
  };

  let batch: RowInput[] = [];
  let lineNo = 0;
  for await (const text of o.lines) {
    lineNo++;
    if (o.format === 'csv' && header === undefined && rows === 0 && text.trim() !== '') {
      header = splitCsvLine(text, lineNo).map((c) => c.trim());
    }
    let parsed;
    try {
      parsed = reader.line(lineNo, text);
    } catch (err) {
      if (!(err instanceof InferenceError)) throw err;
      throw new BaselineDataError(`line ${lineNo}: ${err.message}`);
    }
    if (!parsed) continue;
    rows++;
    addFeatures(parsed);
    batch.push(parsed);
    if (batch.length >= batchSize) {
      await predict(batch);
      batch = [];
      o.onProgress?.(rows);
    }
  }
  if (batch.length > 0) await predict(batch);
  o.onProgress?.(rows);
  if (rows === 0) throw new BaselineDataError('the data file has no rows');

  const { names, naming } = featureNames(o.model, inputs, widths, scalar, reader.mapping, header);
  const featureStats: FeatureBaseline[] = [];
  for (const io of inputs) {
    for (const c of features.get(io.name) ?? []) {
      const stats = c.acc.stats();
      const name = names.get(`${c.tensor}\u0000${c.index}`) ?? c.tensor;
      if (!stats) throw new BaselineDataError(`feature ${name} has no usable values`);
      featureStats.push({ input: c.tensor, index: c.index, name, ...stats });
    }
  }
  const predictionStats: PredictionBaseline[] = [];
  for (const io of outputs) {
    const stats = predictions.get(io.name)?.stats();
    if (stats) predictionStats.push({ output: io.name, index: 0, name: io.name, ...stats });
  }
  const what = o.sourceName ? `${o.sourceName}, ${rows} rows` : `${rows} rows`;
  return {
    baseline: {
      features: featureStats,
      ...(predictionStats.length > 0 ? { predictions: predictionStats } : {}),
      source: {
        features: what,
        ...(predictionStats.length > 0 ? { predictions: `the model's predictions on ${what}` } : {}),
      },
    },
    rows,
    naming,
    csv: reader.mapping,
    skippedOutputs,
  };
}

/**
 * Feature names: the manifest's baseline names when it names exactly these columns, else a CSV header's
 * column names (when it mapped columns by position), else `input` for a scalar row and `input[i]`.
 */
function featureNames(
  model: OnnxModel,
  inputs: readonly TensorIO[],
  widths: ReadonlyMap<string, number>,
  scalar: ReadonlySet<string>,
  mapping: CsvMapping | undefined,
  header: readonly string[] | undefined,
): { names: Map<string, string>; naming: FeatureNaming } {
  const key = (tensor: string, index: number) => `${tensor}\u0000${index}`;
  const columns = inputs.flatMap((io) =>
    Array.from({ length: widths.get(io.name) ?? 0 }, (_, index) => key(io.name, index)),
  );
  const known = model.manifest?.baseline?.features ?? [];
  const fromManifest = new Map(known.map((f) => [key(f.input, f.index), f.name]));
  if (
    known.length === columns.length &&
    fromManifest.size === columns.length &&
    columns.every((c) => fromManifest.has(c))
  ) {
    return { names: fromManifest, naming: 'manifest' };
  }
  const only = inputs.length === 1 ? inputs[0] : undefined;
  if (mapping?.header && mapping.by === 'position' && header && only) {
    const named = header.filter((h) => h !== mapping.idColumn && !mapping.ignored.includes(h));
    if (named.length === (widths.get(only.name) ?? 0)) {
      return { names: new Map(named.map((h, i) => [key(only.name, i), h])), naming: 'header' };
    }
  }
  const names = new Map<string, string>();
  for (const io of inputs) {
    const width = widths.get(io.name) ?? 0;
    for (let i = 0; i < width; i++) {
      names.set(key(io.name, i), scalar.has(io.name) ? io.name : `${io.name}[${i}]`);
    }
  }
  return { names, naming: 'tensor' };
}
