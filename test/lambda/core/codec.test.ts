/**
 * The V2 codec on real models: every datatype, JSON and binary, in and out, checked against a direct
 * onnxruntime run of the same model; and every way a request can be wrong, with the field it names.
 */
import * as ort from 'onnxruntime-node';

import {
  encodeResponse,
  nest,
  parseBody,
  plainValues,
  prepareInference,
  type PreparedInference,
} from '../../../lambda/core/codec';
import { infoForDatatype } from '../../../lambda/core/datatypes';
import { BadRequestError, PayloadTooLargeError } from '../../../lambda/core/errors';
import { resolveLimits, type Limits } from '../../../lambda/core/limits';
import type { OnnxModel } from '../../../lambda/core/model';
import { DATATYPES, type Datatype } from '../../../lambda/core/types';
import {
  addMulModel,
  classifierModel,
  dynamicModel,
  gatherModel,
  GATHER_TABLE,
  identityModel,
  loadFixture,
  mixedModel,
  scalarModel,
  twoHeadModel,
  type FixtureModel,
} from '../../fixtures/models';
import {
  binaryBody,
  dataText,
  decodeResponse,
  leBytes,
  lengthPrefixed,
  outputOf,
  type TypedArray,
} from '../../support/v2';
import { errorOf } from '../../support/errors';

// Some requests below make onnxruntime fail on purpose; its own error log would only be noise.
ort.env.logLevel = 'fatal';

const LIMITS = resolveLimits();

interface Loaded {
  readonly model: OnnxModel;
  /** A separate session on the same bytes, run directly, for the expected outputs. */
  readonly session: ort.InferenceSession;
}

const loaded = new Map<string, Loaded>();

function get(key: string): Loaded {
  const l = loaded.get(key);
  if (!l) throw new Error(`fixture '${key}' is not loaded`);
  return l;
}

const fixtures: [string, FixtureModel, { manifest?: boolean }?][] = [
  ['addMul', addMulModel()],
  ['mixed', mixedModel()],
  ['scalar', scalarModel()],
  ['scalarBare', scalarModel(), { manifest: false }],
  ['dynamic', dynamicModel()],
  ['classifier', classifierModel()],
  ['gather', gatherModel()],
  ['twoHead', twoHeadModel()],
  ['fixed8', identityModel('FP32', [8])],
  ...DATATYPES.map((d): [string, FixtureModel] => [d, identityModel(d)]),
];

beforeAll(async () => {
  await Promise.all(
    fixtures.map(async ([key, fixture, options]) => {
      const model = await loadFixture(fixture, { name: key, manifest: options?.manifest });
      const session = await ort.InferenceSession.create(fixture.bytes);
      loaded.set(key, { model, session });
    }),
  );
});

afterAll(async () => {
  await Promise.all([...loaded.values()].flatMap((l) => [l.model.release(), l.session.release()]));
});

function prepare(key: string, header: unknown, binary?: Buffer, limits: Limits = LIMITS): PreparedInference {
  return prepareInference(get(key).model, { header, binary }, limits);
}

/** Validates, runs and encodes as the service does, then reads the body back as a client would. */
async function infer(key: string, header: unknown, binary?: Buffer, limits: Limits = LIMITS) {
  const { model } = get(key);
  const prepared = prepare(key, header, binary, limits);
  const results = await model.run(prepared.feeds, prepared.fetches);
  const encoded = encodeResponse({ modelName: model.name, modelVersion: model.version }, prepared, results);
  return { prepared, encoded, ...decodeResponse(encoded.body, encoded.headers) };
}

async function direct(key: string, feeds: Record<string, ort.Tensor>, fetches?: string[]) {
  const session = get(key).session;
  return fetches ? session.run(feeds, fetches) : session.run(feeds);
}

function tensorOut(results: ort.InferenceSession.ReturnType, name: string): ort.Tensor {
  const t = results[name];
  if (!t) throw new Error(`no output '${name}'`);
  return t;
}

/** A tensor built from JSON-style values, independently of the codec. */
function tensorOf(datatype: Datatype, values: readonly unknown[], dims: readonly number[]): ort.Tensor {
  const nums = values as readonly number[];
  const ints = values as readonly (number | string)[];
  switch (datatype) {
    case 'BOOL':
      return new ort.Tensor(
        'bool',
        Uint8Array.from(values, (v) => (v ? 1 : 0)),
        dims,
      );
    case 'INT8':
      return new ort.Tensor('int8', Int8Array.from(nums), dims);
    case 'INT16':
      return new ort.Tensor('int16', Int16Array.from(nums), dims);
    case 'INT32':
      return new ort.Tensor('int32', Int32Array.from(nums), dims);
    case 'INT64':
      return new ort.Tensor(
        'int64',
        BigInt64Array.from(ints, (v) => BigInt(v)),
        dims,
      );
    case 'UINT8':
      return new ort.Tensor('uint8', Uint8Array.from(nums), dims);
    case 'UINT16':
      return new ort.Tensor('uint16', Uint16Array.from(nums), dims);
    case 'UINT32':
      return new ort.Tensor('uint32', Uint32Array.from(nums), dims);
    case 'UINT64':
      return new ort.Tensor(
        'uint64',
        BigUint64Array.from(ints, (v) => BigInt(v)),
        dims,
      );
    case 'FP32':
      return new ort.Tensor('float32', Float32Array.from(nums), dims);
    case 'FP64':
      return new ort.Tensor('float64', Float64Array.from(nums), dims);
    case 'BYTES':
      return new ort.Tensor('string', values as string[], dims);
  }
}

/** What a JSON response should hold for a tensor: booleans, strings, or numbers (null where not finite). */
function jsonValues(t: ort.Tensor): unknown[] {
  if (t.type === 'bool') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  if (t.type === 'string') return [...(t.data as string[])];
  // JSON.stringify writes -0 as 0, and has no NaN or infinities.
  return Array.from(t.data as Float64Array, (v) => (Number.isFinite(v) ? v + 0 : null));
}

/** Raw bytes the binary extension should carry for a tensor. */
function tensorBytes(t: ort.Tensor): Buffer {
  return t.type === 'string' ? lengthPrefixed(t.data as string[]) : leBytes(t.data as TypedArray);
}

const is64 = (d: Datatype) => d === 'INT64' || d === 'UINT64';

/** Six values per datatype, including each integer type's extremes. */
const SAMPLES: Record<Datatype, unknown[]> = {
  BOOL: [true, false, true, true, false, false],
  INT8: [-128, -1, 0, 1, 100, 127],
  INT16: [-32768, -300, 0, 7, 300, 32767],
  INT32: [-2147483648, -70000, 0, 9, 70000, 2147483647],
  INT64: ['-9223372036854775808', -9007199254740991, 0, 42, '9007199254740993', '9223372036854775807'],
  UINT8: [0, 1, 127, 128, 200, 255],
  UINT16: [0, 1, 300, 40000, 65534, 65535],
  UINT32: [0, 1, 70000, 3000000000, 4294967294, 4294967295],
  UINT64: [0, 1, 9007199254740991, '9007199254740993', '18446744073709551614', '18446744073709551615'],
  FP32: [0, -1.5, 0.1, 3.4028234663852886e38, -1e-45, 1234.5678],
  FP64: [0, -1.5, 0.1, 1.7976931348623157e308, 5e-324, Math.PI],
  BYTES: ['', 'a', 'héllo', 'with "quotes"', '日本語', 'comma,]bracket'],
};

function rows<T>(flat: readonly T[], width: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < flat.length; i += width) out.push(flat.slice(i, i + width));
  return out;
}

const zeros = (n: number): number[] => new Array<number>(n).fill(0);
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The call fails with exactly this error class and status, and a message that matches. */
function expectFailure(
  fn: () => unknown,
  cls: typeof BadRequestError | typeof PayloadTooLargeError,
  status: number,
  message: RegExp,
): void {
  const err = errorOf(fn);
  expect(err).toBeInstanceOf(cls);
  expect((err as BadRequestError).status).toBe(status);
  expect(err.message).toMatch(message);
}

const abInput = (name: string, shape: number[], data: unknown, datatype = 'FP32') => ({
  name,
  shape,
  datatype,
  data,
});
const A = [1, 2, 3, 4, 5, 6];
const B = [0.5, -1, 2, 0, 10, -3];
const addMulFeeds = () => ({
  a: new ort.Tensor('float32', Float32Array.from(A), [2, 3]),
  b: new ort.Tensor('float32', Float32Array.from(B), [2, 3]),
});

describe('parseBody', () => {
  it('reads a JSON body with no binary part', () => {
    const raw = parseBody(Buffer.from('{"inputs":[]}'), undefined, LIMITS);
    expect(raw).toEqual({ header: { inputs: [] }, binary: undefined });
  });

  it('splits the JSON header from the binary data at Inference-Header-Content-Length', () => {
    const { body, headerLength } = binaryBody({ inputs: [] }, [Buffer.from([1, 2, 3])]);
    const raw = parseBody(body, headerLength, LIMITS);
    expect(raw.header).toEqual({ inputs: [] });
    expect([...(raw.binary ?? [])]).toEqual([1, 2, 3]);
  });

  it('rejects an empty body', () => {
    expectFailure(
      () => parseBody(Buffer.alloc(0), undefined, LIMITS),
      BadRequestError,
      400,
      /request body is empty/,
    );
  });

  it.each(['{"inputs": [', 'inputs', '{"a":1}}', '\u0000'])('rejects malformed JSON %j', (text) => {
    expectFailure(
      () => parseBody(Buffer.from(text), undefined, LIMITS),
      BadRequestError,
      400,
      /not valid JSON/,
    );
  });

  it.each(['abc', '-1', '1.5', '1e1', '', '0x10', '100'])(
    'rejects Inference-Header-Content-Length %j',
    (value) => {
      const body = Buffer.from('{"inputs":[]}1234');
      expectFailure(
        () => parseBody(body, value, LIMITS),
        BadRequestError,
        400,
        new RegExp(`Inference-Header-Content-Length is ${escapeRe(JSON.stringify(value))}; .*\\(17\\)`),
      );
    },
  );

  it('rejects a body over maxPayloadBytes with 413, naming the size and the limit', () => {
    const limits = resolveLimits({ maxPayloadBytes: 16 });
    const body = Buffer.from('{"inputs":[],"x":"padding"}');
    expectFailure(
      () => parseBody(body, undefined, limits),
      PayloadTooLargeError,
      413,
      /27 bytes; the limit is 16/,
    );
    expect(parseBody(Buffer.from('{"inputs":[]}'), undefined, limits).header).toEqual({ inputs: [] });
  });
});

describe('every datatype, as JSON', () => {
  it.each(DATATYPES)('%s: nested data in, JSON out, as onnxruntime computes', async (datatype) => {
    const values = SAMPLES[datatype];
    const { response, text, prepared } = await infer(datatype, {
      id: `req-${datatype}`,
      inputs: [{ name: 'x', shape: [2, 3], datatype, data: rows(values, 3) }],
    });
    const want = tensorOut(await direct(datatype, { x: tensorOf(datatype, values, [2, 3]) }), 'y');

    expect(prepared.feeds.x?.type).toBe(infoForDatatype(datatype)?.ort);
    expect(response).toMatchObject({ model_name: datatype, model_version: '1', id: `req-${datatype}` });
    const out = outputOf(response, 'y');
    expect(out).toMatchObject({ name: 'y', datatype, shape: [2, 3] });
    if (is64(datatype)) {
      // Exact 64-bit integers: the JSON text has every digit.
      expect(dataText(text, 'y')).toBe(Array.from(want.data as BigInt64Array).join(','));
      expect(dataText(text, 'y')).toBe(values.map(String).join(','));
    } else {
      expect(out.data).toEqual(jsonValues(want));
    }
  });

  it.each(DATATYPES)('%s: flat data is the same as nested', async (datatype) => {
    const values = SAMPLES[datatype];
    const flat = await infer(datatype, { inputs: [{ name: 'x', shape: [3, 2], datatype, data: values }] });
    const nested = await infer(datatype, {
      inputs: [{ name: 'x', shape: [3, 2], datatype, data: rows(values, 2) }],
    });
    expect(flat.text).toBe(nested.text);
    expect(outputOf(flat.response, 'y').shape).toEqual([3, 2]);
  });

  it.each(DATATYPES)(
    '%s: binary in, binary out, byte for byte what onnxruntime returns',
    async (datatype) => {
      const values = SAMPLES[datatype];
      const input = tensorOf(datatype, values, [2, 3]);
      const bytes = tensorBytes(input);
      const { body, headerLength } = binaryBody(
        {
          parameters: { binary_data_output: true },
          inputs: [{ name: 'x', shape: [2, 3], datatype, parameters: { binary_data_size: bytes.length } }],
        },
        [bytes],
      );
      const raw = parseBody(body, headerLength, LIMITS);
      const { response, binary, encoded } = await infer(datatype, raw.header, raw.binary);
      const want = tensorOut(await direct(datatype, { x: input }), 'y');

      expect(encoded.headers['content-type']).toBe('application/octet-stream');
      const out = outputOf(response, 'y');
      expect(out).toEqual({
        name: 'y',
        datatype,
        shape: [2, 3],
        parameters: { binary_data_size: bytes.length },
      });
      expect(binary.get('y')).toEqual(tensorBytes(want));
      expect(binary.get('y')).toEqual(bytes);
    },
  );
});

describe('64-bit integers', () => {
  it('INT64 strings beyond 2^53 are exact in and out (ids + 1)', async () => {
    const ids = ['9007199254740993', '-9223372036854775808', '9223372036854775806', 5];
    const { text } = await infer('mixed', {
      inputs: [
        { name: 'ids', shape: [4], datatype: 'INT64', data: ids },
        { name: 'mask', shape: [4], datatype: 'BOOL', data: [true, false, true, false] },
        { name: 'text', shape: [4], datatype: 'BYTES', data: ['a', 'b', 'c', 'd'] },
      ],
      outputs: [{ name: 'next_ids' }],
    });
    const want = await direct(
      'mixed',
      {
        ids: tensorOf('INT64', ids, [4]),
        mask: tensorOf('BOOL', [1, 0, 1, 0], [4]),
        text: tensorOf('BYTES', ['a', 'b', 'c', 'd'], [4]),
      },
      ['next_ids'],
    );
    expect(dataText(text, 'next_ids')).toBe('9007199254740994,-9223372036854775807,9223372036854775807,6');
    expect(dataText(text, 'next_ids')).toBe(
      Array.from(tensorOut(want, 'next_ids').data as BigInt64Array).join(','),
    );
  });

  it.each([
    ['INT64', 2 ** 53, /data\[0\] is 9007199254740992; INT64 values .* as strings for values beyond 2\^53/],
    [
      'INT64',
      '9223372036854775808',
      /data\[0\] is "9223372036854775808"; INT64 values must be integers from/,
    ],
    ['INT64', '-9223372036854775809', /data\[0\] is "-9223372036854775809"/],
    ['INT64', '12a', /data\[0\] is "12a"/],
    ['INT64', 1.5, /data\[0\] is 1.5/],
    ['UINT64', -1, /data\[0\] is -1; UINT64 values must be integers from 0 to 18446744073709551615/],
    ['UINT64', '18446744073709551616', /data\[0\] is "18446744073709551616"/],
  ])('%s rejects %j', (datatype, value, message) => {
    expectFailure(
      () => prepare(datatype, { inputs: [{ name: 'x', shape: [1, 1], datatype, data: [value] }] }),
      BadRequestError,
      400,
      new RegExp(`input 'x' ${message.source}`),
    );
  });
});

describe('several inputs and outputs', () => {
  it('runs Add and Mul on two inputs and returns both outputs in model order', async () => {
    const { response, prepared, encoded } = await infer('addMul', {
      id: 'abc',
      inputs: [abInput('b', [2, 3], rows(B, 3)), abInput('a', [2, 3], A)],
    });
    const want = await direct('addMul', addMulFeeds());
    expect(encoded.headers).toEqual({ 'content-type': 'application/json' });
    expect(prepared.batchSize).toBe(2);
    expect(response).toEqual({
      model_name: 'addMul',
      model_version: '1',
      id: 'abc',
      outputs: [
        { name: 'sum', datatype: 'FP32', shape: [2, 3], data: jsonValues(tensorOut(want, 'sum')) },
        { name: 'product', datatype: 'FP32', shape: [2, 3], data: jsonValues(tensorOut(want, 'product')) },
      ],
    });
  });

  it('returns only the outputs asked for, in the order asked', async () => {
    const { response, prepared } = await infer('addMul', {
      inputs: [abInput('a', [2, 3], A), abInput('b', [2, 3], B)],
      outputs: [{ name: 'product' }],
    });
    expect(prepared.fetches).toEqual(['product']);
    expect(response.outputs.map((o) => o.name)).toEqual(['product']);
    expect(response.id).toBeUndefined();
    const both = await infer('addMul', {
      inputs: [abInput('a', [2, 3], A), abInput('b', [2, 3], B)],
      outputs: [{ name: 'product' }, { name: 'sum' }],
    });
    expect(both.response.outputs.map((o) => o.name)).toEqual(['product', 'sum']);
  });

  it('int64, bool and string tensors in one request', async () => {
    const { response, text } = await infer('mixed', {
      inputs: [
        { name: 'ids', shape: [3], datatype: 'INT64', data: [1, -2, '30'] },
        { name: 'mask', shape: [3], datatype: 'BOOL', data: [true, false, 1] },
        { name: 'text', shape: [3], datatype: 'BYTES', data: ['x', 'ÿ€', ''] },
      ],
    });
    const want = await direct('mixed', {
      ids: tensorOf('INT64', [1, -2, 30], [3]),
      mask: tensorOf('BOOL', [1, 0, 1], [3]),
      text: tensorOf('BYTES', ['x', 'ÿ€', ''], [3]),
    });
    expect(dataText(text, 'next_ids')).toBe('2,-1,31');
    expect(outputOf(response, 'next_ids')).toMatchObject({
      datatype: 'INT64',
      shape: [3],
      data: [2, -1, 31],
    });
    expect(outputOf(response, 'not_mask')).toEqual({
      name: 'not_mask',
      datatype: 'BOOL',
      shape: [3],
      data: jsonValues(tensorOut(want, 'not_mask')),
    });
    expect(outputOf(response, 'not_mask').data).toEqual([false, true, false]);
    expect(outputOf(response, 'text_out').data).toEqual(jsonValues(tensorOut(want, 'text_out')));
  });
});

describe('binary extension', () => {
  it('reads aligned data in place, without a copy', () => {
    const x = Float64Array.from(SAMPLES.FP64 as number[]);
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP64', parameters: { binary_data_size: 48 } }] },
      [leBytes(x)],
      0,
    );
    const raw = parseBody(body, headerLength, LIMITS);
    const data = prepare('FP64', raw.header, raw.binary).feeds.x?.data as Float64Array;
    expect(data.buffer).toBe(body.buffer);
    expect(data.byteOffset).toBe(Number(headerLength));
    expect(Array.from(data)).toEqual(Array.from(x));
  });

  it.each([
    ['FP64', 4],
    ['INT64', 1],
    ['UINT64', 7],
    ['FP32', 2],
    ['INT32', 3],
    ['INT16', 1],
    ['UINT16', 5],
  ] as [Datatype, number][])(
    '%s at an unaligned offset (header length %% 8 = %d) is copied and exact',
    async (datatype, mod) => {
      const input = tensorOf(datatype, SAMPLES[datatype], [2, 3]);
      const bytes = tensorBytes(input);
      const { body, headerLength } = binaryBody(
        { inputs: [{ name: 'x', shape: [2, 3], datatype, parameters: { binary_data_size: bytes.length } }] },
        [bytes],
        mod,
      );
      expect(Number(headerLength) % 8).toBe(mod);
      const raw = parseBody(body, headerLength, LIMITS);
      const { prepared, response, text } = await infer(datatype, raw.header, raw.binary);
      expect((prepared.feeds.x?.data as TypedArray).buffer).not.toBe(body.buffer);
      const want = tensorOut(await direct(datatype, { x: input }), 'y');
      if (is64(datatype)) expect(dataText(text, 'y')).toBe(Array.from(want.data as BigInt64Array).join(','));
      else expect(outputOf(response, 'y').data).toEqual(jsonValues(want));
    },
  );

  it('mixes JSON and binary inputs, BYTES length-prefixed, binary data in input order', async () => {
    const mask = Buffer.from([1, 0, 0]);
    const text = lengthPrefixed(['héllo', '', 'wörld!']);
    const { body, headerLength } = binaryBody(
      {
        inputs: [
          { name: 'mask', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
          { name: 'ids', shape: [3], datatype: 'INT64', data: [7, 8, 9] },
          { name: 'text', shape: [3], datatype: 'BYTES', parameters: { binary_data_size: text.length } },
        ],
        outputs: [{ name: 'text_out', parameters: { binary_data: true } }, { name: 'not_mask' }],
      },
      [mask, text],
      3,
    );
    const raw = parseBody(body, headerLength, LIMITS);
    const { response, binary, encoded } = await infer('mixed', raw.header, raw.binary);
    const want = await direct('mixed', {
      ids: tensorOf('INT64', [7, 8, 9], [3]),
      mask: tensorOf('BOOL', [1, 0, 0], [3]),
      text: tensorOf('BYTES', ['héllo', '', 'wörld!'], [3]),
    });
    expect(encoded.headers['inference-header-content-length']).toBe(
      String(encoded.body.length - lengthPrefixed(['héllo', '', 'wörld!']).length),
    );
    expect(outputOf(response, 'text_out')).toEqual({
      name: 'text_out',
      datatype: 'BYTES',
      shape: [3],
      parameters: { binary_data_size: text.length },
    });
    expect(binary.get('text_out')).toEqual(tensorBytes(tensorOut(want, 'text_out')));
    expect(outputOf(response, 'not_mask').data).toEqual([false, true, true]);
    expect(binary.has('not_mask')).toBe(false);
  });

  it('binary_data_output makes every output binary', async () => {
    const { response, binary } = await infer('addMul', {
      parameters: { binary_data_output: true },
      inputs: [abInput('a', [2, 3], A), abInput('b', [2, 3], B)],
    });
    const want = await direct('addMul', addMulFeeds());
    expect(response.outputs.map((o) => [o.name, o.parameters, o.data])).toEqual([
      ['sum', { binary_data_size: 24 }, undefined],
      ['product', { binary_data_size: 24 }, undefined],
    ]);
    expect(binary.get('sum')).toEqual(tensorBytes(tensorOut(want, 'sum')));
    expect(binary.get('product')).toEqual(tensorBytes(tensorOut(want, 'product')));
  });

  it("an output's own binary_data: false wins over binary_data_output", async () => {
    const { response, binary } = await infer('addMul', {
      parameters: { binary_data_output: true },
      inputs: [abInput('a', [2, 3], A), abInput('b', [2, 3], B)],
      outputs: [{ name: 'sum', parameters: { binary_data: false } }, { name: 'product' }],
    });
    const want = await direct('addMul', addMulFeeds());
    expect(outputOf(response, 'sum').data).toEqual(jsonValues(tensorOut(want, 'sum')));
    expect(binary.has('sum')).toBe(false);
    expect(binary.get('product')).toEqual(tensorBytes(tensorOut(want, 'product')));
  });

  it('a binary BOOL output is one byte per element', async () => {
    const { binary } = await infer('BOOL', {
      inputs: [{ name: 'x', shape: [1, 3], datatype: 'BOOL', data: [true, false, true] }],
      outputs: [{ name: 'y', parameters: { binary_data: true } }],
    });
    expect([...(binary.get('y') ?? [])]).toEqual([1, 0, 1]);
  });

  it('non-finite floats sent as binary come back as JSON null', async () => {
    const x = new Float32Array([NaN, Infinity, -Infinity, 1.5]);
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] },
      [leBytes(x)],
    );
    const raw = parseBody(body, headerLength, LIMITS);
    const { response } = await infer('FP32', raw.header, raw.binary);
    expect(outputOf(response, 'y').data).toEqual([null, null, null, 1.5]);
  });

  it('an empty binary_data_size of 0 feeds an empty tensor', async () => {
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'x', shape: [0, 3], datatype: 'FP32', parameters: { binary_data_size: 0 } }] },
      [],
    );
    const raw = parseBody(body, headerLength, LIMITS);
    const { response } = await infer('FP32', raw.header, raw.binary);
    expect(outputOf(response, 'y')).toEqual({ name: 'y', datatype: 'FP32', shape: [0, 3], data: [] });
  });

  const two = (sizeA: unknown, sizeB: unknown) => ({
    inputs: [
      { name: 'a', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: sizeA } },
      { name: 'b', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: sizeB } },
    ],
  });

  it.each([
    [
      'a size that does not fit the shape',
      two(20, 24),
      44,
      /input 'a' declares binary_data_size 20, but 6 FP32 elements take 24 bytes/,
    ],
    [
      'data past the end of the body',
      two(24, 24),
      40,
      /input 'b' needs 24 bytes of binary data at offset 24, but only 16 remain/,
    ],
    ['bytes no input claims', two(24, 24), 52, /the body has 4 bytes of binary data that no input claims/],
    [
      'a negative size',
      two(-24, 24),
      48,
      /input 'a' parameters.binary_data_size must be a non-negative integer, got -24/,
    ],
    [
      'a size given as a string',
      two('24', 24),
      48,
      /input 'a' parameters.binary_data_size must be .* got "24"/,
    ],
    ['a fractional size', two(24, 23.5), 48, /input 'b' parameters.binary_data_size must be .* got 23.5/],
  ])('rejects %s', (_title, header, bytes, message) => {
    const { body, headerLength } = binaryBody(header, [Buffer.alloc(bytes)]);
    const raw = parseBody(body, headerLength, LIMITS);
    expectFailure(() => prepare('addMul', raw.header, raw.binary), BadRequestError, 400, message);
  });

  it('rejects binary_data_size when there is no header length to find the data', () => {
    expectFailure(
      () => prepare('addMul', two(24, 24)),
      BadRequestError,
      400,
      /input 'a' uses parameters.binary_data_size, but the request has no Inference-Header-Content-Length header/,
    );
  });

  it('rejects an input with both data and binary_data_size', () => {
    const header = {
      inputs: [
        { name: 'x', shape: [1, 1], datatype: 'FP32', data: [1], parameters: { binary_data_size: 4 } },
      ],
    };
    const { body, headerLength } = binaryBody(header, [Buffer.alloc(4)]);
    const raw = parseBody(body, headerLength, LIMITS);
    expectFailure(
      () => prepare('FP32', raw.header, raw.binary),
      BadRequestError,
      400,
      /input 'x' has both "data" and/,
    );
  });

  it('rejects binary bytes after a JSON-only request', () => {
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [1] }] },
      [Buffer.alloc(3)],
    );
    const raw = parseBody(body, headerLength, LIMITS);
    expectFailure(
      () => prepare('FP32', raw.header, raw.binary),
      BadRequestError,
      400,
      /3 bytes of binary data that no input/,
    );
  });

  it.each([
    [
      'ends before the last element',
      Buffer.concat([lengthPrefixed(['ab'])]),
      /input 'x' binary data ends after 1 of 2 BYTES elements/,
    ],
    [
      'has a length past its data',
      Buffer.concat([lengthPrefixed(['ab']), Buffer.from([100, 0, 0, 0, 1])]),
      /input 'x' BYTES element 1 claims 100 bytes, past the end/,
    ],
    [
      'has bytes left over',
      Buffer.concat([lengthPrefixed(['ab', 'c']), Buffer.from([1, 2, 3])]),
      /input 'x' has 3 bytes left over after 2 BYTES elements/,
    ],
    [
      'cuts a length prefix short',
      Buffer.concat([lengthPrefixed(['ab']), Buffer.from([1, 0])]),
      /input 'x' binary data ends after 1 of 2 BYTES elements/,
    ],
  ])('rejects BYTES binary data that %s', (_title, bytes, message) => {
    const { body, headerLength } = binaryBody(
      {
        inputs: [
          { name: 'x', shape: [1, 2], datatype: 'BYTES', parameters: { binary_data_size: bytes.length } },
        ],
      },
      [bytes],
    );
    const raw = parseBody(body, headerLength, LIMITS);
    expectFailure(() => prepare('BYTES', raw.header, raw.binary), BadRequestError, 400, message);
  });

  it('rejects BOOL bytes other than 0 and 1, which would give wrong results', async () => {
    // onnxruntime's Not flips one bit, so a "true" sent as 2 would come back as true again.
    const ok = await infer('mixed', ...boolRequest([1, 0, 1]));
    expect(outputOf(ok.response, 'not_mask').data).toEqual([false, true, false]);
    const [header, binary] = boolRequest([1, 2, 0]);
    expectFailure(
      () => prepare('mixed', header, binary),
      BadRequestError,
      400,
      /input 'mask' binary data\[1\] is 2; BOOL bytes must be 0 or 1/,
    );
  });
});

function boolRequest(mask: number[]): [unknown, Buffer | undefined] {
  const { body, headerLength } = binaryBody(
    {
      inputs: [
        { name: 'ids', shape: [mask.length], datatype: 'INT64', data: mask.map(() => 0) },
        {
          name: 'mask',
          shape: [mask.length],
          datatype: 'BOOL',
          parameters: { binary_data_size: mask.length },
        },
        { name: 'text', shape: [mask.length], datatype: 'BYTES', data: mask.map(() => '') },
      ],
    },
    [Buffer.from(mask)],
  );
  const raw = parseBody(body, headerLength, LIMITS);
  return [raw.header, raw.binary];
}

describe('scalar input', () => {
  const x = [1, 2, 3, 4];

  it.each([
    ['a bare number', 2.5],
    ['a one-element array', [2.5]],
  ])('takes shape [] with %s', async (_title, data) => {
    const { response } = await infer('scalar', {
      inputs: [
        { name: 'scale', shape: [], datatype: 'FP32', data },
        { name: 'x', shape: [2, 2], datatype: 'FP32', data: x },
      ],
    });
    const want = await direct('scalar', {
      x: tensorOf('FP32', x, [2, 2]),
      scale: new ort.Tensor('float32', Float32Array.from([2.5]), []),
    });
    expect(outputOf(response, 'y')).toEqual({
      name: 'y',
      datatype: 'FP32',
      shape: [2, 2],
      data: jsonValues(tensorOut(want, 'y')),
    });
  });

  it('metadata gives the scalar shape []', () => {
    expect(get('scalar').model.metadata().inputs).toEqual([
      { name: 'x', datatype: 'FP32', shape: [-1, 2] },
      { name: 'scale', datatype: 'FP32', shape: [] },
    ]);
  });

  it('with a manifest, rejects a scalar sent with rank 1', () => {
    expectFailure(
      () =>
        prepare('scalar', {
          inputs: [
            { name: 'x', shape: [2, 2], datatype: 'FP32', data: x },
            { name: 'scale', shape: [1], datatype: 'FP32', data: [2] },
          ],
        }),
      BadRequestError,
      400,
      /input 'scale' has shape \[1\] \(rank 1\) but the model expects rank 0: \[\]/,
    );
  });

  it('rejects scalar data nested deeper than shape []', () => {
    expectFailure(
      () =>
        prepare('scalar', {
          inputs: [
            { name: 'x', shape: [2, 2], datatype: 'FP32', data: x },
            { name: 'scale', shape: [], datatype: 'FP32', data: [[2]] },
          ],
        }),
      BadRequestError,
      400,
      /input 'scale' data is nested deeper than shape \[\]/,
    );
  });

  it('without a manifest the rank is unknown: shape [] and [1] both run as onnxruntime runs them', async () => {
    // onnxruntime reports [] for a scalar and for an unknown rank alike; only a manifest tells them apart.
    expect(get('scalarBare').model.input('scale')).toMatchObject({ tensor: true, dims: undefined });
    for (const shape of [[], [1]]) {
      const { response } = await infer('scalarBare', {
        inputs: [
          { name: 'x', shape: [2, 2], datatype: 'FP32', data: x },
          { name: 'scale', shape, datatype: 'FP32', data: [3] },
        ],
      });
      const want = await direct('scalarBare', {
        x: tensorOf('FP32', x, [2, 2]),
        scale: tensorOf('FP32', [3], shape),
      });
      expect(outputOf(response, 'y').data).toEqual(jsonValues(tensorOut(want, 'y')));
      expect(outputOf(response, 'y').data).toEqual([3, 6, 9, 12]);
    }
  });

  it('without a manifest, a shape onnxruntime rejects at run time is still a 400', async () => {
    const prepared = prepare('scalarBare', {
      inputs: [
        { name: 'x', shape: [2, 2], datatype: 'FP32', data: x },
        { name: 'scale', shape: [3], datatype: 'FP32', data: [1, 2, 3] },
      ],
    });
    const err = await get('scalarBare')
      .model.run(prepared.feeds, prepared.fetches)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).status).toBe(400);
    expect((err as BadRequestError).message).toMatch(/^the model could not run on this input: .+/);
  });
});

describe('dynamic dimensions', () => {
  it('the model reports named, unnamed and -1 dims as dynamic, and the fixed one as a size', () => {
    const io = get('dynamic').model.input('x');
    if (!io?.tensor) throw new Error("no tensor input 'x'");
    expect(io.dims).toEqual([{ dynamic: 'batch' }, { dynamic: '' }, { dynamic: '' }, 4]);
    expect(get('dynamic').model.metadata().inputs).toEqual([
      { name: 'x', datatype: 'FP32', shape: [-1, -1, -1, 4] },
    ]);
  });

  it.each([[[2, 1, 3, 4]], [[1, 5, 2, 4]], [[3, 2, 1, 4]]])(
    'any size in the dynamic dims: %j',
    async (shape) => {
      const n = shape.reduce((p, d) => p * d, 1);
      const values = Array.from({ length: n }, (_, i) => i - n / 2);
      const { response } = await infer('dynamic', {
        inputs: [{ name: 'x', shape, datatype: 'FP32', data: values }],
      });
      const want = tensorOut(await direct('dynamic', { x: tensorOf('FP32', values, shape) }), 'y');
      expect(outputOf(response, 'y')).toEqual({ name: 'y', datatype: 'FP32', shape, data: jsonValues(want) });
    },
  );

  it('rejects a wrong fixed dim, naming the dimension', () => {
    expectFailure(
      () =>
        prepare('dynamic', {
          inputs: [{ name: 'x', shape: [1, 1, 1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }],
        }),
      BadRequestError,
      400,
      /input 'x' has shape \[1, 1, 1, 5\] but the model expects \[-1, -1, -1, 4\]: dimension 3 must be 4/,
    );
  });

  it('rejects the wrong rank', () => {
    expectFailure(
      () =>
        prepare('dynamic', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
      BadRequestError,
      400,
      /input 'x' has shape \[1, 4\] \(rank 2\) but the model expects rank 4: \[-1, -1, -1, 4\]/,
    );
  });

  it('a named dim must be the same size in every input', () => {
    expectFailure(
      () => prepare('addMul', { inputs: [abInput('a', [2, 3], A), abInput('b', [1, 3], [1, 2, 3])] }),
      BadRequestError,
      400,
      /dimension 'batch' is 2 in input 'a' but 1 in input 'b'; they must match/,
    );
  });

  it('a dynamic first dim over maxBatch is 413; a fixed one is not limited', () => {
    const limits = resolveLimits({ maxBatch: 4 });
    expectFailure(
      () =>
        prepare(
          'dynamic',
          { inputs: [{ name: 'x', shape: [5, 1, 1, 4], datatype: 'FP32', data: zeros(20) }] },
          undefined,
          limits,
        ),
      PayloadTooLargeError,
      413,
      /input 'x' has a batch of 5 rows; the limit is 4/,
    );
    expect(
      prepare(
        'dynamic',
        { inputs: [{ name: 'x', shape: [4, 1, 1, 4], datatype: 'FP32', data: zeros(16) }] },
        undefined,
        limits,
      ).batchSize,
    ).toBe(4);
    expect(
      prepare(
        'fixed8',
        { inputs: [{ name: 'x', shape: [8], datatype: 'FP32', data: zeros(8) }] },
        undefined,
        limits,
      ).batchSize,
    ).toBe(8);
  });

  it('an input over maxElements is 413', () => {
    const limits = resolveLimits({ maxElements: 10 });
    expectFailure(
      () =>
        prepare(
          'FP32',
          { inputs: [{ name: 'x', shape: [3, 4], datatype: 'FP32', data: zeros(12) }] },
          undefined,
          limits,
        ),
      PayloadTooLargeError,
      413,
      /input 'x' has 12 elements \(shape \[3, 4\]\); the limit is 10/,
    );
  });
});

describe('ONNX-ML and non-tensor outputs', () => {
  const x = [3, 1, 0, 2, -2, -2];

  it('lists the ZipMap output as unsupported in the metadata', () => {
    expect(get('classifier').model.metadata()).toEqual({
      name: 'classifier',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
      outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }],
      unsupported_outputs: [
        { name: 'probabilities', reason: expect.stringMatching(/sequence or map/) as unknown },
      ],
    });
  });

  it('fetches only the tensor outputs by default', async () => {
    const { response, prepared } = await infer('classifier', {
      inputs: [{ name: 'x', shape: [3, 2], datatype: 'FP32', data: x }],
    });
    const want = await direct('classifier', { x: tensorOf('FP32', x, [3, 2]) }, ['label']);
    expect(prepared.fetches).toEqual(['label']);
    expect(response.outputs).toEqual([
      {
        name: 'label',
        datatype: 'INT64',
        shape: [3],
        data: Array.from(tensorOut(want, 'label').data as BigInt64Array, Number),
      },
    ]);
    expect(outputOf(response, 'label').data).toEqual([0, 1, 2]);
  });

  it('asking for the ZipMap output is a 400 that names it and the outputs there are', () => {
    expectFailure(
      () =>
        prepare('classifier', {
          inputs: [{ name: 'x', shape: [3, 2], datatype: 'FP32', data: x }],
          outputs: [{ name: 'probabilities' }],
        }),
      BadRequestError,
      400,
      /output 'probabilities' is a sequence or map .*; ask for one of: label/,
    );
  });
});

describe('values onnxruntime rejects at run time', () => {
  it('an out-of-range Gather index is a 400, an in-range one matches onnxruntime', async () => {
    const { response } = await infer('gather', {
      inputs: [{ name: 'idx', shape: [3], datatype: 'INT64', data: [3, 0, -1] }],
    });
    const want = await direct('gather', { idx: tensorOf('INT64', [3, 0, -1], [3]) });
    expect(outputOf(response, 'out').data).toEqual(jsonValues(tensorOut(want, 'out')));
    expect(outputOf(response, 'out').data).toEqual([GATHER_TABLE[3], GATHER_TABLE[0], GATHER_TABLE[3]]);

    const prepared = prepare('gather', {
      inputs: [{ name: 'idx', shape: [2], datatype: 'INT64', data: [1, 9] }],
    });
    const err = await get('gather')
      .model.run(prepared.feeds, prepared.fetches)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).status).toBe(400);
    expect((err as BadRequestError).message).toMatch(
      /the model could not run on this input: .*out of data bounds.*idx=9/,
    );
  });
});

interface BadCase {
  readonly title: string;
  readonly model: string;
  readonly header: unknown;
  readonly message: RegExp;
}

const ab = { a: abInput('a', [2, 3], A), b: abInput('b', [2, 3], B) };
const oneX = (datatype: string, data: unknown, shape: number[] = [1, 1]) => ({
  inputs: [{ name: 'x', shape, datatype, data }],
});

const BAD_REQUESTS: BadCase[] = [
  {
    title: 'an FP32 value beyond float32 range',
    model: 'FP32',
    header: oneX('FP32', [1e39]),
    message: /input 'x' data\[0\] is 1e\+39; FP32 values must be numbers within ±3\.4028234663852886e\+38/,
  },
  {
    title: 'an array body',
    model: 'addMul',
    header: [ab.a],
    message: /request must be a JSON object with an "inputs" array, got an array/,
  },
  {
    title: 'a string body',
    model: 'addMul',
    header: 'hello',
    message: /request must be a JSON object .* got "hello"/,
  },
  {
    title: 'a null body',
    model: 'addMul',
    header: null,
    message: /request must be a JSON object .* got null/,
  },
  { title: 'a number body', model: 'addMul', header: 42, message: /request must be a JSON object .* got 42/ },
  {
    title: 'missing inputs',
    model: 'addMul',
    header: { id: 'x' },
    message: /"inputs" must be a non-empty array .*; the model's inputs are: a, b/,
  },
  {
    title: 'empty inputs',
    model: 'addMul',
    header: { inputs: [] },
    message: /"inputs" must be a non-empty array .*inputs are: a, b/,
  },
  {
    title: 'inputs as an object',
    model: 'addMul',
    header: { inputs: { a: A } },
    message: /"inputs" must be a non-empty array/,
  },
  {
    title: 'an input that is not an object',
    model: 'addMul',
    header: { inputs: [ab.a, 7] },
    message: /inputs\[1\] must be an object, got 7/,
  },
  {
    title: 'an input with no name',
    model: 'addMul',
    header: { inputs: [{ shape: [1], datatype: 'FP32', data: [1] }] },
    message: /inputs\[0\].name must be a string, got undefined/,
  },
  {
    title: 'a non-string id',
    model: 'addMul',
    header: { id: 5, inputs: [ab.a, ab.b] },
    message: /"id" must be a string, got 5/,
  },
  {
    title: 'non-object parameters',
    model: 'addMul',
    header: { parameters: [], inputs: [ab.a, ab.b] },
    message: /"parameters" must be an object, got an array/,
  },
  {
    title: 'an unknown input',
    model: 'addMul',
    header: { inputs: [ab.a, ab.b, abInput('c', [2, 3], A)] },
    message: /unknown input 'c'; the model's inputs are: a, b/,
  },
  {
    title: 'a duplicate input',
    model: 'addMul',
    header: { inputs: [ab.a, ab.a, ab.b] },
    message: /input 'a' appears more than once/,
  },
  {
    title: 'a missing input',
    model: 'addMul',
    header: { inputs: [ab.a] },
    message: /missing input 'b'; the model needs: a, b/,
  },
  {
    title: 'two missing inputs',
    model: 'mixed',
    header: { inputs: [{ name: 'ids', shape: [1], datatype: 'INT64', data: [1] }] },
    message: /missing input 'mask', 'text'/,
  },
  {
    title: 'the wrong datatype',
    model: 'addMul',
    header: { inputs: [abInput('a', [2, 3], A, 'FP64'), ab.b] },
    message: /input 'a' has datatype FP64 but the model expects FP32/,
  },
  {
    title: 'an unknown datatype',
    model: 'addMul',
    header: { inputs: [abInput('a', [2, 3], A, 'FLOAT32'), ab.b] },
    message:
      /input 'a' has datatype "FLOAT32"; use one of BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP32, FP64, BYTES \(the model expects FP32\)/,
  },
  {
    title: 'a lower-case datatype',
    model: 'addMul',
    header: { inputs: [abInput('a', [2, 3], A, 'fp32'), ab.b] },
    message: /input 'a' has datatype "fp32"; use one of/,
  },
  {
    title: 'no datatype',
    model: 'addMul',
    header: { inputs: [{ name: 'a', shape: [2, 3], data: A }, ab.b] },
    message: /input 'a' has datatype undefined/,
  },
  {
    title: 'a shape that is not an array',
    model: 'addMul',
    header: { inputs: [{ ...ab.a, shape: '2,3' }, ab.b] },
    message: /input 'a'.shape must be an array of non-negative integers, got "2,3"/,
  },
  {
    title: 'a negative dim',
    model: 'addMul',
    header: { inputs: [{ ...ab.a, shape: [-1, 3] }, ab.b] },
    message: /input 'a'.shape must be an array of non-negative integers, got an array/,
  },
  {
    title: 'a fractional dim',
    model: 'addMul',
    header: { inputs: [{ ...ab.a, shape: [1.5, 3] }, ab.b] },
    message: /input 'a'.shape must be/,
  },
  {
    title: 'the wrong rank',
    model: 'addMul',
    header: { inputs: [abInput('a', [6], A), ab.b] },
    message: /input 'a' has shape \[6\] \(rank 1\) but the model expects rank 2: \[-1, 3\]/,
  },
  {
    title: 'a wrong fixed dim',
    model: 'addMul',
    header: { inputs: [abInput('a', [3, 2], A), ab.b] },
    message: /input 'a' has shape \[3, 2\] but the model expects \[-1, 3\]: dimension 1 must be 3/,
  },
  {
    title: 'an inconsistent named dim',
    model: 'addMul',
    header: { inputs: [ab.a, abInput('b', [3, 3], [...B, 1, 2, 3])] },
    message: /dimension 'batch' is 2 in input 'a' but 3 in input 'b'/,
  },
  {
    title: 'fewer values than the shape',
    model: 'addMul',
    header: { inputs: [abInput('a', [2, 3], [1, 2, 3, 4, 5]), ab.b] },
    message: /input 'a' has 5 values but shape \[2, 3\] needs 6/,
  },
  {
    title: 'more values than the shape',
    model: 'addMul',
    header: { inputs: [ab.a, abInput('b', [2, 3], [...B, 7])] },
    message: /input 'b' has 7 values but shape \[2, 3\] needs 6/,
  },
  {
    title: 'a ragged nested row',
    model: 'addMul',
    header: {
      inputs: [
        abInput(
          'a',
          [2, 3],
          [
            [1, 2, 3],
            [4, 5],
          ],
        ),
        ab.b,
      ],
    },
    message: /input 'a' data\[1\] should be an array of 3 \(shape \[2, 3\]\), got 2 items/,
  },
  {
    title: 'nesting deeper than the shape',
    model: 'addMul',
    header: {
      inputs: [
        abInput(
          'a',
          [2, 3],
          [
            [1, 2, [3]],
            [4, 5, 6],
          ],
        ),
        ab.b,
      ],
    },
    message: /input 'a' data\[0\]\[2\] is nested deeper than shape \[2, 3\]/,
  },
  {
    title: 'a scalar where a row should be',
    model: 'addMul',
    header: { inputs: [abInput('a', [2, 3], [[1, 2, 3], 4]), ab.b] },
    message: /input 'a' data\[1\] should be an array of 3 .* got 4/,
  },
  {
    title: 'no data',
    model: 'addMul',
    header: { inputs: [{ name: 'a', shape: [2, 3], datatype: 'FP32' }, ab.b] },
    message: /input 'a' has no "data"; send data, or parameters.binary_data_size/,
  },
  {
    title: 'null data',
    model: 'addMul',
    header: { inputs: [abInput('a', [2, 3], null), ab.b] },
    message: /input 'a' has no "data"/,
  },
  {
    title: 'a string in FP32 data',
    model: 'addMul',
    header: { inputs: [abInput('a', [2, 3], [1, '2', 3, 4, 5, 6]), ab.b] },
    message: /input 'a' data\[1\] is "2"; FP32 values must be numbers/,
  },
  {
    title: 'null in FP32 data',
    model: 'addMul',
    header: {
      inputs: [
        ab.a,
        abInput(
          'b',
          [2, 3],
          [
            [1, 2, 3],
            [4, null, 6],
          ],
        ),
      ],
    },
    message: /input 'b' data\[4\] is null; FP32 values must be numbers/,
  },
  {
    title: 'a bool in FP64 data',
    model: 'FP64',
    header: oneX('FP64', [true]),
    message: /input 'x' data\[0\] is true; FP64 values must be numbers/,
  },
  {
    title: 'INT8 over 127',
    model: 'INT8',
    header: oneX('INT8', [128]),
    message: /input 'x' data\[0\] is 128; INT8 values must be integers from -128 to 127/,
  },
  {
    title: 'INT8 under -128',
    model: 'INT8',
    header: oneX('INT8', [-129]),
    message: /input 'x' data\[0\] is -129; INT8 values must be integers from -128 to 127/,
  },
  {
    title: 'UINT8 negative',
    model: 'UINT8',
    header: oneX('UINT8', [-1]),
    message: /input 'x' data\[0\] is -1; UINT8 values must be integers from 0 to 255/,
  },
  {
    title: 'UINT16 over 65535',
    model: 'UINT16',
    header: oneX('UINT16', [65536]),
    message: /input 'x' data\[0\] is 65536; UINT16 values must be integers from 0 to 65535/,
  },
  {
    title: 'INT16 as a string',
    model: 'INT16',
    header: oneX('INT16', ['7']),
    message: /input 'x' data\[0\] is "7"; INT16 values must be integers/,
  },
  {
    title: 'a non-integer INT32',
    model: 'INT32',
    header: oneX('INT32', [1.5]),
    message: /input 'x' data\[0\] is 1.5; INT32 values must be integers from -2147483648 to 2147483647/,
  },
  {
    title: 'INT32 over 2^31',
    model: 'INT32',
    header: oneX('INT32', [2147483648]),
    message: /input 'x' data\[0\] is 2147483648; INT32 values/,
  },
  {
    title: 'UINT32 over 2^32',
    model: 'UINT32',
    header: oneX('UINT32', [4294967296]),
    message: /input 'x' data\[0\] is 4294967296; UINT32 values must be integers from 0 to 4294967295/,
  },
  {
    title: 'a bool as a string',
    model: 'BOOL',
    header: oneX('BOOL', ['true']),
    message: /input 'x' data\[0\] is "true"; BOOL values must be true or false/,
  },
  {
    title: 'a bool as 2',
    model: 'BOOL',
    header: oneX('BOOL', [2]),
    message: /input 'x' data\[0\] is 2; BOOL values must be true or false/,
  },
  {
    title: 'a bool as null',
    model: 'BOOL',
    header: oneX('BOOL', [null]),
    message: /input 'x' data\[0\] is null; BOOL values/,
  },
  {
    title: 'a number in BYTES',
    model: 'BYTES',
    header: oneX('BYTES', [5]),
    message: /input 'x' data\[0\] is 5; BYTES values must be strings/,
  },
  {
    title: 'an object in data',
    model: 'FP32',
    header: oneX('FP32', [{ v: 1 }]),
    message: /input 'x' data\[0\] is an object; FP32 values must be numbers/,
  },
  {
    title: 'outputs that are not an array',
    model: 'addMul',
    header: { inputs: [ab.a, ab.b], outputs: { name: 'sum' } },
    message: /"outputs" must be an array of \{name\}, got an object/,
  },
  {
    title: 'an output with no name',
    model: 'addMul',
    header: { inputs: [ab.a, ab.b], outputs: [{ name: 'sum' }, {}] },
    message: /outputs\[1\].name must be a string, got undefined/,
  },
  {
    title: 'an unknown output',
    model: 'addMul',
    header: { inputs: [ab.a, ab.b], outputs: [{ name: 'diff' }] },
    message: /unknown output 'diff'; the model's outputs are: sum, product/,
  },
  {
    title: 'a duplicate output',
    model: 'addMul',
    header: { inputs: [ab.a, ab.b], outputs: [{ name: 'sum' }, { name: 'sum' }] },
    message: /output 'sum' is requested more than once/,
  },
  {
    title: 'a non-tensor output',
    model: 'classifier',
    header: {
      inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }],
      outputs: [{ name: 'label' }, { name: 'probabilities' }],
    },
    message: /output 'probabilities' is a sequence or map/,
  },
];

describe('bad requests', () => {
  it.each(BAD_REQUESTS)('$title is a 400 that says what is wrong', ({ model, header, message }) => {
    expectFailure(() => prepare(model, header), BadRequestError, 400, message);
  });

  it('the valid request the matrix is built from runs', async () => {
    const fixed = await infer('addMul', { inputs: [ab.a, ab.b] });
    expect(fixed.response.outputs).toHaveLength(2);
  });
});

describe('helpers for the instances form', () => {
  it('nest reshapes flat row-major data', () => {
    expect(nest([1, 2, 3, 4, 5, 6], [2, 3])).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(nest([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2])).toEqual([
      [
        [1, 2],
        [3, 4],
      ],
      [
        [5, 6],
        [7, 8],
      ],
    ]);
    expect(nest([7], [])).toBe(7);
    expect(nest([1, 2], [2])).toEqual([1, 2]);
  });

  it('plainValues gives numbers, exact strings past 2^53, booleans and strings', () => {
    const i64 = infoForDatatype('INT64');
    const bool = infoForDatatype('BOOL');
    const bytes = infoForDatatype('BYTES');
    const fp32 = infoForDatatype('FP32');
    if (!i64 || !bool || !bytes || !fp32) throw new Error('missing datatype info');
    expect(
      plainValues(i64, new BigInt64Array([1n, -(2n ** 53n) + 1n, 2n ** 53n + 1n, -(2n ** 63n)])),
    ).toEqual([1, -9007199254740991, '9007199254740993', '-9223372036854775808']);
    expect(plainValues(bool, new Uint8Array([0, 1]))).toEqual([false, true]);
    expect(plainValues(bytes, ['a', 'b'])).toEqual(['a', 'b']);
    expect(plainValues(fp32, new Float32Array([0.5, -2]))).toEqual([0.5, -2]);
  });
});
