import * as ort from 'onnxruntime-node';
import { DynamicBatcher } from '../../../lambda/core/batcher';
import { BadRequestError } from '../../../lambda/core/errors';
import { OnnxModel } from '../../../lambda/core/model';
import {
  addMulModel,
  gatherModel,
  GATHER_TABLE,
  identityModel,
  mixedModel,
  scalarModel,
} from '../../fixtures/models';

ort.env.logLevel = 'fatal';

const f32 = (rows: number[][]) =>
  new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, rows[0]?.length ?? 0]);

async function open(bytes: Uint8Array): Promise<OnnxModel> {
  return OnnxModel.create(bytes, { name: 'm', version: '1', session: { intraOpNumThreads: 1 } });
}

describe('DynamicBatcher', () => {
  it('joins requests made in the same turn into one run, and each gets exactly its own rows', async () => {
    const model = await open(addMulModel().bytes);
    const batcher = new DynamicBatcher(model, { maxRows: 64 });
    const requests = [
      [[[1, 2, 3]], [[1, 1, 1]]],
      [
        [
          [4, 5, 6],
          [7, 8, 9],
        ],
        [
          [2, 2, 2],
          [0, 0, 0],
        ],
      ],
      [[[-1, -1, -1]], [[3, 3, 3]]],
    ] as number[][][][];
    const results = await Promise.all(
      requests.map(([a, b]) =>
        batcher.run({ a: f32(a as number[][]), b: f32(b as number[][]) }, ['sum', 'product']),
      ),
    );
    expect(batcher.stats).toEqual({ runs: 1, requests: 3 });
    for (const [i, [a, b]] of requests.entries()) {
      const direct = await model.run({ a: f32(a as number[][]), b: f32(b as number[][]) }, [
        'sum',
        'product',
      ]);
      expect(results[i]?.sum?.dims).toEqual(direct.sum?.dims);
      expect(Array.from(results[i]?.sum?.data as Float32Array)).toEqual(
        Array.from(direct.sum?.data as Float32Array),
      );
      expect(Array.from(results[i]?.product?.data as Float32Array)).toEqual(
        Array.from(direct.product?.data as Float32Array),
      );
    }
    await model.release();
  });

  it('joins int64, bool and string inputs too', async () => {
    const model = await open(mixedModel().bytes);
    const batcher = new DynamicBatcher(model);
    const req = (ids: number[], mask: boolean[], text: string[]) => ({
      ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [ids.length]),
      mask: new ort.Tensor('bool', Uint8Array.from(mask.map(Number)), [mask.length]),
      text: new ort.Tensor('string', text, [text.length]),
    });
    const fetches = ['next_ids', 'not_mask', 'text_out'];
    const [r1, r2] = await Promise.all([
      batcher.run(req([1, 2], [true, false], ['a', 'b']), fetches),
      batcher.run(req([10], [true], ['ccc']), fetches),
    ]);
    expect(batcher.stats).toEqual({ runs: 1, requests: 2 });
    expect(Array.from(r1?.next_ids?.data as BigInt64Array)).toEqual([2n, 3n]);
    expect(Array.from(r2?.next_ids?.data as BigInt64Array)).toEqual([11n]);
    expect(Array.from(r1?.not_mask?.data as Uint8Array)).toEqual([0, 1]);
    expect(r2?.text_out?.data).toEqual(['ccc']);
    await model.release();
  });

  it('keeps requests apart when their row shapes or fetches differ, or they exceed maxRows', async () => {
    const model = await open(identityModel('FP32', ['batch', null]).bytes);
    const batcher = new DynamicBatcher(model, { maxRows: 4 });
    await Promise.all([
      batcher.run({ x: f32([[1, 2]]) }, ['y']),
      batcher.run({ x: f32([[1, 2, 3]]) }, ['y']),
      batcher.run(
        {
          x: f32([
            [1, 2],
            [3, 4],
            [5, 6],
          ]),
        },
        ['y'],
      ),
      batcher.run({ x: f32([[9, 9]]) }, ['y']),
      batcher.run(
        {
          x: f32([
            [1, 1],
            [1, 1],
            [1, 1],
            [1, 1],
          ]),
        },
        ['y'],
      ),
    ]);
    // [1,2]+[[..]x3] fill 4 rows; [9,9] starts a new group; the 3-wide row and the 4-row request run alone.
    expect(batcher.stats).toEqual({ runs: 4, requests: 5 });
    await model.release();
  });

  it('a bad request in a joined run fails alone; the others still get their answers', async () => {
    const model = await open(gatherModel().bytes);
    const batcher = new DynamicBatcher(model);
    const idx = (v: number[]) => ({
      idx: new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [v.length]),
    });
    const [good, bad, good2] = await Promise.allSettled([
      batcher.run(idx([0, 1]), ['out']),
      batcher.run(idx([99]), ['out']),
      batcher.run(idx([3]), ['out']),
    ]);
    expect(good).toMatchObject({ status: 'fulfilled' });
    expect(bad).toMatchObject({ status: 'rejected', reason: expect.any(BadRequestError) as unknown });
    expect(good2).toMatchObject({ status: 'fulfilled' });
    if (good.status === 'fulfilled' && good2.status === 'fulfilled') {
      expect(Array.from(good.value.out?.data as Float32Array)).toEqual([GATHER_TABLE[0], GATHER_TABLE[1]]);
      expect(Array.from(good2.value.out?.data as Float32Array)).toEqual([GATHER_TABLE[3]]);
    }
    await model.release();
  });

  it('passes through models without a dynamic batch dimension', async () => {
    const model = await open(scalarModel().bytes);
    const batcher = new DynamicBatcher(model);
    expect(batcher.enabled).toBe(false);
    const out = await batcher.run(
      { x: f32([[1, 2]]), scale: new ort.Tensor('float32', Float32Array.from([2]), []) },
      ['y'],
    );
    expect(Array.from(out.y?.data as Float32Array)).toEqual([2, 4]);
    expect(() => new DynamicBatcher(model, { maxRows: 0 })).toThrow(
      /maxRows must be a positive integer, got 0/,
    );
    await model.release();
  });
});
