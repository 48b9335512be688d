import * as cdk from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket, ModelBucketEncryption } from '../../lib/model-bucket';
import { approvalEventPattern, ModelSource, RegistryModel } from '../../lib/model-source';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';
import { IRIS_DIR, onlyResource, template, testApp, testStack } from '../support/cdk';

const matching = (re: RegExp): unknown => expect.stringMatching(re);

/** A role that reads the model, as a serving function's would. */
function reader(stack: cdk.Stack, id = 'Reader'): iam.Role {
  return new iam.Role(stack, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
}

/** The statements of every AWS::IAM::Policy attached to the role with this logical id prefix. */
function statementsOf(t: ReturnType<typeof template>, rolePrefix: RegExp): Record<string, unknown>[] {
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p) =>
      ((p.Properties as { Roles: { Ref: string }[] }).Roles ?? []).some((r) => rolePrefix.test(r.Ref)),
    )
    .flatMap(
      (p) =>
        (p.Properties as { PolicyDocument: { Statement: Record<string, unknown>[] } }).PolicyDocument
          .Statement,
    );
}

describe('ModelSource', () => {
  test('fromFolder binds a ModelArtifact of the folder in the given bucket', () => {
    const stack = testStack();
    const source = ModelSource.fromFolder(IRIS_DIR);
    expect(source.modelDir).toBe(IRIS_DIR);
    const bucket = s3.Bucket.fromBucketName(stack, 'B', 'team-models');
    const version = source.bind(stack, 'Model', { bucket });
    expect(version).toBeInstanceOf(ModelArtifact);
    expect(version).toMatchObject({ modelName: 'iris', version: '1.1.0', bucket });
    template(stack).resourceCountIs('Custom::ModelVersion', 1);
  });

  test('fromRegistry binds a RegistryModel and has no folder at synth', () => {
    const stack = testStack();
    const source = ModelSource.fromRegistry('iris-models', { modelName: 'iris', resolveToken: 'run-1' });
    expect(source.modelDir).toBeUndefined();
    const bucket = s3.Bucket.fromBucketName(stack, 'B', 'team-models');
    const version = source.bind(stack, 'Model', { bucket });
    expect(version).toBeInstanceOf(RegistryModel);
    expect(version.modelName).toBe('iris');
    expect(onlyResource(template(stack), 'Custom::RegistryModel').props).toMatchObject({
      GroupName: 'iris-models',
      BucketName: 'team-models',
      ModelName: 'iris',
      ResolveToken: 'run-1',
    });
  });

  test('fromRegistry checks the group name at once', () => {
    expect(() => ModelSource.fromRegistry('iris_models')).toThrow(
      'ModelSource.fromRegistry: group "iris_models" is not a model package group name',
    );
  });
});

describe('RegistryModel', () => {
  test('a Custom::RegistryModel resolves the group; every field is one of its attributes', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const model = new RegistryModel(stack, 'Iris', { group: 'iris-models', bucket: models.bucket });
    const { logicalId, props } = onlyResource(template(stack), 'Custom::RegistryModel');
    expect(props).toEqual({
      ServiceToken: { 'Fn::GetAtt': [matching(/^ModelDeployKitRegistryResolverFunction/), 'Arn'] },
      GroupName: 'iris-models',
      BucketName: { Ref: matching(/^ModelsBucket/) },
    });
    const att = (name: string) => ({ 'Fn::GetAtt': [logicalId, name] });
    expect(stack.resolve(model.modelName)).toEqual(att('ModelName'));
    expect(stack.resolve(model.version)).toEqual(att('Version'));
    expect(stack.resolve(model.s3Uri)).toEqual(att('S3Uri'));
    expect(stack.resolve(model.sha256)).toEqual(att('Sha256'));
    expect(stack.resolve(model.packageArn)).toEqual(att('PackageArn'));
    expect(stack.resolve(model.packageVersion)).toEqual(att('PackageVersion'));
    expect(model.bucket).toBe(models.bucket);
    template(stack).hasResource('Custom::RegistryModel', { DeletionPolicy: 'Delete' });
  });

  test('a new resolveToken changes the resource properties, so CloudFormation resolves again', () => {
    const props = (token?: string) => {
      const stack = testStack();
      const bucket = s3.Bucket.fromBucketName(stack, 'B', 'team-models');
      new RegistryModel(stack, 'Iris', { group: 'iris-models', bucket, resolveToken: token });
      return onlyResource(template(stack), 'Custom::RegistryModel').props;
    };
    expect(props()).not.toHaveProperty('ResolveToken');
    expect(props('exec-1')).toMatchObject({ ResolveToken: 'exec-1' });
    expect(props('exec-1')).toEqual(props('exec-1'));
    expect(props('exec-2')).not.toEqual(props('exec-1'));
  });

  test("one resolver per stack; it may list and describe the groups' packages and nothing else", () => {
    const stack = testStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'B', 'team-models');
    new RegistryModel(stack, 'Iris', { group: 'Iris-Models', bucket });
    new RegistryModel(stack, 'Fraud', { group: 'fraud', bucket });
    const t = template(stack);
    t.resourceCountIs('Custom::RegistryModel', 2);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 120,
    });
    const arn = (resource: string) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:sagemaker:us-east-1:123456789012:${resource}`]],
    });
    const sagemaker = statementsOf(t, /^ModelDeployKitRegistryResolverRole/).filter((s) =>
      JSON.stringify(s.Action).includes('sagemaker:'),
    );
    expect(sagemaker).toEqual([
      {
        Effect: 'Allow',
        Action: ['sagemaker:ListModelPackages', 'sagemaker:DescribeModelPackage'],
        Resource: [
          arn('model-package-group/Iris-Models'),
          arn('model-package/iris-models/*'),
          arn('model-package/Iris-Models/*'),
        ],
      },
      {
        Effect: 'Allow',
        Action: ['sagemaker:ListModelPackages', 'sagemaker:DescribeModelPackage'],
        Resource: [arn('model-package-group/fraud'), arn('model-package/fraud/*')],
      },
    ]);
    const all = JSON.stringify(statementsOf(t, /^ModelDeployKitRegistryResolverRole/));
    expect(all).not.toContain('s3:');
    expect(all).not.toMatch(/"sagemaker:\w*\*"/);
    // the resolver runs only once its policy is in place
    const resource = Object.values(t.findResources('Custom::RegistryModel'))[0] as { DependsOn?: string[] };
    expect(resource.DependsOn).toEqual(
      expect.arrayContaining([matching(/^ModelDeployKitRegistryResolverRoleDefaultPolicy/)]),
    );
  });

  test("grantRead: GetObject on <name>/* when the name is known, else the bucket's objects; kms:Decrypt", () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models', { encryption: ModelBucketEncryption.KMS });
    const named = new RegistryModel(stack, 'Iris', {
      group: 'iris',
      bucket: models.bucket,
      modelName: 'iris',
    });
    const any = new RegistryModel(stack, 'Any', { group: 'any', bucket: models.bucket });
    named.grantRead(reader(stack, 'NamedReader'));
    any.grantRead(reader(stack, 'AnyReader'));
    const t = template(stack);
    const objects = (suffix: string) => ({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [matching(/^ModelsBucket/), 'Arn'] }, suffix]],
    });
    const named3 = statementsOf(t, /^NamedReader/);
    expect(named3).toEqual(
      expect.arrayContaining([
        { Effect: 'Allow', Action: 's3:GetObject', Resource: objects('/iris/*') },
        expect.objectContaining({ Action: 'kms:Decrypt' }),
      ]),
    );
    expect(JSON.stringify(named3)).not.toContain('s3:List');
    expect(statementsOf(t, /^AnyReader/)).toEqual(
      expect.arrayContaining([
        { Effect: 'Allow', Action: 's3:GetObject', Resource: objects('/*') },
        expect.objectContaining({ Action: 'kms:Decrypt' }),
      ]),
    );
    expect(t.toJSON()).toBeDefined();
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'kms:Decrypt' })]) },
    });
  });

  test('bad props fail early, naming the value', () => {
    const stack = testStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'B', 'team-models');
    expect(() => new RegistryModel(stack, 'A', { group: '-iris', bucket })).toThrow(
      'RegistryModel Test/A: group "-iris" is not a model package group name',
    );
    expect(() => new RegistryModel(stack, 'B2', { group: cdk.Aws.STACK_NAME, bucket })).toThrow(
      'RegistryModel Test/B2: group must be a literal name, not a token',
    );
    expect(() => new RegistryModel(stack, 'C', { group: 'iris', bucket, modelName: 'iris/1' })).toThrow(
      'RegistryModel Test/C: modelName "iris/1" is not a model name',
    );
    expect(() => new RegistryModel(stack, 'D', { group: 'iris', bucket, resolveToken: '' })).toThrow(
      'RegistryModel Test/D: resolveToken must not be empty',
    );
  });
});

test('approvalEventPattern: SageMaker package state changes of the group to Approved', () => {
  expect(approvalEventPattern('iris-models')).toEqual({
    source: ['aws.sagemaker'],
    detailType: ['SageMaker Model Package State Change'],
    detail: { ModelPackageGroupName: ['iris-models'], ModelApprovalStatus: ['Approved'] },
  });
  expect(() => approvalEventPattern('no spaces')).toThrow(/is not a model package group name/);
});

describe('checks', () => {
  /** A KMS model bucket, two registry models (one named, one not) and a reader of each. */
  function checkedApp(nag: boolean): cdk.App {
    const app = testApp();
    if (nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const stack = testStack(app, 'Registry');
    const models = new ModelBucket(stack, 'Models');
    new RegistryModel(stack, 'Iris', { group: 'Iris', bucket: models.bucket, modelName: 'iris' }).grantRead(
      reader(stack, 'IrisReader'),
    );
    new RegistryModel(stack, 'Any', { group: 'any', bucket: models.bucket, resolveToken: 'run-1' }).grantRead(
      reader(stack, 'AnyReader'),
    );
    return app;
  }

  test('cdk-nag AwsSolutions finds nothing unacknowledged, and aws-cdk-lib annotates no warnings', () => {
    expect(annotations(checkedApp(true).synth())).toEqual([]);
  });

  test('cfn-lint reports no errors', () => {
    const files = templateFiles(checkedApp(false).synth());
    expect(files).toHaveLength(1);
    expect(cfnLintErrors(files)).toEqual({ errors: [], errorBit: 0, spawnError: undefined });
  });
});
