/**
 * Bench child: the HTTP server (local mode / container) on a loopback port, in
 * its own process so autocannon in the parent does not share its event loop.
 * The service is built as `mdk serve` builds it (bin/cli/serve.ts), with
 * dynamic batching at its default 64 rows or, for comparison, turned off.
 * Reports its URL over IPC, answers 'stats' with service.batchingStats(), and
 * serves until the parent says 'stop'.
 */
import { runtimeConfigFromEnv } from '../lambda/core/runtime-config';
import { InferenceService } from '../lambda/core/service';
import { startServer } from '../lambda/server/server';
import { childArg, errorText, sendToParent, type ModelCase } from './common';

export interface ServerChildArgs {
  readonly model: ModelCase;
  /** As `mdk serve --batch-rows N`: the most rows joined into one run; 0 turns batching off. */
  readonly batchRows: number;
}

async function main(): Promise<void> {
  const { model, batchRows } = childArg<ServerChildArgs>();
  // ORT_INTRA_OP_THREADS if set, as for the handler and the raw baseline; else undefined, i.e. the core's
  // default (every CPU), which is also what `mdk serve` without --threads gives.
  const threads = runtimeConfigFromEnv({ ...process.env, MODEL_URI: model.dir }).intraOpNumThreads;
  // The options serveCommand passes when no flag but --model is given.
  const service = new InferenceService({
    sagemaker: true,
    limits: { maxBatch: undefined, maxPayloadBytes: undefined },
    session: { intraOpNumThreads: threads },
    batching: batchRows > 1 ? { maxRows: batchRows } : undefined,
  });
  const loaded = await service.load({ location: model.dir });
  if (!loaded) throw new Error(`model did not load: ${service.notReadyReason() ?? 'unknown reason'}`);
  // No access log: as `mdk serve --quiet` (the default one writes a stderr line per request).
  const server = await startServer(service, { port: 0, host: '127.0.0.1' });
  process.on('message', (msg) => {
    if (msg === 'stats') {
      sendToParent({ kind: 'batching', stats: service.batchingStats() }).catch(() => process.exit(1));
      return;
    }
    if (msg !== 'stop') return;
    server
      .close()
      .then(() => service.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
  // The parent owns this process's life: if it dies, so does the server.
  process.on('disconnect', () => process.exit(0));
  await sendToParent({ kind: 'listening', url: server.url });
}

main().catch(async (err: unknown) => {
  await sendToParent({ kind: 'error', message: errorText(err) }).catch(() => undefined);
  process.exit(1);
});
