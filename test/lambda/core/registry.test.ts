/** The registry logic against moto's SageMaker and S3. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DescribeModelPackageCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import {
  checkLocation,
  findPackage,
  listModels,
  METADATA,
  registerModel,
  RegistryError,
  resolveLatestApproved,
  setApproval,
  type RegisterOptions,
} from '../../../lambda/core/registry';
import { irisCopy as copyIris } from '../../support/iris-variants';
import { motoClientConfig, motoS3Client, startMoto, type MotoServer } from '../../support/moto';

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const irisManifest = JSON.parse(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8')) as Record<
  string,
  unknown
>;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const BUCKET = 'models';

let moto: MotoServer;
let s3: S3Client;
let sm: SageMakerClient;
const dirs: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  sm = new SageMakerClient(motoClientConfig(moto.endpoint));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  s3?.destroy();
  sm?.destroy();
  await moto?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A copy of the iris folder with its manifest edited (e.g. another version), or its model bytes changed. */
function irisCopy(edit?: (m: Record<string, unknown>) => void, extraBytes?: number): string {
  const dir = copyIris(edit, extraBytes);
  dirs.push(dir);
  return dir;
}

const version = (v: string) => irisCopy((m) => (m.version = v));

function register(group: string, modelDir: string, extra: Partial<RegisterOptions> = {}) {
  return registerModel(sm, s3, { group, modelDir, bucket: BUCKET, createGroup: true, ...extra });
}

async function text(key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await res.Body?.transformToString('utf8')) ?? '';
}

describe('registerModel', () => {
  test('uploads the folder to <name>/<version>/ and creates a pending package with the metadata and metrics', async () => {
    const logs: string[] = [];
    const result = await register('iris-register', IRIS, { log: (l) => logs.push(l) });
    expect(result.created).toBe(true);
    expect(result.createdGroup).toBe(true);
    expect(result.uploads).toEqual([
      { key: 'iris/1.1.0/model.onnx', action: 'uploaded' },
      { key: 'iris/1.1.0/metrics.json', action: 'uploaded' },
      { key: 'iris/1.1.0/model.json', action: 'uploaded' },
    ]);
    const modelSha = sha256(fs.readFileSync(path.join(IRIS, 'model.onnx')));
    const manifestSha = sha256(fs.readFileSync(path.join(IRIS, 'model.json')));
    expect(result.registered).toMatchObject({
      group: 'iris-register',
      packageVersion: 1,
      status: 'PendingManualApproval',
      description: irisManifest.description,
      model: {
        modelName: 'iris',
        version: '1.1.0',
        modelSha256: modelSha,
        manifestSha256: manifestSha,
        s3Uri: 's3://models/iris/1.1.0/',
      },
    });
    expect(logs.join('\n')).toContain('creating model package group iris-register');

    // the objects carry their sha256, and the manifest is byte for byte the local one
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'iris/1.1.0/model.onnx' }));
    expect(head.Metadata).toEqual({ sha256: modelSha });
    expect(await text('iris/1.1.0/model.json')).toBe(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8'));
    expect(JSON.parse(await text('iris/1.1.0/metrics.json'))).toEqual(irisManifest.metrics);

    const described = await sm.send(
      new DescribeModelPackageCommand({ ModelPackageName: result.registered.packageArn }),
    );
    expect(described.ModelMetrics?.ModelQuality?.Statistics).toEqual({
      ContentType: 'application/json',
      S3Uri: 's3://models/iris/1.1.0/metrics.json',
    });
    expect(described.CustomerMetadataProperties).toEqual({
      [METADATA.modelName]: 'iris',
      [METADATA.version]: '1.1.0',
      [METADATA.modelSha256]: modelSha,
      [METADATA.manifestSha256]: manifestSha,
      [METADATA.s3Uri]: 's3://models/iris/1.1.0/',
      'metric.holdout_accuracy': '0.9667',
      'metric.train_accuracy': '0.9833',
      'metric.holdout_log_loss': '0.0702',
    });
    // no image given: the package catalogues the version only
    expect(described.InferenceSpecification).toBeUndefined();
  });

  test('running it again uploads nothing and creates no second package', async () => {
    const again = await register('iris-register', IRIS);
    expect(again.created).toBe(false);
    expect(again.createdGroup).toBe(false);
    expect(again.registered.packageVersion).toBe(1);
    expect(again.uploads.map((u) => u.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(await listModels(sm, 'iris-register')).toHaveLength(1);
  });

  test('--approve registers it Approved; an image gives it an InferenceSpecification SageMaker can deploy', async () => {
    const image = '123456789012.dkr.ecr.us-east-1.amazonaws.com/mdk:latest';
    const result = await register('iris-register', version('1.2.0'), {
      status: 'Approved',
      image,
      description: 'retrained\non May data',
    });
    // SageMaker refuses control characters in a description
    expect(result.registered).toMatchObject({
      packageVersion: 2,
      status: 'Approved',
      description: 'retrained on May data',
    });
    const described = await sm.send(
      new DescribeModelPackageCommand({ ModelPackageName: result.registered.packageArn }),
    );
    expect(described.InferenceSpecification?.Containers).toEqual([
      {
        Image: image,
        ModelDataSource: {
          S3DataSource: { S3Uri: 's3://models/iris/1.2.0/', S3DataType: 'S3Prefix', CompressionType: 'None' },
        },
        Environment: { MODEL_SHA256: result.registered.model?.modelSha256, MODEL_NAME: 'iris' },
      },
    ]);
  });

  test('a version already in the bucket with other bytes is refused, and nothing is written', async () => {
    const changed = irisCopy((m) => (m.description = 'the same version, retrained'));
    // a fresh group: only the bucket knows this version
    const err = await register('iris-other', changed).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toMatch(
      /s3:\/\/models\/iris\/1\.1\.0\/model\.json already exists with sha256 [0-9a-f]{64}, but the local model\.json has sha256/,
    );
    expect((err as Error).message).toContain('Nothing was changed');
    expect(await text('iris/1.1.0/model.json')).toBe(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8'));
    // not even the group was created
    await expect(listModels(sm, 'iris-other')).rejects.toThrow(
      'model package group "iris-other" does not exist',
    );
  });

  test('a version the group has, registered again from another bucket, is refused before any upload', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'models-b' }));
    const err = await register('iris-register', version('1.2.0'), { bucket: 'models-b' }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(
      /^iris 1\.2\.0 is already registered in "iris-register" as package 2 \(model\.onnx sha256 [0-9a-f]{64}, model\.json sha256 [0-9a-f]{64}, at s3:\/\/models\/iris\/1\.2\.0\/\), but the local folder has .* for s3:\/\/models-b\/iris\/1\.2\.0\/\. Nothing was changed\./,
    );
    expect(await listModels(sm, 'iris-register')).toHaveLength(2);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'models-b' }));
    expect(listed.KeyCount).toBe(0);
  });

  test('bad input gets a clear error: unknown group, missing folder, no manifest, sha256 mismatch', async () => {
    await expect(register('no-such-group', IRIS, { createGroup: false })).rejects.toThrow(
      'model package group "no-such-group" does not exist in us-east-1; pass --create-group to create it',
    );
    await expect(register('iris-register', '/no/such/folder')).rejects.toThrow(
      'model folder /no/such/folder does not exist',
    );
    const noManifest = irisCopy();
    fs.rmSync(path.join(noManifest, 'model.json'));
    await expect(register('iris-register', noManifest)).rejects.toThrow(/has no model\.json/);
    await expect(register('iris-register', irisCopy(undefined, 3))).rejects.toThrow(
      /model\.onnx has sha256 [0-9a-f]{64}, but the manifest's sha256 is/,
    );
    await expect(register('Bad_Group', IRIS)).rejects.toThrow(
      /model package group name "Bad_Group" is not valid/,
    );
    await expect(
      register(
        'iris-register',
        irisCopy((m) => (m.version = '../up')),
      ),
    ).rejects.toThrow(/"version" must be/);
  });
});

describe('approval and resolving', () => {
  const group = 'iris-resolve';

  beforeAll(async () => {
    for (const v of ['2.0.0', '2.1.0', '2.2.0', '2.3.0']) await register(group, version(v));
  });

  test('nothing approved: a clear error that names the group and what it has', async () => {
    await expect(resolveLatestApproved(sm, group)).rejects.toThrow(
      `model package group "${group}" has no Approved model package (it has 4 PendingManualApproval)`,
    );
    await expect(resolveLatestApproved(sm, 'empty-group')).rejects.toThrow(
      'model package group "empty-group" has no Approved model package (it has no packages, or does not exist)',
    );
  });

  test('the newest Approved package wins; Rejected and pending ones are ignored, however new', async () => {
    const approved = await setApproval(sm, group, 1, 'Approved', 'holdout accuracy checked');
    expect(approved).toMatchObject({ status: 'Approved', approvalDescription: 'holdout accuracy checked' });
    // the metadata survives the update (moto drops what an UpdateModelPackage call does not send)
    expect(approved.model?.version).toBe('2.0.0');
    const rejected = await setApproval(sm, group, 3, 'Rejected');
    expect(rejected.status).toBe('Rejected');
    expect(rejected.model?.version).toBe('2.2.0');

    const latest = await resolveLatestApproved(sm, group);
    expect(latest).toMatchObject({ packageVersion: 1, status: 'Approved', model: { version: '2.0.0' } });

    await setApproval(sm, group, 4, 'Approved');
    expect(await resolveLatestApproved(sm, group)).toMatchObject({
      packageVersion: 4,
      model: { modelName: 'iris', version: '2.3.0', s3Uri: 's3://models/iris/2.3.0/' },
    });

    // rejecting the newest rolls back to the previous approval
    await setApproval(sm, group, 4, 'Rejected', 'p99 regression');
    expect((await resolveLatestApproved(sm, group)).packageVersion).toBe(1);
  });

  test('listModels: every package, newest first, with its status and model version', async () => {
    const list = await listModels(sm, group);
    expect(list.map((p) => [p.packageVersion, p.status, p.model?.version])).toEqual([
      [4, 'Rejected', '2.3.0'],
      [3, 'Rejected', '2.2.0'],
      [2, 'PendingManualApproval', '2.1.0'],
      [1, 'Approved', '2.0.0'],
    ]);
    expect(list[0]?.created).toBeInstanceOf(Date);
  });

  test('packages are found by number or ARN; unknown ones and other groups are clear errors', async () => {
    const two = await findPackage(sm, group, 2);
    expect((await findPackage(sm, group, two.packageArn)).packageVersion).toBe(2);
    await expect(findPackage(sm, group, 9)).rejects.toThrow(
      `model package group "${group}" has no version 9 (it has 1, 2, 3, 4)`,
    );
    await expect(setApproval(sm, 'no-such-group', 1, 'Approved')).rejects.toThrow(
      'model package group "no-such-group" does not exist in us-east-1',
    );
    const other = await findPackage(sm, 'iris-register', 1);
    await expect(findPackage(sm, group, other.packageArn)).rejects.toThrow(
      `belongs to group "iris-register", not "${group}"`,
    );
  });

  test('checkLocation: the package must point into the expected bucket, at <name>/<version>/', async () => {
    const latest = await resolveLatestApproved(sm, group);
    expect(checkLocation(latest, BUCKET)).toMatchObject({ s3Uri: 's3://models/iris/2.0.0/' });
    expect(() => checkLocation(latest, 'other-bucket')).toThrow(
      /points into bucket models, not the model bucket other-bucket/,
    );
    expect(() => checkLocation(latest, BUCKET, 'fraud')).toThrow(/is model iris, not fraud/);
    const moved = { ...latest, model: { ...latest.model!, s3Uri: 's3://models/elsewhere/' } };
    expect(() => checkLocation(moved, BUCKET)).toThrow(
      /points at s3:\/\/models\/elsewhere\/, not s3:\/\/models\/iris\/2\.0\.0\//,
    );
  });
});
