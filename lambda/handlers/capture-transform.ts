/**
 * Firehose's data transformation for data capture: CloudWatch Logs envelopes in, capture records as JSON
 * lines out, with the partition keys the delivery stream files them under. Logs counts, never payloads.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context, FirehoseTransformationEvent, FirehoseTransformationResult } from 'aws-lambda';
import { transformCaptureRecords } from '../core/capture-transform';

const logger = new Logger({ serviceName: 'model-deploy-kit' });

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
  if (Object.keys(stats.failed).length > 0) {
    logger.error('capture records failed; Firehose files them under the error prefix', { ...stats });
  } else {
    logger.info('capture records transformed', { ...stats });
  }
  return Promise.resolve({ records });
}
