/**
 * Firehose's data transformation for data capture: CloudWatch Logs envelopes in, capture records as JSON
 * lines out, with the partition keys the delivery stream files them under. Logs counts, never payloads.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, FirehoseTransformationEvent, FirehoseTransformationResult } from 'aws-lambda';
import { transformCaptureRecords } from '../core/capture-transform';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });

// Not async (nothing to await); Lambda's Node.js runtime awaits the promise it returns.
export function handler(
  event: FirehoseTransformationEvent,
  context?: Context,
): Promise<FirehoseTransformationResult> {
  if (context) logger.addContext(context);
  const { records, stats, mixed } = transformCaptureRecords(event.records);
  for (const m of mixed) {
    logger.warn('one envelope held captures of several model versions; all were filed under the first', {
      ...m,
    });
  }
  const failed = Object.values(stats.failed).reduce((sum, n) => sum + n, 0);
  if (failed > 0) {
    logger.error('capture records failed; Firehose files them under the error prefix', { ...stats });
  } else {
    logger.info('capture records transformed', { ...stats });
  }
  // By stream: the function cannot be told its stream's name (the stream names the function), the event can.
  metrics.addDimension('stream', event.deliveryStreamArn.slice(event.deliveryStreamArn.lastIndexOf('/') + 1));
  metrics.addMetric('CaptureRowsDelivered', MetricUnit.Count, stats.captureLines);
  metrics.addMetric('CaptureRecordsFailed', MetricUnit.Count, failed);
  metrics.publishStoredMetrics();
  return Promise.resolve({ records });
}
