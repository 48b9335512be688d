/**
 * A small typed layer over onnx-proto for writing ONNX graphs from TypeScript.
 * Used by the example model build, the test fixtures and the bench, so every
 * model this project ships or tests is made from code, with no Python toolchain.
 */
import { onnx } from 'onnx-proto';

export type ElemType =
  | 'float'
  | 'double'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'string';

const ELEM: Record<ElemType, onnx.TensorProto.DataType> = {
  float: onnx.TensorProto.DataType.FLOAT,
  double: onnx.TensorProto.DataType.DOUBLE,
  int8: onnx.TensorProto.DataType.INT8,
  int16: onnx.TensorProto.DataType.INT16,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  uint8: onnx.TensorProto.DataType.UINT8,
  uint16: onnx.TensorProto.DataType.UINT16,
  uint32: onnx.TensorProto.DataType.UINT32,
  uint64: onnx.TensorProto.DataType.UINT64,
  bool: onnx.TensorProto.DataType.BOOL,
  string: onnx.TensorProto.DataType.STRING,
};

/** A dimension: a fixed size, a named symbolic size, or null for an unnamed dynamic one. */
export type Dim = number | string | null;

export interface ValueInfo {
  readonly name: string;
  readonly proto: onnx.IValueInfoProto;
}

function shapeProto(dims: readonly Dim[] | undefined): onnx.ITensorShapeProto | undefined {
  if (dims === undefined) return undefined;
  return {
    dim: dims.map((d) =>
      typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {},
    ),
  };
}

/** A tensor input or output. `dims` undefined means unknown rank. */
export function tensorInfo(name: string, elem: ElemType, dims?: readonly Dim[]): ValueInfo {
  return { name, proto: { name, type: { tensorType: { elemType: ELEM[elem], shape: shapeProto(dims) } } } };
}

/** A sequence of maps output, as ZipMap produces: seq(map(keyElem, float)). */
export function seqMapInfo(name: string, keyElem: 'int64' | 'string'): ValueInfo {
  return {
    name,
    proto: {
      name,
      type: {
        sequenceType: {
          elemType: {
            mapType: {
              keyType: ELEM[keyElem],
              valueType: { tensorType: { elemType: ELEM.float } },
            },
          },
        },
      },
    },
  };
}

export type AttrValue =
  number | string | number[] | string[] | { readonly int: number } | { readonly ints: number[] };

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return { name, type: A.FLOAT, f: value };
  if (typeof value === 'string') return { name, type: A.STRING, s: Buffer.from(value) };
  if (Array.isArray(value)) {
    if (value.every((v): v is string => typeof v === 'string')) {
      return { name, type: A.STRINGS, strings: value.map((v) => Buffer.from(v)) };
    }
    return { name, type: A.FLOATS, floats: value };
  }
  if ('int' in value) return { name, type: A.INT, i: value.int };
  return { name, type: A.INTS, ints: value.ints };
}

/** Shorthand for an integer attribute (plain numbers are floats). */
export const int = (v: number): { int: number } => ({ int: v });
export const ints = (v: number[]): { ints: number[] } => ({ ints: v });

export interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: Readonly<Record<string, AttrValue>>;
  /** '' for the default ONNX domain, 'ai.onnx.ml' for ONNX-ML operators. */
  readonly domain?: string;
  readonly name?: string;
}

export interface Initializer {
  readonly name: string;
  readonly elem: 'float' | 'int64' | 'bool' | 'string';
  readonly dims: readonly number[];
  readonly data: ArrayLike<number> | readonly string[] | readonly boolean[];
}

function initializerProto(init: Initializer): onnx.ITensorProto {
  const base = { name: init.name, dims: [...init.dims], dataType: ELEM[init.elem] };
  switch (init.elem) {
    case 'float': {
      const f = Float32Array.from(init.data as ArrayLike<number>);
      return { ...base, rawData: new Uint8Array(f.buffer) };
    }
    case 'int64': {
      const b = BigInt64Array.from(Array.from(init.data as ArrayLike<number>, (v) => BigInt(v)));
      return { ...base, rawData: new Uint8Array(b.buffer) };
    }
    case 'bool':
      return { ...base, rawData: Uint8Array.from(init.data as readonly boolean[], (v) => (v ? 1 : 0)) };
    case 'string':
      return { ...base, stringData: (init.data as readonly string[]).map((s) => Buffer.from(s)) };
  }
}

export interface ModelSpec {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly nodes: readonly NodeSpec[];
  readonly initializers?: readonly Initializer[];
  /** Opset of the default domain. */
  readonly opset?: number;
  /** Opset of ai.onnx.ml, added when any node uses that domain. */
  readonly mlOpset?: number;
  readonly graphName?: string;
  readonly docString?: string;
  readonly producerVersion?: string;
}

/** Serializes a model to ONNX protobuf bytes. The output is deterministic for a given spec. */
export function buildModel(spec: ModelSpec): Uint8Array {
  const usesMl = spec.nodes.some((n) => n.domain === 'ai.onnx.ml');
  const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: spec.opset ?? 17 }];
  if (usesMl) opsetImport.push({ domain: 'ai.onnx.ml', version: spec.mlOpset ?? 3 });
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'model-deploy-kit',
    producerVersion: spec.producerVersion ?? '0.1.0',
    docString: spec.docString ?? '',
    opsetImport,
    graph: {
      name: spec.graphName ?? 'graph',
      input: spec.inputs.map((i) => i.proto),
      output: spec.outputs.map((o) => o.proto),
      initializer: (spec.initializers ?? []).map(initializerProto),
      node: spec.nodes.map((n, idx) => ({
        name: n.name ?? `${n.op}_${idx}`,
        opType: n.op,
        domain: n.domain ?? '',
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** Deterministic pseudo-random numbers (mulberry32), so generated weights are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MlpSpec {
  readonly layers: readonly number[];
  readonly seed: number;
  readonly inputName?: string;
  readonly outputName?: string;
}

/** A dense ReLU MLP with random weights, batch dimension named "batch". Used by tests and the bench. */
export function buildMlp(spec: MlpSpec): Uint8Array {
  const rand = seededRandom(spec.seed);
  const inputName = spec.inputName ?? 'input';
  const outputName = spec.outputName ?? 'output';
  const nodes: NodeSpec[] = [];
  const initializers: Initializer[] = [];
  let prev = inputName;
  for (let l = 0; l + 1 < spec.layers.length; l++) {
    const nIn = spec.layers[l] as number;
    const nOut = spec.layers[l + 1] as number;
    const scale = Math.sqrt(2 / nIn);
    const w = new Float32Array(nIn * nOut);
    for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) * scale;
    const b = new Float32Array(nOut);
    for (let i = 0; i < b.length; i++) b[i] = (rand() * 2 - 1) * 0.01;
    initializers.push({ name: `W${l}`, elem: 'float', dims: [nIn, nOut], data: w });
    initializers.push({ name: `B${l}`, elem: 'float', dims: [nOut], data: b });
    const last = l + 2 === spec.layers.length;
    const gemmOut = last ? outputName : `h${l}`;
    nodes.push({ op: 'Gemm', inputs: [prev, `W${l}`, `B${l}`], outputs: [gemmOut] });
    if (!last) {
      nodes.push({ op: 'Relu', inputs: [gemmOut], outputs: [`r${l}`] });
      prev = `r${l}`;
    }
  }
  return buildModel({
    inputs: [tensorInfo(inputName, 'float', ['batch', spec.layers[0] as number])],
    outputs: [tensorInfo(outputName, 'float', ['batch', spec.layers[spec.layers.length - 1] as number])],
    nodes,
    initializers,
    graphName: 'mlp',
  });
}
