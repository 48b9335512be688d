import * as cdk from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ModelBucket, ModelBucketEncryption } from '../../lib/model-bucket';
import { template, testStack } from '../support/cdk';

/** The model bucket is the one with versioning; the access log bucket has none. */
function modelBucketProps(stack: cdk.Stack): Record<string, unknown> {
  const buckets = Object.values(template(stack).findResources('AWS::S3::Bucket')) as {
    Properties: Record<string, unknown>;
  }[];
  const versioned = buckets.filter((b) => b.Properties.VersioningConfiguration !== undefined);
  expect(versioned).toHaveLength(1);
  return (versioned[0] as { Properties: Record<string, unknown> }).Properties;
}

describe('ModelBucket', () => {
  test('defaults: KMS with rotation, versioned, public access blocked, access logs, noncurrent lifecycle, retained', () => {
    const stack = testStack();
    new ModelBucket(stack, 'Models');
    const t = template(stack);
    t.resourceCountIs('AWS::S3::Bucket', 2);
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const props = modelBucketProps(stack);
    expect(props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(props.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(JSON.stringify(props.BucketEncryption)).toContain('aws:kms');
    expect(props.LoggingConfiguration).toMatchObject({ LogFilePrefix: 'model-bucket/' });
    expect(props.LifecycleConfiguration).toEqual({
      Rules: [
        expect.objectContaining({
          Status: 'Enabled',
          NoncurrentVersionExpiration: { NoncurrentDays: 90 },
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
        }),
      ],
    });
    t.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: { VersioningConfiguration: Match.anyValue() },
    });
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    // enforceSSL on both buckets
    const policies = t.findResources('AWS::S3::BucketPolicy');
    const sslDenies = Object.values(policies).filter((p) =>
      JSON.stringify(p).includes('"aws:SecureTransport":"false"'),
    );
    expect(sslDenies).toHaveLength(2);
    // log delivery by bucket policy: ACLs stay off
    expect(JSON.stringify(policies)).toContain('logging.s3.amazonaws.com');
    expect(JSON.stringify(t.findResources('AWS::S3::Bucket'))).not.toContain('LogDeliveryWrite');
  });

  test('S3-managed encryption makes no key', () => {
    const stack = testStack();
    new ModelBucket(stack, 'Models', { encryption: ModelBucketEncryption.S3_MANAGED });
    const t = template(stack);
    t.resourceCountIs('AWS::KMS::Key', 0);
    expect(JSON.stringify(modelBucketProps(stack).BucketEncryption)).toContain('AES256');
  });

  test('a given key is used instead of a new one', () => {
    const stack = testStack();
    const key = kms.Key.fromKeyArn(
      stack,
      'Key',
      'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    );
    const bucket = new ModelBucket(stack, 'Models', { encryptionKey: key });
    template(stack).resourceCountIs('AWS::KMS::Key', 0);
    expect(bucket.encryptionKey).toBe(key);
    expect(JSON.stringify(modelBucketProps(stack).BucketEncryption)).toContain(
      'key/1234abcd-12ab-34cd-56ef-1234567890ab',
    );
  });

  test('DESTROY with autoDeleteObjects empties and deletes the bucket and its key', () => {
    const stack = testStack();
    new ModelBucket(stack, 'Models', { removalPolicy: cdk.RemovalPolicy.DESTROY, autoDeleteObjects: true });
    const t = template(stack);
    t.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Delete',
      Properties: { VersioningConfiguration: Match.anyValue() },
    });
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' });
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
  });

  test('a given access log bucket and lifecycle are used', () => {
    const stack = testStack();
    const logs = s3.Bucket.fromBucketName(stack, 'Logs', 'central-logs');
    new ModelBucket(stack, 'Models', {
      serverAccessLogsBucket: logs,
      noncurrentVersionExpiration: cdk.Duration.days(30),
    });
    template(stack).resourceCountIs('AWS::S3::Bucket', 1);
    const props = modelBucketProps(stack);
    expect(props.LoggingConfiguration).toMatchObject({ DestinationBucketName: 'central-logs' });
    expect(JSON.stringify(props.LifecycleConfiguration)).toContain('"NoncurrentDays":30');
  });

  test('access logs are kept for accessLogsRetention', () => {
    const stack = testStack();
    new ModelBucket(stack, 'Models', { accessLogsRetention: cdk.Duration.days(30) });
    const buckets = Object.values(template(stack).findResources('AWS::S3::Bucket')) as {
      Properties: Record<string, unknown>;
    }[];
    const logs = buckets.filter((b) => b.Properties.VersioningConfiguration === undefined);
    expect(logs).toHaveLength(1);
    expect(logs[0]?.Properties.LifecycleConfiguration).toEqual({
      Rules: [expect.objectContaining({ ExpirationInDays: 30, Status: 'Enabled' })],
    });
  });

  test('an existing bucket is wrapped, not created', () => {
    const stack = testStack();
    const existing = s3.Bucket.fromBucketName(stack, 'Existing', 'team-models');
    const models = new ModelBucket(stack, 'Models', { existingBucket: existing });
    expect(models.bucket).toBe(existing);
    const reader = new iam.Role(stack, 'Reader', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });
    models.grantReadModel(reader, { modelName: 'iris', version: '1.0.0' });
    const t = template(stack);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).toContain(
      'team-models/iris/1.0.0/model.onnx',
    );
  });

  test('grantReadModel grants GetObject on exactly that version, and decrypt on the key', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const role = new iam.Role(stack, 'Reader', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });
    models.grantReadModel(role, { modelName: 'iris', version: '1.0.0' });
    const policy = JSON.stringify(template(stack).findResources('AWS::IAM::Policy'));
    expect(policy).toContain('/iris/1.0.0/model.onnx');
    expect(policy).toContain('/iris/1.0.0/model.json');
    expect(policy).toContain('kms:Decrypt');
    expect(policy).not.toContain('/iris/1.0.0/*');
    expect(policy).not.toContain('s3:PutObject');
    expect(ModelBucket.keyPrefix({ modelName: 'iris', version: '1.0.0' })).toBe('iris/1.0.0/');
  });

  test.each([
    [{ autoDeleteObjects: true }, /autoDeleteObjects needs removalPolicy DESTROY, got retain/],
    [
      { encryption: ModelBucketEncryption.S3_MANAGED, encryptionKey: 'key' },
      /encryptionKey was given but encryption is S3_MANAGED/,
    ],
    [
      { noncurrentVersionExpiration: cdk.Duration.hours(2) },
      /noncurrentVersionExpiration must be a whole number of days, at least 1, got 2 hours/,
    ],
  ])('bad props throw: %p', (props, message) => {
    const stack = testStack();
    const resolved = { ...props } as Record<string, unknown>;
    if (resolved.encryptionKey === 'key') resolved.encryptionKey = new kms.Key(stack, 'K');
    expect(() => new ModelBucket(stack, 'Models', resolved)).toThrow(message);
  });
});
