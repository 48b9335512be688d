import * as cdk from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ApiAuthorization } from '../inference-api';
import { ServingBackend } from '../onnx-model-endpoint';
import type { StageConfig } from './types';

/** Cheap and disposable: no warm instances, loose alarms, everything deleted with the stack. */
export const devConfig: StageConfig = {
  stageName: 'dev',
  backend: ServingBackend.LAMBDA,
  function: { memorySize: 1024, provisionedConcurrency: 0, logLevel: 'DEBUG', tracing: false },
  api: { authorization: ApiAuthorization.API_KEY, throttle: { rateLimit: 20, burstLimit: 40 }, waf: false },
  alarms: {
    errorRatePercent: 5,
    p99DurationMs: 3000,
    api5xxRatePercent: 5,
    api4xxRatePercent: 50,
    p99LatencyMs: 5000,
    target5xxRatePercent: 5,
    p99TargetResponseTimeMs: 3000,
    cpuUtilizationPercent: 90,
    memoryUtilizationPercent: 90,
  },
  // Small and forgiving: a few batches at once, bad batches tolerated, outputs gone after a week.
  batch: {
    memorySize: 1024,
    batchSize: 256,
    maxConcurrency: 2,
    toleratedFailurePercentage: 10,
    expireAfterDays: 7,
  },
  stream: { memorySize: 1024, batchSize: 10, maxBatchingWindowSeconds: 0, maxReceiveCount: 3 },
  // Every request captured, kept a week: dev traffic is test traffic.
  capture: { samplePercent: 100, retentionDays: 7 },
  drift: {
    featurePsiThreshold: 0.2,
    predictionPsiThreshold: 0.2,
    schedule: 'rate(1 hour)',
    windowHours: 24,
    minRows: 100,
  },
  logRetention: logs.RetentionDays.ONE_WEEK,
  removalPolicy: cdk.RemovalPolicy.DESTROY,
  autoDeleteObjects: true,
};
