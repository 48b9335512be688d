/**
 * Drift: how far captured data has moved from a model's baseline. The population stability index (PSI) per
 * column, chi-square for categorical columns, and the predicted class mix. Shared by the scheduled drift job
 * and `mdk drift`, so both give the same numbers for the same records.
 */
import { hashValue, type CaptureRecord, type CaptureValue } from './capture-record';
import type { ColumnStats, ModelBaseline } from './types';

/**
 * Proportions are floored at this before PSI takes their log, so a bin empty on one side gives a large but
 * finite term instead of infinity. 1e-4 is the usual choice: one empty bin against 10% adds about 0.7.
 */
export const PSI_EPSILON = 1e-4;
/** The usual reading of PSI: under 0.1 stable, 0.1 to 0.2 a moderate shift, 0.2 and over a significant one. */
export const DEFAULT_PSI_THRESHOLD = 0.2;
/** Below this many rows a bin's share is mostly noise, and PSI with it. */
export const DEFAULT_MIN_ROWS = 100;
/** The bin for categories the baseline never saw. */
export const OTHER_LABEL = '(other)';

export interface ColumnDrift {
  /** The baseline column's name. */
  readonly name: string;
  readonly source: 'input' | 'output';
  /** The input or output tensor the column is in. */
  readonly tensor: string;
  /** Position in the tensor's row, flattened row-major. */
  readonly index: number;
  readonly kind: 'numeric' | 'categorical';
  /** Values seen (usable ones). */
  readonly count: number;
  /** Rows where the value was absent, null, redacted or not usable for the column's kind. */
  readonly missing: number;
  /** @default - none: skipped */
  readonly psi?: number;
  /** Categorical columns only, when not skipped. */
  readonly chiSquare?: { readonly statistic: number; readonly df: number; readonly pValue: number };
  /**
   * Shares per bin (unsmoothed proportions), in the same order: numeric labels like `[4.3, 4.66)` (the last
   * bin closed), categorical labels the baseline's category text and then `(other)`.
   */
  readonly bins: {
    readonly labels: readonly string[];
    readonly expected: readonly number[];
    readonly actual: readonly number[];
  };
  /** Why there is no PSI, e.g. "redacted", "hashed numeric values", "no values". @default - not skipped */
  readonly skipped?: string;
}

export interface DriftReport {
  readonly model: string;
  readonly version: string;
  /** Records added. */
  readonly rows: number;
  readonly window?: { readonly start: string; readonly end: string };
  readonly threshold: number;
  readonly features: readonly ColumnDrift[];
  readonly predictions: readonly ColumnDrift[];
  /** The largest feature PSI. @default - none: no feature has a PSI */
  readonly maxFeaturePsi?: number;
  /** The largest prediction PSI. @default - none: no prediction column has a PSI */
  readonly predictionPsi?: number;
  /** Names of the columns whose PSI is at or over the threshold. */
  readonly drifted: readonly string[];
  /**
   * The first categorical prediction column's share of each class, in percent. A class that is an integer
   * index into the manifest's `labels` is named by its label.
   * @default - none: no categorical prediction column with values
   */
  readonly classShare?: Readonly<Record<string, number>>;
  /** Why no column has a PSI, e.g. "42 rows, fewer than the 100 needed". @default - not skipped */
  readonly skipped?: string;
}

function checkCounts(what: string, counts: readonly number[]): number {
  let total = 0;
  for (const c of counts) {
    if (!Number.isFinite(c) || c < 0) throw new Error(`${what} counts must be finite and >= 0, got ${c}`);
    total += c;
  }
  if (total <= 0) throw new Error(`${what} counts are all zero`);
  return total;
}

function checkPair(expected: readonly number[], actual: readonly number[]): void {
  if (expected.length !== actual.length || expected.length === 0) {
    throw new Error(
      `expected and actual need the same number of bins (at least 1), got ${expected.length} and ${actual.length}`,
    );
  }
}

/**
 * The population stability index of `actual` against `expected`, both counts per bin in the same order:
 * the sum over bins of (a - e) * ln(a / e), with a and e the bins' proportions floored at PSI_EPSILON.
 * Symmetric in its arguments, 0 for identical proportions.
 */
export function psi(expected: readonly number[], actual: readonly number[]): number {
  checkPair(expected, actual);
  const eTotal = checkCounts('expected', expected);
  const aTotal = checkCounts('actual', actual);
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max((expected[i] as number) / eTotal, PSI_EPSILON);
    const a = Math.max((actual[i] as number) / aTotal, PSI_EPSILON);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/**
 * Pearson's chi-square goodness of fit of the `actual` counts against the `expected` distribution (counts or
 * proportions: only their ratios matter). Expected proportions are floored at PSI_EPSILON (then renormalized)
 * so a category the baseline never saw gives a large statistic rather than a division by zero. Bins empty on
 * both sides are left out; df is the bins left, less one.
 */
export function chiSquare(
  expected: readonly number[],
  actual: readonly number[],
): { statistic: number; df: number; pValue: number } {
  checkPair(expected, actual);
  const eTotal = checkCounts('expected', expected);
  const n = checkCounts('actual', actual);
  const kept: { p: number; a: number }[] = [];
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    const a = actual[i] as number;
    if (e === 0 && a === 0) continue;
    kept.push({ p: Math.max(e / eTotal, PSI_EPSILON), a });
  }
  const pTotal = kept.reduce((s, k) => s + k.p, 0);
  let statistic = 0;
  for (const k of kept) {
    const m = (n * k.p) / pTotal;
    statistic += ((k.a - m) * (k.a - m)) / m;
  }
  const df = kept.length - 1;
  return { statistic, df, pValue: df > 0 ? chiSquareSurvival(statistic, df) : 1 };
}

/** ln Γ(x) for x > 0: Lanczos' approximation (g = 7, nine terms), good to about 15 digits. */
function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let sum = c[0] as number;
  for (let i = 1; i < c.length; i++) sum += (c[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

const GAMMA_EPS = 1e-15;
const GAMMA_TINY = 1e-300;
const GAMMA_MAX_TERMS = 10_000;

/**
 * The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a): the series for P = 1 - Q when
 * x < a + 1, where it converges fast, else Q's continued fraction (modified Lentz).
 */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) throw new Error(`gammaQ needs a > 0 and x >= 0, got a=${a}, x=${x}`);
  if (x === 0) return 1;
  const front = Math.exp(-x + a * Math.log(x) - lnGamma(a));
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < GAMMA_MAX_TERMS; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * GAMMA_EPS) break;
    }
    return Math.min(1, Math.max(0, 1 - sum * front));
  }
  let b = x + 1 - a;
  let c = 1 / GAMMA_TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < GAMMA_MAX_TERMS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < GAMMA_TINY) d = GAMMA_TINY;
    c = b + an / c;
    if (Math.abs(c) < GAMMA_TINY) c = GAMMA_TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < GAMMA_EPS) break;
  }
  return Math.min(1, Math.max(0, front * h));
}

/** P(X >= x) for X chi-square distributed with df degrees of freedom: Q(df / 2, x / 2). */
export function chiSquareSurvival(x: number, df: number): number {
  if (!Number.isSafeInteger(df) || df < 1) throw new Error(`df must be a positive integer, got ${df}`);
  if (!(x > 0)) return 1;
  return gammaQ(df / 2, x / 2);
}

/** One baseline column, and the counts of what was seen in it. */
interface Column {
  readonly name: string;
  readonly source: 'input' | 'output';
  readonly tensor: string;
  readonly index: number;
  readonly kind: 'numeric' | 'categorical';
  readonly labels: readonly string[];
  readonly expected: readonly number[];
  readonly actual: number[];
  /** Numeric: the histogram's edges. */
  readonly edges?: readonly number[];
  /** Categorical: bin of a category's text, and of its hash. */
  readonly categories?: ReadonlyMap<string, number>;
  readonly hashes?: ReadonlyMap<string, number>;
  /** Why the baseline column cannot be used. */
  readonly unusable?: string;
  count: number;
  missing: number;
  redacted: number;
  hashedNumbers: number;
}

function edgeLabel(edges: readonly number[], i: number): string {
  const last = i === edges.length - 2;
  return `[${edges[i]}, ${edges[i + 1]}${last ? ']' : ')'}`;
}

/** Why a numeric baseline's histogram cannot be binned on, or undefined when it can. */
function histogramProblem(stats: object): string | undefined {
  const h = (stats as { histogram?: { edges?: unknown; counts?: unknown } }).histogram;
  const edges: unknown = h?.edges;
  const counts: unknown = h?.counts;
  if (!Array.isArray(edges) || !Array.isArray(counts)) return 'baseline has no histogram';
  const e = edges as readonly unknown[];
  const n = counts as readonly unknown[];
  if (n.length < 1 || e.length !== n.length + 1) {
    return `baseline histogram needs one more edge than counts, got ${e.length} edges and ${n.length} counts`;
  }
  for (let i = 0; i < e.length; i++) {
    const v = e[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || (i > 0 && v < (e[i - 1] as number))) {
      return 'baseline histogram edges must be finite and ascending';
    }
  }
  if (n.some((c) => typeof c !== 'number' || !Number.isFinite(c) || c < 0)) {
    return 'baseline histogram counts must be finite and >= 0';
  }
  if ((n as readonly number[]).reduce((s, c) => s + c, 0) <= 0) return 'baseline histogram is empty';
  return undefined;
}

function makeColumn(
  stats: ColumnStats & { readonly name: string; readonly index: number },
  source: 'input' | 'output',
  tensor: string,
): Column {
  const common = {
    name: String(stats.name),
    source,
    tensor: String(tensor),
    index: stats.index,
    count: 0,
    missing: 0,
    redacted: 0,
    hashedNumbers: 0,
  };
  const kind = (stats as { kind?: unknown }).kind;
  const unusable = (k: 'numeric' | 'categorical', why: string): Column => ({
    ...common,
    kind: k,
    labels: [],
    expected: [],
    actual: [],
    unusable: why,
  });
  if (!Number.isSafeInteger(stats.index) || stats.index < 0) {
    return unusable(
      kind === 'categorical' ? 'categorical' : 'numeric',
      `baseline index ${stats.index} is not a position`,
    );
  }
  if (kind === 'categorical') {
    const cats = (stats as { categories?: unknown }).categories;
    if (typeof cats !== 'object' || cats === null || Array.isArray(cats)) {
      return unusable('categorical', 'baseline has no categories');
    }
    const entries = Object.entries(cats as Record<string, unknown>);
    if (entries.some(([, n]) => typeof n !== 'number' || !Number.isFinite(n) || n < 0)) {
      return unusable('categorical', 'baseline category counts must be finite and >= 0');
    }
    if (entries.reduce((s, [, n]) => s + (n as number), 0) <= 0) {
      return unusable('categorical', 'baseline has no categories');
    }
    const categories = new Map<string, number>();
    const hashes = new Map<string, number>();
    entries.forEach(([text], i) => {
      categories.set(text, i);
      hashes.set(hashValue(text), i);
    });
    return {
      ...common,
      kind: 'categorical',
      labels: [...entries.map(([text]) => text), OTHER_LABEL],
      expected: [...entries.map(([, n]) => n as number), 0],
      actual: new Array<number>(entries.length + 1).fill(0),
      categories,
      hashes,
    };
  }
  if (kind !== undefined && kind !== 'numeric') {
    return unusable('numeric', `baseline kind ${JSON.stringify(kind)} is neither numeric nor categorical`);
  }
  const problem = histogramProblem(stats);
  if (problem) return unusable('numeric', problem);
  const { edges, counts } = (stats as Extract<ColumnStats, { kind?: 'numeric' }>).histogram;
  return {
    ...common,
    kind: 'numeric',
    labels: counts.map((_, i) => edgeLabel(edges, i)),
    expected: [...counts],
    actual: new Array<number>(counts.length).fill(0),
    edges,
  };
}

/**
 * The bin of a value on a histogram's edges: bins are [lo, hi) and the last is closed, as the baseline was
 * counted. Values below the first edge go in the first bin and above the last edge in the last bin, so the
 * ends are open: a shift past the training range still lands in (and inflates) an edge bin.
 */
export function histogramBin(edges: readonly number[], v: number): number {
  const bins = edges.length - 1;
  let lo = 0;
  let hi = bins - 1;
  // The last bin whose lower edge is <= v (binary search); the first bin when v is below every edge.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((edges[mid] as number) <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A column's element of one row: a scalar row is its own element 0. */
function elementOf(value: CaptureValue | undefined, index: number): unknown {
  if (Array.isArray(value)) return (value as readonly unknown[])[index];
  return index === 0 ? value : undefined;
}

function listed(names: unknown, column: Column): boolean {
  return Array.isArray(names) && (names.includes(column.name) || names.includes(column.tensor));
}

function round(v: number): number {
  return Number(v.toPrecision(6));
}

/**
 * Counts captured records into a baseline's bins, one record at a time: memory is the bins, whatever the
 * number of records, so a day of captures streams through it.
 */
export class DriftAccumulator {
  private readonly features: Column[];
  private readonly predictions: Column[];
  private readonly labels: readonly string[];
  private count = 0;

  constructor(baseline: ModelBaseline, options: { readonly labels?: readonly string[] } = {}) {
    // The baseline comes from a manifest file: check the shape the types promise before trusting it.
    const features: unknown = (baseline as Partial<ModelBaseline> | null)?.features;
    const predictions: unknown = (baseline as Partial<ModelBaseline> | null)?.predictions;
    if (!Array.isArray(features)) throw new Error('the baseline needs a features array');
    if (predictions !== undefined && !Array.isArray(predictions)) {
      throw new Error('the baseline predictions must be an array when present');
    }
    this.features = baseline.features.map((f) => makeColumn(f, 'input', f.input));
    this.predictions = (baseline.predictions ?? []).map((p) => makeColumn(p, 'output', p.output));
    this.labels = options.labels ?? [];
  }

  /** Records added so far. */
  get rows(): number {
    return this.count;
  }

  add(record: CaptureRecord): void {
    this.count++;
    for (const c of this.features) this.addValue(c, record.inputs, record);
    for (const c of this.predictions) this.addValue(c, record.outputs);
  }

  report(meta: {
    readonly model: string;
    readonly version: string;
    readonly threshold?: number;
    readonly minRows?: number;
    readonly window?: { readonly start: string; readonly end: string };
  }): DriftReport {
    const threshold = meta.threshold ?? DEFAULT_PSI_THRESHOLD;
    if (!Number.isFinite(threshold) || threshold <= 0) {
      throw new Error(`the PSI threshold must be a number over 0, got ${threshold}`);
    }
    const minRows = meta.minRows ?? DEFAULT_MIN_ROWS;
    if (!Number.isSafeInteger(minRows) || minRows < 0) {
      throw new Error(`the minimum rows must be 0 or a positive integer, got ${minRows}`);
    }
    const skipped =
      this.count < minRows
        ? `${this.count} ${this.count === 1 ? 'row' : 'rows'}, fewer than the ${minRows} needed`
        : undefined;
    const features = this.features.map((c) => this.columnDrift(c, skipped !== undefined));
    const predictions = this.predictions.map((c) => this.columnDrift(c, skipped !== undefined));
    const maxOf = (cols: readonly ColumnDrift[]) => {
      const values = cols.flatMap((c) => (c.psi === undefined ? [] : [c.psi]));
      return values.length > 0 ? Math.max(...values) : undefined;
    };
    const maxFeaturePsi = maxOf(features);
    const predictionPsi = maxOf(predictions);
    const classShare = skipped ? undefined : this.classShare();
    return {
      model: meta.model,
      version: meta.version,
      rows: this.count,
      ...(meta.window ? { window: { start: meta.window.start, end: meta.window.end } } : {}),
      threshold,
      features,
      predictions,
      ...(maxFeaturePsi !== undefined ? { maxFeaturePsi } : {}),
      ...(predictionPsi !== undefined ? { predictionPsi } : {}),
      drifted: [...features, ...predictions]
        .filter((c) => c.psi !== undefined && c.psi >= threshold)
        .map((c) => c.name),
      ...(classShare ? { classShare } : {}),
      ...(skipped ? { skipped } : {}),
    };
  }

  private addValue(c: Column, values: Readonly<Record<string, CaptureValue>>, record?: CaptureRecord): void {
    if (c.unusable) return;
    // Only inputs are ever redacted or hashed; the names are features' or whole inputs'.
    if (record && listed(record.redacted, c)) {
      c.redacted++;
      c.missing++;
      return;
    }
    const hashed = record !== undefined && listed(record.hashed, c);
    const v = elementOf(values[c.tensor], c.index);
    if (c.kind === 'numeric') {
      if (hashed) {
        c.hashedNumbers++;
        c.missing++;
      } else if (typeof v === 'number' && Number.isFinite(v)) {
        (c.actual[histogramBin(c.edges as readonly number[], v)] as number)++;
        c.count++;
      } else {
        c.missing++;
      }
      return;
    }
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      c.missing++;
      return;
    }
    const bins = hashed ? c.hashes : c.categories;
    const bin = bins?.get(String(v)) ?? c.actual.length - 1;
    (c.actual[bin] as number)++;
    c.count++;
  }

  private columnDrift(c: Column, tooFewRows: boolean): ColumnDrift {
    const share = (counts: readonly number[]) => {
      const total = counts.reduce((s, n) => s + n, 0);
      return counts.map((n) => (total > 0 ? n / total : 0));
    };
    const skipped =
      c.unusable ??
      (c.count === 0
        ? c.redacted > 0
          ? 'redacted'
          : c.hashedNumbers > 0
            ? 'hashed numeric values'
            : 'no values'
        : tooFewRows
          ? 'too few rows'
          : undefined);
    return {
      name: c.name,
      source: c.source,
      tensor: c.tensor,
      index: c.index,
      kind: c.kind,
      count: c.count,
      missing: c.missing,
      ...(skipped === undefined ? { psi: psi(c.expected, c.actual) } : {}),
      ...(skipped === undefined && c.kind === 'categorical'
        ? { chiSquare: chiSquare(c.expected, c.actual) }
        : {}),
      bins: { labels: c.labels, expected: share(c.expected), actual: share(c.actual) },
      ...(skipped !== undefined ? { skipped } : {}),
    };
  }

  private classShare(): Record<string, number> | undefined {
    const c = this.predictions.find((p) => p.kind === 'categorical' && !p.unusable && p.count > 0);
    if (!c) return undefined;
    const out: Record<string, number> = {};
    c.labels.forEach((label, i) => {
      const n = c.actual[i] as number;
      if (label === OTHER_LABEL && n === 0) return;
      const named = /^\d+$/.test(label) ? this.labels[Number(label)] : undefined;
      out[named ?? label] = round((100 * n) / c.count);
    });
    return out;
  }
}
