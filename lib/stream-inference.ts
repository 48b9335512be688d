import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { bindModel, type ModelSourceProps } from './model-binding';
import type { IModelVersion, ModelBucket } from './model-bucket';
import { thresholdAlarm } from './alarms';
import { ModelFunction, type ModelFunctionOptions } from './model-function';
import { checkPositiveInteger } from './validate';

/** How an SQS queue feeds the function. */
export interface SqsSourceOptions {
  /**
   * The queue to read. Its visibility timeout must be at least 6 times the function's timeout plus the
   * batching window (checked when the queue is defined in this app), and its redrive policy is its own.
   * @default - a new queue (SQS-managed encryption, SSL only) with a dead-letter queue after `maxReceiveCount`
   */
  readonly queue?: sqs.IQueue;
  /** Messages per invocation, 1 to 10,000; over 10 needs `maxBatchingWindow`. @default 10 */
  readonly batchSize?: number;
  /** How long Lambda gathers messages before it invokes, up to 5 minutes. @default - none */
  readonly maxBatchingWindow?: cdk.Duration;
  /**
   * Receives before a message moves to the dead-letter queue, so a poison message leaves the queue.
   * Only for the queue this construct creates.
   * @default 3
   */
  readonly maxReceiveCount?: number;
  /** Most concurrent invocations this source drives, 2 to 1,000. @default - Lambda's: up to 1,250 */
  readonly maxConcurrency?: number;
}

/** How a Kinesis stream feeds the function. */
export interface KinesisSourceOptions {
  /** The stream to read. @default - a new stream, one shard, encrypted with the AWS-managed key */
  readonly stream?: kinesis.IStream;
  /** Records per invocation, 1 to 10,000. @default 100 */
  readonly batchSize?: number;
  /** How long Lambda gathers records before it invokes, up to 5 minutes. @default - none */
  readonly maxBatchingWindow?: cdk.Duration;
  /** Concurrent batches per shard, 1 to 10. @default 1 */
  readonly parallelizationFactor?: number;
  /** Split a failing batch in two and retry each half, so a poison record is isolated. @default true */
  readonly bisectBatchOnError?: boolean;
  /** Retries of a failing batch, 0 to 10,000 (never infinite: a poison record must not stop the shard). @default 2 */
  readonly retryAttempts?: number;
  /** Records older than this are skipped, 60 seconds to 7 days. @default - Lambda's: until they expire */
  readonly maxRecordAge?: cdk.Duration;
  /** @default lambda.StartingPosition.LATEST */
  readonly startingPosition?: lambda.StartingPosition;
  /**
   * Where Lambda reports a batch it gave up on (its shard and sequence numbers, not its records).
   * @default - a new SQS queue (SQS-managed encryption, SSL only, kept 14 days)
   */
  readonly onFailure?: lambda.IEventSourceDlq;
}

/** Where the records to predict come from. */
export class StreamSource {
  /** An SQS queue: a partial batch response, a dead-letter queue, a batching window. */
  public static sqs(options: SqsSourceOptions = {}): StreamSource {
    return new StreamSource('sqs', options, undefined);
  }

  /** A Kinesis stream: bisect on error, bounded retries, an on-failure destination, parallel shards. */
  public static kinesis(options: KinesisSourceOptions = {}): StreamSource {
    return new StreamSource('kinesis', undefined, options);
  }

  private constructor(
    public readonly type: 'sqs' | 'kinesis',
    public readonly sqsOptions: SqsSourceOptions | undefined,
    public readonly kinesisOptions: KinesisSourceOptions | undefined,
  ) {}
}

/** EventBridge event settings. */
export interface EventBridgeDestinationOptions {
  /** The events' `source`; may not start with `aws.`. @default 'model-deploy-kit' */
  readonly source?: string;
  /** The events' `detail-type`. @default 'Prediction' */
  readonly detailType?: string;
}

/**
 * Where predictions go. Each one is a JSON message:
 * `{"id", "model_name", "model_version", "outputs": {...}, "source": {"messageId" | "sequenceNumber", ...}}`.
 */
export class StreamDestination {
  /** An SQS queue (standard, not FIFO). @default - a new queue (SQS-managed encryption, SSL only) */
  public static sqs(queue?: sqs.IQueue): StreamDestination {
    return new StreamDestination('sqs', { queue });
  }

  /** An EventBridge bus: each prediction is an event's `detail`. @default - a new bus */
  public static eventBridge(
    bus?: events.IEventBus,
    options: EventBridgeDestinationOptions = {},
  ): StreamDestination {
    return new StreamDestination('eventbridge', { bus, ...options });
  }

  /** A Kinesis stream, with the prediction's id as partition key. @default - a new encrypted stream */
  public static kinesis(stream?: kinesis.IStream): StreamDestination {
    return new StreamDestination('kinesis', { stream });
  }

  private constructor(
    public readonly type: 'sqs' | 'eventbridge' | 'kinesis',
    public readonly options: {
      readonly queue?: sqs.IQueue;
      readonly bus?: events.IEventBus;
      readonly stream?: kinesis.IStream;
      readonly source?: string;
      readonly detailType?: string;
    },
  ) {}
}

/** When the alarms fire. Each one looks at `period`, and fires on one breaching period. */
export interface StreamAlarmProps {
  /** @default Duration.minutes(5) */
  readonly period?: cdk.Duration;
  /** Messages waiting in the dead-letter queue (SQS source) or on-failure queue (Kinesis). @default 1 */
  readonly deadLetterMessages?: number;
  /** Failed invocations (the whole batch is retried: the model did not load, or a bug). @default 1 */
  readonly functionErrors?: number;
  /** Records that could not be parsed, predicted or sent (each is retried, then dead-lettered). @default 1 */
  readonly recordsFailed?: number;
  /** Age of the oldest record the function has not read yet (Kinesis). @default Duration.minutes(5) */
  readonly iteratorAge?: cdk.Duration;
}

export interface StreamInferenceProps extends ModelSourceProps {
  /** Where the records come from. */
  readonly source: StreamSource;
  /** Where the predictions go. */
  readonly destination: StreamDestination;
  /** The function's size, timeout, logging and limits. @default - ModelFunction's defaults */
  readonly functionProps?: ModelFunctionOptions;
  /** @default - the defaults of StreamAlarmProps */
  readonly alarms?: StreamAlarmProps;
  /** Where alarms notify. @default - no action */
  readonly alarmTopic?: sns.ITopic;
  /**
   * What happens to the queues and streams this construct creates when the stack deletes them.
   * @default RemovalPolicy.DESTROY: they hold messages in transit, not records of value
   */
  readonly removalPolicy?: cdk.RemovalPolicy;
}

const SQS_MAX_WINDOW_S = 300;
/** AWS's advice for an SQS event source: the queue's visibility timeout at least 6 × the function timeout. */
const VISIBILITY_FACTOR = 6;

function checkRange(owner: string, prop: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`${owner}: ${prop} must be an integer from ${min} to ${max}, got ${value}`);
  }
}

function checkWindow(owner: string, prop: string, window: cdk.Duration | undefined): void {
  if (window && window.toSeconds() > SQS_MAX_WINDOW_S) {
    throw new Error(`${owner}: ${prop} must be at most 5 minutes, got ${window.toHumanString()}`);
  }
}

/** The visibility timeout of a queue defined in this app, in seconds (SQS's default 30 when unset). */
function visibilityOf(queue: sqs.IQueue): number | undefined {
  const cfn = queue.node.defaultChild;
  if (!(cfn instanceof sqs.CfnQueue)) return undefined;
  const v = cdk.Stack.of(queue).resolve(cfn.visibilityTimeout) as unknown;
  if (v === undefined) return 30;
  return typeof v === 'number' ? v : undefined;
}

/**
 * Predictions for records on a queue or a stream: an SQS queue or Kinesis stream invokes a ModelFunction with
 * batches of records; each record (a JSONL row, or a V2 inference request) is predicted with the same core and
 * validation as the online path, and its prediction sent to an SQS queue, an EventBridge bus or a Kinesis
 * stream. The function answers with a partial batch response, so a poison record is retried and then
 * dead-lettered on its own, and never blocks the others.
 */
export class StreamInference extends Construct {
  public readonly function: ModelFunction;
  /** The model bucket (created or wrapped), when the model is published here. */
  public readonly modelBucket?: ModelBucket;
  /** The model version in S3, unless the model is bundled. */
  public readonly artifact?: IModelVersion;
  /** The source queue (SQS source). */
  public readonly sourceQueue?: sqs.IQueue;
  /** The source stream (Kinesis source). */
  public readonly sourceStream?: kinesis.IStream;
  /**
   * Where failed records end: the source queue's dead-letter queue (SQS), or the on-failure queue (Kinesis),
   * when this construct created it or can see it.
   */
  public readonly deadLetterQueue?: sqs.IQueue;
  /** The destination queue (SQS destination). */
  public readonly destinationQueue?: sqs.IQueue;
  /** The destination bus (EventBridge destination). */
  public readonly destinationBus?: events.IEventBus;
  /** The destination stream (Kinesis destination). */
  public readonly destinationStream?: kinesis.IStream;
  /** The event source mapping's id. */
  public readonly eventSourceMappingId: string;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly modelName: string;

  constructor(scope: Construct, id: string, props: StreamInferenceProps) {
    super(scope, id);
    const owner = `StreamInference ${this.node.path}`;
    const fnProps = props.functionProps ?? {};
    const timeout = fnProps.timeout ?? cdk.Duration.seconds(30);
    const removalPolicy = props.removalPolicy ?? cdk.RemovalPolicy.DESTROY;
    const alarmProps = props.alarms ?? {};
    checkPositiveInteger(owner, 'alarms.deadLetterMessages', alarmProps.deadLetterMessages);
    checkPositiveInteger(owner, 'alarms.functionErrors', alarmProps.functionErrors);
    checkPositiveInteger(owner, 'alarms.recordsFailed', alarmProps.recordsFailed);
    const dest = props.destination;
    if (dest.type === 'sqs' && dest.options.queue?.fifo) {
      throw new Error(
        `${owner}: the destination queue is FIFO; predictions go to a standard queue (they carry no message group)`,
      );
    }
    if (dest.type === 'eventbridge') {
      const source = dest.options.source;
      if (source !== undefined && (source === '' || source.startsWith('aws.'))) {
        throw new Error(
          `${owner}: the EventBridge source must be non-empty and not start with "aws.", got ${JSON.stringify(source)}`,
        );
      }
      if (dest.options.detailType === '')
        throw new Error(`${owner}: the EventBridge detailType must not be empty`);
    }
    this.validateSource(owner, props.source, timeout);

    const bound = bindModel(this, owner, props);
    this.modelBucket = bound.modelBucket;
    this.artifact = bound.artifact;

    const environment: Record<string, string> = { DESTINATION_TYPE: dest.type };
    if (dest.type === 'sqs') {
      this.destinationQueue = dest.options.queue ?? this.newQueue('Predictions', removalPolicy);
      if (!dest.options.queue) {
        cdk.Validations.of(this.destinationQueue).acknowledge({
          id: 'AwsSolutions-SQS3',
          reason:
            "The predictions queue is read by the consumer of the predictions; whether its messages need a dead-letter queue is that reader's choice.",
        });
      }
      environment.DESTINATION_QUEUE_URL = this.destinationQueue.queueUrl;
    } else if (dest.type === 'eventbridge') {
      this.destinationBus = dest.options.bus ?? new events.EventBus(this, 'Bus');
      environment.DESTINATION_BUS_NAME = this.destinationBus.eventBusArn;
      if (dest.options.source) environment.EVENT_SOURCE = dest.options.source;
      if (dest.options.detailType) environment.EVENT_DETAIL_TYPE = dest.options.detailType;
    } else {
      this.destinationStream = dest.options.stream ?? this.newStream('PredictionsStream', removalPolicy);
      environment.DESTINATION_STREAM_ARN = this.destinationStream.streamArn;
    }

    this.function = new ModelFunction(this, 'Function', {
      ...fnProps,
      timeout,
      handler: 'stream',
      purpose: 'stream inference',
      artifact: bound.artifact,
      bundledModelDir: bound.bundledModelDir,
      environment: { ...(fnProps.environment ?? {}), ...environment },
    });
    this.modelName = this.function.modelName;

    // Least privilege: send to the destination only (the event source grants the reads of the source).
    this.destinationQueue?.grantSendMessages(this.function);
    this.destinationBus?.grantPutEventsTo(this.function);
    this.destinationStream?.grantWrite(this.function);

    if (props.source.type === 'sqs') {
      const o = props.source.sqsOptions ?? {};
      let queue = o.queue;
      if (!queue) {
        const dlq = this.newQueue('DeadLetterQueue', removalPolicy, cdk.Duration.days(14));
        cdk.Validations.of(dlq).acknowledge({
          id: 'AwsSolutions-SQS3',
          reason: 'This queue is the dead-letter queue of the source queue.',
        });
        this.deadLetterQueue = dlq;
        queue = new sqs.Queue(this, 'Requests', {
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          removalPolicy,
          // At most 6 × 15 min + 5 min: well under SQS's 12 hours.
          visibilityTimeout: cdk.Duration.seconds(
            VISIBILITY_FACTOR * timeout.toSeconds() + (o.maxBatchingWindow?.toSeconds() ?? 0),
          ),
          deadLetterQueue: { queue: dlq, maxReceiveCount: o.maxReceiveCount ?? 3 },
        });
      } else if (queue instanceof sqs.Queue) {
        this.deadLetterQueue = queue.deadLetterQueue?.queue;
      }
      this.sourceQueue = queue;
      const source = new sources.SqsEventSource(queue, {
        batchSize: o.batchSize ?? 10,
        maxBatchingWindow: o.maxBatchingWindow,
        maxConcurrency: o.maxConcurrency,
        reportBatchItemFailures: true,
      });
      this.function.function.addEventSource(source);
      this.eventSourceMappingId = source.eventSourceMappingId;
    } else {
      const o = props.source.kinesisOptions ?? {};
      const stream = o.stream ?? this.newStream('RequestsStream', removalPolicy);
      this.sourceStream = stream;
      let onFailure = o.onFailure;
      if (!onFailure) {
        const dlq = this.newQueue('FailedBatches', removalPolicy, cdk.Duration.days(14));
        cdk.Validations.of(dlq).acknowledge({
          id: 'AwsSolutions-SQS3',
          reason: 'This queue is the on-failure destination of the Kinesis event source.',
        });
        this.deadLetterQueue = dlq;
        onFailure = new sources.SqsDlq(dlq);
      }
      const source = new sources.KinesisEventSource(stream, {
        startingPosition: o.startingPosition ?? lambda.StartingPosition.LATEST,
        batchSize: o.batchSize ?? 100,
        maxBatchingWindow: o.maxBatchingWindow,
        parallelizationFactor: o.parallelizationFactor ?? 1,
        bisectBatchOnError: o.bisectBatchOnError ?? true,
        retryAttempts: o.retryAttempts ?? 2,
        maxRecordAge: o.maxRecordAge,
        onFailure,
        reportBatchItemFailures: true,
      });
      this.function.function.addEventSource(source);
      this.eventSourceMappingId = source.eventSourceMappingId;
    }

    this.makeAlarms(alarmProps, props.alarmTopic, props.source.type === 'kinesis');
  }

  private validateSource(owner: string, source: StreamSource, timeout: cdk.Duration): void {
    if (source.type === 'sqs') {
      const o = source.sqsOptions ?? {};
      checkRange(owner, 'source batchSize', o.batchSize, 1, 10_000);
      checkWindow(owner, 'source maxBatchingWindow', o.maxBatchingWindow);
      if ((o.batchSize ?? 10) > 10 && !o.maxBatchingWindow) {
        throw new Error(`${owner}: an SQS batchSize over 10 (got ${o.batchSize}) needs a maxBatchingWindow`);
      }
      checkRange(owner, 'source maxReceiveCount', o.maxReceiveCount, 1, 1000);
      checkRange(owner, 'source maxConcurrency', o.maxConcurrency, 2, 1000);
      if (o.queue && o.maxReceiveCount !== undefined) {
        throw new Error(
          `${owner}: maxReceiveCount sets the redrive policy of the queue this construct creates; set it on your queue's deadLetterQueue instead`,
        );
      }
      const needed = VISIBILITY_FACTOR * timeout.toSeconds() + (o.maxBatchingWindow?.toSeconds() ?? 0);
      const visibility = o.queue ? visibilityOf(o.queue) : undefined;
      if (visibility !== undefined && visibility < needed) {
        throw new Error(
          `${owner}: the source queue's visibility timeout is ${visibility} s; make it at least ${needed} s (6 × the function timeout of ${timeout.toSeconds()} s + the batching window), or a message may be received again while it is being predicted`,
        );
      }
    } else {
      const o = source.kinesisOptions ?? {};
      checkRange(owner, 'source batchSize', o.batchSize, 1, 10_000);
      checkWindow(owner, 'source maxBatchingWindow', o.maxBatchingWindow);
      checkRange(owner, 'source parallelizationFactor', o.parallelizationFactor, 1, 10);
      checkRange(owner, 'source retryAttempts', o.retryAttempts, 0, 10_000);
      const age = o.maxRecordAge?.toSeconds();
      if (age !== undefined && (age < 60 || age > 7 * 24 * 3600)) {
        throw new Error(
          `${owner}: source maxRecordAge must be 60 seconds to 7 days, got ${o.maxRecordAge?.toHumanString()}`,
        );
      }
    }
  }

  private newQueue(id: string, removalPolicy: cdk.RemovalPolicy, retentionPeriod?: cdk.Duration): sqs.Queue {
    return new sqs.Queue(this, id, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
      retentionPeriod,
    });
  }

  private newStream(id: string, removalPolicy: cdk.RemovalPolicy): kinesis.Stream {
    // The AWS-managed aws/kinesis key: cdk-nag (KDS3) asks for it, and it needs no key policy or kms grants.
    return new kinesis.Stream(this, id, {
      shardCount: 1,
      encryption: kinesis.StreamEncryption.MANAGED,
      removalPolicy,
    });
  }

  private makeAlarms(p: StreamAlarmProps, topic: sns.ITopic | undefined, isKinesis: boolean): void {
    const period = p.period ?? cdk.Duration.minutes(5);
    const alarm = (id: string, description: string, metric: cloudwatch.IMetric, threshold: number) => {
      this.alarms.push(
        thresholdAlarm(this, id, {
          metric,
          threshold,
          description: `${this.node.path}: ${description}`,
          topic,
        }),
      );
    };
    if (this.deadLetterQueue) {
      alarm(
        'DeadLetterAlarm',
        isKinesis
          ? 'Lambda gave up on a batch of the stream (see the on-failure queue for its shard and sequence numbers)'
          : 'a message failed every receive and waits in the dead-letter queue',
        this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        p.deadLetterMessages ?? 1,
      );
    }
    alarm(
      'FunctionErrorsAlarm',
      'the stream function failed whole invocations (the model did not load, or a bug); their batches are retried',
      this.function.metricErrors({ period }),
      p.functionErrors ?? 1,
    );
    alarm(
      'RecordsFailedAlarm',
      'records could not be parsed, predicted or sent (see the "record failed" log lines for the reasons)',
      this.metricRecordsFailed({ period }),
      p.recordsFailed ?? 1,
    );
    if (isKinesis) {
      const age = p.iteratorAge ?? cdk.Duration.minutes(5);
      alarm(
        'IteratorAgeAlarm',
        `the stream function is more than ${age.toHumanString()} behind the stream`,
        this.function.function.metric('IteratorAge', { period, statistic: 'Maximum' }),
        age.toMilliseconds(),
      );
    }
  }

  /** Records whose prediction reached the destination (EMF). */
  public metricRecordsPredicted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricRuntime('RecordsPredicted', { statistic: 'Sum', ...props });
  }

  /** Records that could not be parsed, predicted or sent (EMF). */
  public metricRecordsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricRuntime('RecordsFailed', { statistic: 'Sum', ...props });
  }

  /** Time in the model per invocation (EMF); p99 by default. */
  public metricPredictionLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricRuntime('PredictionLatency', { statistic: 'p99', ...props });
  }
}
