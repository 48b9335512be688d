/**
 * Data capture on the serving path: a sampled request's rows become capture records (capture-record.ts),
 * one JSON line each, handed to a sink. In Lambda and the container the sink is stdout, which the platform
 * ships to CloudWatch Logs on its own; a subscription filter takes the lines on to Firehose and S3. So a
 * captured request makes no network call of its own, and a sink failure never fails the request.
 */
import type { Tensor } from 'onnxruntime-node';
import { CAPTURE_FORMAT, hashValue, type CaptureRecord, type CaptureScalar } from './capture-record';
import { infoForOrt } from './datatypes';
import type { OnnxModel } from './model';

export interface CaptureConfig {
  /** Share of requests captured, 0 to 100. */
  readonly percent: number;
  /** Inputs or baseline feature names whose values are written as null. */
  readonly redact: readonly string[];
  /** Inputs or baseline feature names whose values are written as `hashValue(v)`. */
  readonly hash: readonly string[];
  /** Rows captured per request at most, spread evenly over a bigger request. */
  readonly maxRows: number;
}

export const DEFAULT_CAPTURE_MAX_ROWS = 1000;

/**
 * CloudWatch Logs takes events up to 256 KiB, less 26 bytes; a row whose line is longer is skipped, not cut,
 * so every record that arrives is whole.
 */
export const MAX_CAPTURE_LINE_BYTES = 256 * 1024 - 1024;

/**
 * The container's limit: Docker's log drivers split a line longer than 16 KiB into several events, which neither
 * the subscription filter nor the transform would know as a capture record.
 */
export const CONTAINER_CAPTURE_LINE_BYTES = 16 * 1024 - 256;

/** One served request, as the service saw it. */
export interface CapturedRequest {
  readonly model: OnnxModel;
  readonly requestId: string | undefined;
  readonly feeds: Readonly<Record<string, Tensor>>;
  readonly results: Readonly<Record<string, Tensor>>;
  /** Rows in the request (the first input's first dimension). */
  readonly rows: number;
  readonly latencyMs: number;
}

/** What a capture did, for metrics. */
export interface CaptureOutcome {
  readonly written: number;
  /** Rows left out: over `maxRows`, or with a line over the sink's limit. */
  readonly skipped: number;
  /** Why capture is off for this model, e.g. a redact name that matches nothing. */
  readonly error?: string;
}

export interface CapturerOptions {
  /** The A/B variant this instance serves, written on each record. @default - none */
  readonly variant?: string;
  /** @default Math.random */
  readonly random?: () => number;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Longest line the sink carries whole; a longer row is skipped. @default MAX_CAPTURE_LINE_BYTES */
  readonly maxLineBytes?: number;
}

/** How one model's redact and hash names apply: a whole tensor, or elements of a row. */
interface ColumnRule {
  readonly action: 'redact' | 'hash';
  /** Element positions in the flattened row; undefined for the whole tensor. */
  readonly elements?: ReadonlySet<number>;
}

interface ModelPlan {
  readonly rules: ReadonlyMap<string, readonly ColumnRule[]>;
  readonly error?: string;
}

export class CaptureConfigError extends Error {}

/** Checks a capture config from the environment or the CLI; the message names the bad value. */
export function checkCaptureConfig(config: CaptureConfig): CaptureConfig {
  if (!Number.isFinite(config.percent) || config.percent < 0 || config.percent > 100) {
    throw new CaptureConfigError(`the capture percentage must be from 0 to 100, got ${config.percent}`);
  }
  if (!Number.isSafeInteger(config.maxRows) || config.maxRows < 1) {
    throw new CaptureConfigError(
      `the capture's rows per request must be a positive integer, got ${config.maxRows}`,
    );
  }
  const both = config.redact.filter((n) => config.hash.includes(n));
  if (both.length > 0) {
    throw new CaptureConfigError(
      `${both.map((n) => `'${n}'`).join(', ')} is both redacted and hashed; choose one (redact writes null, hash writes sha256:...)`,
    );
  }
  for (const name of [...config.redact, ...config.hash]) {
    if (name.trim() === '' || name !== name.trim()) {
      throw new CaptureConfigError(
        `capture field names must be non-empty with no spaces around them, got ${JSON.stringify(name)}`,
      );
    }
  }
  return config;
}

/** Which tensor elements each redact and hash name covers in this model; a name that covers nothing is an error. */
function planFor(model: OnnxModel, config: CaptureConfig): ModelPlan {
  const rules = new Map<string, ColumnRule[]>();
  const add = (tensor: string, rule: ColumnRule) => rules.set(tensor, [...(rules.get(tensor) ?? []), rule]);
  const features = model.manifest?.baseline?.features ?? [];
  const unknown: string[] = [];
  for (const [action, names] of [
    ['redact', config.redact],
    ['hash', config.hash],
  ] as const) {
    for (const name of names) {
      if (model.inputs.some((i) => i.name === name)) {
        add(name, { action });
        continue;
      }
      const mine = features.filter((f) => f.name === name);
      if (mine.length === 0) {
        unknown.push(name);
        continue;
      }
      for (const f of mine) add(f.input, { action, elements: new Set([f.index]) });
    }
  }
  if (unknown.length > 0) {
    // Fail closed: a misspelt name would otherwise write the field it meant to hide.
    const known = [...model.inputs.map((i) => i.name), ...features.map((f) => f.name)];
    return {
      rules,
      error: `capture is off for model '${model.name}': ${unknown.map((n) => `'${n}'`).join(', ')} names no input or baseline feature (known: ${known.join(', ') || 'none'})`,
    };
  }
  return { rules };
}

/**
 * A float32 to 7 significant digits, about all the precision it has: 6.4 is written 6.4, not 6.400000095.
 * Cheaper than the shortest exact form (one toPrecision instead of up to four), which matters at ~0.3 us a value.
 */
function float32(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(7)) : v;
}

type Element = (data: Tensor['data'], i: number) => CaptureScalar;

function elementReader(tensor: Tensor): Element {
  const kind = infoForOrt(tensor.type)?.kind;
  switch (kind) {
    case 'float':
      return tensor.type === 'float32'
        ? (d, i) => float32((d as Float32Array)[i] as number)
        : (d, i) => (d as Float64Array)[i] as number;
    case 'bigint':
      return (d, i) => {
        const v = (d as BigInt64Array)[i] as bigint;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(v)
          : v.toString();
      };
    case 'bool':
      return (d, i) => (d as Uint8Array)[i] !== 0;
    case 'string':
      return (d, i) => (d as string[])[i] ?? null;
    default:
      return (d, i) => {
        const v = (d as ArrayLike<number | bigint>)[i];
        return typeof v === 'bigint' ? v.toString() : (v ?? null);
      };
  }
}

/** Reads rows of a tensor: split along the first axis when it has one row per request row, else whole. */
function rowReader(tensor: Tensor, rows: number): (row: number) => CaptureScalar | CaptureScalar[] {
  const dims = tensor.dims;
  const read = elementReader(tensor);
  const data = tensor.data;
  const batched = dims.length >= 1 && dims[0] === rows;
  const width = batched ? dims.slice(1).reduce((a, b) => a * b, 1) : dims.reduce((a, b) => a * b, 1);
  const scalar = batched ? dims.length === 1 : dims.length === 0;
  return (row) => {
    const start = batched ? row * width : 0;
    if (scalar) return read(data, start);
    const out = new Array<CaptureScalar>(width);
    for (let i = 0; i < width; i++) out[i] = read(data, start + i);
    return out;
  };
}

function applyRules(
  value: CaptureScalar | CaptureScalar[],
  rules: readonly ColumnRule[],
): CaptureScalar | CaptureScalar[] {
  const change = (v: CaptureScalar, action: ColumnRule['action']): CaptureScalar =>
    action === 'redact' || v === null ? null : hashValue(v);
  for (const rule of rules) {
    if (rule.elements === undefined) {
      value = Array.isArray(value) ? value.map((v) => change(v, rule.action)) : change(value, rule.action);
    } else if (Array.isArray(value)) {
      for (const i of rule.elements)
        if (i < value.length) value[i] = change(value[i] as CaptureScalar, rule.action);
    } else if (rule.elements.has(0)) {
      value = change(value, rule.action);
    }
  }
  return value;
}

/** The rows to capture out of `rows`: all of them, or `max` spread evenly. */
function pickRows(rows: number, max: number): number[] {
  if (rows <= max) return Array.from({ length: rows }, (_, i) => i);
  return Array.from({ length: max }, (_, i) => Math.floor((i * rows) / max));
}

/**
 * Samples requests and writes their rows as capture records. One per service: it keeps, per model, which
 * elements to redact or hash.
 */
export class DataCapturer {
  private readonly plans = new WeakMap<OnnxModel, ModelPlan>();
  private readonly random: () => number;
  private readonly now: () => Date;
  private readonly maxLineBytes: number;

  constructor(
    readonly config: CaptureConfig,
    /** Takes a request's lines at once, each ending in a newline. */
    private readonly sink: (lines: string) => void,
    private readonly options: CapturerOptions = {},
  ) {
    checkCaptureConfig(config);
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => new Date());
    this.maxLineBytes = options.maxLineBytes ?? MAX_CAPTURE_LINE_BYTES;
  }

  /** Whether this request is in the sample: decided before anything is built. */
  sample(): boolean {
    return (
      this.config.percent >= 100 || (this.config.percent > 0 && this.random() * 100 < this.config.percent)
    );
  }

  /** Why capture is off for a model, or undefined when it is on; checked when the model loads. */
  check(model: OnnxModel): string | undefined {
    return this.plan(model).error;
  }

  capture(req: CapturedRequest): CaptureOutcome {
    const plan = this.plan(req.model);
    if (plan.error) return { written: 0, skipped: req.rows, error: plan.error };
    const rows = Math.max(1, req.rows);
    const reader = (tensors: Readonly<Record<string, Tensor>>, names?: readonly string[]) =>
      (names ?? Object.keys(tensors)).flatMap((name) => {
        const t = tensors[name];
        return t ? [[name, rowReader(t, rows), plan.rules.get(name)] as const] : [];
      });
    const inputs = reader(req.feeds);
    const outputs = reader(req.results);
    const redacted = this.config.redact.length > 0 ? this.config.redact : undefined;
    const hashed = this.config.hash.length > 0 ? this.config.hash : undefined;
    const time = this.now().toISOString();
    const picked = pickRows(rows, this.config.maxRows);
    // One write per request, not per row: a write to a pipe costs about as much as building a line.
    const lines: string[] = [];
    for (const row of picked) {
      const record: CaptureRecord = {
        mdk_capture: CAPTURE_FORMAT,
        time,
        model: req.model.name,
        version: req.model.version,
        ...(this.options.variant !== undefined ? { variant: this.options.variant } : {}),
        ...(req.requestId !== undefined ? { request_id: req.requestId } : {}),
        row,
        rows,
        latency_ms: Math.round(req.latencyMs * 1000) / 1000,
        inputs: Object.fromEntries(
          inputs.map(([name, read, rules]) => [name, rules ? applyRules(read(row), rules) : read(row)]),
        ),
        outputs: Object.fromEntries(outputs.map(([name, read]) => [name, read(row)])),
        ...(redacted ? { redacted } : {}),
        ...(hashed ? { hashed } : {}),
      };
      const line = JSON.stringify(record);
      // Length in UTF-16 units is at most the byte length for ASCII, so only long lines need counting.
      if (line.length * 3 > this.maxLineBytes && Buffer.byteLength(line) > this.maxLineBytes) continue;
      lines.push(line, '\n');
    }
    if (lines.length > 0) this.sink(lines.join(''));
    const written = lines.length / 2;
    return { written, skipped: rows - written };
  }

  private plan(model: OnnxModel): ModelPlan {
    let plan = this.plans.get(model);
    if (!plan) {
      plan = planFor(model, this.config);
      this.plans.set(model, plan);
    }
    return plan;
  }
}
