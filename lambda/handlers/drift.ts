/**
 * The scheduled drift job: an EventBridge schedule (or a manual `{ "windowHours"?, "end"? }`) runs it over the
 * captures of one model. No model is loaded: baselines come from each version's manifest.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { driftJobConfigFromEnv, runDriftJob, type DriftJobSummary } from '../core/drift-job';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
// A bad environment fails the function's init, naming the variable, rather than every run.
const config = driftJobConfigFromEnv(process.env);
const s3 = new S3Client({});
const cloudwatch = new CloudWatchClient({});

export async function handler(event: unknown, context?: Context): Promise<DriftJobSummary> {
  if (context) logger.addContext(context);
  const summary = await runDriftJob({ s3, cloudwatch, config, event, logger });
  logger.info('drift job finished', {
    model: summary.model,
    window: summary.window,
    rows: summary.rows,
    versions: summary.versions.length,
    drifted: summary.versions.filter((v) => v.drifted.length > 0).map((v) => v.version),
    metrics: summary.metrics,
    metricsSkipped: summary.metricsSkipped,
  });
  return summary;
}
