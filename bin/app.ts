#!/usr/bin/env node
/**
 * The ready app: dev, stage and prod, each a `ServingStage` of the example model.
 * `npx cdk deploy 'ModelServing-dev/*'`. The only place that reads the environment.
 */
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { STAGES } from '../lib/config';
import { ServingStage } from '../lib/serving-stage';

const app = new cdk.App();
const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const env: cdk.Environment = {
  account: context('account') ?? process.env.CDK_DEFAULT_ACCOUNT,
  region: context('region') ?? process.env.CDK_DEFAULT_REGION,
};
const modelDir = context('modelDir') ?? path.join(__dirname, '..', 'models', 'iris');
const versionLockFile = context('versionLockFile') ?? path.join(__dirname, '..', 'model-versions.json');

for (const config of Object.values(STAGES)) {
  new ServingStage(app, `ModelServing-${config.stageName}`, { env, config, modelDir, versionLockFile });
}
app.synth();
