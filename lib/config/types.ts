import type * as cdk from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { ApiAuthorization, ApiQuota, ApiThrottle } from '../inference-api';
import type { AlarmThresholds } from '../model-monitoring';
import type { BatchingOptions } from '../onnx-container-service';
import type { LogLevel } from '../model-function';
import type { ReleaseOptions, ServingBackend } from '../onnx-model-endpoint';

export type StageName = 'dev' | 'stage' | 'prod';

/** Everything that differs between dev, stage and prod. Only `bin/` picks one; nothing here reads the environment. */
export interface StageConfig {
  readonly stageName: StageName;
  /** What runs the model. @default ServingBackend.LAMBDA */
  readonly backend?: ServingBackend;
  /** The LAMBDA backend's settings; kept with CONTAINER too, so going back to Lambda is one line. */
  readonly function: {
    readonly memorySize: number;
    readonly reservedConcurrency?: number;
    readonly provisionedConcurrency: number;
    readonly logLevel: LogLevel;
    readonly tracing: boolean;
    /** Pin `live` to this published version number (a rollback that sticks). @default - this deploy's version */
    readonly liveVersion?: string;
  };
  /** The CONTAINER backend's settings; required when backend is CONTAINER. */
  readonly container?: {
    /** vCPU units (1024 = 1 vCPU) and memory: one of Fargate's combinations. */
    readonly cpu: number;
    readonly memoryLimitMiB: number;
    readonly minCapacity: number;
    readonly maxCapacity: number;
    readonly targetCpuPercent: number;
    /** Requests per task per minute that autoscaling holds. */
    readonly requestsPerTarget: number;
    /** @default - off */
    readonly batching?: BatchingOptions;
    readonly logLevel: LogLevel;
  };
  readonly api: {
    readonly authorization: ApiAuthorization;
    readonly throttle: ApiThrottle;
    readonly quota?: ApiQuota;
    readonly waf: boolean;
    /** Other accounts whose IAM principals may call the API. @default - none */
    readonly invokeAccounts?: string[];
  };
  readonly alarms: AlarmThresholds;
  /**
   * LAMBDA backend: release each new version through CodeDeploy (pre-traffic check of the manifest's sample,
   * traffic shifting, rollback on alarms). The CONTAINER backend always rolls back through ECS.
   * @default - none: a deploy moves the alias at once
   */
  readonly release?: ReleaseOptions;
  readonly logRetention: logs.RetentionDays;
  /** For the model bucket and its key, and the load balancer's access log bucket. */
  readonly removalPolicy: cdk.RemovalPolicy;
  /** Empty the model bucket (and access log bucket) when the stack is deleted (DESTROY only). */
  readonly autoDeleteObjects: boolean;
}
