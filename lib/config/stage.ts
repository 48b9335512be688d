import * as cdk from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ApiAuthorization } from '../inference-api';
import { TrafficShiftType } from '../canary-release';
import { ServingBackend } from '../onnx-model-endpoint';
import type { StageConfig } from './types';

/** Shaped like prod, so the smoke tests and alarms CI relies on are the real ones. */
export const stageConfig: StageConfig = {
  stageName: 'stage',
  backend: ServingBackend.LAMBDA,
  function: {
    memorySize: 2048,
    reservedConcurrency: 50,
    provisionedConcurrency: 0,
    logLevel: 'INFO',
    tracing: true,
  },
  api: { authorization: ApiAuthorization.IAM, throttle: { rateLimit: 50, burstLimit: 100 }, waf: true },
  alarms: {
    errorRatePercent: 2,
    p99DurationMs: 1500,
    api5xxRatePercent: 2,
    api4xxRatePercent: 20,
    p99LatencyMs: 3000,
    target5xxRatePercent: 2,
    p99TargetResponseTimeMs: 1500,
    cpuUtilizationPercent: 85,
    memoryUtilizationPercent: 85,
  },
  // The same pre-traffic check as prod, but no waiting: stage is where the pipeline's smoke test runs next.
  release: { trafficShift: { type: TrafficShiftType.ALL_AT_ONCE } },
  // As prod, fewer at once: a failed batch fails the job, as it would in prod.
  batch: {
    memorySize: 2048,
    batchSize: 256,
    maxConcurrency: 5,
    toleratedFailurePercentage: 0,
    expireAfterDays: 30,
  },
  stream: {
    memorySize: 2048,
    batchSize: 10,
    maxBatchingWindowSeconds: 1,
    maxReceiveCount: 3,
    maxConcurrency: 10,
  },
  // A tenth of requests, kept a month: enough rows for the hourly drift job on smoke and load tests.
  capture: { samplePercent: 10, retentionDays: 30 },
  drift: {
    featurePsiThreshold: 0.2,
    predictionPsiThreshold: 0.2,
    schedule: 'rate(1 hour)',
    windowHours: 24,
    minRows: 100,
  },
  logRetention: logs.RetentionDays.ONE_MONTH,
  removalPolicy: cdk.RemovalPolicy.DESTROY,
  autoDeleteObjects: true,
};
