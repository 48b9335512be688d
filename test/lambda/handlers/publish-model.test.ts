/**
 * The Custom::ModelVersion handler end to end: S3 is moto, and the ResponseURL is a local HTTP server that
 * keeps what CloudFormation would receive.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import type { CustomResourceEvent } from '../../../lambda/core/custom-resource';
import {
  customResourceEvent,
  ResponseEndpoint,
  TEST_STACK_ID as STACK_ID,
} from '../../support/custom-resource';
import { loadHandlerInMoto, motoS3Client, startMoto, type MotoServer } from '../../support/moto';

type Handler = typeof import('../../../lambda/handlers/publish-model');

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const modelBytes = fs.readFileSync(path.join(IRIS, 'model.onnx'));
const manifestBytes = fs.readFileSync(path.join(IRIS, 'model.json'));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const MODEL_SHA = sha256(modelBytes);
const MANIFEST_SHA = sha256(manifestBytes);

let moto: MotoServer;
let s3: S3Client;
let responses: ResponseEndpoint;
let responseBase: string;
let publish: Handler;
const savedEnv = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: 'assets' }));
  await s3.send(new CreateBucketCommand({ Bucket: 'models' }));
  await s3.send(new PutObjectCommand({ Bucket: 'assets', Key: 'model-asset.onnx', Body: modelBytes }));
  await s3.send(new PutObjectCommand({ Bucket: 'assets', Key: 'manifest-asset.json', Body: manifestBytes }));
  responses = new ResponseEndpoint();
  responseBase = await responses.start();

  // As in a Lambda: the environment is there when the module loads (it makes its S3 client then) and stays
  // there, as the SDK reads region, endpoint and credentials on first use.
  publish = loadHandlerInMoto<Handler>(moto.endpoint, 'publish-model');
});

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  await responses?.stop();
  await moto?.stop();
});

function event(
  type: CustomResourceEvent['RequestType'],
  props: Record<string, string> = {},
  extra: Partial<CustomResourceEvent> = {},
): CustomResourceEvent {
  return customResourceEvent(type, {
    ResponseURL: `${responseBase}/cloudformation/response?stack=ModelServing-dev&signature=abc%2F123`,
    RequestId: `request-${type}`,
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:publish',
      SourceBucket: 'assets',
      ModelSourceKey: 'model-asset.onnx',
      ManifestSourceKey: 'manifest-asset.json',
      DestinationBucket: 'models',
      DestinationPrefix: 'iris/1.0.0/',
      ModelSha256: MODEL_SHA,
      ManifestSha256: MANIFEST_SHA,
      ...props,
    },
    ...extra,
  });
}

/** A Lambda context with plenty of time left. */
const context = {
  awsRequestId: 'lambda-request',
  functionName: 'publish',
  getRemainingTimeInMillis: () => 300_000,
} as unknown as Context;

it('Create publishes the version and PUTs SUCCESS with the folder URI to the ResponseURL', async () => {
  await publish.handler(event('Create'), context);

  expect(responses.received).toHaveLength(1);
  const [put] = responses.received;
  expect(put).toMatchObject({
    method: 'PUT',
    url: '/cloudformation/response?stack=ModelServing-dev&signature=abc%2F123',
    contentType: '',
  });
  expect(responses.take()).toEqual([
    {
      Status: 'SUCCESS',
      Reason: 'Create s3://models/iris/1.0.0/',
      PhysicalResourceId: 's3://models/iris/1.0.0/',
      StackId: STACK_ID,
      RequestId: 'request-Create',
      LogicalResourceId: 'IrisVersion',
      Data: { ModelUri: 's3://models/iris/1.0.0/', Sha256: MODEL_SHA },
    },
  ]);
  const model = await s3.send(new HeadObjectCommand({ Bucket: 'models', Key: 'iris/1.0.0/model.onnx' }));
  expect(model.Metadata).toEqual({ sha256: MODEL_SHA });
  const manifest = await s3.send(new HeadObjectCommand({ Bucket: 'models', Key: 'iris/1.0.0/model.json' }));
  expect(manifest.Metadata).toEqual({ sha256: MANIFEST_SHA });
});

it('the same Create again succeeds without rewriting anything', async () => {
  const before = await s3.send(new HeadObjectCommand({ Bucket: 'models', Key: 'iris/1.0.0/model.onnx' }));
  await publish.handler(event('Create'), context);
  expect(responses.take()).toEqual([
    expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: 's3://models/iris/1.0.0/' }),
  ]);
  const after = await s3.send(new HeadObjectCommand({ Bucket: 'models', Key: 'iris/1.0.0/model.onnx' }));
  expect(after.LastModified).toEqual(before.LastModified);
});

it('an Update with new bytes for a published version answers FAILED, and keeps the physical id', async () => {
  const other = 'a'.repeat(64);
  await publish.handler(
    event('Update', { ModelSha256: other }, { PhysicalResourceId: 's3://models/iris/1.0.0/' }),
    context,
  );
  const [answer] = responses.take();
  expect(answer).toMatchObject({
    Status: 'FAILED',
    PhysicalResourceId: 's3://models/iris/1.0.0/',
    RequestId: 'request-Update',
  });
  expect(answer?.Reason).toContain(
    `s3://models/iris/1.0.0/model.onnx already exists with sha256 ${MODEL_SHA}`,
  );
  expect(answer?.Reason).toContain(`has sha256 ${other}`);
  expect(answer?.Reason).toContain('immutable: bump "version" in model.json');
  expect(answer).not.toHaveProperty('Data');
});

it('bad properties still get an answer: FAILED, with what is wrong', async () => {
  await publish.handler(event('Create', { DestinationPrefix: 'iris' }));
  expect(responses.take()).toEqual([
    expect.objectContaining({
      Status: 'FAILED',
      Reason:
        'bad Custom::ModelVersion properties: DestinationPrefix must look like "name/version/" (end with "/", not start with one), got "iris"',
      PhysicalResourceId: 'IrisVersion-create-failed',
    }),
  ]);
});

it('a missing source asset answers FAILED with the S3 error', async () => {
  await publish.handler(
    event('Create', { DestinationPrefix: 'gone/1.0.0/', ModelSourceKey: 'missing.onnx' }),
    context,
  );
  const [answer] = responses.take();
  expect(answer?.Status).toBe('FAILED');
  expect(answer?.Reason).toMatch(
    /^could not copy s3:\/\/assets\/missing.onnx to s3:\/\/models\/gone\/1.0.0\/model.onnx: NoSuchKey/,
  );
});

it('Delete answers SUCCESS and leaves the published version in place', async () => {
  await publish.handler(event('Delete', {}, { PhysicalResourceId: 's3://models/iris/1.0.0/' }), context);
  expect(responses.take()).toEqual([
    {
      Status: 'SUCCESS',
      Reason: 'Delete s3://models/iris/1.0.0/',
      PhysicalResourceId: 's3://models/iris/1.0.0/',
      StackId: STACK_ID,
      RequestId: 'request-Delete',
      LogicalResourceId: 'IrisVersion',
    },
  ]);
  const model = await s3.send(new HeadObjectCommand({ Bucket: 'models', Key: 'iris/1.0.0/model.onnx' }));
  expect(model.Metadata).toEqual({ sha256: MODEL_SHA });
});

it('a ResponseURL that fails once is tried again', async () => {
  responses.statuses = [503];
  await publish.handler(event('Delete', {}, { PhysicalResourceId: 's3://models/iris/1.0.0/' }), context);
  const answers = responses.take();
  expect(answers).toHaveLength(2);
  expect(answers[0]).toEqual(answers[1]);
  expect(answers[1]?.Status).toBe('SUCCESS');
});
