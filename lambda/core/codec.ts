/**
 * Open Inference Protocol codecs: a request body (JSON, or JSON plus the binary
 * tensor data extension) becomes validated onnxruntime feeds, and session
 * results become a response body. Everything a client can get wrong is checked
 * here, against the model's own metadata, before the model runs.
 */
import * as ort from 'onnxruntime-node';
import { infoForDatatype, infoForOrt, SUPPORTED_DATATYPES, type DatatypeInfo } from './datatypes';
import { BadRequestError, PayloadTooLargeError } from './errors';
import type { Limits } from './limits';
import type { OnnxModel, TensorIO } from './model';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // The binary extension is little-endian; views onto request bytes assume the host is too.
  throw new Error('model-deploy-kit needs a little-endian host');
}

export const HEADER_LENGTH = 'inference-header-content-length';

const FLOAT32_MAX = 3.4028234663852886e38;

/** A request split into its JSON header and the raw bytes after it. */
export interface RawRequest {
  readonly header: unknown;
  readonly binary: Buffer | undefined;
}

export interface PreparedInference {
  readonly id: string | undefined;
  readonly feeds: Record<string, ort.Tensor>;
  readonly fetches: readonly string[];
  /** Output names to return as raw bytes rather than JSON. */
  readonly binaryOutputs: ReadonlySet<string>;
  /** First dimension of the first input, for metrics. */
  readonly batchSize: number;
}

export interface EncodedBody {
  readonly body: Buffer | string;
  readonly headers: Record<string, string>;
}

const describe = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v;
};

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses the body, honouring the binary extension's header length when given. */
export function checkPayloadSize(bytes: number, limits: Limits): void {
  if (bytes > limits.maxPayloadBytes) {
    throw new PayloadTooLargeError(
      `request body is ${bytes} bytes; the limit is ${limits.maxPayloadBytes}. Send a smaller batch`,
    );
  }
}

/**
 * Joins body chunks so that the binary part after a JSON header of `headerLength`
 * bytes starts 8-byte aligned, letting typed arrays view tensor bytes without a copy.
 */
export function alignedConcat(
  chunks: readonly Buffer[],
  size: number,
  headerLength: string | undefined,
): Buffer {
  const n = Number(headerLength);
  if (headerLength === undefined || !Number.isSafeInteger(n) || n < 0) {
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
  }
  const room = Buffer.allocUnsafe(size + 8);
  const pad = (8 - ((room.byteOffset + n) % 8)) % 8;
  let at = pad;
  for (const c of chunks) at += c.copy(room, at);
  return room.subarray(pad, pad + size);
}

/** Bytes in a body, whether a Buffer or UTF-8 text. */
export function bodyByteLength(body: Buffer | string): number {
  return typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
}

export function bodyText(body: Buffer | string): string {
  return typeof body === 'string' ? body : body.toString('utf8');
}

/**
 * Parses the body, honouring the binary extension's header length when given.
 * A string body (API Gateway's non-base64 form) goes to JSON.parse as it is,
 * with no round trip through a Buffer.
 */
export function parseBody(
  input: Buffer | string,
  headerLength: string | undefined,
  limits: Limits,
): RawRequest {
  if (typeof input === 'string' && headerLength === undefined) {
    // A UTF-8 character is 1 to 3 bytes per UTF-16 unit, so most bodies need no byte count.
    if (input.length * 3 > limits.maxPayloadBytes) {
      checkPayloadSize(bodyByteLength(input), limits);
    }
    if (input.length === 0) throw new BadRequestError('request body is empty; send a JSON inference request');
    return { header: parseJson(input), binary: undefined };
  }
  const body = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  checkPayloadSize(body.length, limits);
  if (body.length === 0) throw new BadRequestError('request body is empty; send a JSON inference request');
  let jsonPart = body;
  let binary: Buffer | undefined;
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!/^\d+$/.test(headerLength.trim()) || !Number.isSafeInteger(n) || n > body.length) {
      throw new BadRequestError(
        `Inference-Header-Content-Length is ${JSON.stringify(headerLength)}; it must be a whole number of bytes no larger than the body (${body.length})`,
      );
    }
    jsonPart = body.subarray(0, n);
    binary = body.subarray(n);
  }
  return { header: parseJson(jsonPart), binary };
}

export function parseJson(bytes: Buffer | string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new BadRequestError(`request body is not valid JSON: ${msg}`);
  }
}

function checkShape(where: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new BadRequestError(
      `${where}.shape must be an array of non-negative integers, got ${describe(shape)}`,
    );
  }
  return shape as number[];
}

function shapeText(dims: readonly (number | { dynamic: string })[]): string {
  return `[${dims.map((d) => (typeof d === 'number' ? d : -1)).join(', ')}]`;
}

/** Checks a request shape against the model's declared dimensions. */
function checkDims(
  io: TensorIO,
  shape: number[],
  named: Map<string, [number, string]>,
  limits: Limits,
): void {
  const dims = io.dims;
  if (dims !== undefined) {
    if (dims.length !== shape.length) {
      throw new BadRequestError(
        `input '${io.name}' has shape [${shape.join(', ')}] (rank ${shape.length}) but the model expects rank ${dims.length}: ${shapeText(dims)}`,
      );
    }
    dims.forEach((d, i) => {
      const got = shape[i] as number;
      if (typeof d === 'number') {
        if (d !== got) {
          throw new BadRequestError(
            `input '${io.name}' has shape [${shape.join(', ')}] but the model expects ${shapeText(dims)}: dimension ${i} must be ${d}`,
          );
        }
      } else if (d.dynamic !== '') {
        const prev = named.get(d.dynamic);
        if (prev && prev[0] !== got) {
          throw new BadRequestError(
            `dimension '${d.dynamic}' is ${prev[0]} in input '${prev[1]}' but ${got} in input '${io.name}'; they must match`,
          );
        }
        named.set(d.dynamic, [got, io.name]);
      }
    });
  }
  const batchIsDynamic = dims === undefined || (dims.length > 0 && typeof dims[0] !== 'number');
  if (batchIsDynamic && shape.length > 0 && (shape[0] as number) > limits.maxBatch) {
    throw new PayloadTooLargeError(
      `input '${io.name}' has a batch of ${shape[0]} rows; the limit is ${limits.maxBatch}. Split it into smaller requests`,
    );
  }
}

function elementCount(name: string, shape: number[], limits: Limits): number {
  let count = 1;
  for (const d of shape) count *= d;
  if (count > limits.maxElements) {
    throw new PayloadTooLargeError(
      `input '${name}' has ${count} elements (shape [${shape.join(', ')}]); the limit is ${limits.maxElements}`,
    );
  }
  return count;
}

/** Flattens row-major nested arrays, checking each level against the shape. */
function flatten(name: string, data: unknown, shape: number[]): unknown[] {
  if (!Array.isArray(data)) return [data];
  if (data.length === 0 || !Array.isArray(data[0])) return data;
  const out: unknown[] = [];
  const walk = (node: unknown, level: number, path: string): void => {
    if (level === shape.length) {
      if (Array.isArray(node)) {
        throw new BadRequestError(
          `input '${name}' data${path} is nested deeper than shape [${shape.join(', ')}]`,
        );
      }
      out.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[level]) {
      throw new BadRequestError(
        `input '${name}' data${path} should be an array of ${shape[level]} (shape [${shape.join(', ')}]), got ${Array.isArray(node) ? `${node.length} items` : describe(node)}`,
      );
    }
    for (let i = 0; i < node.length; i++) walk(node[i], level + 1, `${path}[${i}]`);
  };
  walk(data, 0, '');
  return out;
}

function badValue(name: string, i: number, v: unknown, need: string): never {
  throw new BadRequestError(`input '${name}' data[${i}] is ${describe(v)}; ${need}`);
}

/** Turns JSON values into the typed array onnxruntime wants, checking every element. */
function fromJson(name: string, info: DatatypeInfo, values: unknown[]): ort.Tensor.DataType {
  const n = values.length;
  switch (info.kind) {
    case 'float': {
      const out = new (info.array as Float32ArrayConstructor | Float64ArrayConstructor)(n);
      // A number past float32's range would silently become Infinity.
      const max = info.datatype === 'FP32' ? FLOAT32_MAX : Infinity;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number' || v > max || v < -max) {
          badValue(
            name,
            i,
            v,
            `${info.datatype} values must be numbers${max < Infinity ? ` within ±${max}` : ''}`,
          );
        }
        out[i] = v;
      }
      return out;
    }
    case 'int': {
      const out = new (info.array as Int32ArrayConstructor)(n);
      const min = info.min as number;
      const max = info.max as number;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
          badValue(name, i, v, `${info.datatype} values must be integers from ${min} to ${max}`);
        }
        out[i] = v;
      }
      return out;
    }
    case 'bigint': {
      const out = new (info.array as BigInt64ArrayConstructor)(n);
      const min = info.min as bigint;
      const max = info.max as bigint;
      const need = `${info.datatype} values must be integers from ${min} to ${max} (as JSON numbers, or as strings for values beyond 2^53)`;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let b: bigint;
        if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
        else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
        else badValue(name, i, v, need);
        if (b < min || b > max) badValue(name, i, v, need);
        out[i] = b;
      }
      return out;
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === true || v === 1) out[i] = 1;
        else if (v !== false && v !== 0) badValue(name, i, v, 'BOOL values must be true or false');
      }
      return out;
    }
    case 'string': {
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'string') badValue(name, i, v, 'BYTES values must be strings');
      }
      return values as string[];
    }
  }
}

/** Reads `size` raw little-endian bytes at `offset` as a tensor of `count` elements. */
function fromBinary(
  name: string,
  info: DatatypeInfo,
  count: number,
  binary: Buffer,
  offset: number,
  size: number,
): ort.Tensor.DataType {
  const bytes = binary.subarray(offset, offset + size);
  if (info.kind === 'string') return decodeBytesElements(name, bytes, count);
  if (size !== count * info.size) {
    throw new BadRequestError(
      `input '${name}' declares binary_data_size ${size}, but ${count} ${info.datatype} elements take ${count * info.size} bytes`,
    );
  }
  if (info.kind === 'bool') {
    // The extension sends true as 1 and false as 0; any other byte would reach onnxruntime as a malformed bool.
    const bad = bytes.findIndex((b) => b > 1);
    if (bad !== -1) {
      throw new BadRequestError(
        `input '${name}' binary data[${bad}] is ${String(bytes[bad])}; BOOL bytes must be 0 or 1`,
      );
    }
  }
  const Ctor = info.array as Float32ArrayConstructor;
  // A view when the bytes are aligned, a copy when they are not: typed arrays need aligned offsets.
  const src = bytes.byteOffset % info.size === 0 ? bytes : Buffer.from(bytes);
  return new Ctor(src.buffer, src.byteOffset, count);
}

/** BYTES in the binary extension: each element is a 4-byte little-endian length, then that many bytes. */
function decodeBytesElements(name: string, bytes: Buffer, count: number): string[] {
  const out: string[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (pos + 4 > bytes.length) {
      throw new BadRequestError(`input '${name}' binary data ends after ${i} of ${count} BYTES elements`);
    }
    const len = bytes.readUInt32LE(pos);
    pos += 4;
    if (pos + len > bytes.length) {
      throw new BadRequestError(
        `input '${name}' BYTES element ${i} claims ${len} bytes, past the end of its data`,
      );
    }
    out.push(bytes.toString('utf8', pos, pos + len));
    pos += len;
  }
  if (pos !== bytes.length) {
    throw new BadRequestError(
      `input '${name}' has ${bytes.length - pos} bytes left over after ${count} BYTES elements`,
    );
  }
  return out;
}

function encodeBytesElements(values: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    const b = Buffer.from(v, 'utf8');
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(b.length, 0);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

/** An output's own `binary_data` setting wins over the request's `binary_data_output`. */
function wantsBinary(params: unknown, requestDefault: boolean): boolean {
  const own = isRecord(params) ? params.binary_data : undefined;
  return typeof own === 'boolean' ? own : requestDefault;
}

function names(list: readonly { name: string; tensor: boolean }[]): string {
  return list
    .filter((io) => io.tensor)
    .map((io) => io.name)
    .join(', ');
}

/** Validates a V2 request against the model and builds the session feeds. */
export function prepareInference(model: OnnxModel, raw: RawRequest, limits: Limits): PreparedInference {
  const req = raw.header;
  if (!isRecord(req)) {
    throw new BadRequestError(`request must be a JSON object with an "inputs" array, got ${describe(req)}`);
  }
  if (req.id !== undefined && typeof req.id !== 'string') {
    throw new BadRequestError(`"id" must be a string, got ${describe(req.id)}`);
  }
  if (req.parameters !== undefined && !isRecord(req.parameters)) {
    throw new BadRequestError(`"parameters" must be an object, got ${describe(req.parameters)}`);
  }
  const inputs = req.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new BadRequestError(
      `"inputs" must be a non-empty array of {name, shape, datatype, data}; the model's inputs are: ${names(model.inputs)}`,
    );
  }
  const feeds: Record<string, ort.Tensor> = {};
  const named = new Map<string, [number, string]>();
  let binaryOffset = 0;
  let batchSize = 1;
  inputs.forEach((input: unknown, idx) => {
    const where = `inputs[${idx}]`;
    if (!isRecord(input)) throw new BadRequestError(`${where} must be an object, got ${describe(input)}`);
    const name = input.name;
    if (typeof name !== 'string')
      throw new BadRequestError(`${where}.name must be a string, got ${describe(name)}`);
    const io = model.input(name);
    if (!io) {
      throw new BadRequestError(`unknown input '${name}'; the model's inputs are: ${names(model.inputs)}`);
    }
    if (!io.tensor) throw new BadRequestError(`input '${name}' is ${io.reason}; it cannot be fed over HTTP`);
    if (feeds[name]) throw new BadRequestError(`input '${name}' appears more than once`);
    const datatype = input.datatype;
    const info = typeof datatype === 'string' ? infoForDatatype(datatype) : undefined;
    if (!info) {
      throw new BadRequestError(
        `input '${name}' has datatype ${describe(datatype)}; use one of ${SUPPORTED_DATATYPES.join(', ')} (the model expects ${io.info.datatype})`,
      );
    }
    if (info !== io.info) {
      throw new BadRequestError(
        `input '${name}' has datatype ${info.datatype} but the model expects ${io.info.datatype}`,
      );
    }
    const shape = checkShape(`input '${name}'`, input.shape);
    checkDims(io, shape, named, limits);
    const count = elementCount(name, shape, limits);
    if (idx === 0) batchSize = shape.length > 0 ? (shape[0] as number) : 1;

    const params = input.parameters;
    const binarySize = isRecord(params) ? params.binary_data_size : undefined;
    let data: ort.Tensor.DataType;
    if (binarySize !== undefined) {
      if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) {
        throw new BadRequestError(
          `input '${name}' parameters.binary_data_size must be a non-negative integer, got ${describe(binarySize)}`,
        );
      }
      if (input.data !== undefined) {
        throw new BadRequestError(
          `input '${name}' has both "data" and parameters.binary_data_size; send one`,
        );
      }
      const size = binarySize as number;
      const available = raw.binary?.length ?? 0;
      if (!raw.binary || binaryOffset + size > available) {
        throw new BadRequestError(
          raw.binary
            ? `input '${name}' needs ${size} bytes of binary data at offset ${binaryOffset}, but only ${available - binaryOffset} remain`
            : `input '${name}' uses parameters.binary_data_size, but the request has no Inference-Header-Content-Length header to say where the JSON ends`,
        );
      }
      data = fromBinary(name, info, count, raw.binary, binaryOffset, size);
      binaryOffset += size;
    } else {
      if (input.data === undefined || input.data === null) {
        throw new BadRequestError(`input '${name}' has no "data"; send data, or parameters.binary_data_size`);
      }
      const values = flatten(name, input.data, shape);
      if (values.length !== count) {
        throw new BadRequestError(
          `input '${name}' has ${values.length} values but shape [${shape.join(', ')}] needs ${count}`,
        );
      }
      data = fromJson(name, info, values);
    }
    feeds[name] = new ort.Tensor(info.ort as 'float32', data as Float32Array, shape);
  });
  if (raw.binary && binaryOffset !== raw.binary.length) {
    throw new BadRequestError(
      `the body has ${raw.binary.length - binaryOffset} bytes of binary data that no input claims; check each input's binary_data_size`,
    );
  }
  const missing = model.inputs.filter((io) => io.tensor && !feeds[io.name]).map((io) => io.name);
  if (missing.length > 0) {
    throw new BadRequestError(
      `missing input ${missing.map((m) => `'${m}'`).join(', ')}; the model needs: ${names(model.inputs)}`,
    );
  }

  const allBinary = isRecord(req.parameters) && req.parameters.binary_data_output === true;
  const binaryOutputs = new Set<string>();
  let fetches: string[];
  if (req.outputs === undefined) {
    fetches = [...model.tensorOutputs];
    if (allBinary) fetches.forEach((f) => binaryOutputs.add(f));
  } else {
    if (!Array.isArray(req.outputs)) {
      throw new BadRequestError(`"outputs" must be an array of {name}, got ${describe(req.outputs)}`);
    }
    fetches = [];
    req.outputs.forEach((out: unknown, idx) => {
      const name = isRecord(out) ? out.name : undefined;
      if (typeof name !== 'string') {
        throw new BadRequestError(`outputs[${idx}].name must be a string, got ${describe(name)}`);
      }
      const io = model.output(name);
      if (!io)
        throw new BadRequestError(
          `unknown output '${name}'; the model's outputs are: ${names(model.outputs)}`,
        );
      if (!io.tensor) {
        throw new BadRequestError(
          `output '${name}' is ${io.reason}; ask for one of: ${names(model.outputs) || '(none)'}`,
        );
      }
      if (fetches.includes(name)) throw new BadRequestError(`output '${name}' is requested more than once`);
      fetches.push(name);
      if (wantsBinary((out as Record<string, unknown>).parameters, allBinary)) binaryOutputs.add(name);
    });
  }
  if (fetches.length === 0) {
    throw new BadRequestError('this model has no tensor outputs that onnxruntime-node can return');
  }
  return { id: req.id, feeds, fetches, binaryOutputs, batchSize };
}

/** JSON text for a tensor's data. Exact for 64-bit integers, null for non-finite floats (JSON has no NaN). */
function dataJson(info: DatatypeInfo, data: ort.Tensor.DataType): string {
  switch (info.kind) {
    case 'bigint':
    case 'int':
      return `[${(data as Int32Array).join(',')}]`;
    case 'bool':
      return JSON.stringify(Array.from(data as Uint8Array, (v) => v !== 0));
    case 'float':
    case 'string':
      return JSON.stringify(Array.from(data as Float32Array));
  }
}

function rawBytes(info: DatatypeInfo, data: ort.Tensor.DataType): Buffer {
  if (info.kind === 'string') return encodeBytesElements(data as string[]);
  const view = data as Float32Array;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export interface ResponseContext {
  readonly modelName: string;
  readonly modelVersion: string;
}

/** Encodes session results as a V2 response: plain JSON, or JSON then raw bytes when any output asks for binary. */
export function encodeResponse(
  ctx: ResponseContext,
  prepared: PreparedInference,
  results: ort.InferenceSession.ReturnType,
): EncodedBody {
  const parts: string[] = [];
  const blobs: Buffer[] = [];
  for (const name of prepared.fetches) {
    const t = results[name] as ort.Tensor;
    const info = infoForTensor(name, t);
    const head = `{"name":${JSON.stringify(name)},"datatype":"${info.datatype}","shape":[${t.dims.join(',')}]`;
    if (prepared.binaryOutputs.has(name)) {
      const bytes = rawBytes(info, t.data);
      blobs.push(bytes);
      parts.push(`${head},"parameters":{"binary_data_size":${bytes.length}}}`);
    } else {
      parts.push(`${head},"data":${dataJson(info, t.data)}}`);
    }
  }
  const id = prepared.id === undefined ? '' : `,"id":${JSON.stringify(prepared.id)}`;
  const json = `{"model_name":${JSON.stringify(ctx.modelName)},"model_version":${JSON.stringify(ctx.modelVersion)}${id},"outputs":[${parts.join(',')}]}`;
  if (blobs.length === 0) return { body: json, headers: { 'content-type': 'application/json' } };
  const head = Buffer.from(json, 'utf8');
  return {
    body: Buffer.concat([head, ...blobs]),
    headers: {
      'content-type': 'application/octet-stream',
      [HEADER_LENGTH]: String(head.length),
    },
  };
}

export function infoForTensor(name: string, t: ort.Tensor): DatatypeInfo {
  const info = infoForOrt(t.type);
  if (!info) throw new Error(`output '${name}' has element type ${t.type}, which has no V2 datatype`);
  return info;
}

/** Row-major reshape of flat data into nested arrays, for the `predictions` form. */
export function nest(flat: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length === 0) return flat[0];
  let level: unknown[] = [...flat];
  for (let d = shape.length - 1; d >= 1; d--) {
    const size = shape[d] as number;
    const next: unknown[] = [];
    for (let i = 0; i < level.length; i += size) next.push(level.slice(i, i + size));
    level = next;
  }
  return level;
}

export interface OutputRows {
  readonly name: string;
  /** The output's shape without its first (row) dimension. */
  readonly rowDims: readonly number[];
  /** Flat values, one array per row. */
  readonly rows: readonly unknown[][];
}

/**
 * Splits session outputs into one slice per input row. An output whose first
 * dimension is not the row count (an aggregate, say) cannot be split: its name is returned instead.
 */
export function splitRows(
  results: ort.InferenceSession.ReturnType,
  fetches: readonly string[],
  rows: number,
): OutputRows[] | { readonly unsplittable: string; readonly dims: readonly number[] } {
  const out: OutputRows[] = [];
  for (const name of fetches) {
    const t = results[name];
    if (!t) throw new Error(`session returned no '${name}'`);
    if (t.dims[0] !== rows) return { unsplittable: name, dims: t.dims };
    const values = plainValues(infoForTensor(name, t), t.data);
    const size = values.length / rows;
    out.push({
      name,
      rowDims: t.dims.slice(1),
      rows: Array.from({ length: rows }, (_, r) => values.slice(r * size, (r + 1) * size)),
    });
  }
  return out;
}

/** Flat JS values of an output tensor: numbers (exact ones as strings past 2^53), booleans or strings. */
export function plainValues(info: DatatypeInfo, data: ort.Tensor.DataType): unknown[] {
  switch (info.kind) {
    case 'bigint':
      return Array.from(data as BigInt64Array, (v) =>
        v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
          ? Number(v)
          : v.toString(),
      );
    case 'bool':
      return Array.from(data as Uint8Array, (v) => v !== 0);
    case 'string':
      return [...(data as string[])];
    default:
      return Array.from(data as Float32Array);
  }
}
