/**
 * One batch of a Distributed Map job: the ItemBatcher's `{Items, BatchInput}` is predicted with the same core
 * as the other paths (predictItems), its predictions and errors are written as parts of the job's output,
 * and the counts and part keys go back to the Map (small: the Map's ResultWriter collects them).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { predictItems } from '../core/batch-job';
import { runItemsBatch, type ItemsResult } from '../core/batch-s3';
import { resolveLimits } from '../core/limits';
import type { OnnxModel } from '../core/model';
import { openModel } from '../core/open';
import { runtimeConfigFromEnv } from '../core/runtime-config';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
const config = runtimeConfigFromEnv(process.env);
const limits = resolveLimits(config.limits);
const idField = process.env.ID_FIELD || undefined;
const s3 = new S3Client({});

/** Starts at init, so the first batch does not pay for the download and session creation. */
export const ready: Promise<OnnxModel> = (async () => {
  const started = performance.now();
  const { model, source } = await openModel(
    { location: config.modelUri, name: config.modelName, expectedSha256: config.modelSha256 },
    { session: { intraOpNumThreads: config.intraOpNumThreads, allowSpinning: config.allowSpinning } },
  );
  const loadMs = performance.now() - started;
  metrics.setDefaultDimensions({ model: model.name });
  metrics.singleMetric().addMetric('ModelLoadTime', MetricUnit.Milliseconds, loadMs);
  logger.info('model loaded', { model: model.name, version: model.version, source, loadMs });
  return model;
})();
// Logged here; the handler awaits `ready` and fails, so the Map retries the batch or counts it failed.
ready.catch((err: unknown) => {
  metrics.singleMetric().addMetric('ModelLoadFailures', MetricUnit.Count, 1);
  logger.error('model failed to load; no batch will be predicted', { error: err as Error });
});

export async function handler(event: unknown, context?: Context): Promise<ItemsResult> {
  if (context) logger.addContext(context);
  const model = await ready;
  const started = performance.now();
  try {
    const result = await runItemsBatch({
      s3,
      event,
      model: { name: model.name, version: model.version },
      predict: ({ format, items }) => predictItems({ model, limits, format, items, idField }),
    });
    // Job totals come from the summary step; this is the batch's own latency.
    metrics.addMetric('BatchLatency', MetricUnit.Milliseconds, performance.now() - started);
    logger.debug('batch', { firstIndex: result.firstIndex, items: result.items, failed: result.failed });
    return result;
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
