/**
 * The inference Lambda behind API Gateway (REST API or HTTP API proxy events).
 * Logger, metrics and the model are set up once, at init; each invocation only
 * converts the event and calls the core.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { toHttpRequest, toProxyResult, type ProxyEvent, type ProxyResult } from '../core/apigw';
import { DataCapturer } from '../core/capture';
import { bodyText } from '../core/codec';
import { runtimeConfigFromEnv } from '../core/runtime-config';
import { InferenceService, type HttpRequest, type HttpResponse, type Telemetry } from '../core/service';
import { VariantRouter } from '../core/variants';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
// API Gateway's synchronous Lambda payload is 6 MB, and base64 makes binary bodies a third larger.
const config = runtimeConfigFromEnv(process.env, { maxPayloadBytes: 6 * 1024 * 1024 });
const PAYLOAD_LOG_BYTES = 4096;

const telemetry: Telemetry = {
  modelLoaded: (e) => {
    metrics.setDefaultDimensions({ model: e.model });
    metrics.singleMetric().addMetric('ModelLoadTime', MetricUnit.Milliseconds, e.loadMs);
    logger.info('model loaded', e);
  },
  modelFailed: (e) => {
    metrics.singleMetric().addMetric('ModelLoadFailures', MetricUnit.Count, 1);
    logger.error('model failed to load; it will not serve', e);
  },
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
    metrics.singleMetric().addMetric('CaptureErrors', MetricUnit.Count, 1);
    logger.warn('data capture failed; the request was served', e);
  },
};

// Captured rows go to stdout, which Lambda ships to CloudWatch Logs by itself: no network call here.
// Only the instance's own variant captures, so each log stream holds one model version.
const capture = config.capture
  ? new DataCapturer(config.capture, (line) => process.stdout.write(line), { variant: config.variants?.own })
  : undefined;

const newService = (own = false) =>
  new InferenceService({
    limits: config.limits,
    session: { intraOpNumThreads: config.intraOpNumThreads, allowSpinning: config.allowSpinning },
    telemetry,
    capture: own ? capture : undefined,
  });
const service = newService(true);
// With A/B variants a request may pin another variant's model (X-Model-Variant).
const router: { handle(req: HttpRequest): Promise<HttpResponse> } = config.variants
  ? new VariantRouter(config.variants, service, () => newService(), config.modelName)
  : service;

/** Starts at init, so the first request does not pay for the download and session creation. */
export const ready: Promise<unknown> = service.load({
  location: config.modelUri,
  name: config.modelName,
  expectedSha256: config.modelSha256,
});

export async function handler(event: ProxyEvent, context?: Context): Promise<ProxyResult> {
  if (context) logger.addContext(context);
  await ready;
  const started = performance.now();
  const req = toHttpRequest(event);
  if (config.logPayloads) {
    logger.info('request payload', { path: req.path, body: bodyText(req.body).slice(0, PAYLOAD_LOG_BYTES) });
  }
  try {
    const res = await router.handle(req);
    // DEBUG: API Gateway's access log already has a line per request, and this one costs ~30 us.
    logger.debug('request', {
      method: req.method,
      path: req.path,
      status: res.status,
      ms: Math.round((performance.now() - started) * 1000) / 1000,
    });
    return toProxyResult(res);
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
