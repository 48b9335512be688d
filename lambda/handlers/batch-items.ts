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
import { loadModelAtInit } from '../core/model-init';
import { runtimeConfigFromEnv } from '../core/runtime-config';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
const config = runtimeConfigFromEnv(process.env);
const limits = resolveLimits(config.limits);
const idField = process.env.ID_FIELD || undefined;
const s3 = new S3Client({});

/** Starts at init, so the first invocation does not pay for the download and session creation. */
// The handler awaits `ready` and fails, so the Map retries the batch or counts it failed.
export const ready: Promise<OnnxModel> = loadModelAtInit(
  config,
  logger,
  metrics,
  'no batch will be predicted',
);

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
