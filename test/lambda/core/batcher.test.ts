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

/** addMul feeds: `a` as given, `b` all ones, so `sum` is each value plus one. */
const ab = (rows: number[][]) => ({ a: f32(rows), b: f32(rows.map((r) => r.map(() => 1))) });
const SUM = ['sum'];

async function open(bytes: Uint8Array): Promise<OnnxModel> {
  return OnnxModel.create(bytes, { name: 'm', version: '1', session: { intraOpNumThreads: 1 } });
}

describe('DynamicBatcher', () => {
  it('joins requests made in the same turn into one run, and each gets exactly its own rows', async () => {
    const model = await open(addMulModel().bytes);
    const batcher = new DynamicBatcher(model, { maxBatchSize: 64 });
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
    expect(batcher.stats).toMatchObject({ runs: 1, requests: 3 });
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
    expect(batcher.stats).toMatchObject({ runs: 1, requests: 2 });
    expect(Array.from(r1?.next_ids?.data as BigInt64Array)).toEqual([2n, 3n]);
    expect(Array.from(r2?.next_ids?.data as BigInt64Array)).toEqual([11n]);
    expect(Array.from(r1?.not_mask?.data as Uint8Array)).toEqual([0, 1]);
    expect(r2?.text_out?.data).toEqual(['ccc']);
    await model.release();
  });

  it('keeps requests apart when their row shapes or fetches differ, or they exceed maxRows', async () => {
    const model = await open(identityModel('FP32', ['batch', null]).bytes);
    const batcher = new DynamicBatcher(model, { maxBatchSize: 4 });
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
    expect(batcher.stats).toMatchObject({ runs: 4, requests: 5 });
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
    expect(() => new DynamicBatcher(model, { maxBatchSize: 0 })).toThrow(
      /maxBatchSize must be a positive integer, got 0/,
    );
    await model.release();
  });

  describe('timing', () => {
    // Only the clock is faked: onnxruntime's own callbacks still need nextTick and setImmediate.
    const useFakeClock = () =>
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    afterEach(() => jest.useRealTimers());

    it('holds a partial batch for maxLatencyMs, then runs it once', async () => {
      const model = await open(addMulModel().bytes);
      useFakeClock();
      const batcher = new DynamicBatcher(model, { maxBatchSize: 8, maxLatencyMs: 50 });
      const pending = [batcher.run(ab([[1, 2, 3]]), SUM), batcher.run(ab([[4, 5, 6]]), SUM)];
      expect(batcher.stats.runs).toBe(0);
      jest.advanceTimersByTime(49);
      expect(batcher.stats.runs).toBe(0);
      const third = batcher.run(ab([[7, 8, 9]]), SUM);
      jest.advanceTimersByTime(1);
      expect(batcher.stats.runs).toBe(1);
      jest.useRealTimers();
      const [r1, r2, r3] = await Promise.all([...pending, third]);
      expect(Array.from(r1?.sum?.data as Float32Array)).toEqual([2, 3, 4]);
      expect(Array.from(r2?.sum?.data as Float32Array)).toEqual([5, 6, 7]);
      expect(Array.from(r3?.sum?.data as Float32Array)).toEqual([8, 9, 10]);
      expect(batcher.stats).toMatchObject({ runs: 1, requests: 3, joinedRuns: 1 });
      await model.release();
    });

    it('runs a batch the moment it is full, without waiting for the clock', async () => {
      const model = await open(addMulModel().bytes);
      useFakeClock();
      const batcher = new DynamicBatcher(model, { maxBatchSize: 4, maxLatencyMs: 60_000 });
      const first = [batcher.run(ab([[1, 1, 1]]), SUM), batcher.run(ab([[2, 2, 2]]), SUM)];
      expect(batcher.stats.runs).toBe(0);
      const filling = batcher.run(
        ab([
          [3, 3, 3],
          [4, 4, 4],
        ]),
        SUM,
      );
      // Four rows: the run starts now, not after 60 s.
      expect(batcher.stats.runs).toBe(1);
      const next = batcher.run(ab([[5, 5, 5]]), SUM);
      expect(batcher.stats.runs).toBe(1);
      jest.advanceTimersByTime(60_000);
      expect(batcher.stats.runs).toBe(2);
      jest.useRealTimers();
      const results = await Promise.all([...first, filling, next]);
      expect(results.map((r) => Array.from(r.sum?.data as Float32Array))).toEqual([
        [2, 2, 2],
        [3, 3, 3],
        [4, 4, 4, 5, 5, 5],
        [6, 6, 6],
      ]);
      await model.release();
    });

    it('rejects a latency outside 0..60000 ms', async () => {
      const model = await open(addMulModel().bytes);
      expect(() => new DynamicBatcher(model, { maxLatencyMs: -1 })).toThrow(
        /maxLatencyMs must be between 0 and 60000, got -1/,
      );
      expect(() => new DynamicBatcher(model, { maxLatencyMs: Number.NaN })).toThrow(/maxLatencyMs/);
      await model.release();
    });
  });
});
