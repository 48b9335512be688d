/**
 * Bench child: the ceiling the server is compared with, sequential session.run
 * calls on the core's own session options, in a process of its own with
 * nothing else running.
 */
import * as ort from 'onnxruntime-node';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { defaultThreads, OnnxModel } from '../lambda/core/model';
import { runtimeConfigFromEnv } from '../lambda/core/runtime-config';
import {
  buildWorkload,
  childArg,
  errorText,
  sendToParent,
  stats,
  timeLoop,
  type Bound,
  type ModelCase,
  type RawChildResult,
} from './common';

interface RawChildArgs {
  readonly model: ModelCase;
  readonly batches: readonly number[];
  readonly warmup: Bound;
  readonly measure: Bound;
}

async function main(): Promise<void> {
  const args = childArg<RawChildArgs>();
  // Read ORT_INTRA_OP_THREADS as the handler does; this child needs no MODEL_URI of its own.
  const env = { ...process.env, MODEL_URI: args.model.dir };
  const threads = runtimeConfigFromEnv(env).intraOpNumThreads ?? defaultThreads();
  const model = await OnnxModel.create(await readFile(path.join(args.model.dir, 'model.onnx')), {
    name: args.model.name,
    version: 'bench',
    session: { intraOpNumThreads: threads },
  });
  const points: RawChildResult['points'][number][] = [];
  for (const batch of args.batches) {
    const w = buildWorkload(args.model, batch);
    const feeds = { [args.model.input]: new ort.Tensor('float32', w.values, [...w.shape]) };
    const run = () => model.session.run(feeds);
    await timeLoop(run, args.warmup);
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    const samples = await timeLoop(run, args.measure);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    points.push({
      batch,
      runs: samples.length,
      seconds,
      perSec: samples.length / seconds,
      latency: stats(samples),
      // onnxruntime's intra-op workers spin between runs: this shows how many cores the loop really kept busy.
      coresBusy: (cpu.user + cpu.system) / 1e6 / seconds,
    });
  }
  await model.release();
  await sendToParent({ kind: 'raw', model: args.model.key, points });
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await sendToParent({ kind: 'error', message: errorText(err) }).catch(() => undefined);
    process.exit(1);
  },
);
