/**
 * The last step of a Distributed Map job, on success and on the Catch path: it adds up the Map Run's
 * ResultWriter files, writes `output/<job>/summary.json` and reports the job in metrics. No model here.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { summarizeMapRun, type JobReport, type SummaryEvent } from '../core/batch-s3';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
// The same dimension as the object function's job metrics, so one alarm covers both paths.
if (process.env.MODEL_NAME) metrics.setDefaultDimensions({ model: process.env.MODEL_NAME });
const s3 = new S3Client({});

export async function handler(event: SummaryEvent, context?: Context): Promise<JobReport> {
  if (context) logger.addContext(context);
  try {
    const report = await summarizeMapRun({ s3, event });
    metrics.addMetric(report.status === 'FAILED' ? 'JobsFailed' : 'JobsSucceeded', MetricUnit.Count, 1);
    metrics.addMetric('RowsPredicted', MetricUnit.Count, report.predicted);
    metrics.addMetric('RowsFailed', MetricUnit.Count, report.failed + (report.unprocessedRows ?? 0));
    logger.info('job finished', {
      job: report.job,
      status: report.status,
      rows: report.rows,
      predicted: report.predicted,
      failed: report.failed,
      failedBatches: report.failedBatches,
      durationMs: report.durationMs,
      error: report.error,
    });
    return report;
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
