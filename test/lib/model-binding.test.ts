import { bindModel, ModelDelivery } from '../../lib/model-binding';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket } from '../../lib/model-bucket';
import { IRIS_DIR, template, testStack } from '../support/cdk';

describe('bindModel', () => {
  test('a folder is published to a new model bucket; BUNDLED keeps the folder', () => {
    const stack = testStack();
    const s3 = bindModel(stack, 'X', { modelDir: IRIS_DIR });
    expect(s3.modelBucket).toBeDefined();
    expect(s3.artifact?.version).toBe('1.1.0');
    expect(s3.bundledModelDir).toBeUndefined();
    template(stack).resourceCountIs('Custom::ModelVersion', 1);

    const other = testStack();
    const bundled = bindModel(other, 'X', { modelDir: IRIS_DIR, delivery: ModelDelivery.BUNDLED });
    expect(bundled).toMatchObject({ bundledModelDir: IRIS_DIR });
    expect(bundled.artifact).toBeUndefined();
    expect(bundled.modelBucket).toBeUndefined();
    expect(other.node.children).toHaveLength(0);
  });

  test('a version another construct published is reused: no bucket, no second upload', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
    const bound = bindModel(stack, 'X', { model: artifact });
    expect(bound.artifact).toBe(artifact);
    expect(bound.modelBucket).toBeUndefined();
    template(stack).resourceCountIs('Custom::ModelVersion', 1);
  });

  test('props that disagree are refused with what to change', () => {
    const stack = testStack();
    expect(() => bindModel(stack, 'Batch B', {})).toThrow(
      /Batch B: give exactly one of modelDir, modelSource or model, got none/,
    );
    const models = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
    expect(() => bindModel(stack, 'B', { model: artifact, delivery: ModelDelivery.BUNDLED })).toThrow(
      /model is a version in S3; delivery BUNDLED needs modelDir/,
    );
    expect(() => bindModel(stack, 'B', { model: artifact, versionLockFile: 'x.json' })).toThrow(
      /model is already published/,
    );
    expect(() =>
      bindModel(stack, 'B', { modelDir: IRIS_DIR, delivery: ModelDelivery.BUNDLED, bucketProps: {} }),
    ).toThrow(/apply to S3 delivery, but delivery is BUNDLED/);
  });
});
