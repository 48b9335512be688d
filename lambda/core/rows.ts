/**
 * Rows of a batch file (JSONL or CSV) turned into one value per model input, with a row id. A CSV header
 * maps columns to inputs by input name (`input` or `input[3]`), by the manifest's feature names, or, for a
 * model with one input, by position. Each row is checked against the input's per-row shape and element kind
 * here, so one bad row is reported on its own and never fails the batch it would have joined.
 */
import { BadRequestError } from './errors';
import type { OnnxModel, TensorIO } from './model';

export type RowFormat = 'jsonl' | 'csv';

/** One row, ready for BatchPredictor. */
export interface ParsedRow {
  /** 1-based line number in the input file. */
  readonly line: number;
  /** The row's id field or column, else its 1-based data row number. */
  readonly id: string | number;
  readonly row: Record<string, unknown>;
}

export interface RowReaderOptions {
  /** The JSONL key or CSV column that holds a row id (when no model input has that name). @default 'id' */
  readonly idField?: string;
  /** Whether a CSV file starts with a header line. @default 'auto': a first line that is not all numbers */
  readonly csvHeader?: 'auto' | 'present' | 'absent';
}

/** Where one input's value comes from in a CSV row. */
interface InputColumns {
  readonly io: TensorIO;
  /** A whole column for the input's (scalar) value, or one column per element in order. */
  readonly whole?: number;
  readonly elements?: readonly number[];
}

/** How a CSV header was mapped, for the job's report. */
export interface CsvMapping {
  /** Whether the file has a header line. */
  readonly header: boolean;
  readonly by: 'position' | 'input name' | 'feature name';
  readonly idColumn?: string;
  /** Columns that feed no input, left out. */
  readonly ignored: readonly string[];
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INDEXED = /^(.+)\[(\d+)\]$/;

/** Splits one CSV line (RFC 4180 quoting; a field cannot span lines). */
export function splitCsvLine(text: string, line: number): string[] {
  if (!text.includes('"')) return text.split(',');
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q === -1) {
          throw new BadRequestError(`line ${line}: a quoted field is not closed (a field cannot span lines)`);
        }
        cell += text.slice(i, q);
        if (text[q + 1] === '"') {
          cell += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      if (i < text.length && text[i] !== ',') {
        throw new BadRequestError(`line ${line}: text after a closing quote in column ${cells.length + 1}`);
      }
    } else {
      const c = text.indexOf(',', i);
      cell = c === -1 ? text.slice(i) : text.slice(i, c);
      i = c === -1 ? text.length : c;
    }
    cells.push(cell);
    if (i >= text.length) return cells;
    i++; // the comma
  }
}

function isNumeric(cell: string): boolean {
  return DECIMAL.test(cell.trim());
}

/**
 * Whether a CSV line is a header, by the rule RowReader applies with `csvHeader: 'auto'`: a cell that is not a
 * number. A line that cannot be split is not data either.
 */
export function looksLikeCsvHeader(text: string): boolean {
  try {
    return !splitCsvLine(text, 1).every(isNumeric);
  } catch (err) {
    if (err instanceof BadRequestError) return true;
    throw err;
  }
}

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * A cell's number in decimal notation only. `+cell` is fast but also takes '', ' ', '0x10', '0b1' and '0o7';
 * those (and anything starting with white space) go through the strict pattern.
 */
export function strictNumber(cell: string): number {
  const v = +cell;
  if (!Number.isFinite(v)) return NaN;
  const c0 = cell.charCodeAt(0);
  const c1 = cell.charCodeAt(1) | 0x20;
  if (v === 0 || c0 <= 32 || (c0 === 48 && (c1 === 0x78 || c1 === 0x62 || c1 === 0x6f))) {
    return DECIMAL.test(cell.trim()) ? v : NaN;
  }
  return v;
}

/** The input's shape for one row: its dims without the batch dimension. */
function rowDims(io: TensorIO): readonly (number | undefined)[] | undefined {
  if (!io.dims || io.dims.length === 0) return undefined;
  return io.dims.slice(1).map((d) => (typeof d === 'number' ? d : undefined));
}

function cellValue(io: TensorIO, cell: string, where: string): unknown {
  const kind = io.info.kind;
  if (kind === 'string') return cell;
  if (kind === 'float' || kind === 'int') {
    const v = strictNumber(cell);
    if (!Number.isNaN(v)) return v;
  }
  const t = cell.trim();
  if (kind === 'bool') {
    if (t === 'true' || t === '1') return true;
    if (t === 'false' || t === '0') return false;
    throw new BadRequestError(`${where}: ${JSON.stringify(t)} is not a boolean (true, false, 1 or 0)`);
  }
  const v = strictNumber(cell);
  if (Number.isNaN(v)) throw new BadRequestError(`${where}: ${JSON.stringify(t)} is not a number`);
  return v;
}

function nestFlat(flat: unknown[], dims: readonly number[]): unknown {
  if (dims.length <= 1) return flat;
  const [, ...rest] = dims;
  const size = rest.reduce((a, b) => a * b, 1);
  const out: unknown[] = [];
  for (let i = 0; i < flat.length; i += size) out.push(nestFlat(flat.slice(i, i + size), rest));
  return out;
}

/** Checks one row's value for an input: shape against the per-row dims, and the kind of every element. */
export function checkRowValue(io: TensorIO, value: unknown): void {
  const dims = rowDims(io);
  const kind = io.info.kind;
  // The common case, a flat list of numbers of the right length, without the general walk.
  if (
    kind === 'float' &&
    dims?.length === 1 &&
    Array.isArray(value) &&
    (dims[0] === undefined || value.length === dims[0])
  ) {
    const f32 = io.info.datatype === 'FP32';
    let ok = true;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number' || (f32 && (v > FLOAT32_MAX || v < -FLOAT32_MAX))) {
        ok = false;
        break;
      }
    }
    if (ok) return;
  }
  const what = kind === 'string' ? 'a string' : kind === 'bool' ? 'a boolean' : 'a number';
  const walk = (v: unknown, depth: number, path: string): void => {
    const want = dims?.[depth];
    if (dims && depth === dims.length) {
      if (Array.isArray(v)) {
        throw new BadRequestError(
          `input '${io.name}'${path}: expected ${what}, got a list (each row is shaped [${dims.join(', ')}])`,
        );
      }
      if (io.info.datatype === 'FP32' && typeof v === 'number' && Math.abs(v) > FLOAT32_MAX) {
        throw new BadRequestError(`input '${io.name}'${path}: ${v} is outside the FP32 range`);
      }
      const ok =
        kind === 'string'
          ? typeof v === 'string'
          : kind === 'bool'
            ? typeof v === 'boolean'
            : typeof v === 'number' || (kind === 'bigint' && typeof v === 'string' && /^-?\d+$/.test(v));
      if (!ok) {
        throw new BadRequestError(
          `input '${io.name}'${path}: ${io.info.datatype} values must be ${what.replace(/^an? /, '')}s, got ${JSON.stringify(v)}`,
        );
      }
      return;
    }
    if (!Array.isArray(v)) {
      if (dims) {
        throw new BadRequestError(
          `input '${io.name}'${path}: expected a list of ${want ?? 'any number of'} values, got ${JSON.stringify(v)}`,
        );
      }
      return;
    }
    if (want !== undefined && v.length !== want) {
      throw new BadRequestError(
        `input '${io.name}'${path}: expected ${want} values, got ${v.length} (each row is shaped [${(dims ?? []).map((d) => d ?? 'any').join(', ')}])`,
      );
    }
    for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${path}[${i}]`);
  };
  walk(value, 0, '');
}

/** The CSV header (or its absence) cannot feed the model: the whole file is unusable, not one row. */
export class CsvHeaderError extends BadRequestError {}

export class RowReader {
  private readonly inputs: readonly TensorIO[];
  private readonly idField: string;
  private readonly idIsInput: boolean;
  private readonly headerMode: 'auto' | 'present' | 'absent';
  /** Data rows seen so far (good or bad): the default row id. */
  private rows = 0;
  private csv?: { columns: readonly InputColumns[]; width?: number; idColumn?: number };
  private headerNames?: readonly string[];
  /** How the CSV header was read, once it has been. */
  public mapping?: CsvMapping;

  constructor(
    private readonly model: OnnxModel,
    private readonly format: RowFormat,
    options: RowReaderOptions = {},
  ) {
    this.inputs = model.inputs.filter((i): i is TensorIO => i.tensor);
    this.idField = options.idField ?? 'id';
    this.idIsInput = this.inputs.some((i) => i.name === this.idField);
    this.headerMode = options.csvHeader ?? 'auto';
  }

  /**
   * Reads one line of the file: a row, or undefined for a blank line or the CSV header.
   * A row that cannot be used throws a BadRequestError saying what to fix.
   */
  public line(line: number, text: string): ParsedRow | undefined {
    if (text.trim() === '') return undefined;
    this.lastIdSeen = undefined;
    if (this.format === 'jsonl') {
      let value: unknown;
      const n = ++this.rows;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new BadRequestError(`not valid JSON: ${(err as Error).message}`);
      }
      return this.fromJson(line, n, value);
    }
    if (!this.csv) {
      const first = splitCsvLine(text, line);
      const header = this.headerMode === 'present' || (this.headerMode === 'auto' && !first.every(isNumeric));
      try {
        this.useHeader(header ? first.map((c) => c.trim()) : undefined, first.length);
      } catch (err) {
        if (err instanceof BadRequestError) throw new CsvHeaderError(err.message);
        throw err;
      }
      if (header) return undefined;
      return this.fromCells(line, ++this.rows, first);
    }
    const n = ++this.rows;
    return this.fromCells(line, n, splitCsvLine(text, line));
  }

  /**
   * The id of the last line read, good or bad: its id field or column when that much could be read, else its
   * data row number. An error line carries it, so a bad row can be found by the id it was sent with.
   */
  public get lastId(): string | number {
    return this.lastIdSeen ?? this.rows;
  }

  private lastIdSeen?: string | number;

  /**
   * A Distributed Map item or a queue record: for CSV an object keyed by the header (as Step Functions' CSV
   * reader gives it), for JSONL the parsed value. `index` is its 0-based position; `defaultId` its id when it
   * has no id field (the data row number unless given).
   */
  public item(
    line: number,
    index: number,
    value: unknown,
    defaultId: string | number = index + 1,
  ): ParsedRow {
    this.lastIdSeen = defaultId;
    if (this.format === 'jsonl') return this.fromJson(line, defaultId, value);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new BadRequestError(
        `a CSV item must be an object keyed by the header, got ${JSON.stringify(value)}`,
      );
    }
    const record = value as Record<string, unknown>;
    const names = Object.keys(record);
    if (!this.csv || this.headerNames?.join('\u0000') !== names.join('\u0000')) {
      try {
        this.useHeader(names, names.length);
      } catch (err) {
        if (err instanceof BadRequestError) throw new CsvHeaderError(err.message);
        throw err;
      }
    }
    return this.fromCells(
      line,
      defaultId,
      names.map((k) => {
        const v = record[k];
        if (typeof v === 'string') return v;
        return typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v ?? '');
      }),
    );
  }

  private fromJson(line: number, n: string | number, value: unknown): ParsedRow {
    const only = this.inputs.length === 1 ? this.inputs[0] : undefined;
    let row: Record<string, unknown>;
    let id: string | number = n;
    if (Array.isArray(value) || typeof value !== 'object' || value === null) {
      if (!only) {
        throw new BadRequestError(
          `this model has inputs ${this.inputs.map((i) => `'${i.name}'`).join(', ')}; each line must be an object keyed by input name`,
        );
      }
      row = { [only.name]: value };
    } else {
      row = { ...(value as Record<string, unknown>) };
      if (!this.idIsInput && this.idField in row) {
        const given = row[this.idField];
        if (!(
          (typeof given === 'string' && given !== '') ||
          (typeof given === 'number' && Number.isFinite(given))
        )) {
          // Its kind, not its value: the value may be large, or personal.
          const kind =
            given === ''
              ? 'an empty string'
              : given === null
                ? 'null'
                : Array.isArray(given)
                  ? 'a list'
                  : typeof given === 'object'
                    ? 'an object'
                    : typeof given;
          throw new BadRequestError(`"${this.idField}" must be a non-empty string or a number, got ${kind}`);
        }
        id = given;
        this.lastIdSeen = given;
        delete row[this.idField];
      }
      for (const key of Object.keys(row)) {
        if (!this.inputs.some((i) => i.name === key)) {
          throw new BadRequestError(
            `unknown input '${key}'; the model's inputs are: ${this.inputs.map((i) => i.name).join(', ')}` +
              (this.idIsInput ? '' : ` (and "${this.idField}" for a row id)`),
          );
        }
      }
    }
    for (const io of this.inputs) {
      if (!(io.name in row)) {
        throw new BadRequestError(
          `missing input '${io.name}'; each row needs: ${this.inputs.map((i) => i.name).join(', ')}`,
        );
      }
      checkRowValue(io, row[io.name]);
    }
    return { line, id, row };
  }

  private useHeader(names: readonly string[] | undefined, width: number): void {
    this.headerNames = names;
    if (!names) {
      const only = this.inputs.length === 1 ? this.inputs[0] : undefined;
      if (!only) {
        throw new BadRequestError(
          `a CSV file without a header needs a model with one input; this one has ${this.inputs.map((i) => `'${i.name}'`).join(', ')}: add a header naming them (e.g. ${this.exampleHeader()})`,
        );
      }
      const columns = [{ io: only, elements: range(width) }];
      this.checkWidths(columns);
      this.csv = { columns, width };
      this.mapping = { header: false, by: 'position', ignored: [] };
      return;
    }
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new BadRequestError(`the CSV header names column '${dup}' twice`);
    const idColumn =
      !this.idIsInput && names.includes(this.idField) ? names.indexOf(this.idField) : undefined;
    const used = new Set<number>(idColumn === undefined ? [] : [idColumn]);
    let by: CsvMapping['by'] = 'input name';
    let columns = this.byInputName(names, used);
    if (!columns) {
      by = 'feature name';
      columns = this.byFeatureName(names, used);
    }
    if (!columns) {
      by = 'position';
      columns = this.byPosition(names, used);
    }
    this.checkWidths(columns);
    this.csv = { columns, width, idColumn };
    this.mapping = {
      header: true,
      by,
      idColumn: idColumn === undefined ? undefined : this.idField,
      ignored: names.filter((_, i) => !used.has(i)),
    };
  }

  /** Columns for an input whose row size is fixed must be exactly that many. */
  private checkWidths(columns: readonly InputColumns[]): void {
    for (const c of columns) {
      const dims = rowDims(c.io);
      if (!c.elements || !dims || dims.length === 0 || dims.some((d) => d === undefined)) continue;
      const size = (dims as number[]).reduce((a, b) => a * b, 1);
      if (c.elements.length !== size) {
        throw new BadRequestError(
          `${c.elements.length} CSV column${c.elements.length === 1 ? '' : 's'} feed input '${c.io.name}', which takes ${size} values per row; name the columns (e.g. ${this.exampleHeader()})`,
        );
      }
    }
  }

  private byInputName(names: readonly string[], used: Set<number>): InputColumns[] | undefined {
    const found = new Map<string, { whole?: number; elements: Map<number, number> }>();
    names.forEach((name, col) => {
      if (used.has(col)) return;
      const io = this.inputs.find((i) => i.name === name);
      const m = io ? undefined : INDEXED.exec(name);
      const indexed = m?.[1] !== undefined ? this.inputs.find((i) => i.name === m[1]) : undefined;
      const target = io ?? indexed;
      if (!target) return;
      used.add(col);
      const entry = found.get(target.name) ?? { elements: new Map<number, number>() };
      if (io) entry.whole = col;
      else entry.elements.set(Number(m?.[2]), col);
      found.set(target.name, entry);
    });
    if (found.size === 0) return undefined;
    return this.inputs.map((io) => {
      const entry = found.get(io.name);
      if (!entry) {
        throw new BadRequestError(
          `the CSV header has no column for input '${io.name}'; name columns after inputs, e.g. ${this.exampleHeader()}`,
        );
      }
      if (entry.whole !== undefined) {
        if (entry.elements.size > 0) {
          throw new BadRequestError(
            `the CSV header has both '${io.name}' and '${io.name}[i]' columns; use one or the other`,
          );
        }
        return { io, whole: entry.whole };
      }
      const count = Math.max(...entry.elements.keys()) + 1;
      const elements = range(count).map((i) => {
        const col = entry.elements.get(i);
        if (col === undefined) throw new BadRequestError(`the CSV header has no column '${io.name}[${i}]'`);
        return col;
      });
      return { io, elements };
    });
  }

  private byFeatureName(names: readonly string[], used: Set<number>): InputColumns[] | undefined {
    const features = this.model.manifest?.baseline?.features;
    if (!features || features.length === 0) return undefined;
    if (!features.every((f) => names.includes(f.name))) return undefined;
    const columns = this.inputs.map((io) => {
      const mine = features.filter((f) => f.input === io.name).sort((a, b) => a.index - b.index);
      if (mine.length === 0) {
        throw new BadRequestError(`the manifest's baseline names no feature of input '${io.name}'`);
      }
      const elements = mine.map((f) => names.indexOf(f.name));
      elements.forEach((c) => used.add(c));
      return { io, elements };
    });
    return columns;
  }

  private byPosition(names: readonly string[], used: Set<number>): InputColumns[] {
    const only = this.inputs.length === 1 ? this.inputs[0] : undefined;
    if (!only) {
      throw new BadRequestError(
        `the CSV header (${names.join(', ')}) names none of the model's inputs; name columns after inputs, e.g. ${this.exampleHeader()}`,
      );
    }
    const elements = range(names.length).filter((i) => !used.has(i));
    elements.forEach((c) => used.add(c));
    return [{ io: only, elements }];
  }

  private exampleHeader(): string {
    return this.inputs
      .map((io) => {
        const per = rowDims(io)?.[0];
        return per === undefined ? io.name : `${io.name}[0],...,${io.name}[${per - 1}]`;
      })
      .join(',');
  }

  private fromCells(line: number, n: string | number, cells: readonly string[]): ParsedRow {
    const csv = this.csv as NonNullable<RowReader['csv']>;
    const given = csv.idColumn === undefined ? undefined : cells[csv.idColumn]?.trim();
    if (given !== undefined) this.lastIdSeen = given;
    if (csv.width !== undefined && cells.length !== csv.width) {
      throw new BadRequestError(
        `has ${cells.length} columns; the ${this.headerNames ? 'header has' : 'first row has'} ${csv.width}`,
      );
    }
    const row: Record<string, unknown> = {};
    for (const c of csv.columns) {
      const where = (col: number) =>
        `column ${col + 1}${this.headerNames ? ` (${this.headerNames[col] ?? ''})` : ''}`;
      const dims = rowDims(c.io);
      if (c.whole !== undefined) {
        const v = cellValue(c.io, cells[c.whole] ?? '', where(c.whole));
        row[c.io.name] = dims && dims.length === 1 && dims[0] === 1 ? [v] : v;
      } else {
        const flat = (c.elements ?? []).map((col) => cellValue(c.io, cells[col] ?? '', where(col)));
        const fixed = dims?.every((d): d is number => d !== undefined) ? (dims as number[]) : undefined;
        row[c.io.name] = fixed && fixed.length > 1 ? nestFlat(flat, [0, ...fixed]) : flat;
      }
      checkRowValue(c.io, row[c.io.name]);
    }
    return { line, id: given ?? n, row };
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
