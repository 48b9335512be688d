import * as cdk from 'aws-cdk-lib';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket } from '../../lib/model-bucket';
import { ModelFunction } from '../../lib/model-function';
import { IRIS_DIR, template, testStack } from '../support/cdk';

describe('ModelFunction', () => {
  test('runs the named handler with the model from S3: environment, read grant, own role and log group', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
    const fn = new ModelFunction(stack, 'Worker', {
      handler: 'api',
      artifact,
      purpose: 'batch',
      timeout: cdk.Duration.minutes(15),
    });
    const t = template(stack);
    const worker = t.findResources('AWS::Lambda::Function', {
      Properties: { Description: 'model-deploy-kit: batch with iris 1.1.0 (ONNX)' },
    });
    const props = (Object.values(worker)[0] as { Properties: Record<string, unknown> }).Properties;
    expect(props).toMatchObject({
      Timeout: 900,
      Architectures: ['arm64'],
      Environment: { Variables: { MODEL_NAME: 'iris', MODEL_SHA256: artifact.sha256 } },
    });
    expect(fn.modelName).toBe('iris');
    expect(fn.modelVersion).toBe('1.1.0');
    expect(
      t.findResources('AWS::IAM::Role', { Properties: { Description: 'Runs the iris batch function' } }),
    ).not.toEqual({});
    // The model read is on the function's own role.
    const own = JSON.stringify(
      t.findResources('AWS::IAM::Policy', {
        Properties: { Roles: [{ Ref: stack.getLogicalId(fn.role.node.defaultChild as cdk.CfnElement) }] },
      }),
    );
    expect(own).toContain('/iris/1.1.0/model.onnx');
    expect(own).toContain(stack.getLogicalId(fn.logGroup.node.defaultChild as cdk.CfnElement));
  });

  test('errors name the concrete class and the bad value', () => {
    const stack = testStack();
    expect(() => new ModelFunction(stack, 'None', { handler: 'api' })).toThrow(
      /ModelFunction Test\/None: give exactly one of artifact .* got neither/,
    );
    expect(
      () =>
        new ModelFunction(stack, 'Slow', {
          handler: 'api',
          bundledModelDir: IRIS_DIR,
          timeout: cdk.Duration.minutes(16),
        }),
    ).toThrow(/ModelFunction Test\/Slow: timeout must be 1 s to 15 min, got 16 minutes/);
    expect(() => new ModelFunction(stack, 'Missing', { handler: 'nope', bundledModelDir: IRIS_DIR })).toThrow(
      /Cannot find the nope handler/,
    );
  });
});
