/**
 * Batch prediction over rows (as RowReader reads them). Rows are grouped into
 * batches for speed; a batch that fails is retried row by row, so one bad row
 * is reported with its line number and never costs the others.
 */
import * as os from 'node:os';
import { infoForTensor, nest, plainValues, prepareInference, splitRows } from './codec';
import { BadRequestError, InferenceError } from './errors';
import type { Limits } from './limits';
import type { OnnxModel, TensorIO } from './model';

export interface Prediction {
  readonly line: number;
  /** The row's id, when the caller gave one. */
  readonly id?: string | number;
  readonly outputs: Record<string, unknown>;
}

export interface RowError {
  readonly line: number;
  readonly id?: string | number;
  readonly error: string;
}

export type BatchResult = { readonly ok: Prediction } | { readonly failed: RowError };

type Row = Record<string, unknown>;

/** A row to predict: its line, optional id, and a value per input. */
export interface RowInput {
  readonly line: number;
  readonly id?: string | number;
  readonly row: Row;
}

function rowShape(value: unknown): number[] {
  const shape: number[] = [];
  for (let node = value; Array.isArray(node); node = node[0] as unknown) shape.push(node.length);
  return shape;
}

/**
 * The rows' values of a float input as little-endian bytes, when every row is a flat list of numbers of the
 * first row's length; undefined otherwise (the JSON path then says what is wrong).
 */
function packFloats(io: TensorIO, rows: readonly RowInput[], shape: readonly number[]): Buffer | undefined {
  const Ctor = io.info.array;
  if (io.info.kind !== 'float' || !Ctor || shape.length !== 1 || os.endianness() !== 'LE') return undefined;
  const width = shape[0] as number;
  const out = new Ctor(rows.length * width);
  let k = 0;
  for (const r of rows) {
    const v = r.row[io.name];
    if (!Array.isArray(v) || v.length !== width) return undefined;
    for (let i = 0; i < width; i++) {
      const x: unknown = v[i];
      if (typeof x !== 'number') return undefined;
      out[k++] = x;
    }
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

export class BatchPredictor {
  private readonly inputs: readonly TensorIO[];
  /** Rows can be stacked only when every input's first dimension is dynamic. */
  readonly batchable: boolean;

  constructor(
    private readonly model: OnnxModel,
    private readonly limits: Limits,
  ) {
    this.inputs = model.inputs.filter((i): i is TensorIO => i.tensor);
    this.batchable = this.inputs.every(
      (i) => i.dims !== undefined && i.dims.length > 0 && typeof i.dims[0] !== 'number',
    );
  }

  /** Predicts one batch of parsed rows, in order. */
  async predict(rows: readonly RowInput[]): Promise<BatchResult[]> {
    if (rows.length === 0) return [];
    if (this.batchable && rows.length > 1) {
      try {
        const joined = await this.run(rows, true);
        // undefined: an output is not one row per row (an aggregate), so each row must run alone.
        if (joined) return joined;
      } catch (err) {
        if (!(err instanceof InferenceError)) throw err;
        // Fall through: find the rows at fault one at a time.
      }
    }
    const out: BatchResult[] = [];
    for (const r of rows) {
      try {
        out.push(...((await this.run([r], this.batchable)) ?? []));
      } catch (err) {
        if (!(err instanceof InferenceError)) throw err;
        out.push({ failed: { line: r.line, id: r.id, error: err.message } });
      }
    }
    return out;
  }

  private async run(rows: readonly RowInput[], stacked: boolean): Promise<BatchResult[] | undefined> {
    const first = rows[0]?.row ?? {};
    // Every row, not just the first: an extra key on a later row would be dropped without a word.
    let extra: string | undefined;
    for (const r of rows) {
      extra = Object.keys(r.row).find((k) => !this.inputs.some((i) => i.name === k));
      if (extra !== undefined) break;
    }
    if (extra !== undefined) {
      throw new BadRequestError(
        `unknown input '${extra}'; the model's inputs are: ${this.inputs.map((i) => i.name).join(', ')}`,
      );
    }
    const binaries: Buffer[] = [];
    const request = {
      inputs: this.inputs.map((io) => {
        if (!(io.name in first)) {
          throw new BadRequestError(
            `missing input '${io.name}'; each row needs: ${this.inputs.map((i) => i.name).join(', ')}`,
          );
        }
        const shape = rowShape(first[io.name]);
        if (!stacked) return { name: io.name, datatype: io.info.datatype, shape, data: first[io.name] };
        const fullShape = [rows.length, ...shape];
        const packed = packFloats(io, rows, shape);
        if (packed) {
          binaries.push(packed);
          return {
            name: io.name,
            datatype: io.info.datatype,
            shape: fullShape,
            parameters: { binary_data_size: packed.length },
          };
        }
        return {
          name: io.name,
          datatype: io.info.datatype,
          shape: fullShape,
          data: rows.map((r) => r.row[io.name]),
        };
      }),
    };
    const binary =
      binaries.length === 0 ? undefined : binaries.length === 1 ? binaries[0] : Buffer.concat(binaries);
    // Float rows go as the binary extension: the same checks of names, datatypes and shapes, without a
    // second walk over every number (the row reader checked each one).
    const prepared = prepareInference(this.model, { header: request, binary }, this.limits);
    const results = await this.model.run(prepared.feeds, prepared.fetches);
    const split = stacked ? splitRows(results, prepared.fetches, rows.length) : undefined;
    if (Array.isArray(split)) {
      return rows.map((r, i) => ({
        ok: {
          line: r.line,
          id: r.id,
          outputs: Object.fromEntries(split.map((o) => [o.name, nest(o.rows[i] ?? [], o.rowDims)])),
        },
      }));
    }
    // Several rows whose outputs cannot be split (an aggregate, say) must each run alone.
    const only = rows[0];
    if (rows.length > 1 || !only) return undefined;
    const outputs = Object.fromEntries(
      prepared.fetches.map((name) => {
        const t = results[name];
        if (!t) throw new Error(`session returned no '${name}'`);
        return [name, nest(plainValues(infoForTensor(name, t), t.data), t.dims)];
      }),
    );
    return [{ ok: { line: only.line, id: only.id, outputs } }];
  }
}
