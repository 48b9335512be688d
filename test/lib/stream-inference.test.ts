import * as cdk from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelDelivery } from '../../lib/model-binding';
import { ModelBucket } from '../../lib/model-bucket';
import {
  StreamDestination,
  StreamInference,
  StreamSource,
  type StreamInferenceProps,
} from '../../lib/stream-inference';
import { IRIS_DIR, onlyResource, template, testApp, testStack } from '../support/cdk';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';

function make(props: Partial<StreamInferenceProps>, stack: cdk.Stack, id = 'Stream'): StreamInference {
  return new StreamInference(stack, id, {
    modelDir: IRIS_DIR,
    source: StreamSource.sqs(),
    destination: StreamDestination.sqs(),
    ...props,
  });
}

function build(props: Partial<StreamInferenceProps> = {}, stack = testStack(), id = 'Stream') {
  const stream = make(props, stack, id);
  return { stack, stream, t: template(stack) };
}

const ref = (stack: cdk.Stack, c: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(c.node.defaultChild as cdk.CfnElement);

/** The statements of the stream function's role policy. */
function statements(
  t: Template,
  stack: cdk.Stack,
  stream: StreamInference,
): { Action: unknown; Resource: unknown }[] {
  const roleId = ref(stack, stream.function.role);
  const policies = Object.values(
    t.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }),
  );
  expect(policies).toHaveLength(1);
  return (
    policies[0] as { Properties: { PolicyDocument: { Statement: { Action: unknown; Resource: unknown }[] } } }
  ).Properties.PolicyDocument.Statement;
}

const env = (t: Template): Record<string, unknown> => {
  const fns = Object.values(t.findResources('AWS::Lambda::Function')).filter((f) =>
    JSON.stringify(f).includes('DESTINATION_TYPE'),
  ) as { Properties: { Environment: { Variables: Record<string, unknown> } } }[];
  expect(fns).toHaveLength(1);
  return (fns[0] as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties
    .Environment.Variables;
};

describe('StreamInference, SQS source', () => {
  test('defaults: a partial batch response mapping, a DLQ after 3 receives, visibility 6 × the timeout, encrypted queues', () => {
    const { t, stack, stream } = build();
    const requests = ref(stack, stream.sourceQueue as sqs.Queue);
    const dlq = ref(stack, stream.deadLetterQueue as sqs.Queue);
    const predictions = ref(stack, stream.destinationQueue as sqs.Queue);
    const mapping = onlyResource(t, 'AWS::Lambda::EventSourceMapping').props;
    expect(mapping).toEqual({
      BatchSize: 10,
      EventSourceArn: { 'Fn::GetAtt': [requests, 'Arn'] },
      FunctionName: { Ref: ref(stack, stream.function.function) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    t.hasResource('AWS::SQS::Queue', {
      Properties: {
        VisibilityTimeout: 180,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 3 },
        SqsManagedSseEnabled: true,
      },
      DeletionPolicy: 'Delete',
    });
    expect(t.findResources('AWS::SQS::Queue')[dlq]).toMatchObject({
      Properties: { MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true },
    });
    expect(t.findResources('AWS::SQS::Queue')[predictions]).toMatchObject({
      Properties: { SqsManagedSseEnabled: true },
    });
    // Each queue refuses requests without TLS.
    const policies = Object.values(t.findResources('AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(3);
    for (const p of policies) {
      expect(JSON.stringify(p)).toContain('"aws:SecureTransport":"false"');
    }
    expect(env(t)).toMatchObject({
      DESTINATION_TYPE: 'sqs',
      DESTINATION_QUEUE_URL: { Ref: predictions },
      MODEL_NAME: 'iris',
    });
    expect(stream.modelName).toBe('iris');
    expect(stream.sourceStream).toBeUndefined();
  });

  test('least privilege: consume the source queue, send to the destination, read the model; nothing else', () => {
    const { t, stack, stream } = build();
    const requests = ref(stack, stream.sourceQueue as sqs.Queue);
    const predictions = ref(stack, stream.destinationQueue as sqs.Queue);
    const s = statements(t, stack, stream);
    expect(s).toContainEqual(
      expect.objectContaining({
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Resource: { 'Fn::GetAtt': [predictions, 'Arn'] },
      }),
    );
    expect(s).toContainEqual(
      expect.objectContaining({
        Action: [
          'sqs:ReceiveMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueUrl',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
        ],
        Resource: { 'Fn::GetAtt': [requests, 'Arn'] },
      }),
    );
    const all = JSON.stringify(s);
    expect(all).not.toContain('"*"');
    expect(all).not.toContain('s3:PutObject');
    // The source queue's messages are not the function's to send, nor the destination's to read.
    const sendTargets = s
      .filter((x) => JSON.stringify(x.Action).includes('sqs:SendMessage'))
      .map((x) => x.Resource);
    expect(sendTargets).toEqual([{ 'Fn::GetAtt': [predictions, 'Arn'] }]);
    expect(s.map((x) => JSON.stringify(x.Action)).join()).not.toMatch(/kinesis|events:/);
  });

  test('options: batch size and window, concurrency, receives; visibility follows the timeout and the window', () => {
    const { t } = build({
      source: StreamSource.sqs({
        batchSize: 500,
        maxBatchingWindow: cdk.Duration.seconds(20),
        maxConcurrency: 5,
        maxReceiveCount: 5,
      }),
      functionProps: { timeout: cdk.Duration.minutes(2), memorySize: 1024 },
    });
    expect(onlyResource(t, 'AWS::Lambda::EventSourceMapping').props).toMatchObject({
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 20,
      ScalingConfig: { MaximumConcurrency: 5 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    t.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 6 * 120 + 20,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 5 }),
    });
    t.hasResourceProperties('AWS::Lambda::Function', { Timeout: 120, MemorySize: 1024 });
  });

  test('a queue of your own: its visibility timeout is checked, and its DLQ is the one alarmed', () => {
    const stack = testStack();
    const dlq = new sqs.Queue(stack, 'MyDlq', { enforceSSL: true });
    const short = new sqs.Queue(stack, 'Short', { visibilityTimeout: cdk.Duration.seconds(60) });
    expect(() => build({ source: StreamSource.sqs({ queue: short }) }, stack, 'A')).toThrow(
      "StreamInference Test/A: the source queue's visibility timeout is 60 s; make it at least 180 s (6 × the function timeout of 30 s + the batching window), or a message may be received again while it is being predicted",
    );
    const unset = new sqs.Queue(stack, 'Unset');
    expect(() => build({ source: StreamSource.sqs({ queue: unset }) }, stack, 'B')).toThrow(
      /visibility timeout is 30 s/,
    );
    const mine = new sqs.Queue(stack, 'Mine', {
      visibilityTimeout: cdk.Duration.minutes(3),
      deadLetterQueue: { queue: dlq, maxReceiveCount: 4 },
      enforceSSL: true,
    });
    const { stream, t } = build({ source: StreamSource.sqs({ queue: mine }) }, stack);
    expect(stream.sourceQueue).toBe(mine);
    expect(stream.deadLetterQueue).toBe(dlq);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ref(stack, dlq), 'QueueName'] } }],
    });
    // No queue of its own: only the destination.
    expect(Object.keys(t.findResources('AWS::SQS::Queue'))).toHaveLength(5);
  });
});

describe('StreamInference, Kinesis source', () => {
  test('defaults: bisect on error, 2 retries, an encrypted on-failure queue, LATEST, partial batch response', () => {
    const { t, stack, stream } = build({
      source: StreamSource.kinesis(),
      destination: StreamDestination.kinesis(),
    });
    const requests = ref(stack, stream.sourceStream as kinesis.Stream);
    const failed = ref(stack, stream.deadLetterQueue as sqs.Queue);
    expect(onlyResource(t, 'AWS::Lambda::EventSourceMapping').props).toEqual({
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [failed, 'Arn'] } } },
      EventSourceArn: { 'Fn::GetAtt': [requests, 'Arn'] },
      FunctionName: { Ref: ref(stack, stream.function.function) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 2,
      ParallelizationFactor: 1,
      StartingPosition: 'LATEST',
    });
    const streams = t.findResources('AWS::Kinesis::Stream');
    expect(Object.keys(streams)).toHaveLength(2);
    for (const s of Object.values(streams)) {
      expect(s).toMatchObject({
        Properties: { StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' } },
        DeletionPolicy: 'Delete',
      });
    }
    expect(t.findResources('AWS::SQS::Queue')[failed]).toMatchObject({
      Properties: { MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true },
    });
    const destination = ref(stack, stream.destinationStream as kinesis.Stream);
    expect(env(t)).toMatchObject({
      DESTINATION_TYPE: 'kinesis',
      DESTINATION_STREAM_ARN: { 'Fn::GetAtt': [destination, 'Arn'] },
    });

    const s = statements(t, stack, stream);
    expect(s).toContainEqual(
      expect.objectContaining({
        Action: ['kinesis:ListShards', 'kinesis:PutRecord', 'kinesis:PutRecords'],
        Resource: { 'Fn::GetAtt': [destination, 'Arn'] },
      }),
    );
    expect(s).toContainEqual(
      expect.objectContaining({
        Action: expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator']) as unknown,
        Resource: { 'Fn::GetAtt': [requests, 'Arn'] },
      }),
    );
    expect(s).toContainEqual(
      expect.objectContaining({
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Resource: { 'Fn::GetAtt': [failed, 'Arn'] },
      }),
    );
    const writes = s.filter((x) => JSON.stringify(x.Action).includes('PutRecord')).map((x) => x.Resource);
    expect(writes).toEqual([{ 'Fn::GetAtt': [destination, 'Arn'] }]);
    expect(JSON.stringify(s)).not.toContain('"*"');

    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Threshold: 300_000,
      Statistic: 'Maximum',
    });
  });

  test('options reach the mapping; your own stream and failure destination are used as they are', () => {
    const stack = testStack();
    const mine = new kinesis.Stream(stack, 'Mine', { encryption: kinesis.StreamEncryption.MANAGED });
    const failures = new sqs.Queue(stack, 'Failures', { enforceSSL: true });
    const { t, stream } = build(
      {
        source: StreamSource.kinesis({
          stream: mine,
          batchSize: 250,
          maxBatchingWindow: cdk.Duration.seconds(5),
          parallelizationFactor: 4,
          bisectBatchOnError: false,
          retryAttempts: 7,
          maxRecordAge: cdk.Duration.hours(1),
          startingPosition: lambda.StartingPosition.TRIM_HORIZON,
          onFailure: new sources.SqsDlq(failures),
        }),
        destination: StreamDestination.sqs(),
      },
      stack,
    );
    expect(onlyResource(t, 'AWS::Lambda::EventSourceMapping').props).toMatchObject({
      BatchSize: 250,
      MaximumBatchingWindowInSeconds: 5,
      ParallelizationFactor: 4,
      BisectBatchOnFunctionError: false,
      MaximumRetryAttempts: 7,
      MaximumRecordAgeInSeconds: 3600,
      StartingPosition: 'TRIM_HORIZON',
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [ref(stack, failures), 'Arn'] } } },
      EventSourceArn: { 'Fn::GetAtt': [ref(stack, mine), 'Arn'] },
    });
    expect(stream.sourceStream).toBe(mine);
    // Given a destination of its own, there is no queue of the construct's to alarm on.
    expect(stream.deadLetterQueue).toBeUndefined();
    expect(Object.keys(t.findResources('AWS::Kinesis::Stream'))).toHaveLength(1);
  });
});

describe('StreamInference, EventBridge destination, model sources, alarms', () => {
  test('EventBridge: puts events on the given bus only, with the configured source and detail type', () => {
    const stack = testStack();
    const bus = new events.EventBus(stack, 'Scores');
    const { t, stream } = build(
      { destination: StreamDestination.eventBridge(bus, { source: 'fraud.scores', detailType: 'Score' }) },
      stack,
    );
    expect(stream.destinationBus).toBe(bus);
    expect(env(t)).toMatchObject({
      DESTINATION_TYPE: 'eventbridge',
      DESTINATION_BUS_NAME: { 'Fn::GetAtt': [ref(stack, bus), 'Arn'] },
      EVENT_SOURCE: 'fraud.scores',
      EVENT_DETAIL_TYPE: 'Score',
    });
    const puts = statements(t, stack, stream).filter((s) => JSON.stringify(s.Action).includes('events:'));
    expect(puts).toEqual([
      expect.objectContaining({
        Action: 'events:PutEvents',
        Resource: { 'Fn::GetAtt': [ref(stack, bus), 'Arn'] },
      }),
    ]);
    // No bus given: one of its own.
    const own = build({ destination: StreamDestination.eventBridge() });
    expect(Object.keys(own.t.findResources('AWS::Events::EventBus'))).toHaveLength(1);
  });

  test('the same model sources as an endpoint: a version published elsewhere, or a bundled folder', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
    const reused = new StreamInference(stack, 'Reused', {
      model: artifact,
      source: StreamSource.sqs(),
      destination: StreamDestination.sqs(),
    });
    expect(reused.artifact).toBe(artifact);
    expect(reused.modelBucket).toBeUndefined();
    // One bucket: the one the artifact was published to.
    expect(Object.keys(template(stack).findResources('AWS::S3::Bucket'))).toHaveLength(2); // and its access logs

    const bundled = build({ delivery: ModelDelivery.BUNDLED });
    expect(bundled.stream.artifact).toBeUndefined();
    expect(env(bundled.t)).toMatchObject({ MODEL_URI: '/var/task/model' });
    expect(Object.keys(bundled.t.findResources('AWS::S3::Bucket'))).toHaveLength(0);
  });

  test('alarms: thresholds from props, notifying the topic', () => {
    const stack = testStack();
    const topic = new sns.Topic(stack, 'Alarms', { enforceSSL: true });
    const { t, stream } = build(
      {
        alarms: {
          deadLetterMessages: 5,
          functionErrors: 3,
          recordsFailed: 50,
          period: cdk.Duration.minutes(1),
        },
        alarmTopic: topic,
      },
      stack,
    );
    expect(stream.alarms).toHaveLength(3);
    const byMetric = Object.fromEntries(
      Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => {
        const p = (a as { Properties: Record<string, unknown> }).Properties;
        return [p.MetricName as string, p];
      }),
    );
    expect(byMetric.ApproximateNumberOfMessagesVisible).toMatchObject({ Threshold: 5, Period: 60 });
    expect(byMetric.Errors).toMatchObject({ Threshold: 3, Namespace: 'AWS/Lambda' });
    expect(byMetric.RecordsFailed).toMatchObject({
      Threshold: 50,
      Namespace: 'ModelDeployKit',
      Statistic: 'Sum',
      Dimensions: [
        { Name: 'model', Value: 'iris' },
        { Name: 'service', Value: 'model-deploy-kit' },
      ],
    });
    for (const p of Object.values(byMetric)) {
      expect(p).toMatchObject({
        AlarmActions: [{ Ref: ref(stack, topic) }],
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
    expect(stream.metricPredictionLatency().metricName).toBe('PredictionLatency');
    expect(stream.metricRecordsPredicted().statistic).toBe('Sum');
  });
});

describe('StreamInference validation', () => {
  const cases: [string, Partial<StreamInferenceProps>, string | RegExp][] = [
    [
      'SQS batch over 10 without a window',
      { source: StreamSource.sqs({ batchSize: 11 }) },
      'StreamInference Test/Stream: an SQS batchSize over 10 (got 11) needs a maxBatchingWindow',
    ],
    [
      'SQS batch over 10,000',
      { source: StreamSource.sqs({ batchSize: 10_001, maxBatchingWindow: cdk.Duration.seconds(1) }) },
      'source batchSize must be an integer from 1 to 10000, got 10001',
    ],
    [
      'window over 5 minutes',
      { source: StreamSource.sqs({ maxBatchingWindow: cdk.Duration.minutes(6) }) },
      'source maxBatchingWindow must be at most 5 minutes, got 6 minutes',
    ],
    [
      'maxConcurrency 1',
      { source: StreamSource.sqs({ maxConcurrency: 1 }) },
      'source maxConcurrency must be an integer from 2 to 1000, got 1',
    ],
    [
      'maxReceiveCount with a queue',
      {
        source: StreamSource.sqs({
          queue: sqs.Queue.fromQueueArn(new cdk.Stack(), 'Q', 'arn:aws:sqs:us-east-1:123456789012:q'),
          maxReceiveCount: 2,
        }),
      },
      /maxReceiveCount sets the redrive policy of the queue this construct creates/,
    ],
    [
      'parallelizationFactor 11',
      { source: StreamSource.kinesis({ parallelizationFactor: 11 }) },
      'source parallelizationFactor must be an integer from 1 to 10, got 11',
    ],
    [
      'infinite retries',
      { source: StreamSource.kinesis({ retryAttempts: -1 }) },
      'source retryAttempts must be an integer from 0 to 10000, got -1',
    ],
    [
      'record age under a minute',
      { source: StreamSource.kinesis({ maxRecordAge: cdk.Duration.seconds(30) }) },
      'source maxRecordAge must be 60 seconds to 7 days, got 30 seconds',
    ],
    [
      'a FIFO destination',
      {
        destination: StreamDestination.sqs(
          sqs.Queue.fromQueueArn(new cdk.Stack(), 'F', 'arn:aws:sqs:us-east-1:123456789012:out.fifo'),
        ),
      },
      /the destination queue is FIFO/,
    ],
    [
      'an aws. event source',
      { destination: StreamDestination.eventBridge(undefined, { source: 'aws.s3' }) },
      'the EventBridge source must be non-empty and not start with "aws.", got "aws.s3"',
    ],
    [
      'a zero alarm threshold',
      { alarms: { recordsFailed: 0 } },
      'alarms.recordsFailed must be a positive integer, got 0',
    ],
    ['no model', { modelDir: undefined }, /give exactly one of modelDir, modelSource or model, got none/],
  ];
  test.each(cases)('%s', (_name, props, message) => {
    expect(() => build(props)).toThrow(message);
  });
});

describe('checks', () => {
  function checkedApp(nag: boolean): cdk.App {
    const app = testApp();
    if (nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    make({}, testStack(app, 'SqsToSqs'));
    make(
      { source: StreamSource.kinesis(), destination: StreamDestination.kinesis() },
      testStack(app, 'KinesisToKinesis'),
    );
    make({ destination: StreamDestination.eventBridge() }, testStack(app, 'SqsToEvents'));
    return app;
  }

  test('cdk-nag AwsSolutions finds nothing unacknowledged, and aws-cdk-lib annotates no warnings', () => {
    expect(annotations(checkedApp(true).synth())).toEqual([]);
  });

  test('cfn-lint reports no errors', () => {
    const files = templateFiles(checkedApp(false).synth());
    expect(files).toHaveLength(3);
    expect(cfnLintErrors(files)).toEqual({ errors: [], errorBit: 0, spawnError: undefined });
  });
});
