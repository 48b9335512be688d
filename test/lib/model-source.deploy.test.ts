/**
 * RegistryModel deployed: the construct's stack, synthesized with its real resolver bundle, is created and
 * updated by moto's CloudFormation, whose custom resource runs the bundled handler in node
 * (startMoto({ runLambdas: true })) against moto's SageMaker.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as s3b from 'aws-cdk-lib/aws-s3';
import { CloudFormationClient, DescribeStackEventsCommand } from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateModelPackageGroupCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { registerModel, setApproval } from '../../lambda/core/registry';
import { clearBundleCache } from '../../lib/bundling';
import { RegistryModel } from '../../lib/model-source';
import { TEST_ENV } from '../support/cdk';
import { irisCopy } from '../support/iris-variants';
import { motoClientConfig, motoS3Client, startMoto, type MotoServer } from '../support/moto';
import { deployToMoto, outputsOf, templateForMoto } from '../support/deploy';

const BUCKET = 'deployed-models';
const GROUP = 'iris-deployed';

let moto: MotoServer;
let s3: S3Client;
let sm: SageMakerClient;
let cfn: CloudFormationClient;
const dirs: string[] = [];

const temp = (prefix: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};

beforeAll(async () => {
  moto = await startMoto({ runLambdas: true });
  const config = motoClientConfig(moto.endpoint);
  s3 = motoS3Client(moto.endpoint);
  sm = new SageMakerClient(config);
  cfn = new CloudFormationClient(config);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  sm?.destroy();
  cfn?.destroy();
  await moto?.stop();
  clearBundleCache();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function register(version: string): Promise<void> {
  const dir = irisCopy((m) => (m.version = version));
  dirs.push(dir);
  await registerModel(sm, s3, { group: GROUP, modelDir: dir, bucket: BUCKET, createGroup: true });
}

/**
 * The stack's template, its Lambda asset uploaded where the template expects it (the bootstrap bucket, which
 * the test creates in moto), as `cdk deploy` would.
 */
async function synthesize(group: string, resolveToken: string): Promise<string> {
  const app = new cdk.App({ outdir: temp('mdk-deploy-registry-out-') });
  const stack = new cdk.Stack(app, 'Registry', {
    env: TEST_ENV,
    synthesizer: new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
  });
  const model = new RegistryModel(stack, 'Iris', {
    group,
    bucket: s3b.Bucket.fromBucketName(stack, 'Models', BUCKET),
    modelName: 'iris',
    resolveToken,
  });
  new cdk.CfnOutput(stack, 'S3Uri', { value: model.s3Uri });
  new cdk.CfnOutput(stack, 'Version', { value: model.version });
  new cdk.CfnOutput(stack, 'PackageVersion', { value: model.packageVersion });
  new cdk.CfnOutput(stack, 'Sha256', { value: model.sha256 });
  return templateForMoto(stack, s3);
}

test('the stack resolves the latest Approved package at create, and again when resolveToken changes', async () => {
  await register('1.0.0'); // 1, approved below
  await register('1.1.0'); // 2, rejected
  await register('1.2.0'); // 3, pending
  await setApproval(sm, GROUP, 1, 'Approved');
  await setApproval(sm, GROUP, 2, 'Rejected');

  const created = await deployToMoto(cfn, 'registry-ok', await synthesize(GROUP, 'release-1'));
  expect(created.StackStatus).toBe('CREATE_COMPLETE');
  expect(outputsOf(created)).toMatchObject({
    S3Uri: `s3://${BUCKET}/iris/1.0.0/`,
    Version: '1.0.0',
    PackageVersion: '1',
    Sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
  });

  // a newer approval alone changes nothing; the next release's token resolves it
  await setApproval(sm, GROUP, 3, 'Approved');
  const updated = await deployToMoto(cfn, 'registry-ok', await synthesize(GROUP, 'release-2'), true);
  expect(updated.StackStatus).toBe('UPDATE_COMPLETE');
  expect(outputsOf(updated)).toMatchObject({ S3Uri: `s3://${BUCKET}/iris/1.2.0/`, PackageVersion: '3' });
}, 180_000);

test('a group with nothing approved fails the create, and the stack says why', async () => {
  await sm.send(
    new CreateModelPackageGroupCommand({
      ModelPackageGroupName: 'nothing-approved',
    }),
  );
  const stack = await deployToMoto(cfn, 'registry-none', await synthesize('nothing-approved', 'release-1'));
  expect(stack.StackStatus).toMatch(/ROLLBACK_COMPLETE|CREATE_FAILED/);
  const events =
    (await cfn.send(new DescribeStackEventsCommand({ StackName: 'registry-none' }))).StackEvents ?? [];
  const failed = events.find(
    (e) => e.ResourceType === 'Custom::RegistryModel' && e.ResourceStatus === 'CREATE_FAILED',
  );
  expect(failed?.ResourceStatusReason).toContain(
    'model package group "nothing-approved" has no Approved model package (it has no packages, or does not exist)',
  );
}, 180_000);
