#!/usr/bin/env node
/**
 * The ready app. The only place that reads the environment and context.
 *
 * - By default: dev, stage and prod, each a `ServingStage` of the example model, deployed by hand or by CI
 *   (`npx cdk deploy 'ModelServing-dev/*'`; see examples/github-actions).
 * - With `-c pipeline=true`: the `ModelServingPipeline` stack instead, a CDK pipeline that deploys the same
 *   three stages (same stack names) from the repository (`npx cdk deploy -c pipeline=true ModelServingPipeline`).
 *   Only one of the two is synthesized, so a synth bundles each stage once; the pipeline's own synth step
 *   passes `-c pipeline=true` on, with every pipeline override below, so self-mutation keeps them.
 *
 * Pipeline context (each overrides lib/config/pipeline.ts): `repository` (owner/repo), `branch`,
 * `connectionArn`, `pipelineAccount`, `pipelineRegion`, `<stage>Account` and `<stage>Region` for dev, stage
 * and prod, `modelPackageGroup`, `modelName`, `prodApproval` (true|false).
 *
 * The model: `-c modelDir=DIR` (default models/iris), or `-c modelPackageGroup=G` for the newest Approved
 * package of a SageMaker model package group (`-c modelName=N` narrows it), resolved again whenever
 * `-c resolveToken=T` changes (the pipeline's synth step sets it to its build id). A registry model is read
 * from the bucket it was registered in: `-c modelBucket=NAME` (and `-c modelBucketKeyArn=ARN` for its KMS key),
 * which then replaces each stage's own bucket.
 */
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { STAGES, type StageName } from '../lib/config';
import { pipelineConfig, type PipelineConfig, type PipelineStageTarget } from '../lib/config/pipeline';
import type { ModelBucketRef } from '../lib/model-serving-stack';
import { ModelSource } from '../lib/model-source';
import { ModelPipelineStack, RESOLVE_TOKEN_CONTEXT } from '../lib/pipeline-stack';
import { ServingStage } from '../lib/serving-stage';

const ROOT = path.join(__dirname, '..');
const app = new cdk.App();
const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const versionLockFile = context('versionLockFile') ?? path.join(ROOT, 'model-versions.json');

function bucketRef(
  bucketName: string | undefined,
  encryptionKeyArn: string | undefined,
): ModelBucketRef | undefined {
  if (bucketName === undefined) {
    if (encryptionKeyArn !== undefined) throw new Error('-c modelBucketKeyArn goes with -c modelBucket');
    return undefined;
  }
  return { bucketName, encryptionKeyArn };
}

if (context('pipeline') === 'true') {
  // Every context key the pipeline read, so its synth step can pass them on.
  const used: Record<string, string> = { pipeline: 'true' };
  const read = (key: string): string | undefined => {
    const value = context(key);
    if (value !== undefined) used[key] = value;
    return value;
  };
  const base = pipelineConfig;
  const stage = (name: StageName): PipelineStageTarget => ({
    ...base.stages[name],
    account: read(`${name}Account`) ?? base.stages[name].account,
    region: read(`${name}Region`) ?? base.stages[name].region,
  });
  const approval = read('prodApproval');
  if (approval !== undefined && approval !== 'true' && approval !== 'false')
    throw new Error(`-c prodApproval must be true or false, got '${approval}'`);
  const config: PipelineConfig = {
    ...base,
    source: {
      repository: read('repository') ?? base.source.repository,
      branch: read('branch') ?? base.source.branch,
      connectionArn: read('connectionArn') ?? base.source.connectionArn,
    },
    pipeline: {
      account: read('pipelineAccount') ?? base.pipeline?.account,
      region: read('pipelineRegion') ?? base.pipeline?.region,
    },
    stages: { dev: stage('dev'), stage: stage('stage'), prod: stage('prod') },
    modelPackageGroup: read('modelPackageGroup') ?? base.modelPackageGroup,
    modelBucket: bucketRef(read('modelBucket'), read('modelBucketKeyArn')) ?? base.modelBucket,
    modelName: read('modelName') ?? base.modelName,
    prodApproval: approval === undefined ? base.prodApproval : approval === 'true',
  };
  new ModelPipelineStack(app, 'ModelServingPipeline', {
    env: {
      account: config.pipeline?.account ?? process.env.CDK_DEFAULT_ACCOUNT,
      region: config.pipeline?.region ?? process.env.CDK_DEFAULT_REGION,
    },
    config,
    modelDir: path.join(ROOT, config.modelDir),
    versionLockFile,
    synthContext: used,
    // Not passed on with the rest: the synth step sets it afresh on each run.
    resolveToken: context(RESOLVE_TOKEN_CONTEXT),
    description: 'model-deploy-kit release pipeline: dev, stage (smoke test), approval, prod',
  });
} else {
  const env: cdk.Environment = {
    account: context('account') ?? process.env.CDK_DEFAULT_ACCOUNT,
    region: context('region') ?? process.env.CDK_DEFAULT_REGION,
  };
  const group = context('modelPackageGroup');
  const modelBucket = bucketRef(context('modelBucket'), context('modelBucketKeyArn'));
  if (group && !modelBucket) {
    throw new Error(
      "-c modelPackageGroup needs -c modelBucket=NAME, the bucket its packages are registered in (mdk registry register --bucket): a stage's own bucket does not exist before its first deploy",
    );
  }
  const model = group
    ? {
        modelSource: ModelSource.fromRegistry(group, {
          modelName: context('modelName'),
          resolveToken: context(RESOLVE_TOKEN_CONTEXT),
        }),
      }
    : { modelDir: context('modelDir') ?? path.join(ROOT, 'models', 'iris') };
  for (const config of Object.values(STAGES)) {
    new ServingStage(app, `ModelServing-${config.stageName}`, {
      env,
      config,
      ...model,
      modelBucket,
      versionLockFile,
    });
  }
}
app.synth();
