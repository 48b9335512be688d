import { BatchPredictor } from '../../../lambda/core/batch';
import { BadRequestError } from '../../../lambda/core/errors';
import { resolveLimits } from '../../../lambda/core/limits';
import { OnnxModel } from '../../../lambda/core/model';
import { buildModel, int, tensorInfo } from '../../../models/onnx-builder';
import { addMulModel, identityModel, scalarModel } from '../../fixtures/models';

const limits = resolveLimits({});

async function open(bytes: Uint8Array, name: string): Promise<OnnxModel> {
  return OnnxModel.create(bytes, { name, version: '1' });
}

describe('BatchPredictor', () => {
  it('predicts stacked rows in order, and isolates a bad row without losing the others', async () => {
    const model = await open(addMulModel().bytes, 'addmul');
    const predictor = new BatchPredictor(model, limits);
    expect(predictor.batchable).toBe(true);
    const results = await predictor.predict([
      { line: 1, row: { a: [1, 2, 3], b: [1, 1, 1] } },
      { line: 2, row: { a: [1, 2], b: [1, 1] } },
      { line: 3, row: { a: [0, 0, 1], b: [2, 2, 2] } },
      { line: 4, row: { a: [1, 2, 3] } },
    ]);
    expect(results).toEqual([
      { ok: { line: 1, outputs: { sum: [2, 3, 4], product: [1, 2, 3] } } },
      { failed: { line: 2, error: expect.stringMatching(/input 'a' .*dimension 1 must be 3/) as unknown } },
      { ok: { line: 3, outputs: { sum: [2, 2, 3], product: [0, 0, 2] } } },
      { failed: { line: 4, error: expect.stringMatching(/missing input 'b'/) as unknown } },
    ]);
    await model.release();
  });

  it('runs rows one at a time when a model has no dynamic batch dimension', async () => {
    const model = await open(scalarModel().bytes, 'scalar');
    const fixed = await open(identityModel('INT32', [2]).bytes, 'fixed');
    expect(new BatchPredictor(fixed, limits).batchable).toBe(false);
    expect(await new BatchPredictor(fixed, limits).predict([{ line: 5, row: { x: [7, -7] } }])).toEqual([
      { ok: { line: 5, outputs: { y: [7, -7] } } },
    ]);
    // A scalar input has no batch axis, so each row is its own run.
    const predictor = new BatchPredictor(model, limits);
    expect(predictor.batchable).toBe(false);
    const results = await predictor.predict([
      { line: 1, row: { x: [[1, 2]], scale: 3 } },
      { line: 2, row: { x: [[1, 2]], scale: 'big' } },
    ]);
    expect(results[0]).toEqual({ ok: { line: 1, outputs: { y: [[3, 6]] } } });
    expect(results[1]).toEqual({
      failed: { line: 2, error: expect.stringMatching(/input 'scale' data\[0\] is "big"/) as unknown },
    });
    await model.release();
    await fixed.release();
  });

  it('runs rows alone when an output is not one row per row, so no row gets the batch total', async () => {
    const total = buildModel({
      inputs: [tensorInfo('x', 'float', ['batch', 2])],
      outputs: [tensorInfo('total', 'float', [])],
      nodes: [{ op: 'ReduceSum', inputs: ['x'], outputs: ['total'], attrs: { keepdims: int(0) } }],
    });
    const model = await open(total, 'total');
    const predictor = new BatchPredictor(model, limits);
    expect(predictor.batchable).toBe(true);
    expect(
      await predictor.predict([
        { line: 1, row: { x: [1, 2] } },
        { line: 2, row: { x: [10, 20] } },
      ]),
    ).toEqual([{ ok: { line: 1, outputs: { total: 3 } } }, { ok: { line: 2, outputs: { total: 30 } } }]);
    await model.release();
  });

  it('rejects an unknown input name in a row', async () => {
    const model = await open(identityModel('FP32', ['batch', 2]).bytes, 'id');
    const [result] = await new BatchPredictor(model, limits).predict([
      { line: 1, row: { x: [1, 2], z: [1] } },
    ]);
    expect(result).toEqual({
      failed: { line: 1, error: expect.stringMatching(/unknown input 'z'/) as unknown },
    });
    await model.release();
    expect(new BadRequestError('x').status).toBe(400);
  });
});

describe('BatchPredictor, stacked rows', () => {
  it('an unknown input on a later row fails that row alone', async () => {
    const model = await open(addMulModel().bytes, 'addmul');
    const results = await new BatchPredictor(model, limits).predict([
      { line: 1, row: { a: [1, 2, 3], b: [1, 1, 1] } },
      { line: 2, row: { a: [1, 2, 3], b: [1, 1, 1], z: [0] } },
    ]);
    expect(results[0]).toEqual({ ok: { line: 1, outputs: { sum: [2, 3, 4], product: [1, 2, 3] } } });
    expect(results[1]).toEqual({
      failed: { line: 2, error: "unknown input 'z'; the model's inputs are: a, b" },
    });
    await model.release();
  });
});
