/**
 * A batch job per object put under `input/` of the job bucket (S3 notification), or per direct invoke
 * `{bucket, key, job?, scheduledAt?}` (the EventBridge schedule's). An object up to LARGE_JOB_BYTES is
 * streamed through the model here; a bigger one starts the Distributed Map state machine (STATE_MACHINE_ARN).
 * The model, the clients, the logger and metrics are made once, at init.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { Context, S3Event } from 'aws-lambda';
import { runBatchJob } from '../core/batch-job';
import {
  checkJobName,
  DEFAULT_LARGE_JOB_BYTES,
  decodeEventKey,
  executionName,
  firstLine,
  formatOfKey,
  INPUT_PREFIX,
  jobFromKey,
  JobRequestError,
  mapJobInput,
  objectSize,
  refusedReport,
  runningReport,
  runObjectJob,
  writeReport,
  type JobReport,
} from '../core/batch-s3';
import { resolveLimits } from '../core/limits';
import { looksLikeCsvHeader } from '../core/rows';
import type { OnnxModel } from '../core/model';
import { loadModelAtInit } from '../core/model-init';
import { intVar, runtimeConfigFromEnv } from '../core/runtime-config';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
const config = runtimeConfigFromEnv(process.env);
const limits = resolveLimits(config.limits);
const s3 = new S3Client({});
const sfn = new SFNClient({});

const largeJobBytes = intVar(process.env, 'LARGE_JOB_BYTES') ?? DEFAULT_LARGE_JOB_BYTES;
const batchSize = intVar(process.env, 'BATCH_SIZE');
const idField = process.env.ID_FIELD || undefined;
const stateMachineArn = process.env.STATE_MACHINE_ARN || undefined;

/** Starts at init, so the first invocation does not pay for the download and session creation. */
// The handler awaits `ready` and fails the invocation, so Lambda retries, then the DLQ has it.
export const ready: Promise<OnnxModel> = loadModelAtInit(config, logger, metrics, 'no job will run');

/** A direct invoke, as the schedule sends it. */
export interface JobRequest {
  readonly bucket: string;
  readonly key: string;
  /** @default - the key's file name without extension (and the schedule's time, with scheduledAt) */
  readonly job?: string;
  /** The schedule's event time: each run gets its own job name. */
  readonly scheduledAt?: string;
}

export type BatchObjectEvent = S3Event | JobRequest;

function requests(event: BatchObjectEvent): JobRequest[] {
  if ('Records' in event) {
    return event.Records.map((r) => ({ bucket: r.s3.bucket.name, key: decodeEventKey(r.s3.object.key) }));
  }
  if (typeof event.bucket !== 'string' || typeof event.key !== 'string') {
    throw new JobRequestError('invoke with an S3 event or {"bucket", "key", "job"?}');
  }
  return [event];
}

function jobMetrics(report: JobReport): void {
  metrics.addMetric(report.status === 'FAILED' ? 'JobsFailed' : 'JobsSucceeded', MetricUnit.Count, 1);
  metrics.addMetric('RowsPredicted', MetricUnit.Count, report.predicted);
  metrics.addMetric('RowsFailed', MetricUnit.Count, report.failed);
}

async function runJob(model: OnnxModel, req: JobRequest): Promise<JobReport | undefined> {
  // A console "folder" is a zero-byte key ending in '/': nothing to predict.
  if (!req.key.startsWith(INPUT_PREFIX) || req.key.endsWith('/')) {
    logger.warn('not a job input: only objects under input/ are', { bucket: req.bucket, key: req.key });
    return undefined;
  }
  const job = req.job !== undefined ? checkJobName(req.job) : jobFromKey(req.key, req.scheduledAt);
  const size = await objectSize(s3, req.bucket, req.key);
  if (size > largeJobBytes && stateMachineArn && formatOfKey(req.key)) {
    const input = mapJobInput(req.bucket, req.key, job);
    const now = new Date();
    // The Map's CSV reader takes its column names from the first row; a headerless file would lose a row.
    if (input.format === 'csv' && !looksLikeCsvHeader(await firstLine(s3, req.bucket, req.key))) {
      const report = refusedReport(
        input,
        'distributed-map',
        `${req.key} is over ${largeJobBytes} bytes, so the Distributed Map reads it, and its CSV reader needs a header line: add one (column names as the model's inputs, or any names in input order)`,
        now,
      );
      await writeReport(s3, req.bucket, report);
      jobMetrics(report);
      return report;
    }
    const started = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn,
        name: executionName(job, now),
        input: JSON.stringify(input),
      }),
    );
    const report = runningReport(input, started.executionArn ?? '', now);
    await writeReport(s3, req.bucket, report);
    logger.info('job started as a Distributed Map', { job, bytes: size, executionArn: started.executionArn });
    return report;
  }
  const report = await runObjectJob({
    s3,
    bucket: req.bucket,
    key: req.key,
    job,
    run: (o) => runBatchJob({ ...o, model, limits, batchSize, idField }),
  });
  jobMetrics(report);
  logger.info('job finished', {
    job,
    status: report.status,
    rows: report.rows,
    predicted: report.predicted,
    failed: report.failed,
    durationMs: report.durationMs,
    error: report.error,
  });
  return report;
}

export async function handler(event: BatchObjectEvent, context?: Context): Promise<JobReport[]> {
  if (context) logger.addContext(context);
  const model = await ready;
  const reports: JobReport[] = [];
  try {
    for (const req of requests(event)) {
      try {
        const report = await runJob(model, req);
        if (report) reports.push(report);
      } catch (err) {
        // A request that can never run (a bad job name) is dropped: retries would only repeat it.
        if (!(err instanceof JobRequestError)) throw err;
        metrics.addMetric('JobsFailed', MetricUnit.Count, 1);
        logger.error('job request refused', { bucket: req.bucket, key: req.key, reason: err.message });
      }
    }
    return reports;
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
