import { exampleRequest } from '../../lambda/core/example';
import { InferenceService } from '../../lambda/core/service';
import { startServer } from '../../lambda/server/server';
import { CliError, int, parse, required, str, UsageError } from './args';

const HELP = `Usage: mdk serve --model PATH [options]

Serves a model over HTTP with the Open Inference Protocol (KServe V2), plus
the SageMaker container routes (GET /ping, POST /invocations).

Options:
  --model PATH        .onnx file, model folder, or s3:// URI (required)
  --name N            model name in the URL (default: manifest name, else file name)
  --port N            port to listen on (default 8080; 0 picks a free one)
  --host H            address to bind (default 127.0.0.1; 0.0.0.0 for all)
  --max-batch N       largest batch one request may carry (default 1024)
  --max-payload-mb N  largest request body in MiB (default 10)
  --threads N         onnxruntime intra-op threads (default: all CPUs)
  --batch-max-size N  dynamic batching: join concurrent requests into one run of up to
                      N rows (default: off; 2 or more turns it on)
  --batch-max-latency-ms MS
                      with batching, how long a request may wait for others (default 0:
                      join only the requests already waiting)
  --max-queue N       requests in flight before new ones get a 503 with Retry-After
                      (default 256)
  --quiet             no access log
  -h, --help          this help
`;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const p = parse(argv, {
    model: { type: 'string' },
    name: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'max-batch': { type: 'string' },
    'max-payload-mb': { type: 'string' },
    threads: { type: 'string' },
    'batch-max-size': { type: 'string' },
    'batch-max-latency-ms': { type: 'string' },
    'max-queue': { type: 'string' },
    quiet: { type: 'boolean' },
  });
  if (p.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const location = required(p, 'model');
  const port = int(p, 'port', 0, 65535) ?? 8080;
  const host = str(p, 'host') ?? '127.0.0.1';
  const payloadMb = int(p, 'max-payload-mb', 1, 1024);
  const batchMaxSize = int(p, 'batch-max-size', 0, 1_000_000) ?? 0;
  const batchLatency = int(p, 'batch-max-latency-ms', 0, 60_000);
  if (batchLatency !== undefined && batchMaxSize < 2) {
    throw new UsageError('--batch-max-latency-ms needs batching on: add --batch-max-size 2 or more');
  }
  const service = new InferenceService({
    sagemaker: true,
    limits: {
      maxBatch: int(p, 'max-batch', 1, 1_000_000),
      maxPayloadBytes: payloadMb === undefined ? undefined : payloadMb * 1024 * 1024,
    },
    session: { intraOpNumThreads: int(p, 'threads', 1, 1024) },
    batching: batchMaxSize > 1 ? { maxBatchSize: batchMaxSize, maxLatencyMs: batchLatency ?? 0 } : undefined,
  });

  process.stderr.write(`mdk: loading ${location} ...\n`);
  const started = performance.now();
  const model = await service.load({ location, name: str(p, 'name') });
  if (!model) throw new CliError(service.notReadyReason() ?? 'the model did not load');
  const ms = Math.round(performance.now() - started);
  const tensors = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  process.stderr.write(
    `mdk: loaded model '${model.name}' version ${model.version} (${tensors(model.inputs.length, 'input')}, ${tensors(model.outputs.length, 'output')}) in ${ms} ms\n`,
  );
  const unsupported = model.outputs.filter((o) => !o.tensor).map((o) => o.name);
  if (unsupported.length > 0) {
    process.stderr.write(
      `mdk: outputs ${unsupported.join(', ')} are not tensors and are left out of responses\n`,
    );
  }

  const quiet = p.values.quiet === true;
  const running = await startServer(service, {
    port,
    host,
    maxInFlight: int(p, 'max-queue', 1, 1_000_000),
    accessLog: quiet
      ? undefined
      : (e) => process.stderr.write(`${e.method} ${e.path} ${e.status} ${e.bytes}B ${e.ms}ms\n`),
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE')
      throw new UsageError(`port ${port} on ${host} is in use; pick another with --port`);
    throw err;
  });

  const base = `${running.url}/v2/models/${encodeURIComponent(model.name)}`;
  const body = JSON.stringify(exampleRequest(model));
  process.stdout.write(
    [
      `Serving '${model.name}' at ${running.url}`,
      `  metadata: curl -s ${base}`,
      `  infer:    curl -s ${base}/infer -H 'content-type: application/json' -d ${shellQuote(body)}`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  // SIGTERM (a container stop, a deploy) drains in-flight requests before exiting.
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`mdk: ${signal}: draining in-flight requests, then exiting\n`);
      running
        .close()
        .then(() => service.close())
        .then(
          () => resolve(0),
          () => resolve(1),
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
