/** Publishing a model version to S3 (moto), and the CloudFormation custom resource responses around it. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { CustomResourceEvent } from '../../../lambda/core/custom-resource';
import {
  modelVersionEvent,
  publishModelVersion,
  publishRequestFrom,
  PublishError,
  VersionConflictError,
  type PublishRequest,
} from '../../../lambda/core/publish';
import { customResourceEvent } from '../../support/custom-resource';
import { motoS3Client, startMoto, type MotoServer } from '../../support/moto';

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const modelBytes = fs.readFileSync(path.join(IRIS, 'model.onnx'));
const manifestBytes = fs.readFileSync(path.join(IRIS, 'model.json'));
const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');
const MODEL_SHA = sha256(modelBytes);
const MANIFEST_SHA = sha256(manifestBytes);

const ASSETS = 'cdk-assets';
const MODELS = 'models';

function properties(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    SourceBucket: ASSETS,
    ModelSourceKey: `${MODEL_SHA}.onnx`,
    ManifestSourceKey: `${MANIFEST_SHA}.json`,
    DestinationBucket: MODELS,
    DestinationPrefix: 'iris/1.0.0/',
    ModelSha256: MODEL_SHA,
    ManifestSha256: MANIFEST_SHA,
    ...overrides,
  };
}

function event(
  type: 'Create' | 'Update' | 'Delete',
  extra: Partial<CustomResourceEvent> = {},
): CustomResourceEvent {
  return customResourceEvent(type, { ResourceProperties: properties(), ...extra });
}

describe('publishRequestFrom', () => {
  it('reads the properties, with hashes in lower case', () => {
    expect(publishRequestFrom(properties({ ModelSha256: MODEL_SHA.toUpperCase() }))).toEqual({
      sourceBucket: ASSETS,
      modelSourceKey: `${MODEL_SHA}.onnx`,
      manifestSourceKey: `${MANIFEST_SHA}.json`,
      destinationBucket: MODELS,
      destinationPrefix: 'iris/1.0.0/',
      modelSha256: MODEL_SHA,
      manifestSha256: MANIFEST_SHA,
    } satisfies PublishRequest);
  });

  it('names every missing or malformed property in one error', () => {
    const props: Record<string, unknown> = properties({
      DestinationPrefix: 'iris/1.0.0',
      ModelSha256: 'abc',
    });
    delete props['SourceBucket'];
    props['ManifestSourceKey'] = 42;
    expect(() => publishRequestFrom(props)).toThrow(PublishError);
    expect(() => publishRequestFrom(props)).toThrow(
      'bad Custom::ModelVersion properties: SourceBucket must be a non-empty string, got nothing; ' +
        'ManifestSourceKey must be a non-empty string, got 42; ' +
        'DestinationPrefix must look like "name/version/" (end with "/", not start with one), got "iris/1.0.0"; ' +
        'ModelSha256 must be 64 hex digits, got "abc"',
    );
    expect(() => publishRequestFrom(undefined)).toThrow(/SourceBucket must be a non-empty string/);
    expect(() => publishRequestFrom(properties({ DestinationPrefix: '/iris/1.0.0/' }))).toThrow(
      /DestinationPrefix must look like/,
    );
  });
});

describe('publishing to S3 (moto)', () => {
  let moto: MotoServer;
  let s3: S3Client;

  beforeAll(async () => {
    moto = await startMoto();
    s3 = motoS3Client(moto.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: ASSETS }));
    await s3.send(new CreateBucketCommand({ Bucket: MODELS }));
    await s3.send(new PutObjectCommand({ Bucket: ASSETS, Key: `${MODEL_SHA}.onnx`, Body: modelBytes }));
    await s3.send(new PutObjectCommand({ Bucket: ASSETS, Key: `${MANIFEST_SHA}.json`, Body: manifestBytes }));
  });

  afterAll(async () => {
    s3?.destroy();
    await moto?.stop();
  });

  const head = (key: string) => s3.send(new HeadObjectCommand({ Bucket: MODELS, Key: key }));
  const bytes = async (key: string) =>
    Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: MODELS, Key: key }))).Body!.transformToByteArray(),
    );
  const keys = async (prefix: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: MODELS, Prefix: prefix }))).Contents ?? [])
      .map((o) => o.Key)
      .sort();

  it('copies both files with their sha256 and content type, and answers with the folder URI', async () => {
    const result = await publishModelVersion(s3, publishRequestFrom(properties()));
    expect(result).toEqual({
      modelUri: 's3://models/iris/1.0.0/',
      sha256: MODEL_SHA,
      objects: [
        { key: 'iris/1.0.0/model.onnx', sha256: MODEL_SHA, action: 'copied' },
        { key: 'iris/1.0.0/model.json', sha256: MANIFEST_SHA, action: 'copied' },
      ],
    });
    const model = await head('iris/1.0.0/model.onnx');
    expect(model.Metadata).toEqual({ sha256: MODEL_SHA });
    expect(model.ContentType).toBe('application/octet-stream');
    const manifest = await head('iris/1.0.0/model.json');
    expect(manifest.Metadata).toEqual({ sha256: MANIFEST_SHA });
    expect(manifest.ContentType).toBe('application/json');
    expect(await bytes('iris/1.0.0/model.onnx')).toEqual(modelBytes);
    expect(await bytes('iris/1.0.0/model.json')).toEqual(manifestBytes);
  });

  it('a second run with the same hashes changes nothing', async () => {
    const before = await head('iris/1.0.0/model.onnx');
    const result = await publishModelVersion(s3, publishRequestFrom(properties()));
    expect(result.objects.map((o) => o.action)).toEqual(['unchanged', 'unchanged']);
    const after = await head('iris/1.0.0/model.onnx');
    expect(after.ETag).toBe(before.ETag);
    expect(after.LastModified).toEqual(before.LastModified);
  });

  it('other bytes under a published version fail, name the object and both hashes, and write nothing', async () => {
    const otherModel = Buffer.concat([modelBytes, Buffer.from([0])]);
    const otherSha = sha256(otherModel);
    await s3.send(new PutObjectCommand({ Bucket: ASSETS, Key: `${otherSha}.onnx`, Body: otherModel }));
    const manifestBefore = await head('iris/1.0.0/model.json');

    const err = await publishModelVersion(
      s3,
      publishRequestFrom(properties({ ModelSourceKey: `${otherSha}.onnx`, ModelSha256: otherSha })),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect((err as Error).message).toBe(
      `s3://models/iris/1.0.0/model.onnx already exists with sha256 ${MODEL_SHA}, but this deployment's model.onnx ` +
        `has sha256 ${otherSha}. Published model versions are immutable: bump "version" in model.json to publish new bytes.`,
    );
    expect(await bytes('iris/1.0.0/model.onnx')).toEqual(modelBytes);
    expect((await head('iris/1.0.0/model.json')).ETag).toBe(manifestBefore.ETag);
  });

  it('an object with no sha256 metadata is a conflict too, found before anything is copied', async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: MODELS, Key: 'hand/1.0.0/model.json', Body: manifestBytes }),
    );
    const err = await publishModelVersion(
      s3,
      publishRequestFrom(properties({ DestinationPrefix: 'hand/1.0.0/' })),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect((err as Error).message).toContain(
      `s3://models/hand/1.0.0/model.json already exists with no sha256 metadata, but this deployment's model.json has sha256 ${MANIFEST_SHA}`,
    );
    expect(await keys('hand/')).toEqual(['hand/1.0.0/model.json']);
  });

  it('finishes a version whose earlier publish stopped after the model', async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket: MODELS,
        Key: 'half/1.0.0/model.onnx',
        Body: modelBytes,
        Metadata: { sha256: MODEL_SHA },
      }),
    );
    const result = await publishModelVersion(
      s3,
      publishRequestFrom(properties({ DestinationPrefix: 'half/1.0.0/' })),
    );
    expect(result.objects.map((o) => o.action)).toEqual(['unchanged', 'copied']);
    expect(await keys('half/')).toEqual(['half/1.0.0/model.json', 'half/1.0.0/model.onnx']);
  });

  it('a missing source asset is a clear failure, and the manifest is not published without its model', async () => {
    const err = await publishModelVersion(
      s3,
      publishRequestFrom(
        properties({ DestinationPrefix: 'lost/1.0.0/', ModelSourceKey: 'no-such-asset.onnx' }),
      ),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as Error).message).toMatch(
      /^could not copy s3:\/\/cdk-assets\/no-such-asset.onnx to s3:\/\/models\/lost\/1.0.0\/model.onnx: NoSuchKey: /,
    );
    expect(await keys('lost/')).toEqual([]);
  });

  it('an asset whose bytes do not have the expected sha256 is not published', async () => {
    const wrong = 'f'.repeat(64);
    const err = await publishModelVersion(
      s3,
      publishRequestFrom(properties({ DestinationPrefix: 'liar/1.0.0/', ModelSha256: wrong })),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as Error).message).toBe(
      `s3://cdk-assets/${MODEL_SHA}.onnx has sha256 ${MODEL_SHA}, not the expected ${wrong}: ` +
        'the asset does not match the hash the deployment was built with',
    );
    expect(await keys('liar/')).toEqual([]);
  });

  describe('when S3 gives no whole-object checksum for a copy, the copy is read back and hashed', () => {
    let plain: S3Client;
    beforeAll(() => {
      // moto always answers with the checksum: take it out of CopyObject's answer, as S3 might leave it out.
      plain = motoS3Client(moto.endpoint);
      plain.middlewareStack.add(
        (next, context) => async (args) => {
          const result = await next(args);
          if (context.commandName === 'CopyObjectCommand') {
            const output = result.output as { CopyObjectResult?: { ChecksumSHA256?: string } };
            delete output.CopyObjectResult?.ChecksumSHA256;
          }
          return result;
        },
        { step: 'initialize', name: 'dropCopyChecksum' },
      );
    });
    afterAll(() => plain?.destroy());

    it('publishes bytes that match', async () => {
      const result = await publishModelVersion(
        plain,
        publishRequestFrom(properties({ DestinationPrefix: 'read/1.0.0/' })),
      );
      expect(result.objects.map((o) => o.action)).toEqual(['copied', 'copied']);
      expect(await bytes('read/1.0.0/model.onnx')).toEqual(modelBytes);
    });

    it('refuses bytes that do not, and leaves nothing behind', async () => {
      const wrong = 'e'.repeat(64);
      await expect(
        publishModelVersion(
          plain,
          publishRequestFrom(properties({ DestinationPrefix: 'unread/1.0.0/', ModelSha256: wrong })),
        ),
      ).rejects.toThrow(
        `s3://cdk-assets/${MODEL_SHA}.onnx has sha256 ${MODEL_SHA}, not the expected ${wrong}`,
      );
      expect(await keys('unread/')).toEqual([]);
    });
  });

  it('a missing destination bucket is a clear failure', async () => {
    await expect(
      publishModelVersion(s3, publishRequestFrom(properties({ DestinationBucket: 'no-such-bucket' }))),
    ).rejects.toThrow(/s3:\/\/no-such-bucket\/iris\/1.0.0\/model.onnx: NoSuchBucket/);
  });

  describe('custom resource events', () => {
    it('Create and Update publish and answer with the folder URI and the model sha256', async () => {
      for (const type of ['Create', 'Update'] as const) {
        const outcome = await modelVersionEvent(
          s3,
          event(type, { ResourceProperties: properties({ DestinationPrefix: 'events/2.0.0/' }) }),
        );
        expect(outcome).toEqual({
          physicalResourceId: 's3://models/events/2.0.0/',
          data: { ModelUri: 's3://models/events/2.0.0/', Sha256: MODEL_SHA },
        });
      }
      expect(await keys('events/')).toEqual(['events/2.0.0/model.json', 'events/2.0.0/model.onnx']);
    });

    it('Delete keeps the published version and answers with the same physical id', async () => {
      const before = await keys('iris/');
      const outcome = await modelVersionEvent(
        s3,
        event('Delete', { PhysicalResourceId: 's3://models/iris/1.0.0/' }),
      );
      expect(outcome).toEqual({ physicalResourceId: 's3://models/iris/1.0.0/' });
      expect(await keys('iris/')).toEqual(before);
      expect(before).toEqual(['iris/1.0.0/model.json', 'iris/1.0.0/model.onnx']);
    });

    it('Delete does not even read its properties, so a resource whose Create failed deletes cleanly', async () => {
      const outcome = await modelVersionEvent(
        s3,
        event('Delete', { PhysicalResourceId: 'IrisVersion-create-failed', ResourceProperties: {} }),
      );
      expect(outcome).toEqual({ physicalResourceId: 'IrisVersion-create-failed' });
    });
  });
});
