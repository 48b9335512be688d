import * as fs from 'node:fs';
import {
  CaptureConfigError,
  checkCaptureConfig,
  DataCapturer,
  DEFAULT_CAPTURE_MAX_ROWS,
} from '../../lambda/core/capture';
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
  --capture FILE      data capture: append each served row, with its prediction, to FILE
                      as JSON lines, the records the AWS endpoint writes to S3 (read them
                      with 'mdk drift')
  --capture-percent P share of requests captured, 0 to 100 (default 100)
  --capture-redact NAMES, --capture-hash NAMES
                      comma-separated inputs or baseline feature names written as null,
                      or as sha256:<16 hex>
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
    capture: { type: 'string' },
    'capture-percent': { type: 'string' },
    'capture-redact': { type: 'string' },
    'capture-hash': { type: 'string' },
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
  const captureFile = str(p, 'capture');
  let captureStream: fs.WriteStream | undefined;
  let capturedRows = 0;
  let capturer: DataCapturer | undefined;
  if (captureFile !== undefined) {
    const config = captureConfig(p);
    captureStream = await openCaptureFile(captureFile);
    const out = captureStream;
    capturer = new DataCapturer(config, (line) => out.write(line));
  } else if (['capture-percent', 'capture-redact', 'capture-hash'].some((k) => str(p, k) !== undefined)) {
    throw new UsageError('--capture-percent, --capture-redact and --capture-hash need --capture FILE');
  }
  const service = new InferenceService({
    capture: capturer,
    telemetry: {
      captured: (e) => {
        capturedRows += e.written;
      },
      captureFailed: (e) =>
        process.stderr.write(`mdk: data capture failed; the request was served: ${e.error}\n`),
    },
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
  const captureOff = capturer?.check(model);
  if (captureOff) throw new UsageError(captureOff);
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

  if (captureFile !== undefined && capturer) {
    process.stderr.write(
      `mdk: capturing ${capturer.config.percent}% of requests to ${captureFile} (read them with: mdk drift --baseline <model.json> --data ${captureFile})\n`,
    );
  }
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
        .then(() => closeCapture(captureStream))
        .then(() => {
          if (captureFile !== undefined)
            process.stderr.write(`mdk: captured ${capturedRows} rows to ${captureFile}\n`);
        })
        .then(
          () => resolve(0),
          () => resolve(1),
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function captureConfig(p: ReturnType<typeof parse>) {
  const raw = str(p, 'capture-percent');
  const percent = raw === undefined ? 100 : Number(raw);
  if (raw !== undefined && (!/^\d+(\.\d+)?$/.test(raw) || percent > 100)) {
    throw new UsageError(`--capture-percent must be a number from 0 to 100, got ${JSON.stringify(raw)}`);
  }
  const names = (key: string) =>
    (str(p, key) ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '');
  try {
    return checkCaptureConfig({
      percent,
      redact: names('capture-redact'),
      hash: names('capture-hash'),
      maxRows: DEFAULT_CAPTURE_MAX_ROWS,
    });
  } catch (err) {
    if (err instanceof CaptureConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/** Opens FILE for appending, so a bad path is an error before the model loads. */
function openCaptureFile(file: string): Promise<fs.WriteStream> {
  return new Promise((resolve, reject) => {
    const stream = fs.createWriteStream(file, { flags: 'a' });
    stream.once('open', () => {
      // A full disk later loses captured rows, not requests.
      stream.on('error', (err) => process.stderr.write(`mdk: writing ${file} failed: ${err.message}\n`));
      resolve(stream);
    });
    stream.once('error', (err) => reject(new UsageError(`--capture ${file}: ${err.message}`)));
  });
}

function closeCapture(stream: fs.WriteStream | undefined): Promise<void> {
  return new Promise((resolve) => (stream ? stream.end(() => resolve()) : resolve()));
}
