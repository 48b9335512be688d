import * as cdk from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as ort from 'onnxruntime-node';
import { DataCapturer } from '../../lambda/core/capture';
import { CAPTURE_FORMAT } from '../../lambda/core/capture-record';
import { openModel } from '../../lambda/core/open';
import { CAPTURE_FILTER_PATTERN, DataCapture } from '../../lib/data-capture';
import { ModelBucketEncryption } from '../../lib/model-bucket';
import { IRIS_DIR, onlyResource, template, testApp, testStack } from '../support/cdk';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown; Effect: string };

/** The statements of the policies attached to one role, by the role's logical id prefix. */
function statementsOf(stack: cdk.Stack, rolePrefix: string): Statement[] {
  const policies = Object.values(template(stack).findResources('AWS::IAM::Policy')) as {
    Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } };
  }[];
  return policies
    .filter((p) => p.Properties.Roles.some((r) => r.Ref.startsWith(rolePrefix)))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

const actions = (statements: Statement[]): string[] =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

/** The key prefixes of resources `arn/<prefix>` in the statements, e.g. `captures/*`. */
function objectPatterns(stack: cdk.Stack, statements: Statement[]): string[] {
  const text = JSON.stringify(stack.resolve(statements.map((s) => s.Resource)));
  return [...text.matchAll(/"\/([^"]*)"/g)].map((m) => m[1] ?? '').sort();
}

describe('the subscription filter and the runtime agree', () => {
  test('the pattern selects the lines the runtime writes and no other log line', async () => {
    // The filter is asserted as text elsewhere; this ties it to the record the server really writes.
    const m = /^\{ \$\.(\w+) = (\d+) \}$/.exec(CAPTURE_FILTER_PATTERN);
    if (!m) throw new Error(`unexpected pattern ${CAPTURE_FILTER_PATTERN}`);
    const [, field, value] = m as unknown as [string, string, string];
    const { model } = await openModel({ location: IRIS_DIR });
    const lines: string[] = [];
    new DataCapturer({ percent: 100, redact: [], hash: [], maxRows: 10 }, (l) => lines.push(l)).capture({
      model,
      requestId: undefined,
      feeds: { input: new ort.Tensor('float32', Float32Array.from([6.4, 3.2, 4.5, 1.5]), [1, 4]) },
      results: {},
      rows: 1,
      latencyMs: 1,
    });
    await model.release();
    const record = JSON.parse(lines.join('').trim()) as Record<string, unknown>;
    expect(record[field]).toBe(Number(value));
    expect(CAPTURE_FORMAT).toBe(Number(value));
    // An EMF line and a Powertools log line have no such field.
    for (const other of [
      '{"_aws":{"Timestamp":1},"CapturedRows":1}',
      '{"level":"INFO","message":"model loaded"}',
    ]) {
      expect((JSON.parse(other) as Record<string, unknown>)[field]).toBeUndefined();
    }
  });
});

describe('DataCapture', () => {
  test('the stream: Lambda transform with a 0.25 MB buffer, dynamic partitioning by model, version and date, GZIP, SSE', () => {
    const stack = testStack();
    const capture = new DataCapture(stack, 'Capture');
    const t = template(stack);
    const { props } = onlyResource(t, 'AWS::KinesisFirehose::DeliveryStream');
    const transformArn = stack.resolve(capture.transform.functionArn) as unknown;
    const roleArn = stack.resolve(capture.deliveryRole.roleArn) as unknown;
    expect(props).toEqual({
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' },
      ExtendedS3DestinationConfiguration: {
        BucketARN: stack.resolve(capture.bucket.bucketArn) as unknown,
        RoleARN: roleArn,
        Prefix:
          'captures/model=!{partitionKeyFromLambda:model}/version=!{partitionKeyFromLambda:version}/date=!{timestamp:yyyy-MM-dd}/',
        ErrorOutputPrefix: 'capture-errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/',
        DynamicPartitioningConfiguration: { Enabled: true },
        CompressionFormat: 'GZIP',
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 64 },
        CloudWatchLoggingOptions: {
          Enabled: true,
          LogGroupName: stack.resolve(capture.deliveryLogGroup.logGroupName) as unknown,
          LogStreamName: { Ref: expect.stringMatching(/^CaptureDeliveryLogsS3Destination/) as unknown },
        },
        ProcessingConfiguration: {
          Enabled: true,
          Processors: [
            {
              Type: 'Lambda',
              Parameters: [
                { ParameterName: 'RoleArn', ParameterValue: roleArn },
                { ParameterName: 'LambdaArn', ParameterValue: transformArn },
                { ParameterName: 'BufferSizeInMBs', ParameterValue: '0.25' },
                { ParameterName: 'BufferIntervalInSeconds', ParameterValue: '60' },
                { ParameterName: 'NumberOfRetries', ParameterValue: '3' },
              ],
            },
          ],
        },
      },
    });
    // Created after its role's policy: Firehose checks its access when the stream is made.
    const stream = Object.values(t.findResources('AWS::KinesisFirehose::DeliveryStream'))[0] as {
      DependsOn: string[];
    };
    expect(stream.DependsOn.some((d) => d.startsWith('CaptureDeliveryRoleDefaultPolicy'))).toBe(true);
    // The transform: Node.js 22 on arm64, a one-minute timeout; Firehose's error log kept a year.
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 60,
      Handler: 'index.handler',
    });
    t.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 365 }, 2);
  });

  test('the bucket: KMS with rotation, versioned, SSL only, private, access logs; each prefix expires on its own', () => {
    const stack = testStack();
    const capture = new DataCapture(stack, 'Capture');
    const t = template(stack);
    expect(capture.encryptionKey).toBeDefined();
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const bucketId = stack.resolve(capture.bucket.bucketName) as { Ref: string };
    const bucket = (t.toJSON() as { Resources: Record<string, unknown> }).Resources[bucketId.Ref] as {
      Properties: Record<string, unknown>;
      DeletionPolicy: string;
    };
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: stack.resolve(capture.encryptionKey?.keyArn) as unknown,
            },
          },
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LoggingConfiguration: {
        DestinationBucketName: stack.resolve(capture.accessLogsBucket?.bucketName) as unknown,
        LogFilePrefix: 'capture-bucket/',
      },
    });
    expect((bucket.Properties.LifecycleConfiguration as { Rules: unknown[] }).Rules).toEqual([
      {
        Status: 'Enabled',
        NoncurrentVersionExpiration: { NoncurrentDays: 1 },
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
      },
      { Status: 'Enabled', Prefix: 'captures/', ExpirationInDays: 30 },
      { Status: 'Enabled', Prefix: 'capture-errors/', ExpirationInDays: 30 },
      { Status: 'Enabled', Prefix: 'drift-reports/', ExpirationInDays: 365 },
    ]);
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: bucketId,
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  test('retention, reportRetention, buffering and the bucket settings are honoured', () => {
    const stack = testStack();
    const key = new kms.Key(stack, 'TeamKey', { enableKeyRotation: true });
    new DataCapture(stack, 'Capture', {
      retention: cdk.Duration.days(7),
      reportRetention: cdk.Duration.days(90),
      bufferingInterval: cdk.Duration.seconds(60),
      logRetention: logs.RetentionDays.ONE_MONTH,
      bucketProps: {
        encryptionKey: key,
        removalPolicy: cdk.RemovalPolicy.DESTROY,
        autoDeleteObjects: true,
        noncurrentVersionExpiration: cdk.Duration.days(3),
      },
    });
    const t = template(stack);
    t.resourceCountIs('AWS::KMS::Key', 1);
    t.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 3 } }),
          { Status: 'Enabled', Prefix: 'captures/', ExpirationInDays: 7 },
          { Status: 'Enabled', Prefix: 'capture-errors/', ExpirationInDays: 7 },
          { Status: 'Enabled', Prefix: 'drift-reports/', ExpirationInDays: 90 },
        ],
      },
    });
    t.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
    t.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BufferingHints: { IntervalInSeconds: 60, SizeInMBs: 64 },
      }),
    });
    t.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 30 }, 2);
  });

  test('an S3-managed bucket has no key, and Firehose gets no KMS permission', () => {
    const stack = testStack();
    const capture = new DataCapture(stack, 'Capture', {
      bucketProps: { encryption: ModelBucketEncryption.S3_MANAGED },
    });
    expect(capture.encryptionKey).toBeUndefined();
    template(stack).resourceCountIs('AWS::KMS::Key', 0);
    expect(actions(statementsOf(stack, 'CaptureDeliveryRole')).filter((a) => a.startsWith('kms:'))).toEqual(
      [],
    );
  });

  test('an existing bucket is delivered into as it is: no bucket, key or expiry of ours, its key used by Firehose', () => {
    const stack = testStack();
    const key = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:us-east-1:123456789012:key/abcd');
    const bucket = s3.Bucket.fromBucketAttributes(stack, 'Theirs', {
      bucketName: 'their-captures',
      encryptionKey: key,
    });
    const capture = new DataCapture(stack, 'Capture', { existingBucket: bucket });
    expect(capture.bucket).toBe(bucket);
    expect(capture.encryptionKey).toBe(key);
    const t = template(stack);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    t.resourceCountIs('AWS::KMS::Key', 0);
    t.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BucketARN: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::their-captures']] },
      }),
    });
    const statements = statementsOf(stack, 'CaptureDeliveryRole');
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: 'arn:aws:kms:us-east-1:123456789012:key/abcd',
    });
  });

  test('each log group gets one subscription with the capture pattern; the subscriptions share one role', () => {
    const stack = testStack();
    const api = new logs.LogGroup(stack, 'Api');
    const container = new logs.LogGroup(stack, 'Container');
    const capture = new DataCapture(stack, 'Capture', { logGroups: [api] });
    const again = capture.addLogGroup(api);
    const second = capture.addLogGroup(container);
    expect(again).not.toBe(second);
    expect(capture.addLogGroup(container)).toBe(second);
    const t = template(stack);
    t.resourceCountIs('AWS::Logs::SubscriptionFilter', 2);
    expect(CAPTURE_FILTER_PATTERN).toBe('{ $.mdk_capture = 1 }');
    for (const group of [api, container]) {
      t.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
        LogGroupName: stack.resolve(group.logGroupName) as unknown,
        FilterPattern: '{ $.mdk_capture = 1 }',
        DestinationArn: stack.resolve(capture.deliveryStream.deliveryStreamArn) as unknown,
        RoleArn: stack.resolve(capture.subscriptionRole.roleArn) as unknown,
      });
    }
    // CloudWatch Logs may use the role for this account's log groups only, to put into this stream only.
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: 'logs.amazonaws.com' },
            Condition: {
              StringLike: {
                'aws:SourceArn': {
                  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:us-east-1:123456789012:*']],
                },
              },
            },
          },
        ],
      },
    });
    expect(statementsOf(stack, 'CaptureSubscriptionRole')).toEqual([
      {
        Effect: 'Allow',
        Action: ['firehose:PutRecord', 'firehose:PutRecordBatch'],
        Resource: stack.resolve(capture.deliveryStream.deliveryStreamArn) as unknown,
      },
    ]);
  });

  test("a subscription's logical id follows its log group, not the order the groups were added in", () => {
    const ids = (names: string[]) => {
      const stack = testStack();
      const capture = new DataCapture(stack, 'Capture');
      return names.map((n) => {
        const filter = capture.addLogGroup(new logs.LogGroup(stack, n));
        return stack.resolve((filter.node.defaultChild as cdk.CfnResource).logicalId) as string;
      });
    };
    const [, container] = ids(['Api', 'Container']);
    expect(ids(['Container'])).toEqual([container]);
  });

  test('Firehose may write captures/ and capture-errors/ only, invoke the transform and write its error log', () => {
    const stack = testStack();
    const capture = new DataCapture(stack, 'Capture');
    const statements = statementsOf(stack, 'CaptureDeliveryRole');
    expect(actions(statements)).toEqual(
      [
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:PutObject',
        's3:GetBucketLocation',
        's3:ListBucket',
        's3:ListBucketMultipartUploads',
        'kms:GenerateDataKey',
        'kms:Decrypt',
        'lambda:InvokeFunction',
        'lambda:GetFunctionConfiguration',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ].sort(),
    );
    expect(objectPatterns(stack, statements)).toEqual(['capture-errors/*', 'captures/*']);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['lambda:InvokeFunction', 'lambda:GetFunctionConfiguration'],
      Resource: stack.resolve(capture.transform.functionArn) as unknown,
    });
    // Only the roles this construct means to have: no S3 destination role of the L2's own.
    const roles = Object.keys(template(stack).findResources('AWS::IAM::Role')).sort();
    expect(roles.map((id) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual([
      'CaptureDeliveryRole',
      'CaptureSubscriptionRole',
      'CaptureTransformRole',
    ]);
    // Trust: Firehose, from this account.
    template(stack).hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: 'firehose.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
          },
        ],
      },
    });
    // The transform itself may write its own log group and nothing else.
    expect(actions(statementsOf(stack, 'CaptureTransformRole'))).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
    ]);
  });

  test('grants: read captures, write and read reports, each under its own prefix only', () => {
    const stack = testStack();
    const capture = new DataCapture(stack, 'Capture');
    const role = (id: string) =>
      new iam.Role(stack, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    capture.grantReadCaptures(role('CaptureReader'));
    capture.grantWriteReports(role('ReportWriter'));
    capture.grantReadReports(role('ReportReader'));
    const keyArn = stack.resolve(capture.encryptionKey?.keyArn) as unknown;
    const bucketArn = stack.resolve(capture.bucket.bucketArn) as unknown;

    const reader = statementsOf(stack, 'CaptureReader');
    expect(actions(reader)).toEqual(['kms:Decrypt', 's3:GetObject', 's3:ListBucket']);
    expect(objectPatterns(stack, reader)).toEqual(['captures/*']);
    expect(reader).toContainEqual({
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: bucketArn,
      Condition: { StringLike: { 's3:prefix': ['captures/*'] } },
    });
    expect(reader).toContainEqual({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn });

    const writer = statementsOf(stack, 'ReportWriter');
    expect(actions(writer)).toEqual(['kms:GenerateDataKey', 's3:PutObject']);
    expect(objectPatterns(stack, writer)).toEqual(['drift-reports/*']);

    const reportReader = statementsOf(stack, 'ReportReader');
    expect(actions(reportReader)).toEqual(['kms:Decrypt', 's3:GetObject', 's3:ListBucket']);
    expect(objectPatterns(stack, reportReader)).toEqual(['drift-reports/*']);
  });

  test('metrics: Firehose delivery, freshness and transform, and the transform’s own counts, by stream name', () => {
    const stack = testStack();
    const capture = new DataCapture(stack, 'Capture');
    const name = stack.resolve(capture.deliveryStream.deliveryStreamName) as unknown;
    const cases: [ReturnType<DataCapture['metricIncomingRecords']>, string, string][] = [
      [capture.metricIncomingRecords(), 'IncomingRecords', 'Sum'],
      [capture.metricIncomingBytes(), 'IncomingBytes', 'Sum'],
      [capture.metricDeliverySuccess(), 'DeliveryToS3.Success', 'Minimum'],
      [capture.metricDataFreshness(), 'DeliveryToS3.DataFreshness', 'Maximum'],
      [capture.metricDeliveredRecords(), 'DeliveryToS3.Records', 'Sum'],
      [capture.metricTransformSuccess(), 'ExecuteProcessing.Success', 'Minimum'],
      [capture.metricTransformedRecords(), 'SucceedProcessing.Records', 'Sum'],
      [capture.metricTransformDuration(), 'ExecuteProcessing.Duration', 'p99'],
    ];
    for (const [metric, metricName, statistic] of cases) {
      expect(metric.namespace).toBe('AWS/Firehose');
      expect(metric.metricName).toBe(metricName);
      expect(metric.statistic).toBe(statistic);
      expect(stack.resolve(metric.dimensions)).toEqual({ DeliveryStreamName: name });
    }
    // The transform's own counts (EMF), by the stream name it reads from each event.
    for (const [metric, metricName] of [
      [capture.metricTransformFailedRecords(), 'CaptureRecordsFailed'],
      [capture.metricCapturedRows(), 'CaptureRowsDelivered'],
    ] as const) {
      expect(metric.namespace).toBe('ModelDeployKit');
      expect(metric.metricName).toBe(metricName);
      expect(metric.statistic).toBe('Sum');
      expect(stack.resolve(metric.dimensions)).toEqual({ service: 'model-deploy-kit', stream: name });
    }
    const failures = capture.metricDeliveryFailures({ period: cdk.Duration.minutes(15) });
    expect(failures.expression).toBe('1 - success');
    expect(failures.period.toMinutes()).toBe(15);
    expect((failures.usingMetrics.success as unknown as { metricName: string }).metricName).toBe(
      'DeliveryToS3.Success',
    );
  });

  test('props are checked before anything is made, naming the bad value', () => {
    const cases: [ConstructorParameters<typeof DataCapture>[2], RegExp][] = [
      [
        { retention: cdk.Duration.hours(12) },
        /retention must be a whole number of days, at least 1, got 12 hours/,
      ],
      [
        { reportRetention: cdk.Duration.hours(36) },
        /reportRetention must be a whole number of days.*1 day 12 hours/,
      ],
      [
        { bufferingInterval: cdk.Duration.seconds(30) },
        /bufferingInterval must be whole seconds from 60 to 900.*30 seconds/,
      ],
      [{ bufferingInterval: cdk.Duration.minutes(20) }, /bufferingInterval .*20 minutes/],
      [
        { existingBucket: s3.Bucket.fromBucketName(testStack(), 'B', 'theirs'), bucketProps: {} },
        /existingBucket or bucketProps, not both/,
      ],
      [
        { bucketProps: { autoDeleteObjects: true } },
        /autoDeleteObjects needs removalPolicy DESTROY, got retain/,
      ],
      [
        {
          bucketProps: {
            encryption: ModelBucketEncryption.S3_MANAGED,
            encryptionKey: kms.Key.fromKeyArn(testStack(), 'K', 'arn:aws:kms:us-east-1:123456789012:key/k'),
          },
        },
        /encryptionKey was given but encryption is S3_MANAGED/,
      ],
      [
        { bucketProps: { noncurrentVersionExpiration: cdk.Duration.hours(1) } },
        /noncurrentVersionExpiration.*1 hour/,
      ],
    ];
    for (const [props, message] of cases) {
      expect(() => new DataCapture(testStack(), 'Capture', props)).toThrow(message);
      expect(() => new DataCapture(testStack(), 'Capture', props)).toThrow(/^DataCapture Test\/Capture: /);
    }
  });
});

describe('checks', () => {
  function checkedApp(nag: boolean): cdk.App {
    const app = testApp();
    if (nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const defaults = testStack(app, 'Defaults');
    const capture = new DataCapture(defaults, 'Capture', {
      logGroups: [new logs.LogGroup(defaults, 'Api', { retention: logs.RetentionDays.ONE_MONTH })],
    });
    const job = new iam.Role(defaults, 'Job', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });
    capture.grantReadCaptures(job);
    capture.grantWriteReports(job);
    capture.grantReadReports(job);
    const options = testStack(app, 'Options');
    new DataCapture(options, 'Capture', {
      retention: cdk.Duration.days(7),
      bufferingInterval: cdk.Duration.minutes(1),
      bucketProps: {
        encryption: ModelBucketEncryption.S3_MANAGED,
        removalPolicy: cdk.RemovalPolicy.DESTROY,
        autoDeleteObjects: true,
      },
    }).addLogGroup(new logs.LogGroup(options, 'Container', { retention: logs.RetentionDays.ONE_WEEK }));
    return app;
  }

  test('cdk-nag AwsSolutions: nothing unacknowledged', () => {
    expect(annotations(checkedApp(true).synth())).toEqual([]);
  });

  test('cfn-lint reports no errors', () => {
    const files = templateFiles(checkedApp(false).synth());
    expect(files).toHaveLength(2);
    expect(cfnLintErrors(files)).toEqual({ errors: [], errorBit: 0, spawnError: undefined });
  });
});
