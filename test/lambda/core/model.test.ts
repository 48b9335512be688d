/** OnnxModel: what it makes of onnxruntime's metadata, and how it runs. */
import * as ort from 'onnxruntime-node';

import { encodeResponse, prepareInference } from '../../../lambda/core/codec';
import { BadRequestError } from '../../../lambda/core/errors';
import { resolveLimits } from '../../../lambda/core/limits';
import { OnnxModel } from '../../../lambda/core/model';
import { addMulModel, classifierModel, loadFixture, mixedModel, sha256Hex } from '../../fixtures/models';
import { buildModel, int, tensorInfo, type ValueInfo } from '../../../models/onnx-builder';
import { decodeResponse } from '../../support/v2';

// One test below makes onnxruntime fail on purpose; its own error log would only be noise.
ort.env.logLevel = 'fatal';

const FLOAT16 = 10;

/** 'x' FP32 ['n'] → 'y' (Identity) and 'half' = Cast(x) to float16, an element type V2 JSON has no datatype for. */
function halfModel(): Uint8Array {
  const half: ValueInfo = {
    name: 'half',
    proto: { name: 'half', type: { tensorType: { elemType: FLOAT16, shape: { dim: [{ dimParam: 'n' }] } } } },
  };
  return buildModel({
    inputs: [tensorInfo('x', 'float', ['n'])],
    outputs: [tensorInfo('y', 'float', ['n']), half],
    nodes: [
      { op: 'Identity', inputs: ['x'], outputs: ['y'] },
      { op: 'Cast', inputs: ['x'], outputs: ['half'], attrs: { to: int(FLOAT16) } },
    ],
  });
}

describe('OnnxModel', () => {
  it('keeps the name, version, manifest and sha256 it was given', async () => {
    const fixture = addMulModel();
    const model = await loadFixture(fixture, { name: 'addmul', version: '4.2.0' });
    try {
      expect(model.name).toBe('addmul');
      expect(model.version).toBe('4.2.0');
      expect(model.sha256).toBe(sha256Hex(fixture.bytes));
      expect(model.manifest?.inputs).toEqual(fixture.inputs);
      expect(model.tensorOutputs).toEqual(['sum', 'product']);
      expect(model.input('a')).toMatchObject({ name: 'a', tensor: true, dims: [{ dynamic: 'batch' }, 3] });
      expect(model.input('sum')).toBeUndefined();
      expect(model.output('product')).toMatchObject({ name: 'product', tensor: true });
      expect(model.output('a')).toBeUndefined();
    } finally {
      await model.release();
    }
  });

  it('looks names up as data, not as object properties', async () => {
    const model = await loadFixture(addMulModel());
    try {
      for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
        expect(model.input(name)).toBeUndefined();
        expect(model.output(name)).toBeUndefined();
      }
    } finally {
      await model.release();
    }
  });

  it('marks a sequence-of-maps output as unsupported and leaves it out of tensorOutputs', async () => {
    const model = await loadFixture(classifierModel());
    try {
      expect(model.output('probabilities')).toEqual({
        name: 'probabilities',
        tensor: false,
        reason: 'a sequence or map (e.g. ZipMap), which onnxruntime-node cannot return',
      });
      expect(model.tensorOutputs).toEqual(['label']);
    } finally {
      await model.release();
    }
  });

  it('marks an output of an element type with no V2 datatype as unsupported, and never fetches it', async () => {
    const model = await OnnxModel.create(halfModel(), { name: 'half', version: '1' });
    try {
      expect(model.metadata()).toEqual({
        name: 'half',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }],
        unsupported_outputs: [{ name: 'half', reason: 'element type float16 is not supported' }],
      });
      const limits = resolveLimits();
      const prepared = prepareInference(
        model,
        {
          header: { inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [1.5, -2] }] },
          binary: undefined,
        },
        limits,
      );
      expect(prepared.fetches).toEqual(['y']);
      const results = await model.run(prepared.feeds, prepared.fetches);
      const encoded = encodeResponse({ modelName: 'half', modelVersion: '1' }, prepared, results);
      const { response } = decodeResponse(encoded.body, encoded.headers);
      expect(response.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [2], data: [1.5, -2] }]);
      expect(() =>
        prepareInference(
          model,
          {
            header: {
              inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }],
              outputs: [{ name: 'half' }],
            },
            binary: undefined,
          },
          limits,
        ),
      ).toThrow(
        new BadRequestError("output 'half' is element type float16 is not supported; ask for one of: y"),
      );
    } finally {
      await model.release();
    }
  });

  it('runs the session: the same results as onnxruntime directly', async () => {
    const fixture = mixedModel();
    const model = await loadFixture(fixture);
    const session = await ort.InferenceSession.create(fixture.bytes);
    try {
      const feeds = () => ({
        ids: new ort.Tensor('int64', new BigInt64Array([10n, -3n]), [2]),
        mask: new ort.Tensor('bool', new Uint8Array([1, 0]), [2]),
        text: new ort.Tensor('string', ['p', 'q'], [2]),
      });
      const got = await model.run(feeds(), ['next_ids', 'not_mask']);
      const want = await session.run(feeds(), ['next_ids', 'not_mask']);
      expect(Object.keys(got).sort()).toEqual(['next_ids', 'not_mask']);
      expect(got.next_ids?.data).toEqual(want.next_ids?.data);
      expect(got.not_mask?.data).toEqual(want.not_mask?.data);
      expect(Array.from(got.next_ids?.data as BigInt64Array)).toEqual([11n, -2n]);
    } finally {
      await model.release();
      await session.release();
    }
  });

  it('turns a failure onnxruntime reports for the values sent into a 400', async () => {
    const model = await loadFixture(addMulModel());
    try {
      // Shapes that do not broadcast get past no metadata check here: onnxruntime is the one to refuse.
      const err: unknown = await model
        .run(
          {
            a: new ort.Tensor('float32', new Float32Array(6), [2, 3]),
            b: new ort.Tensor('float32', new Float32Array(9), [3, 3]),
          },
          ['sum'],
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).message).toMatch(/^the model could not run on this input: .+/);
    } finally {
      await model.release();
    }
  });

  it('runs with spinning worker threads turned off, and gives the same answers', async () => {
    const fixture = addMulModel();
    const model = await OnnxModel.create(fixture.bytes, {
      name: 'addmul',
      version: '1',
      session: { intraOpNumThreads: 2, allowSpinning: false },
    });
    try {
      const feeds = {
        a: new ort.Tensor('float32', Float32Array.from([1, 2, 3]), [1, 3]),
        b: new ort.Tensor('float32', Float32Array.from([4, 5, 6]), [1, 3]),
      };
      const out = await model.run(feeds, ['sum', 'product']);
      expect(Array.from(out.sum?.data as Float32Array)).toEqual([5, 7, 9]);
      expect(Array.from(out.product?.data as Float32Array)).toEqual([4, 10, 18]);
    } finally {
      await model.release();
    }
  });

  it('refuses bytes that are not a model', async () => {
    await expect(OnnxModel.create(new Uint8Array([1, 2, 3]), { name: 'x', version: '1' })).rejects.toThrow();
  });
});
