/**
 * Queue and stream inference: an SQS or Kinesis event source mapping invokes it with a batch of records;
 * it predicts them (lambda/core/stream.ts) and sends the predictions to the destination in DESTINATION_TYPE.
 * It answers with a partial batch response, so only the records that failed are retried.
 * The model, the clients, the logger and metrics are made once, at init.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Context, KinesisStreamBatchResponse, SQSBatchResponse } from 'aws-lambda';
import { resolveLimits } from '../core/limits';
import type { OnnxModel } from '../core/model';
import { loadModelAtInit } from '../core/model-init';
import { runtimeConfigFromEnv } from '../core/runtime-config';
import { createSink, destinationFromEnv } from '../core/sinks';
import { processRecords, streamRecords, type StreamEvent } from '../core/stream';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
// SQS messages and Kinesis records are at most 1 MiB; MAX_PAYLOAD_BYTES can lower the bar.
const config = runtimeConfigFromEnv(process.env, { maxPayloadBytes: 1024 * 1024 });
const limits = resolveLimits(config.limits);
const destination = destinationFromEnv(process.env);
const PAYLOAD_LOG_BYTES = 4096;

const sink = createSink(destination, {
  // The SDK sends to the queue URL's host unless told otherwise; an endpoint set for every service
  // (AWS_ENDPOINT_URL, e.g. a VPC endpoint or an emulator) must win over it.
  sqs:
    destination.type === 'sqs'
      ? new SQSClient({ useQueueUrlAsEndpoint: !process.env.AWS_ENDPOINT_URL })
      : undefined,
  eventBridge: destination.type === 'eventbridge' ? new EventBridgeClient({}) : undefined,
  // The Kinesis client defaults to HTTP/2, which only SubscribeToShard needs; PutRecords is fine on HTTP/1.1,
  // which every endpoint (moto included) speaks.
  kinesis:
    destination.type === 'kinesis' ? new KinesisClient({ requestHandler: new NodeHttpHandler() }) : undefined,
});

/** Starts at init, so the first invocation does not pay for the download and session creation. */
// The handler awaits `ready` and fails the invocation, so Lambda retries the whole batch.
export const ready: Promise<OnnxModel> = loadModelAtInit(
  config,
  logger,
  metrics,
  'no record will be predicted',
);

export async function handler(
  event: StreamEvent,
  context?: Context,
): Promise<SQSBatchResponse | KinesisStreamBatchResponse> {
  if (context) logger.addContext(context);
  const model = await ready;
  const records = streamRecords(event);
  try {
    const outcome = await processRecords(records, { model, limits, sink });
    const bodies = config.logPayloads ? new Map(records.map((r) => [r.key, r.body])) : undefined;
    for (const f of outcome.failures) {
      // The payload may hold personal data: only with LOG_PAYLOADS, and truncated.
      const payload = bodies?.get(f.key)?.slice(0, PAYLOAD_LOG_BYTES);
      logger.warn('record failed', {
        itemIdentifier: f.key,
        stage: f.stage,
        reason: f.reason,
        ...(payload === undefined ? {} : { payload }),
      });
    }
    metrics.addMetric('RecordsPredicted', MetricUnit.Count, outcome.predicted);
    metrics.addMetric('RecordsFailed', MetricUnit.Count, outcome.failures.length);
    metrics.addMetric('PredictionLatency', MetricUnit.Milliseconds, outcome.predictMs);
    logger.debug('batch', {
      records: records.length,
      predicted: outcome.predicted,
      failed: outcome.failures.length,
      destination: sink.type,
    });
    return { batchItemFailures: outcome.batchItemFailures };
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
