/**
 * The container's entry point (the image runs `node /app/index.mjs`, built from this file). It listens
 * at once, so liveness answers while a large model loads; readiness turns 200 when the model is in.
 * SIGTERM drains: readiness goes 503, accepted requests finish, then the process exits 0.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { CONTAINER_CAPTURE_LINE_BYTES, DataCapturer } from '../core/capture';
import { bodyText } from '../core/codec';
import { serverConfigFromEnv, type ServerConfig } from '../core/runtime-config';
import { InferenceService, type Telemetry } from '../core/service';
import { startServer } from './server';

const PAYLOAD_LOG_BYTES = 4096;
/** How often the server writes its EMF metrics: values pile up in between (100 per line at most). */
const METRICS_FLUSH_MS = 10_000;

function fail(message: string): never {
  process.stderr.write(`${JSON.stringify({ level: 'ERROR', message, service: 'model-deploy-kit' })}\n`);
  process.exit(2);
}

// SageMaker starts the image as `docker run <image> serve`; nothing else is accepted.
const args = process.argv.slice(2);
if (args.length > 1 || (args.length === 1 && args[0] !== 'serve')) {
  fail(
    `unknown arguments ${JSON.stringify(args)}: the model server takes none, or 'serve'; configure it with environment variables`,
  );
}

let config: ServerConfig;
try {
  config = serverConfigFromEnv(process.env);
} catch (err) {
  fail((err as Error).message);
}

const logger = new Logger({ serviceName: 'model-deploy-kit', logLevel: config.logLevel });

// The same EMF metrics as the Lambda handler; the awslogs driver's PutLogEvents calls get them extracted.
// Model load failures are counted by the service's metric filter instead, as the task exits before a flush.
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
const flushMetrics = () => {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
};

const telemetry: Telemetry = {
  modelLoaded: (e) => {
    metrics.setDefaultDimensions({ model: e.model });
    metrics.singleMetric().addMetric('ModelLoadTime', MetricUnit.Milliseconds, e.loadMs);
    logger.info('model loaded', e);
  },
  modelFailed: (e) => logger.error('model failed to load', e),
  inference: (e) => {
    metrics.addMetric('InferenceLatency', MetricUnit.Milliseconds, e.runMs);
    metrics.addMetric('RequestLatency', MetricUnit.Milliseconds, e.totalMs);
    metrics.addMetric('BatchSize', MetricUnit.Count, e.batchSize);
  },
  requestFailed: (e) => {
    metrics.addMetric(`${e.kind}Errors`, MetricUnit.Count, 1);
    if (e.kind === 'Internal') logger.error('request failed', { model: e.model, error: e.error as Error });
    else
      logger.warn('request rejected', { model: e.model, kind: e.kind, status: e.status, reason: e.message });
  },
  captured: (e) => metrics.addMetric('CapturedRows', MetricUnit.Count, e.written),
  captureFailed: (e) => {
    metrics.addMetric('CaptureErrors', MetricUnit.Count, 1);
    logger.warn('data capture failed; the request was served', e);
  },
};

const service = new InferenceService({
  sagemaker: true,
  limits: config.limits,
  session: { intraOpNumThreads: config.intraOpNumThreads, allowSpinning: config.allowSpinning },
  batching: config.batching,
  telemetry,
  // The awslogs driver ships stdout to CloudWatch Logs; the capture subscription takes it from there.
  capture: config.capture
    ? new DataCapturer(config.capture, (line) => process.stdout.write(line), {
        variant: config.variants?.own,
        maxLineBytes: CONTAINER_CAPTURE_LINE_BYTES,
      })
    : undefined,
});

async function main(): Promise<void> {
  const running = await startServer(service, {
    port: config.port,
    host: config.host,
    maxInFlight: config.maxInFlight,
    drainTimeoutMs: config.drainTimeoutMs,
    pathPrefix: config.pathPrefix,
    // Only at DEBUG: otherwise each request would build a log entry nobody writes.
    accessLog: config.logLevel === 'DEBUG' ? (e) => logger.debug('request', { ...e }) : undefined,
    payloadLog: config.logPayloads
      ? (path, body) =>
          logger.info('request payload', { path, body: bodyText(body).slice(0, PAYLOAD_LOG_BYTES) })
      : undefined,
  });
  logger.info('listening', {
    url: running.url,
    model: config.modelUri,
    batching: config.batching ?? 'off',
    maxInFlight: config.maxInFlight,
  });
  if (config.logPayloads) logger.warn('LOG_PAYLOADS is on: request bodies are logged (truncated)');
  setInterval(flushMetrics, METRICS_FLUSH_MS).unref();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('draining', { signal, inFlight: running.inFlight(), timeoutMs: config.drainTimeoutMs });
    running
      .close()
      .then(() => service.close())
      .then(
        () => {
          flushMetrics();
          // Session runs and the requests they served: how much batching joined.
          logger.info('stopped', { signal, batching: service.batchingStats() });
          process.exit(0);
        },
        (err: unknown) => {
          logger.error('shutdown failed', { error: err as Error });
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  const model = await service.load({
    location: config.modelUri,
    name: config.modelName,
    expectedSha256: config.modelSha256,
  });
  if (!model) {
    // A task that cannot serve should stop, so ECS replaces it and a bad deployment rolls back.
    await running.close();
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  logger.error('the server could not start', { error: err as Error });
  process.exit(1);
});
