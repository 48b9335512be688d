import type * as cdk from 'aws-cdk-lib';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket } from '../../lib/model-bucket';
import { sha256Hex } from '../fixtures/models';
import { copyModel, IRIS_DIR, onlyResource, template, testApp, testStack } from '../support/cdk';

const iris = JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as { sha256: string };
/** expect.stringMatching, typed for use inside object literals. */
const matching = (re: RegExp): unknown => expect.stringMatching(re);
const dirs: string[] = [];

/** An artifact of `modelDir` in an imported bucket: most tests only care about the model folder. */
function artifactIn(
  stack: cdk.Stack,
  modelDir: string,
  versionLockFile?: string,
  id = 'Iris',
): ModelArtifact {
  return new ModelArtifact(stack, id, {
    bucket: s3.Bucket.fromBucketName(stack, 'B', 'team-models'),
    modelDir,
    versionLockFile,
  });
}
const temp = (dir: string): string => {
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('ModelArtifact', () => {
  test('publishes the folder to <name>/<version>/ through Custom::ModelVersion, with both hashes', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
    expect(artifact.modelName).toBe('iris');
    expect(artifact.version).toBe('1.1.0');
    expect(artifact.keyPrefix).toBe('iris/1.1.0/');
    expect(artifact.sha256).toBe(iris.sha256);
    expect(artifact.manifest.name).toBe('iris');
    expect(stack.resolve(artifact.s3Uri)).toEqual({
      'Fn::Join': ['', ['s3://', { Ref: matching(/^ModelsBucket/) }, '/iris/1.1.0/']],
    });
    const t = template(stack);
    const { props } = onlyResource(t, 'Custom::ModelVersion');
    expect(props).toMatchObject({
      DestinationPrefix: 'iris/1.1.0/',
      ModelSha256: iris.sha256,
      ModelSourceKey: matching(/^[0-9a-f]{64}\.onnx$/),
      ManifestSourceKey: matching(/^[0-9a-f]{64}\.json$/),
      ManifestSha256: matching(/^[0-9a-f]{64}$/),
      DestinationBucket: { Ref: matching(/^ModelsBucket/) },
    });
    t.hasResource('Custom::ModelVersion', { DeletionPolicy: 'Retain' });
    // one publisher function per stack, whatever the number of artifacts
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.hasResourceProperties('AWS::Lambda::Function', { Runtime: 'nodejs22.x', Architectures: ['arm64'] });
  });

  test('the publisher may read its two assets and write only the two target objects', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
    const policy = JSON.stringify(template(stack).findResources('AWS::IAM::Policy'));
    expect(policy).toContain('/iris/1.1.0/model.onnx');
    expect(policy).toContain('/iris/1.1.0/model.json');
    expect(policy).toContain('s3:PutObject');
    expect(policy).toContain('kms:GenerateDataKey');
    expect(policy).not.toMatch(/"s3:\w*\*"/);
    expect(policy).not.toContain('/*"');
  });

  test('two artifacts share one publisher; grantRead covers that version only', () => {
    const stack = testStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'B', 'team-models');
    const v1 = new ModelArtifact(stack, 'V1', { bucket, modelDir: IRIS_DIR });
    new ModelArtifact(stack, 'V2', {
      bucket,
      modelDir: temp(copyModel({ manifest: (m) => (m.version = '2.0.0') })),
    });
    const role = new iam.Role(stack, 'R', { assumedBy: new iam.AccountRootPrincipal() });
    v1.grantRead(role);
    const t = template(stack);
    t.resourceCountIs('Custom::ModelVersion', 2);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    const reader = JSON.stringify(
      t.findResources('AWS::IAM::Policy', {
        Properties: { Roles: [{ Ref: stack.getLogicalId(role.node.defaultChild as iam.CfnRole) }] },
      }),
    );
    expect(reader).toContain('team-models/iris/1.1.0/model.onnx');
    expect(reader).not.toContain('2.0.0');
  });

  test('the same version with other bytes fails the synth, even across stages', () => {
    const app = testApp();
    const a = testStack(app, 'A');
    const b = testStack(app, 'B');
    artifactIn(a, IRIS_DIR);
    const changed = temp(copyModel({ appendBytes: 8, manifest: (m) => delete m.sha256 }));
    expect(() => artifactIn(b, changed)).toThrow(
      /iris 1.1.0 has different bytes in .* and .* \(model.onnx was sha256 81c53a2a[0-9a-f]{56}, is now [0-9a-f]{64}; model.json was .*\)\. Versions are immutable: give one of them a new version/,
    );
  });

  test('a changed manifest under the same version fails the synth too', () => {
    const app = testApp();
    const a = testStack(app, 'A');
    const b = testStack(app, 'B');
    artifactIn(a, IRIS_DIR);
    const edited = temp(copyModel({ manifest: (m) => (m.description = 'same version, new words') }));
    expect(() => artifactIn(b, edited)).toThrow(
      /iris 1.1.0 has different bytes in .* \(model.json was sha256 [0-9a-f]{64}, is now [0-9a-f]{64}\)/,
    );
  });

  test('bytes that disagree with the manifest sha256 fail the synth', () => {
    const stack = testStack();
    const changed = temp(copyModel({ appendBytes: 8 }));
    expect(() => artifactIn(stack, changed)).toThrow(
      /hashes to sha256 [0-9a-f]{64}, but .*model.json says 81c53a2a.* for iris 1.1.0.*give the model a new version/,
    );
  });

  test('a version lock file records new versions and refuses changed bytes for recorded ones', () => {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-lock-')));
    const lock = path.join(dir, 'model-versions.json');
    artifactIn(testStack(), IRIS_DIR, lock);
    expect(JSON.parse(fs.readFileSync(lock, 'utf8'))).toEqual({
      iris: {
        '1.1.0': {
          'model.onnx': iris.sha256,
          'model.json': sha256Hex(fs.readFileSync(path.join(IRIS_DIR, 'model.json'))),
        },
      },
    });
    // the repository's own lock file records the example model's version the same way (beside older ones)
    const repoLock = JSON.parse(
      fs.readFileSync(path.join(IRIS_DIR, '..', '..', 'model-versions.json'), 'utf8'),
    ) as { iris: Record<string, unknown> };
    expect(repoLock.iris['1.1.0']).toEqual(
      (JSON.parse(fs.readFileSync(lock, 'utf8')) as { iris: Record<string, unknown> }).iris['1.1.0'],
    );

    // a later synth (a new app) with the same version but other bytes
    const later = testStack();
    const changed = temp(copyModel({ appendBytes: 8, manifest: (m) => delete m.sha256 }));
    expect(() => artifactIn(later, changed, lock)).toThrow(
      /iris 1.1.0 is recorded in .*model-versions.json with other bytes \(model.onnx was sha256 81c53a2a.*\)\. Versions are immutable: give the new bytes a new version/,
    );

    // a manifest edit alone is a change too
    const worded = testStack();
    expect(() =>
      artifactIn(worded, temp(copyModel({ manifest: (m) => (m.description = 'new words') })), lock),
    ).toThrow(/with other bytes \(model.json was sha256 [0-9a-f]{64}, is now [0-9a-f]{64}\)/);

    // a new version is added beside the old one
    const next = testStack();
    artifactIn(
      next,
      temp(copyModel({ appendBytes: 8, manifest: (m) => ((m.version = '1.2.0'), delete m.sha256) })),
      lock,
    );
    const recorded = JSON.parse(fs.readFileSync(lock, 'utf8')) as {
      iris: Record<string, Record<string, string>>;
    };
    expect(Object.keys(recorded.iris)).toEqual(['1.1.0', '1.2.0']);
    expect(recorded.iris['1.2.0']?.['model.onnx']).toMatch(/^[0-9a-f]{64}$/);
    expect(recorded.iris['1.2.0']?.['model.onnx']).not.toBe(iris.sha256);
  });

  test.each([
    ['a missing folder', () => '/nonexistent/model', /Model folder \/nonexistent\/model does not exist/],
    [
      'no manifest',
      () => {
        const d = temp(copyModel());
        fs.rmSync(path.join(d, 'model.json'));
        return d;
      },
      /has no model.json: a model folder holds model.onnx and model.json/,
    ],
    [
      'a bad version',
      () => temp(copyModel({ manifest: (m) => (m.version = '1.0/../2') })),
      /"version" must be 1-64 letters, digits.*got "1.0\/..\/2"/,
    ],
    [
      'a bad name',
      () => temp(copyModel({ manifest: (m) => (m.name = 'my model') })),
      /"name" must be .*got "my model"/,
    ],
    [
      'a manifest that is not JSON',
      () => {
        const d = temp(copyModel());
        fs.writeFileSync(path.join(d, 'model.json'), '{ nope');
        return d;
      },
      /model.json is not valid JSON/,
    ],
  ])('%s fails with a clear message', (_name, dir, message) => {
    const stack = testStack();
    expect(() => artifactIn(stack, dir())).toThrow(message);
  });
});
