import * as cdk from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BatchInference, type BatchInferenceProps } from '../../lib/batch-inference';
import { ModelBucketEncryption } from '../../lib/model-bucket';
import { ModelDelivery } from '../../lib/model-binding';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';
import { IRIS_DIR, onlyResource, template, testApp, testStack } from '../support/cdk';

type Json = Record<string, unknown>;
type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown; Effect: string };

function batch(
  props: Partial<BatchInferenceProps> = {},
  stack = testStack(),
): { b: BatchInference; t: Template } {
  const b = new BatchInference(stack, 'Batch', { modelDir: IRIS_DIR, ...props });
  return { b, t: template(stack) };
}

/** A reference as a readable marker, so a definition with tokens parses as JSON. */
function marker(v: unknown): string {
  const o = v as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  if (o.Ref) return `{{${o.Ref}}}`;
  if (o['Fn::GetAtt']) return `{{${o['Fn::GetAtt'].join('.')}}}`;
  throw new Error(`unexpected token ${JSON.stringify(v)}`);
}

function definition(t: Template): { States: Record<string, Json>; TimeoutSeconds?: number } {
  const sm = onlyResource(t, 'AWS::StepFunctions::StateMachine');
  const join = (sm.props.DefinitionString as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  const text = join[1].map((p) => (typeof p === 'string' ? p : marker(p))).join(join[0]);
  return JSON.parse(text) as { States: Record<string, Json> };
}

/** The statements of the default policy of the role that `logicalIdPrefix` names. */
function statements(t: Template, logicalIdPrefix: string): Statement[] {
  const policies = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([id]) =>
    id.startsWith(logicalIdPrefix),
  );
  return policies.flatMap(
    ([, p]) =>
      (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument
        .Statement,
  );
}

function logicalId(t: Template, type: string, prefix: string): string {
  const ids = Object.keys(t.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} ${prefix}*, found ${ids.join(', ')}`);
  return ids[0] as string;
}

const objects = (bucketId: string, pattern: string) => ({
  'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${pattern}`]],
});

describe('the Distributed Map', () => {
  const { t } = batch({ toleratedFailurePercentage: 5, maxConcurrency: 20, itemsPerBatch: 500 });
  const def = definition(t);
  const items = logicalId(t, 'AWS::Lambda::Function', 'BatchItemsFunction');
  const summary = logicalId(t, 'AWS::Lambda::Function', 'BatchSummaryFunction');

  test('a Choice on the format picks the CSV or the JSONL reader', () => {
    expect(def.States.Format).toEqual({
      Type: 'Choice',
      Comment: 'CSV or JSON Lines',
      Choices: [{ Variable: '$.format', StringEquals: 'csv', Next: 'PredictCsv' }],
      Default: 'PredictJsonl',
    });
  });

  test.each([
    ['PredictCsv', 'csv', { InputType: 'CSV', CSVHeaderLocation: 'FIRST_ROW' }, 'BatchCsv'],
    ['PredictJsonl', 'jsonl', { InputType: 'JSONL' }, 'BatchJsonl'],
  ])(
    '%s: reader, batcher, selector, tolerance, concurrency, writer, batch task and catch',
    (state, format, readerConfig, task) => {
      const processor = def.States[state]?.ItemProcessor as { States: Record<string, Json> };
      const taskState = processor.States[task] as Json;
      expect(taskState).toMatchObject({ Type: 'Task', Resource: `{{${items}.Arn}}`, End: true });
      // A burst of batches may meet the account's concurrency limit: retried, not failed.
      expect(taskState.Retry).toContainEqual({
        ErrorEquals: ['Lambda.TooManyRequestsException'],
        IntervalSeconds: 2,
        MaxAttempts: 6,
        BackoffRate: 2,
      });
      expect(def.States[state]).toEqual({
        Type: 'Map',
        Comment: `Predicts a ${format.toUpperCase()} input in batches`,
        Label: state,
        ItemReader: {
          Resource: 'arn:{{AWS::Partition}}:states:::s3:getObject',
          ReaderConfig: readerConfig,
          Parameters: { 'Bucket.$': '$.bucket', 'Key.$': '$.key' },
        },
        ItemSelector: { 'index.$': '$$.Map.Item.Index', 'value.$': '$$.Map.Item.Value' },
        ItemBatcher: {
          MaxItemsPerBatch: 500,
          MaxInputBytesPerBatch: 240 * 1024,
          BatchInput: { 'bucket.$': '$.bucket', 'job.$': '$.job', format },
        },
        MaxConcurrency: 20,
        ToleratedFailurePercentage: 5,
        ResultWriter: {
          Resource: 'arn:{{AWS::Partition}}:states:::s3:putObject',
          Parameters: { 'Bucket.$': '$.bucket', 'Prefix.$': '$.resultPrefix' },
        },
        ResultPath: '$.map',
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
          StartAt: task,
          States: { [task]: taskState },
        },
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'SummarizeFailure' }],
        Next: 'Summarize',
      });
    },
  );

  test('the summary step, on success and on the Catch path, then Succeed or Fail', () => {
    const params = {
      'bucket.$': '$.bucket',
      'key.$': '$.key',
      'job.$': '$.job',
      'format.$': '$.format',
      'startedAt.$': '$$.Execution.StartTime',
      'executionArn.$': '$$.Execution.Id',
    };
    expect(def.States.Summarize).toMatchObject({
      Type: 'Task',
      Resource: `{{${summary}.Arn}}`,
      Parameters: { ...params, 'manifestKey.$': '$.map.ResultWriterDetails.Key' },
      Next: 'JobSucceeded',
    });
    expect(def.States.SummarizeFailure).toMatchObject({
      Resource: `{{${summary}.Arn}}`,
      Parameters: { ...params, 'error.$': '$.error' },
      Next: 'JobFailed',
    });
    expect(def.States.JobFailed).toEqual({ Type: 'Fail', Error: 'BatchJobFailed', CausePath: '$.error' });
    expect(def.States.JobSucceeded).toEqual({ Type: 'Succeed' });
    expect(def.TimeoutSeconds).toBe(86400);
  });

  test('logs every state without payloads, to a log group with retention; no X-Ray by default', () => {
    const sm = onlyResource(t, 'AWS::StepFunctions::StateMachine').props;
    expect(sm).toMatchObject({
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false },
    });
    expect(sm.TracingConfiguration).toEqual({ Enabled: false });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('defaults: 10 at once, 1000 rows a batch, no tolerated failures (ASL default 0, so not rendered)', () => {
    const d = definition(batch().t);
    expect(d.States.PredictCsv).toMatchObject({
      MaxConcurrency: 10,
      ItemBatcher: { MaxItemsPerBatch: 1000 },
    });
    expect(d.States.PredictCsv).not.toHaveProperty('ToleratedFailurePercentage');
  });
});

describe('the job bucket and its trigger', () => {
  const { t } = batch({
    schedule: { schedule: events.Schedule.rate(cdk.Duration.days(1)), inputKey: 'input/daily.csv' },
    jobBucketProps: { inputExpiration: cdk.Duration.days(7), outputExpiration: cdk.Duration.days(90) },
  });
  const bucket = logicalId(t, 'AWS::S3::Bucket', 'BatchJobsBucket');
  const objectFn = logicalId(t, 'AWS::Lambda::Function', 'BatchObjectFunction');

  test('encrypted with its own key, versioned, SSL only, private, access-logged, with the expiry asked for', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [logicalId(t, 'AWS::KMS::Key', 'BatchJobsKey'), 'Arn'] },
            },
            BucketKeyEnabled: true,
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
      LoggingConfiguration: { LogFilePrefix: 'job-bucket/' },
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } }),
          Match.objectLike({ Prefix: 'input/', ExpirationInDays: 7 }),
          Match.objectLike({ Prefix: 'output/', ExpirationInDays: 90 }),
        ],
      },
    });
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
    t.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  });

  test('one EventBridge rule for all of input/ (the function tells unknown extensions why they fail)', () => {
    // S3 sends its events to EventBridge: no bucket-notification custom resource to run at deploy.
    t.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    t.resourceCountIs('Custom::S3BucketNotifications', 0);
    const rules = t.findResources('AWS::Events::Rule', {
      Properties: { EventPattern: { source: ['aws.s3'] } },
    });
    const rule = Object.values(rules)[0] as { Properties: Record<string, unknown> };
    expect(Object.keys(rules)).toHaveLength(1);
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: { bucket: { name: [{ Ref: bucket }] }, object: { key: [{ prefix: 'input/' }] } },
    });
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [objectFn, 'Arn'] },
        InputTransformer: {
          InputPathsMap: {
            'detail-bucket-name': '$.detail.bucket.name',
            'detail-object-key': '$.detail.object.key',
          },
          InputTemplate: '{"bucket":<detail-bucket-name>,"key":<detail-object-key>}',
        },
        DeadLetterConfig: expect.objectContaining({ Arn: expect.anything() as unknown }) as unknown,
      }),
    ]);
  });

  test('the schedule invokes the object function with the input and the run time', () => {
    const rules = Object.values(t.findResources('AWS::Events::Rule')).map(
      (r) => (r as { Properties: Record<string, unknown> }).Properties,
    );
    const rule = rules.find((r) => r.ScheduleExpression !== undefined) ?? {};
    expect(rule.ScheduleExpression).toBe('rate(1 day)');
    const [target] = rule.Targets as Json[];
    expect(target?.Arn).toEqual({ 'Fn::GetAtt': [objectFn, 'Arn'] });
    const transformer = target?.InputTransformer as { InputPathsMap: Json; InputTemplate: unknown };
    expect(transformer.InputPathsMap).toEqual({ time: '$.time' });
    const joined = transformer.InputTemplate as { 'Fn::Join': [string, unknown[]] };
    const text = joined['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : marker(p))).join('');
    expect(text).toBe(`{"bucket":"{{${bucket}}}","key":"input/daily.csv","scheduledAt":<time>}`);
  });

  test('object function: 15 minutes, its batch size and threshold, the state machine; failures after retries go to an encrypted DLQ', () => {
    const fn = t.findResources('AWS::Lambda::Function')[objectFn] as { Properties: Json };
    expect(fn.Properties).toMatchObject({
      Timeout: 900,
      Architectures: ['arm64'],
      Runtime: 'nodejs22.x',
      Environment: {
        Variables: {
          BATCH_SIZE: '256',
          LARGE_JOB_BYTES: String(50 * 1024 * 1024),
          STATE_MACHINE_ARN: {
            Ref: logicalId(t, 'AWS::StepFunctions::StateMachine', 'BatchWorkflowStateMachine'),
          },
          MODEL_NAME: 'iris',
        },
      },
    });
    const queue = logicalId(t, 'AWS::SQS::Queue', 'BatchDeadLetterQueue');
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: objectFn },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    t.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    const itemsFn = t.findResources('AWS::Lambda::Function')[
      logicalId(t, 'AWS::Lambda::Function', 'BatchItemsFunction')
    ] as { Properties: Json };
    expect(itemsFn.Properties.Timeout).toBe(300);
    const summaryFn = t.findResources('AWS::Lambda::Function')[
      logicalId(t, 'AWS::Lambda::Function', 'BatchSummaryFunction')
    ] as { Properties: Json };
    expect(summaryFn.Properties).toMatchObject({
      Environment: { Variables: { MODEL_NAME: 'iris' } },
    });
  });
});

describe('least privilege', () => {
  const { t } = batch();
  const bucket = logicalId(t, 'AWS::S3::Bucket', 'BatchJobsBucket');
  const jobKey = { 'Fn::GetAtt': [logicalId(t, 'AWS::KMS::Key', 'BatchJobsKey'), 'Arn'] };
  const stateMachine = { Ref: logicalId(t, 'AWS::StepFunctions::StateMachine', 'BatchWorkflowStateMachine') };
  const onJobBucket = (s: Statement) => JSON.stringify(s.Resource).includes(bucket);

  test('the object function reads input/, writes its three files, starts this state machine only', () => {
    const st = statements(t, 'BatchObjectFunctionRole');
    expect(st.filter(onJobBucket)).toEqual([
      { Action: 's3:GetObject', Effect: 'Allow', Resource: objects(bucket, 'input/*') },
      {
        Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
        Effect: 'Allow',
        Resource: ['predictions.jsonl', 'errors.jsonl', 'summary.json'].map((f) =>
          objects(bucket, `output/*/${f}`),
        ),
      },
    ]);
    expect(st).toContainEqual({ Action: 'states:StartExecution', Effect: 'Allow', Resource: stateMachine });
    expect(st).toContainEqual({
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Effect: 'Allow',
      Resource: jobKey,
    });
  });

  test('the batch function writes parts only; the summary reads Map results and writes the summary only', () => {
    expect(statements(t, 'BatchItemsFunctionRole').filter(onJobBucket)).toEqual([
      { Action: 's3:PutObject', Effect: 'Allow', Resource: objects(bucket, 'output/*/parts/*') },
    ]);
    expect(statements(t, 'BatchSummaryRole').filter(onJobBucket)).toEqual([
      { Action: 's3:GetObject', Effect: 'Allow', Resource: objects(bucket, 'output/*/map/*') },
      { Action: 's3:PutObject', Effect: 'Allow', Resource: objects(bucket, 'output/*/summary.json') },
      {
        Action: 's3:ListBucket',
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['output/*/map/*'] } },
      },
    ]);
  });

  test('the state machine reads inputs, writes its Map results, invokes its two functions: no whole-bucket grant', () => {
    const st = statements(t, 'BatchWorkflowStateMachineRole');
    expect(st.filter(onJobBucket)).toEqual([
      { Action: 's3:GetObject', Effect: 'Allow', Resource: objects(bucket, 'input/*') },
      {
        Action: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        Effect: 'Allow',
        Resource: objects(bucket, 'output/*/map/*'),
      },
    ]);
    const invoked = st
      .filter((s) => s.Action === 'lambda:InvokeFunction')
      .map((s) => JSON.stringify(s.Resource));
    expect(invoked).toHaveLength(2);
    expect(invoked.join()).not.toContain('ObjectFunction');
    expect(JSON.stringify(st)).not.toContain('"s3:*"');
  });

  test('no role of this construct has a managed policy', () => {
    for (const prefix of [
      'BatchObjectFunctionRole',
      'BatchItemsFunctionRole',
      'BatchSummaryRole',
      'BatchWorkflowStateMachineRole',
    ]) {
      const role = t.findResources('AWS::IAM::Role')[logicalId(t, 'AWS::IAM::Role', prefix)] as {
        Properties: Json;
      };
      expect(role.Properties).not.toHaveProperty('ManagedPolicyArns');
    }
  });
});

describe('alarms, metrics and grants', () => {
  const stack = testStack();
  const topic = new sns.Topic(stack, 'Alarms');
  const { b, t } = batch({ alarmTopic: topic }, stack);

  test('failed jobs (EMF), failed and timed-out executions, object function errors, a dead letter: each ≥ 1, to the topic', () => {
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => (a as { Properties: Json }).Properties,
    );
    expect(alarms.map((a) => [a.Namespace, a.MetricName])).toEqual([
      ['ModelDeployKit', 'JobsFailed'],
      ['AWS/States', 'ExecutionsFailed'],
      ['AWS/States', 'ExecutionsTimedOut'],
      ['AWS/Lambda', 'Errors'],
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible'],
    ]);
    for (const a of alarms) {
      expect(a).toMatchObject({
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: logicalId(t, 'AWS::SNS::Topic', 'Alarms') }],
      });
    }
    expect(alarms[0]?.Dimensions).toEqual([
      { Name: 'model', Value: 'iris' },
      { Name: 'service', Value: 'model-deploy-kit' },
    ]);
    expect(b.alarms).toHaveLength(5);
  });

  test('job metrics are per model, as the runtime emits them', () => {
    for (const m of [
      b.metricJobsFailed(),
      b.metricJobsSucceeded(),
      b.metricRowsPredicted(),
      b.metricRowsFailed(),
    ]) {
      expect(m.namespace).toBe('ModelDeployKit');
      expect(m.dimensions).toEqual({ service: 'model-deploy-kit', model: 'iris' });
    }
  });

  test('submitters put under input/ only; readers read output/ only', () => {
    const s = testStack();
    const jobs = new BatchInference(s, 'Batch', { modelDir: IRIS_DIR });
    const submitter = new iam.Role(s, 'Submitter', { assumedBy: new iam.AccountRootPrincipal() });
    const reader = new iam.Role(s, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    jobs.grantSubmitJobs(submitter);
    jobs.grantReadResults(reader);
    const tt = template(s);
    const bucket = logicalId(tt, 'AWS::S3::Bucket', 'BatchJobsBucket');
    const put = statements(tt, 'SubmitterDefaultPolicy').filter((x) =>
      JSON.stringify(x.Resource).includes(bucket),
    );
    expect(put).toEqual([expect.objectContaining({ Resource: objects(bucket, 'input/*') })]);
    const read = statements(tt, 'ReaderDefaultPolicy').filter((x) =>
      JSON.stringify(x.Resource).includes(bucket),
    );
    expect(JSON.stringify(read)).toContain('/output/*');
    expect(JSON.stringify(read)).not.toContain('/input/*');
  });
});

describe('props', () => {
  test('an existing bucket with its key: the input rule and grants on it, no bucket made', () => {
    const stack = testStack();
    const key = new kms.Key(stack, 'TheirKey', { enableKeyRotation: true });
    const theirs = s3.Bucket.fromBucketAttributes(stack, 'Theirs', {
      bucketName: 'their-jobs',
      encryptionKey: key,
    });
    const { b, t } = batch({ existingJobBucket: theirs, delivery: ModelDelivery.BUNDLED }, stack);
    expect(b.jobBucket).toBe(theirs);
    expect(Object.keys(t.findResources('AWS::S3::Bucket'))).toEqual([]);
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ detail: Match.objectLike({ bucket: { name: ['their-jobs'] } }) }),
    });
    expect(JSON.stringify(statements(t, 'BatchObjectFunctionRole'))).toContain(':s3:::their-jobs/input/*');
    expect(b.artifact).toBeUndefined();
  });

  test('bad values are refused, naming the prop and the value', () => {
    const cases: [Partial<BatchInferenceProps>, RegExp][] = [
      [{ batchSize: 2000 }, /batchSize 2000 is over the runtime's maxBatch 1024/],
      [{ batchSize: 0 }, /batchSize must be a positive integer, got 0/],
      [{ toleratedFailurePercentage: 101 }, /toleratedFailurePercentage must be 0 to 100, got 101/],
      [{ maxConcurrency: 20_000 }, /maxConcurrency must be at most 10000/],
      [{ itemsPerBatch: 1.5 }, /itemsPerBatch must be a positive integer, got 1.5/],
      [{ jobTimeout: cdk.Duration.seconds(10) }, /jobTimeout must be 1 minute to 1 year/],
      [{ idField: ' ' }, /idField must not be empty/],
      [
        { schedule: { schedule: events.Schedule.rate(cdk.Duration.hours(1)), inputKey: 'data/x.csv' } },
        /schedule.inputKey must be under input\/ .* got "data\/x.csv"/,
      ],
      [
        { schedule: { schedule: events.Schedule.rate(cdk.Duration.hours(1)), inputKey: 'input/x.parquet' } },
        /schedule.inputKey/,
      ],
      [{ jobBucketProps: { autoDeleteObjects: true } }, /autoDeleteObjects needs removalPolicy DESTROY/],
      [
        { jobBucketProps: { outputExpiration: cdk.Duration.hours(36) } },
        /outputExpiration must be a whole number of days/,
      ],
      [
        { existingJobBucket: s3.Bucket.fromBucketName(testStack(), 'B', 'their-jobs'), jobBucketProps: {} },
        /existingJobBucket or jobBucketProps, not both/,
      ],
    ];
    for (const [props, message] of cases) {
      expect(() => new BatchInference(testStack(), 'Batch', { modelDir: IRIS_DIR, ...props })).toThrow(
        message,
      );
    }
    expect(
      () =>
        new BatchInference(testStack(), 'Batch', {
          modelDir: IRIS_DIR,
          batchSize: 2000,
          functionProps: { limits: { maxBatch: 4096 } },
        }),
    ).not.toThrow();
  });
});

describe('checks', () => {
  function checkedApp(nag: boolean): cdk.App {
    const app = testApp();
    if (nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    new BatchInference(testStack(app, 'Defaults'), 'Batch', {
      modelDir: IRIS_DIR,
      schedule: {
        schedule: events.Schedule.cron({ hour: '2', minute: '0' }),
        inputKey: 'input/nightly.jsonl',
      },
    });
    const other = testStack(app, 'Options');
    new BatchInference(other, 'Batch', {
      modelDir: IRIS_DIR,
      delivery: ModelDelivery.BUNDLED,
      tracingEnabled: true,
      alarmTopic: new sns.Topic(other, 'Alarms', {
        enforceSSL: true,
        masterKey: new kms.Key(other, 'TopicKey', { enableKeyRotation: true }),
      }),
      jobBucketProps: {
        encryption: ModelBucketEncryption.S3_MANAGED,
        removalPolicy: cdk.RemovalPolicy.DESTROY,
        autoDeleteObjects: true,
      },
      functionProps: { memorySize: 4096 },
    });
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
