import type { Tensor } from 'onnxruntime-node';
import type { Datatype } from './types';

type OrtType = Tensor.Type;

type NumericArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

export interface DatatypeInfo {
  readonly datatype: Datatype;
  readonly ort: OrtType;
  /** Bytes per element in the binary extension; 0 for BYTES, which is length-prefixed. */
  readonly size: number;
  readonly kind: 'float' | 'int' | 'bigint' | 'bool' | 'string';
  /** Inclusive range for integer kinds. */
  readonly min?: number | bigint;
  readonly max?: number | bigint;
  readonly array?: NumericArrayCtor;
}

const table: DatatypeInfo[] = [
  { datatype: 'BOOL', ort: 'bool', size: 1, kind: 'bool', array: Uint8Array },
  { datatype: 'INT8', ort: 'int8', size: 1, kind: 'int', min: -128, max: 127, array: Int8Array },
  { datatype: 'INT16', ort: 'int16', size: 2, kind: 'int', min: -32768, max: 32767, array: Int16Array },
  {
    datatype: 'INT32',
    ort: 'int32',
    size: 4,
    kind: 'int',
    min: -2147483648,
    max: 2147483647,
    array: Int32Array,
  },
  {
    datatype: 'INT64',
    ort: 'int64',
    size: 8,
    kind: 'bigint',
    min: -(2n ** 63n),
    max: 2n ** 63n - 1n,
    array: BigInt64Array,
  },
  { datatype: 'UINT8', ort: 'uint8', size: 1, kind: 'int', min: 0, max: 255, array: Uint8Array },
  { datatype: 'UINT16', ort: 'uint16', size: 2, kind: 'int', min: 0, max: 65535, array: Uint16Array },
  { datatype: 'UINT32', ort: 'uint32', size: 4, kind: 'int', min: 0, max: 4294967295, array: Uint32Array },
  {
    datatype: 'UINT64',
    ort: 'uint64',
    size: 8,
    kind: 'bigint',
    min: 0n,
    max: 2n ** 64n - 1n,
    array: BigUint64Array,
  },
  { datatype: 'FP32', ort: 'float32', size: 4, kind: 'float', array: Float32Array },
  { datatype: 'FP64', ort: 'float64', size: 8, kind: 'float', array: Float64Array },
  { datatype: 'BYTES', ort: 'string', size: 0, kind: 'string' },
];

const byDatatype = new Map<string, DatatypeInfo>(table.map((t) => [t.datatype, t]));
const byOrt = new Map<string, DatatypeInfo>(table.map((t) => [t.ort, t]));

export function infoForDatatype(datatype: string): DatatypeInfo | undefined {
  return byDatatype.get(datatype);
}

export function infoForOrt(type: string): DatatypeInfo | undefined {
  return byOrt.get(type);
}

export const SUPPORTED_DATATYPES: readonly string[] = table.map((t) => t.datatype);
