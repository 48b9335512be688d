import * as cdk from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ApiAuthorization } from '../inference-api';
import type { StageConfig } from './types';

/** Warm, capped, watched closely, and nothing is deleted with the stack. */
export const prodConfig: StageConfig = {
  stageName: 'prod',
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
  },
  logRetention: logs.RetentionDays.SIX_MONTHS,
  removalPolicy: cdk.RemovalPolicy.RETAIN,
  autoDeleteObjects: false,
};
