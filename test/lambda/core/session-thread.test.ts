import * as ort from 'onnxruntime-node';
import { BadRequestError } from '../../../lambda/core/errors';
import { openModel } from '../../../lambda/core/open';
import { identityModel, removeDir, writeModel } from '../../fixtures/models';
import { IRIS_DIR } from '../../support/cdk';

describe('SessionThread (the session on a worker thread)', () => {
  it('gives the same outputs as the session on this thread, for batches in flight at once', async () => {
    const direct = (await openModel({ location: IRIS_DIR })).model;
    const threaded = (await openModel({ location: IRIS_DIR }, { sessionThread: true })).model;
    try {
      const rows = Float32Array.from({ length: 4 * 300 }, (_, i) => ((i * 7) % 50) / 7);
      const feed = () => ({ input: new ort.Tensor('float32', rows.slice(), [300, 4]) });
      const want = await direct.run(feed(), ['probabilities', 'label']);
      // Several runs queued together come back each to its own caller.
      const got = await Promise.all([1, 2, 3].map(() => threaded.run(feed(), ['probabilities', 'label'])));
      for (const g of got) {
        expect(g.label?.dims).toEqual([300]);
        expect(Array.from(g.label?.data as BigInt64Array)).toEqual(
          Array.from(want.label?.data as BigInt64Array),
        );
        expect(Array.from(g.probabilities?.data as Float32Array)).toEqual(
          Array.from(want.probabilities?.data as Float32Array),
        );
      }
    } finally {
      await direct.release();
      await threaded.release();
    }
  });

  it('runs off the main thread: other callbacks run while the model does', async () => {
    // On the main thread onnxruntime-node runs the session inside one callback, and resolves before any
    // callback queued after the call; on the session thread those callbacks run first.
    const threaded = (await openModel({ location: IRIS_DIR }, { sessionThread: true })).model;
    try {
      const rows = 200_000;
      let ranMeanwhile = false;
      const run = threaded.run({ input: new ort.Tensor('float32', new Float32Array(rows * 4), [rows, 4]) }, [
        'label',
      ]);
      setImmediate(() => (ranMeanwhile = true));
      const out = await run;
      expect(out.label?.dims).toEqual([rows]);
      expect(ranMeanwhile).toBe(true);
    } finally {
      await threaded.release();
    }
  });

  it('a run onnxruntime refuses is a bad request, and the thread goes on serving', async () => {
    const written = writeModel(identityModel('FP32', ['batch', 3]));
    try {
      const { model } = await openModel({ location: written.modelPath }, { sessionThread: true });
      const bad = { x: new ort.Tensor('float32', new Float32Array(8), [2, 4]) };
      await expect(model.run(bad, ['y'])).rejects.toBeInstanceOf(BadRequestError);
      const ok = await model.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3]), [1, 3]) }, [
        'y',
      ]);
      expect(Array.from(ok.y?.data as Float32Array)).toEqual([1, 2, 3]);
      await model.release();
    } finally {
      removeDir(written.root);
    }
  });
});
