import type * as cdk from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { ApiAuthorization, ApiQuota, ApiThrottle } from '../inference-api';
import type { AlarmThresholds } from '../model-monitoring';
import type { LogLevel } from '../onnx-function';

export type StageName = 'dev' | 'stage' | 'prod';

/** Everything that differs between dev, stage and prod. Only `bin/` picks one; nothing here reads the environment. */
export interface StageConfig {
  readonly stageName: StageName;
  readonly function: {
    readonly memorySize: number;
    readonly reservedConcurrency?: number;
    readonly provisionedConcurrency: number;
    readonly logLevel: LogLevel;
    readonly tracing: boolean;
  };
  readonly api: {
    readonly authorization: ApiAuthorization;
    readonly throttle: ApiThrottle;
    readonly quota?: ApiQuota;
    readonly waf: boolean;
  };
  readonly alarms: AlarmThresholds;
  readonly logRetention: logs.RetentionDays;
  /** For the model bucket and its key. */
  readonly removalPolicy: cdk.RemovalPolicy;
  /** Empty the model bucket when the stack is deleted (DESTROY only). */
  readonly autoDeleteObjects: boolean;
}
