/**
 * Client-side helpers for the Open Inference Protocol in tests: building bodies with the binary tensor
 * data extension, and reading responses back, written from the protocol rather than from the codec.
 */
import type { InferResponse } from '../../lambda/core/types';

export type TypedArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** The raw little-endian bytes of a typed array (this host is little-endian). */
export function leBytes(a: TypedArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** BYTES elements as the extension sends them: a 4-byte little-endian length, then the UTF-8 bytes. */
export function lengthPrefixed(values: readonly string[]): Buffer {
  return Buffer.concat(
    values.flatMap((v) => {
      const b = Buffer.from(v, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length, 0);
      return [len, b];
    }),
  );
}

export interface BinaryBody {
  readonly body: Buffer;
  /** The Inference-Header-Content-Length value. */
  readonly headerLength: string;
}

/**
 * JSON header then the raw blobs, in a Buffer of its own ArrayBuffer starting at offset 0, so the
 * offset of the first blob is exactly the header length. `headerMod` pads the JSON with spaces until
 * its length % 8 is that value, to place the binary data at an aligned or unaligned offset.
 */
export function binaryBody(header: unknown, blobs: readonly Buffer[], headerMod?: number): BinaryBody {
  let json = JSON.stringify(header);
  if (headerMod !== undefined) while (Buffer.byteLength(json) % 8 !== headerMod) json += ' ';
  const head = Buffer.from(json, 'utf8');
  const total = head.length + blobs.reduce((s, b) => s + b.length, 0);
  const body = Buffer.from(new ArrayBuffer(total));
  head.copy(body, 0);
  let pos = head.length;
  for (const b of blobs) {
    b.copy(body, pos);
    pos += b.length;
  }
  return { body, headerLength: String(head.length) };
}

export function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export interface DecodedResponse {
  readonly response: InferResponse;
  /** The JSON text of the header, for checks that JSON.parse would lose (64-bit integers). */
  readonly text: string;
  /** Raw bytes of each output sent as binary, by name. */
  readonly binary: ReadonlyMap<string, Buffer>;
}

/** Reads a V2 response body: plain JSON, or JSON then raw bytes when a header length is given. */
export function decodeResponse(
  body: string | Buffer,
  headers: Readonly<Record<string, string>>,
): DecodedResponse {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const lengthHeader = headers['inference-header-content-length'];
  const headerLength = lengthHeader === undefined ? buf.length : Number(lengthHeader);
  const text = buf.subarray(0, headerLength).toString('utf8');
  const response = JSON.parse(text) as InferResponse;
  const binary = new Map<string, Buffer>();
  let pos = headerLength;
  for (const out of response.outputs) {
    const size = out.parameters?.binary_data_size;
    if (typeof size === 'number') {
      binary.set(out.name, buf.subarray(pos, pos + size));
      pos += size;
    }
  }
  if (pos !== buf.length) throw new Error(`response has ${buf.length - pos} bytes no output claims`);
  return { response, text, binary };
}

/** The literal JSON text of an output's numeric "data" array (exact, unlike JSON.parse for 64-bit ints). */
export function dataText(text: string, output: string): string {
  const m = new RegExp(`"name":${JSON.stringify(output)},[^{}]*?"data":\\[([^\\]]*)\\]`).exec(text);
  if (!m) throw new Error(`no data for output '${output}' in ${text}`);
  return m[1] ?? '';
}

/** The output by name, failing loudly when absent. */
export function outputOf(response: InferResponse, name: string): InferResponse['outputs'][number] {
  const out = response.outputs.find((o) => o.name === name);
  if (!out) throw new Error(`response has no output '${name}': ${JSON.stringify(response)}`);
  return out;
}
