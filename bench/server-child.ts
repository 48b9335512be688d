/**
 * Bench child: the HTTP server (local mode / container) on a loopback port, in
 * its own process so the load generator in the parent does not share its event
 * loop. The service is built as `mdk serve` builds it (bin/cli/serve.ts), with
 * dynamic batching off (its default) or on with the given options. Reports its
 * URL over IPC, answers 'stats' with service.batchingStats(), its own CPU time
 * and event-loop utilization, and serves until the parent says 'stop'.
 *
 * With `echo`, it loads no model and answers every request with a fixed JSON body once the request body is
 * read: the floor a client sees from Node's HTTP on loopback alone.
 */
import * as http from 'node:http';
import { runtimeConfigFromEnv } from '../lambda/core/runtime-config';
import { InferenceService } from '../lambda/core/service';
import { startServer } from '../lambda/server/server';
import { childArg, errorText, sendToParent, type ChildMessage, type ModelCase } from './common';

export interface ServerChildArgs {
  readonly model: ModelCase;
  /** As `mdk serve --batch-max-size N --batch-max-latency-ms MS`; undefined is batching off (the default). */
  readonly batching: { readonly maxBatchSize: number; readonly maxLatencyMs: number } | undefined;
  /** As `mdk serve --max-queue N`: requests in flight before a 503. */
  readonly maxInFlight: number;
  /** No model: a plain Node HTTP server answering a fixed small JSON body. */
  readonly echo?: boolean;
}

/** About the size of the mlp's real answer (10 FP32 outputs). */
const ECHO_BODY = JSON.stringify({
  model_name: 'echo',
  outputs: [
    { name: 'output', datatype: 'FP32', shape: [1, 10], data: new Array<number>(10).fill(0.123456789) },
  ],
});

async function echoServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(ECHO_BODY),
      });
      res.end(ECHO_BODY);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function serveStats(batching: () => Extract<ChildMessage, { kind: 'serverStats' }>['batching']): void {
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  sendToParent({
    kind: 'serverStats',
    batching: batching(),
    cpuUs: cpu.user + cpu.system,
    eventLoop: { idleMs: elu.idle, activeMs: elu.active },
  }).catch(() => process.exit(1));
}

async function main(): Promise<void> {
  const { model, batching, maxInFlight, echo } = childArg<ServerChildArgs>();
  // The parent owns this process's life: if it dies, so does the server.
  process.on('disconnect', () => process.exit(0));
  if (echo) {
    const server = await echoServer();
    process.on('message', (msg) => {
      if (msg === 'stats') serveStats(() => ({}));
      else if (msg === 'stop')
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
    });
    await sendToParent({ kind: 'listening', url: server.url });
    return;
  }
  // ORT_INTRA_OP_THREADS if set, as for the handler and the raw baseline; else undefined, i.e. the core's
  // default (every CPU), which is also what `mdk serve` without --threads gives.
  const threads = runtimeConfigFromEnv({ ...process.env, MODEL_URI: model.dir }).intraOpNumThreads;
  // The options serveCommand passes for `--model M [--batch-max-size N --batch-max-latency-ms MS]`.
  const service = new InferenceService({
    sagemaker: true,
    limits: { maxBatch: undefined, maxPayloadBytes: undefined },
    session: { intraOpNumThreads: threads },
    batching,
  });
  const loaded = await service.load({ location: model.dir });
  if (!loaded) throw new Error(`model did not load: ${service.notReadyReason() ?? 'unknown reason'}`);
  // No access log: as `mdk serve --quiet` (the default one writes a stderr line per request).
  const server = await startServer(service, { port: 0, host: '127.0.0.1', maxInFlight });
  process.on('message', (msg) => {
    if (msg === 'stats') {
      serveStats(() => service.batchingStats());
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
  await sendToParent({ kind: 'listening', url: server.url });
}

main().catch(async (err: unknown) => {
  await sendToParent({ kind: 'error', message: errorText(err) }).catch(() => undefined);
  process.exit(1);
});
