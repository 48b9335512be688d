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
  /**
   * Batch jobs on S3 (BatchInference) beside the endpoint, on the same model version: put a CSV or JSONL file
   * under `input/` of the job bucket. @default - none
   */
  readonly batch?: BatchStageConfig;
  /**
   * Queue-driven predictions (StreamInference) beside the endpoint, on the same model version: an SQS queue in,
   * an SQS queue of predictions out. @default - none
   */
  readonly stream?: StreamStageConfig;
  /**
   * Data capture of the endpoint's requests to S3 (DataCapture). The delivery path and bucket exist whenever
   * this is set, so `samplePercent: 0` is off and turning it on is one line. @default - no capture
   */
  readonly capture?: CaptureStageConfig;
  /** The scheduled drift job on the captured rows (DriftMonitor); needs `capture`. @default - none */
  readonly drift?: DriftStageConfig;
  readonly logRetention: logs.RetentionDays;
  /** For the model bucket and its key, and the load balancer's access log bucket. */
  readonly removalPolicy: cdk.RemovalPolicy;
  /** Empty the model bucket (and access log bucket) when the stack is deleted (DESTROY only). */
  readonly autoDeleteObjects: boolean;
}

/** A stage's batch jobs. */
export interface BatchStageConfig {
  readonly memorySize: number;
  /** Rows per model run. */
  readonly batchSize: number;
  /** Distributed Map batches at once, for large inputs. */
  readonly maxConcurrency: number;
  /** Share of Distributed Map batches that may fail before the job fails. */
  readonly toleratedFailurePercentage: number;
  /** Delete inputs and outputs this many days after they were written. @default - kept */
  readonly expireAfterDays?: number;
  /** A recurring job: an EventBridge schedule expression (`cron(...)` or `rate(...)`) and an input under `input/`. */
  readonly schedule?: { readonly expression: string; readonly inputKey: string };
}

/** A stage's queue-driven predictions. */
export interface StreamStageConfig {
  readonly memorySize: number;
  /** Messages per invocation (up to 10 without a batching window). */
  readonly batchSize: number;
  /** How long Lambda gathers messages before it invokes. */
  readonly maxBatchingWindowSeconds: number;
  /** Receives before a message goes to the dead-letter queue. */
  readonly maxReceiveCount: number;
  /** The most concurrent invocations the queue drives. @default - Lambda's */
  readonly maxConcurrency?: number;
}

/** A stage's data capture. */
export interface CaptureStageConfig {
  /** Share of requests captured, 0 to 100; 0 is off. */
  readonly samplePercent: number;
  /** Days captured rows are kept in the capture bucket. */
  readonly retentionDays: number;
  /** Inputs or baseline feature names written as null. @default - none */
  readonly redact?: string[];
  /** Inputs or baseline feature names written as their hash. @default - none */
  readonly hash?: string[];
  /** Rows captured per request at most. @default 1000 */
  readonly maxRowsPerRequest?: number;
}

/** A stage's drift job. */
export interface DriftStageConfig {
  /** PSI of a feature at or above which its alarm fires. */
  readonly featurePsiThreshold: number;
  /** PSI of the predictions at or above which its alarm fires. */
  readonly predictionPsiThreshold: number;
  /** An EventBridge schedule expression, `rate(...)` or `cron(...)`. */
  readonly schedule: string;
  /** Hours of captures each run reads. */
  readonly windowHours: number;
  /** Fewer captured rows than this in the window: no PSI, only the row count. */
  readonly minRows: number;
}
