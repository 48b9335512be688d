import * as cdk from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ApiAuthorization } from '../inference-api';
import { TrafficShiftType } from '../canary-release';
import { ServingBackend } from '../onnx-model-endpoint';
import type { StageConfig } from './types';

/**
 * A Fargate service that never scales below two tasks, batches under load, is watched closely, and
 * nothing is deleted with the stack.
 */
export const prodConfig: StageConfig = {
  stageName: 'prod',
  backend: ServingBackend.CONTAINER,
  container: {
    cpu: 1024,
    memoryLimitMiB: 2048,
    minCapacity: 2,
    maxCapacity: 10,
    targetCpuPercent: 60,
    requestsPerTarget: 3000,
    batching: { maxBatchSize: 32, maxLatencyMs: 5 },
    logLevel: 'INFO',
  },
  // Kept while backend is CONTAINER, so going back to Lambda is one line; `tracing` still sets the API's X-Ray.
  function: {
    memorySize: 2048,
    reservedConcurrency: 200,
    provisionedConcurrency: 2,
    logLevel: 'INFO',
    tracing: true,
  },
  api: { authorization: ApiAuthorization.IAM, throttle: { rateLimit: 200, burstLimit: 400 }, waf: true },
  alarms: {
    errorRatePercent: 1,
    p99DurationMs: 1000,
    api5xxRatePercent: 1,
    api4xxRatePercent: 10,
    p99LatencyMs: 2000,
    concurrencyPercent: 80,
    target5xxRatePercent: 1,
    p99TargetResponseTimeMs: 1000,
    unhealthyHosts: 1,
    cpuUtilizationPercent: 85,
    memoryUtilizationPercent: 85,
  },
  // With the LAMBDA backend: 10 % of traffic for 5 minutes before the rest. The container rolls back through ECS.
  release: { trafficShift: { type: TrafficShiftType.CANARY, percent: 10, intervalMinutes: 5 } },
  // A failed batch fails the job (its rows would have neither a prediction nor an error line).
  batch: {
    memorySize: 2048,
    batchSize: 256,
    maxConcurrency: 10,
    toleratedFailurePercentage: 0,
    expireAfterDays: 90,
  },
  stream: {
    memorySize: 2048,
    batchSize: 100,
    maxBatchingWindowSeconds: 2,
    maxReceiveCount: 5,
    maxConcurrency: 50,
  },
  // Off until turned on (samplePercent is the one line): requests may hold personal data. The bucket,
  // stream and drift job are deployed, so turning it on changes only the servers' environment.
  capture: { samplePercent: 0, retentionDays: 90 },
  drift: {
    featurePsiThreshold: 0.2,
    predictionPsiThreshold: 0.2,
    schedule: 'rate(1 hour)',
    windowHours: 24,
    minRows: 100,
  },
  logRetention: logs.RetentionDays.SIX_MONTHS,
  removalPolicy: cdk.RemovalPolicy.RETAIN,
  autoDeleteObjects: false,
};
