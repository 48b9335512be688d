import { ApiAuthorization } from '../inference-api';
import type { ModelBucketRef } from '../model-serving-stack';
import type { StageConfig, StageName } from './types';

/** Where the pipeline reads the repository: a CodeStar Connections (CodeConnections) connection to GitHub, GitLab or Bitbucket. */
export interface PipelineSourceConfig {
  /** `owner/repo`. */
  readonly repository: string;
  readonly branch: string;
  /** `arn:aws:codestar-connections:...:connection/...` (or `codeconnections`), created and authorized once in the console. */
  readonly connectionArn: string;
}

/** An account and region; each one left out is the pipeline's own. */
export interface PipelineTarget {
  /** @default - the pipeline's account */
  readonly account?: string;
  /** @default - the pipeline's region */
  readonly region?: string;
}

export interface PipelineStageTarget extends PipelineTarget {
  /** Run `mdk smoke` against the stage once it is deployed; the next stage waits for it. */
  readonly smokeTest: boolean;
}

/** The release pipeline: where it reads the code, where each stage deploys, and what gates prod. Only `bin/` overrides it. */
export interface PipelineConfig {
  readonly source: PipelineSourceConfig;
  /** Where the pipeline itself runs. @default - the account and region of the CLI that deploys it */
  readonly pipeline?: PipelineTarget;
  /** dev, stage and prod, in promotion order. */
  readonly stages: Readonly<Record<StageName, PipelineStageTarget>>;
  /** The model folder, relative to the repository's root: what the stages serve and the smoke test sends. */
  readonly modelDir: string;
  /**
   * A SageMaker model package group. The stages then serve its newest Approved package (resolved again on each
   * pipeline run) instead of `modelDir`, the smoke test sends the sample of the manifest that was deployed, and
   * approving a package starts the pipeline. The registry must be in the pipeline's account and region
   * (EventBridge delivers the event there), and the packages in each stage's model bucket.
   * @default - none: the stages serve `modelDir`, and only a push to the branch starts the pipeline
   */
  readonly modelPackageGroup?: string;
  /**
   * The bucket the group's packages are registered in (`mdk registry register --bucket`), which every stage
   * then reads; required with `modelPackageGroup`. A stage in another account needs the bucket's policy (and
   * its key's) to let that account read. @default - none
   */
  readonly modelBucket?: ModelBucketRef;
  /**
   * With `modelPackageGroup`: the model the packages must be, which narrows the servers' read grant to its
   * versions. @default - any model in the group
   */
  readonly modelName?: string;
  /** A person approves each promotion to prod. @default true */
  readonly prodApproval?: boolean;
}

/** What the placeholders below are made of: valid shapes, so `cdk synth` works offline, but no real resource. */
export const PLACEHOLDER_CONNECTION_ARN =
  'arn:aws:codestar-connections:us-east-1:000000000000:connection/00000000-0000-0000-0000-000000000000';
export const PLACEHOLDER_REPOSITORY = 'your-org/model-deploy-kit';

/**
 * The default: one account and region for everything (the deploying CLI's), and a source that does not exist.
 * Set the connection, repository and branch (here or with `-c` context, see bin/app.ts) before deploying it.
 */
export const pipelineConfig: PipelineConfig = {
  source: { repository: PLACEHOLDER_REPOSITORY, branch: 'main', connectionArn: PLACEHOLDER_CONNECTION_ARN },
  stages: {
    dev: { smokeTest: false },
    stage: { smokeTest: true },
    prod: { smokeTest: false },
  },
  modelDir: 'models/iris',
  prodApproval: true,
};

/** True while the config still names the placeholder connection or repository. */
export function isPlaceholderSource(source: PipelineSourceConfig): boolean {
  return source.connectionArn === PLACEHOLDER_CONNECTION_ARN || source.repository === PLACEHOLDER_REPOSITORY;
}

/** How `mdk smoke` authenticates to a stage's API. */
export enum SmokeAuth {
  /** SigV4 with the step's own role: `--sign`. */
  SIGN = 'SIGN',
  /** The stage's API key, read by id: `--api-key-id`. */
  API_KEY = 'API_KEY',
}

/** The smoke test's auth follows the stage's API: IAM signs, API_KEY sends the key. */
export function smokeAuth(config: StageConfig): SmokeAuth {
  return config.api.authorization === ApiAuthorization.IAM ? SmokeAuth.SIGN : SmokeAuth.API_KEY;
}
