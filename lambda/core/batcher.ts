/**
 * Dynamic batching for a long-running server. onnxruntime-node runs a session
 * on the JS main thread, so concurrent requests only queue behind each other;
 * joining the requests that arrive together into one run along the batch
 * dimension serves many of them for little more than the cost of one.
 */
import * as ort from 'onnxruntime-node';
import { InferenceError } from './errors';
import type { OnnxModel, TensorIO } from './model';

export interface BatchingOptions {
  /** Most rows joined into one run; a batch this full runs at once. @default 64 */
  readonly maxBatchSize?: number;
  /**
   * How long the first request of a batch waits for others. 0 joins only the
   * requests already parsed in the same turn of the event loop, which adds no
   * latency: while one run holds the thread, the next batch gathers anyway.
   * @default 0
   */
  readonly maxLatencyMs?: number;
}

export interface BatchingStats {
  /** Session runs made. */
  runs: number;
  /** Requests served by those runs. */
  requests: number;
  /** Runs that joined two or more requests, and the milliseconds they took in all. */
  joinedRuns: number;
  joinedRunMs: number;
}

type Result = ort.InferenceSession.ReturnType;
type Feeds = Record<string, ort.Tensor>;

interface Pending {
  readonly feeds: Feeds;
  readonly fetches: readonly string[];
  readonly rows: number;
  readonly key: string;
  readonly resolve: (r: Result) => void;
  readonly reject: (e: unknown) => void;
}

type Numeric = Exclude<ort.Tensor.DataType, string[]>;

function concat(tensors: readonly ort.Tensor[], total: number): ort.Tensor {
  const first = tensors[0] as ort.Tensor;
  const dims = [total, ...first.dims.slice(1)];
  if (first.type === 'string') {
    return new ort.Tensor(
      'string',
      tensors.flatMap((t) => t.data as string[]),
      dims,
    );
  }
  const Ctor = (first.data as Numeric).constructor as new (n: number) => Float32Array;
  const joined = new Ctor(tensors.reduce((n, t) => n + t.size, 0));
  let at = 0;
  for (const t of tensors) {
    joined.set(t.data as Float32Array, at);
    at += t.size;
  }
  return new ort.Tensor(first.type as 'float32', joined, dims);
}

function slice(t: ort.Tensor, total: number, from: number, rows: number): ort.Tensor {
  const per = t.size / total;
  const dims = [rows, ...t.dims.slice(1)];
  if (t.type === 'string')
    return new ort.Tensor('string', (t.data as string[]).slice(from * per, (from + rows) * per), dims);
  return new ort.Tensor(
    t.type as 'float32',
    (t.data as Float32Array).subarray(from * per, (from + rows) * per),
    dims,
  );
}

export class DynamicBatcher {
  readonly stats: BatchingStats = { runs: 0, requests: 0, joinedRuns: 0, joinedRunMs: 0 };
  /** Joining needs every input to have a dynamic first dimension. */
  readonly enabled: boolean;
  private readonly maxRows: number;
  private readonly maxDelayMs: number;
  private readonly inputs: readonly string[];
  private queue: Pending[] = [];
  private queuedRows = 0;
  private cancelFlush: (() => void) | undefined;

  constructor(
    private readonly model: OnnxModel,
    options: BatchingOptions = {},
  ) {
    this.maxRows = options.maxBatchSize ?? 64;
    this.maxDelayMs = options.maxLatencyMs ?? 0;
    if (!Number.isSafeInteger(this.maxRows) || this.maxRows < 1) {
      throw new Error(`batching maxBatchSize must be a positive integer, got ${this.maxRows}`);
    }
    if (!(this.maxDelayMs >= 0 && this.maxDelayMs <= 60_000))
      throw new Error(`batching maxLatencyMs must be between 0 and 60000, got ${this.maxDelayMs}`);
    const tensors = model.inputs.filter((i): i is TensorIO => i.tensor);
    this.inputs = tensors.map((i) => i.name);
    this.enabled =
      this.maxRows > 1 &&
      tensors.length === model.inputs.length &&
      tensors.every((i) => i.dims !== undefined && i.dims.length > 0 && typeof i.dims[0] !== 'number');
  }

  run(feeds: Feeds, fetches: readonly string[]): Promise<Result> {
    const rows = this.enabled ? (feeds[this.inputs[0] as string]?.dims[0] ?? 0) : 0;
    if (!this.enabled || rows === 0 || rows >= this.maxRows) return this.single(feeds, fetches);
    // Requests join only when everything but the row count is the same.
    const key = [
      fetches.join('\0'),
      ...this.inputs.map((n) => `${feeds[n]?.type}:${feeds[n]?.dims.slice(1).join(',')}`),
    ].join('|');
    return new Promise((resolve, reject) => {
      this.queue.push({ feeds, fetches, rows, key, resolve, reject });
      this.queuedRows += rows;
      // A full batch waits for nothing; otherwise the first request starts the clock.
      if (this.queuedRows >= this.maxRows) this.flush();
      else if (this.queue.length === 1) {
        if (this.maxDelayMs > 0) {
          const t = setTimeout(() => this.flush(), this.maxDelayMs);
          this.cancelFlush = () => clearTimeout(t);
        } else {
          const i = setImmediate(() => this.flush());
          this.cancelFlush = () => clearImmediate(i);
        }
      }
    });
  }

  private single(feeds: Feeds, fetches: readonly string[]): Promise<Result> {
    this.stats.runs++;
    this.stats.requests++;
    return this.model.run(feeds, fetches);
  }

  private flush(): void {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    const pending = this.queue;
    this.queue = [];
    this.queuedRows = 0;
    if (pending.length === 0) return;
    const groups: Pending[][] = [];
    const rowsIn = new Map<Pending[], number>();
    for (const p of pending) {
      const group = groups.find((g) => g[0]?.key === p.key && (rowsIn.get(g) ?? 0) + p.rows <= this.maxRows);
      if (group) {
        group.push(p);
        rowsIn.set(group, (rowsIn.get(group) ?? 0) + p.rows);
      } else {
        const g = [p];
        groups.push(g);
        rowsIn.set(g, p.rows);
      }
    }
    for (const g of groups) void this.runGroup(g, rowsIn.get(g) ?? 0);
  }

  private async runGroup(group: Pending[], total: number): Promise<void> {
    const first = group[0] as Pending;
    if (group.length === 1) {
      await this.single(first.feeds, first.fetches).then(first.resolve, first.reject);
      return;
    }
    let joined: Result | undefined;
    try {
      const feeds = Object.fromEntries(
        this.inputs.map((n) => [
          n,
          concat(
            group.map((p) => p.feeds[n] as ort.Tensor),
            total,
          ),
        ]),
      );
      this.stats.runs++;
      const started = performance.now();
      joined = await this.model.run(feeds, first.fetches);
      this.stats.joinedRuns++;
      this.stats.joinedRunMs += performance.now() - started;
    } catch (err) {
      // One bad request must not fail the others: run each on its own to find it.
      if (!(err instanceof InferenceError)) {
        group.forEach((p) => p.reject(err));
        return;
      }
    }
    const splittable = joined && Object.values(joined).every((t) => t.dims[0] === total);
    if (!joined || !splittable) {
      await Promise.all(group.map((p) => this.single(p.feeds, p.fetches).then(p.resolve, p.reject)));
      return;
    }
    this.stats.requests += group.length;
    let from = 0;
    for (const p of group) {
      const out = joined;
      p.resolve(
        Object.fromEntries(Object.entries(out).map(([name, t]) => [name, slice(t, total, from, p.rows)])),
      );
      from += p.rows;
    }
  }
}
