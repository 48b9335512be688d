/**
 * A copy of a model's session on a worker thread. onnxruntime-node's `run` blocks the JS thread for the
 * whole model run, so a batch job that reads, parses and writes on the same thread adds those times up.
 * With the session here, the main thread parses the next batch while this one runs.
 */
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { SessionRunner } from './model';

interface WireTensor {
  readonly type: ort.Tensor.Type;
  readonly data: ort.Tensor.DataType;
  readonly dims: readonly number[];
}

type Reply =
  | { readonly ready: true }
  | { readonly fatal: string }
  | { readonly id: number; readonly outputs: Record<string, WireTensor> }
  | { readonly id: number; readonly error: string };

// Plain CommonJS, evaluated by the worker: no file to locate in tsx, dist or a bundle.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const wire = (t) => ({ type: t.type, data: t.data, dims: t.dims });
ort.InferenceSession.create(workerData.bytes, workerData.options).then((session) => {
  parentPort.on('message', (m) => {
    const feeds = {};
    for (const [k, t] of Object.entries(m.feeds)) feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
    session.run(feeds, m.fetches).then(
      (out) => {
        const outputs = {};
        for (const [k, t] of Object.entries(out)) outputs[k] = wire(t);
        parentPort.postMessage({ id: m.id, outputs });
      },
      (err) => parentPort.postMessage({ id: m.id, error: String(err && err.message ? err.message : err) }),
    );
  });
  parentPort.postMessage({ ready: true });
}, (err) => parentPort.postMessage({ fatal: String(err && err.message ? err.message : err) }));
`;

export class SessionThread implements SessionRunner {
  /** Starts a worker with its own session of `bytes`; resolves once it is ready. */
  static async start(
    bytes: Uint8Array,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<SessionThread> {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ortPath: require.resolve('onnxruntime-node'), bytes, options },
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: Reply) => {
        worker.off('error', reject);
        worker.off('message', onMessage);
        if ('fatal' in m) reject(new Error(`the session thread could not load the model: ${m.fatal}`));
        else resolve();
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    return new SessionThread(worker);
  }

  private next = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (r: ort.InferenceSession.ReturnType) => void; reject: (e: Error) => void }
  >();

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: Reply) => {
      if (!('id' in m)) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (!w) return;
      if ('error' in m) {
        w.reject(new Error(m.error));
        return;
      }
      const out: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(m.outputs)) out[k] = new ort.Tensor(t.type, t.data, t.dims);
      w.resolve(out);
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => this.failAll(new Error(`the session thread exited (${code})`)));
  }

  run(
    feeds: Record<string, ort.Tensor>,
    fetches: readonly string[],
  ): Promise<ort.InferenceSession.ReturnType> {
    const id = this.next++;
    const wire: Record<string, WireTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [k, t] of Object.entries(feeds)) {
      wire[k] = { type: t.type, data: t.data, dims: t.dims };
      // Numeric feeds are built for this run alone, so their bytes can move instead of being copied.
      const buffer = (t.data as { buffer?: unknown }).buffer;
      if (buffer instanceof ArrayBuffer && !transfer.includes(buffer)) transfer.push(buffer);
    }
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, feeds: wire, fetches }, transfer);
    });
  }

  async release(): Promise<void> {
    await this.worker.terminate();
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
