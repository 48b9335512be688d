/**
 * The Custom::RegistryModel handler end to end: SageMaker and S3 are moto, packages are registered with the
 * registry logic the CLI uses, and the ResponseURL is a local HTTP server that keeps what CloudFormation would
 * receive.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { Context } from 'aws-lambda';
import type { CustomResourceEvent, CustomResourceResponse } from '../../../lambda/core/custom-resource';
import { registerModel, setApproval } from '../../../lambda/core/registry';
import { customResourceEvent, ResponseEndpoint } from '../../support/custom-resource';
import { irisCopy } from '../../support/iris-variants';
import {
  loadHandlerInMoto,
  motoClientConfig,
  motoS3Client,
  startMoto,
  type MotoServer,
} from '../../support/moto';

type Handler = typeof import('../../../lambda/handlers/resolve-model');

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const GROUP = 'iris-deploy';
const BUCKET = 'models';

let moto: MotoServer;
let s3: S3Client;
let sm: SageMakerClient;
let resolveModel: Handler;
let responseUrl: string;
const responses = new ResponseEndpoint();
const savedEnv = { ...process.env };
const dirs: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  sm = new SageMakerClient(motoClientConfig(moto.endpoint));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new CreateBucketCommand({ Bucket: 'elsewhere' }));
  responseUrl = `${await responses.start()}/response?sig=abc`;

  // As in a Lambda: the environment is there when the module loads and makes its client.
  resolveModel = loadHandlerInMoto<Handler>(moto.endpoint, 'resolve-model');
});

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  sm?.destroy();
  await responses.stop();
  await moto?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Registers iris under another version, into `bucket`. */
async function register(version: string, bucket = BUCKET, group = GROUP): Promise<void> {
  const dir = irisCopy((m) => (m.version = version));
  dirs.push(dir);
  await registerModel(sm, s3, { group, modelDir: dir, bucket, createGroup: true });
}

const context = {
  awsRequestId: 'lambda-request',
  getRemainingTimeInMillis: () => 120_000,
} as unknown as Context;

/** Runs one event and returns what CloudFormation received. */
async function send(
  type: CustomResourceEvent['RequestType'],
  props: Record<string, string> = {},
  physicalId?: string,
): Promise<CustomResourceResponse> {
  await resolveModel.handler(
    customResourceEvent(type, {
      ResponseURL: responseUrl,
      RequestId: 'request-0',
      LogicalResourceId: 'IrisRegistryModel',
      ResourceType: 'Custom::RegistryModel',
      ...(physicalId ? { PhysicalResourceId: physicalId } : {}),
      ResourceProperties: {
        ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:resolve',
        GroupName: GROUP,
        BucketName: BUCKET,
        ...props,
      },
    }),
    context,
  );
  const received = responses.take();
  expect(received).toHaveLength(1);
  return received[0]!;
}

test('a group with nothing approved fails the Create with a reason that names the group', async () => {
  await register('1.0.0');
  const response = await send('Create');
  expect(response).toMatchObject({
    Status: 'FAILED',
    PhysicalResourceId: 'IrisRegistryModel-create-failed',
    Reason: `model package group "${GROUP}" has no Approved model package (it has 1 PendingManualApproval); approve one with 'mdk registry approve --group ${GROUP} --version N'`,
  });
  expect(response.Data).toBeUndefined();
});

test('resolves the newest Approved package, ignoring newer Rejected and pending ones', async () => {
  await register('1.1.0'); // 2
  await register('1.2.0'); // 3
  await register('1.3.0'); // 4
  await setApproval(sm, GROUP, 2, 'Approved');
  await setApproval(sm, GROUP, 3, 'Rejected');
  // 1 and 4 stay PendingManualApproval

  const created = await send('Create');
  expect(created.Status).toBe('SUCCESS');
  expect(created.Data).toEqual({
    ModelName: 'iris',
    Version: '1.1.0',
    S3Uri: 's3://models/iris/1.1.0/',
    Sha256: (JSON.parse(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8')) as { sha256: string }).sha256,
    PackageArn: created.PhysicalResourceId,
    PackageVersion: '2',
  });
  expect(created.PhysicalResourceId).toMatch(
    /^arn:aws:sagemaker:us-east-1:123456789012:model-package\/iris-deploy\/2$/,
  );

  // approving the newest: the next Update (a new ResolveToken) resolves it, under a new physical id
  await setApproval(sm, GROUP, 4, 'Approved');
  const updated = await send('Update', { ResolveToken: 'execution-2' }, created.PhysicalResourceId);
  expect(updated.Status).toBe('SUCCESS');
  expect(updated.Data).toMatchObject({
    Version: '1.3.0',
    PackageVersion: '4',
    S3Uri: 's3://models/iris/1.3.0/',
  });
  expect(updated.PhysicalResourceId).not.toBe(created.PhysicalResourceId);

  // the old physical id's Delete (after the replacement) does nothing
  const deleted = await send('Delete', {}, created.PhysicalResourceId);
  expect(deleted).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: created.PhysicalResourceId });
  const stillThere = await send('Update', { ResolveToken: 'execution-3' }, updated.PhysicalResourceId);
  expect(stillThere.Data).toMatchObject({ PackageVersion: '4' });
});

test('a package that points outside the model bucket, or at another model, fails with the reason', async () => {
  await register('5.0.0', 'elsewhere', 'iris-elsewhere');
  await setApproval(sm, 'iris-elsewhere', 1, 'Approved');
  const outside = await send('Create', { GroupName: 'iris-elsewhere' });
  expect(outside.Status).toBe('FAILED');
  expect(outside.Reason).toMatch(
    /^package arn:aws:sagemaker:\S+\/iris-elsewhere\/1 \(iris 5\.0\.0\) points into bucket elsewhere, not the model bucket models$/,
  );

  const otherModel = await send('Update', { ModelName: 'fraud' }, 'arn:previous');
  expect(otherModel).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'arn:previous' });
  expect(otherModel.Reason).toMatch(/is model iris, not fraud$/);
});

test('bad properties are FAILED, naming the property', async () => {
  const response = await send('Create', { GroupName: '' });
  expect(response.Status).toBe('FAILED');
  expect(response.Reason).toBe(
    'bad Custom::RegistryModel properties: GroupName must be a non-empty string, got ""',
  );
  const badName = await send('Create', { GroupName: 'not_valid' });
  expect(badName.Reason).toMatch(/model package group name "not_valid" is not valid/);
});
