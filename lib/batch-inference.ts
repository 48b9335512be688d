import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import { thresholdAlarm } from './alarms';
import { bindModel, type ModelSourceProps } from './model-binding';
import { RuntimeFunction } from './runtime-function';
import {
  newPrivateBucket,
  type IModelVersion,
  type ModelBucket,
  type ModelBucketProps,
} from './model-bucket';
import {
  METRICS_NAMESPACE,
  METRICS_SERVICE,
  ModelFunction,
  type ModelFunctionOptions,
} from './model-function';
import { acknowledgeWildcards } from './nag';
import { checkPositiveInteger, checkWholeDays } from './validate';

/** Where jobs are put, and where their results land, in the job bucket. */
export const BATCH_INPUT_PREFIX = 'input/';
export const BATCH_OUTPUT_PREFIX = 'output/';
/** Input extensions the runtime reads: CSV, or JSON Lines (.jsonl, .ndjson, .json). */
export const BATCH_INPUT_EXTENSIONS = ['.csv', '.jsonl', '.ndjson', '.json'];

/** The runtime's largest batch unless `functionProps.limits.maxBatch` says otherwise. */
const DEFAULT_MAX_BATCH = 1024;
/** A child execution's input may be 256 KiB; the rest is room for BatchInput and the envelope. */
const MAX_INPUT_BYTES_PER_BATCH = 240 * 1024;

/** The job bucket this construct creates: the model bucket's settings, and expiry for jobs' files. */
export interface JobBucketProps extends Omit<ModelBucketProps, 'existingBucket'> {
  /** Delete inputs this long after they were put. @default - kept */
  readonly inputExpiration?: cdk.Duration;
  /** Delete results this long after they were written. @default - kept */
  readonly outputExpiration?: cdk.Duration;
  /** How long an overwritten or deleted object version is kept. @default Duration.days(30) */
  readonly noncurrentVersionExpiration?: cdk.Duration;
}

/** A recurring job: the same input object, predicted on a schedule. */
export interface BatchSchedule {
  /** When, e.g. `events.Schedule.cron({ hour: '2', minute: '0' })`. */
  readonly schedule: events.Schedule;
  /**
   * The input's key in the job bucket, under `input/`, ending .csv, .jsonl, .ndjson or .json. Each run's
   * job is named after the file and the run's time, so runs keep their own outputs.
   */
  readonly inputKey: string;
}

export interface BatchInferenceProps extends ModelSourceProps {
  /**
   * Take jobs in this bucket instead of a new one. Bring its KMS key with it
   * (`s3.Bucket.fromBucketAttributes`), so that the functions and the state machine may use it. Its Amazon
   * EventBridge notifications must be on (`eventBridgeEnabled: true`, or in the S3 console): jobs start from
   * its Object Created events.
   * @default - a new bucket with `jobBucketProps`
   */
  readonly existingJobBucket?: s3.IBucket;
  /** Settings for the job bucket this construct creates. @default - JobBucketProps' defaults */
  readonly jobBucketProps?: JobBucketProps;
  /** Rows per model run. @default 256 */
  readonly batchSize?: number;
  /** The JSONL key or CSV column that holds a row's id. @default 'id' (else the row number) */
  readonly idField?: string;
  /**
   * Inputs up to this size are predicted in one Lambda invocation; bigger ones by the Distributed Map. 50 MiB
   * of 40 to 100 byte rows is 0.5 to 1.3 million rows: well inside Lambda's 15 minutes for a tabular model
   * (iris streams 1 million rows, 38 MiB, in ~7 s here), but lower it for a model slower than ~0.5 ms a row.
   * @default 50 MiB
   */
  readonly largeJobBytes?: number;
  /** Batches the Distributed Map runs at once. @default 10 */
  readonly maxConcurrency?: number;
  /** Rows per Distributed Map batch (ItemBatcher MaxItemsPerBatch); also capped at 240 KiB. @default 1000 */
  readonly itemsPerBatch?: number;
  /**
   * Percentage of Distributed Map batches that may fail (after retries) before the job fails. Bad rows never
   * fail a batch (they go to the errors file), so a failed batch is a fault whose rows have no prediction and
   * no error line: by default one fails the job, and it shows in the summary and the alarms.
   * @default 0
   */
  readonly toleratedFailurePercentage?: number;
  /** The longest a Distributed Map job may run. @default Duration.hours(24) */
  readonly jobTimeout?: cdk.Duration;
  /** Run a job on a schedule. @default - jobs run when an input is put */
  readonly schedule?: BatchSchedule;
  /**
   * The object function and the batch function: memory, timeout, limits, tracing, logs.
   * @default - ModelFunction's, but a 15-minute timeout for the object function and 5 minutes for a batch
   */
  readonly functionProps?: ModelFunctionOptions;
  /** Where the alarms notify. @default - alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /** Retention of the state machine's and the summary function's logs. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** X-Ray tracing of the state machine. @default false */
  readonly tracingEnabled?: boolean;
}

/**
 * Batch predictions on S3 objects. Put a CSV or JSON Lines file under `input/` of the job bucket and the
 * object function predicts it (the same core and validation as the online path), writing
 * `output/<job>/predictions.jsonl`, `errors.jsonl` (bad rows, with line and reason) and `summary.json`.
 * An input over `largeJobBytes` is handed to a Step Functions Distributed Map, which reads it with an S3
 * ItemReader and predicts batches in parallel (`output/<job>/parts/`), then writes the summary.
 */
export class BatchInference extends Construct {
  public readonly jobBucket: s3.IBucket;
  /** The access log bucket this construct created, if it made one. */
  public readonly accessLogsBucket?: s3.IBucket;
  /** The model bucket (created or wrapped), when the model is published here. */
  public readonly modelBucket?: ModelBucket;
  /** The model version in S3, unless the model is bundled. */
  public readonly artifact?: IModelVersion;
  /** Runs small jobs, and starts large ones; invoked by S3 notifications and the schedule. */
  public readonly objectFunction: ModelFunction;
  /** Predicts one Distributed Map batch. */
  public readonly itemsFunction: ModelFunction;
  /** Adds up a Distributed Map job and writes its summary. */
  public readonly summaryFunction: lambda.Function;
  public readonly stateMachine: sfn.StateMachine;
  /** Object function invocations that failed after Lambda's retries. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The rule that starts a job for each object created under `input/` (S3's EventBridge notifications). */
  public readonly inputRule: events.Rule;
  public readonly scheduleRule?: events.Rule;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly modelName: string;

  constructor(scope: Construct, id: string, props: BatchInferenceProps) {
    super(scope, id);
    const owner = `BatchInference ${this.node.path}`;
    const fnProps = props.functionProps ?? {};
    const maxBatch = fnProps.limits?.maxBatch ?? DEFAULT_MAX_BATCH;
    const batchSize = props.batchSize ?? 256;
    checkPositiveInteger(owner, 'batchSize', batchSize);
    if (batchSize > maxBatch) {
      throw new Error(
        `${owner}: batchSize ${batchSize} is over the runtime's maxBatch ${maxBatch}; lower it or raise functionProps.limits.maxBatch`,
      );
    }
    const largeJobBytes = props.largeJobBytes ?? 50 * 1024 * 1024;
    checkPositiveInteger(owner, 'largeJobBytes', largeJobBytes);
    const maxConcurrency = props.maxConcurrency ?? 10;
    checkPositiveInteger(owner, 'maxConcurrency', maxConcurrency);
    if (maxConcurrency > 10_000) {
      throw new Error(
        `${owner}: maxConcurrency must be at most 10000 (Distributed Map's), got ${maxConcurrency}`,
      );
    }
    const itemsPerBatch = props.itemsPerBatch ?? 1000;
    checkPositiveInteger(owner, 'itemsPerBatch', itemsPerBatch);
    const tolerated = props.toleratedFailurePercentage ?? 0;
    if (!(tolerated >= 0 && tolerated <= 100)) {
      throw new Error(`${owner}: toleratedFailurePercentage must be 0 to 100, got ${tolerated}`);
    }
    const jobTimeout = props.jobTimeout ?? cdk.Duration.hours(24);
    if (jobTimeout.toSeconds() < 60 || jobTimeout.toSeconds() > 365 * 24 * 3600) {
      throw new Error(`${owner}: jobTimeout must be 1 minute to 1 year, got ${jobTimeout.toHumanString()}`);
    }
    if (props.idField !== undefined && props.idField.trim() === '') {
      throw new Error(`${owner}: idField must not be empty`);
    }
    if (props.existingJobBucket && props.jobBucketProps) {
      throw new Error(`${owner}: give existingJobBucket or jobBucketProps, not both`);
    }
    if (props.schedule) checkInputKey(owner, props.schedule.inputKey);
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    const bound = bindModel(this, owner, props);
    this.modelBucket = bound.modelBucket;
    this.artifact = bound.artifact;
    if (props.existingJobBucket) {
      this.jobBucket = props.existingJobBucket;
    } else {
      const made = makeJobBucket(this, owner, props.jobBucketProps ?? {});
      this.jobBucket = made.bucket;
      this.accessLogsBucket = made.accessLogsBucket;
    }
    const bucket = this.jobBucket;
    const key = bucket.encryptionKey;

    const model = { artifact: bound.artifact, bundledModelDir: bound.bundledModelDir };
    const environment: Record<string, string> = { ...(fnProps.environment ?? {}) };
    if (props.idField !== undefined) environment.ID_FIELD = props.idField;
    this.objectFunction = new ModelFunction(this, 'ObjectFunction', {
      ...fnProps,
      ...model,
      handler: 'batch-object',
      purpose: 'batch job',
      timeout: fnProps.timeout ?? cdk.Duration.minutes(15),
      environment: {
        ...environment,
        BATCH_SIZE: String(batchSize),
        LARGE_JOB_BYTES: String(largeJobBytes),
      },
    });
    this.modelName = this.objectFunction.modelName;
    this.itemsFunction = new ModelFunction(this, 'ItemsFunction', {
      ...fnProps,
      ...model,
      handler: 'batch-items',
      purpose: 'batch job batches',
      timeout: fnProps.timeout ?? cdk.Duration.minutes(5),
      environment,
    });
    this.summaryFunction = this.makeSummaryFunction(logRetention);

    // Least privilege on keys: inputs read, each function's own outputs written.
    const objectArns = (...patterns: string[]) => patterns.map((p) => bucket.arnForObjects(p));
    const inputs = objectArns(`${BATCH_INPUT_PREFIX}*`);
    const jobFiles = objectArns(
      `${BATCH_OUTPUT_PREFIX}*/predictions.jsonl`,
      `${BATCH_OUTPUT_PREFIX}*/errors.jsonl`,
      `${BATCH_OUTPUT_PREFIX}*/summary.json`,
    );
    const parts = objectArns(`${BATCH_OUTPUT_PREFIX}*/parts/*`);
    const mapResults = objectArns(`${BATCH_OUTPUT_PREFIX}*/map/*`);
    const summaries = objectArns(`${BATCH_OUTPUT_PREFIX}*/summary.json`);
    grantObjects(this.objectFunction, ['s3:GetObject'], inputs, key, ['kms:Decrypt']);
    grantObjects(this.objectFunction, ['s3:PutObject', 's3:AbortMultipartUpload'], jobFiles, key, [
      // Multipart uploads to an SSE-KMS bucket decrypt their parts to complete.
      'kms:GenerateDataKey',
      'kms:Decrypt',
    ]);
    grantObjects(this.itemsFunction, ['s3:PutObject'], parts, key, ['kms:GenerateDataKey']);
    grantObjects(this.summaryFunction, ['s3:GetObject'], mapResults, key, ['kms:Decrypt']);
    grantObjects(this.summaryFunction, ['s3:PutObject'], summaries, key, ['kms:GenerateDataKey']);
    iam.Grant.addToPrincipal({
      grantee: this.summaryFunction,
      actions: ['s3:ListBucket'],
      resourceArns: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${BATCH_OUTPUT_PREFIX}*/map/*`] } },
    });
    const why = {
      input: 'Reads any job input: inputs are named by whoever submits the job, under input/ only.',
      output: `Writes the job's own result files; <job> is chosen per job at run time, under output/ only.`,
    };
    acknowledgeWildcards(this.objectFunction.role, [...inputs, ...jobFiles], `${why.input} ${why.output}`);
    acknowledgeWildcards(this.itemsFunction.role, parts, `Writes a batch's part files. ${why.output}`);
    acknowledgeWildcards(
      this.summaryFunction.grantPrincipal,
      [...mapResults, ...summaries],
      `Reads the Distributed Map's ResultWriter files and writes the summary. ${why.output}`,
    );

    this.stateMachine = this.makeStateMachine({
      bucket,
      maxConcurrency,
      itemsPerBatch,
      tolerated,
      jobTimeout,
      logRetention,
      tracing: props.tracingEnabled ?? false,
    });
    this.stateMachine.grantStartExecution(this.objectFunction);
    this.objectFunction.function.addEnvironment('STATE_MACHINE_ARN', this.stateMachine.stateMachineArn);

    // Async invokes (S3, EventBridge) are retried twice by Lambda; what still fails lands here.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: cdk.Duration.days(14),
    });
    cdk.Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter destination of the object function itself.',
    });
    this.objectFunction.function.configureAsyncInvoke({
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      retryAttempts: 2,
    });

    // S3's EventBridge notifications, not a bucket notification: those need a custom resource (CDK's runs on
    // Python) to edit the bucket at deploy. One rule for all of input/: an unknown extension then gets a FAILED
    // summary saying why, instead of nothing at all (and S3 suffix filters are case-sensitive). EventBridge
    // keys are not URL-encoded, so the rule hands the function the direct `{bucket, key}` request.
    this.inputRule = new events.Rule(this, 'InputCreated', {
      description: `model-deploy-kit: a batch job for each object put under ${BATCH_INPUT_PREFIX}`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [bucket.bucketName] },
          object: { key: events.Match.prefix(BATCH_INPUT_PREFIX) },
        },
      },
      targets: [
        new targets.LambdaFunction(this.objectFunction.function, {
          event: events.RuleTargetInput.fromObject({
            bucket: events.EventField.fromPath('$.detail.bucket.name'),
            key: events.EventField.fromPath('$.detail.object.key'),
          }),
          // Events EventBridge could not deliver at all land with the failed jobs.
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });

    if (props.schedule) {
      this.scheduleRule = new events.Rule(this, 'Schedule', {
        description: `model-deploy-kit: batch job on ${props.schedule.inputKey} with ${this.modelName}`,
        schedule: props.schedule.schedule,
        targets: [
          new targets.LambdaFunction(this.objectFunction.function, {
            event: events.RuleTargetInput.fromObject({
              bucket: bucket.bucketName,
              key: props.schedule.inputKey,
              scheduledAt: events.EventField.time,
            }),
          }),
        ],
      });
    }

    this.makeAlarms(props.alarmTopic);
  }

  /** No model here: the summary reads JSON from S3, so its bundle leaves onnxruntime out. */
  private makeSummaryFunction(logRetention: logs.RetentionDays): lambda.Function {
    return new RuntimeFunction(this, 'Summary', {
      handler: 'batch-summary',
      description: `model-deploy-kit: batch job summary for ${this.modelName} (Distributed Map)`,
      purpose: `Writes the summaries of ${this.modelName} Distributed Map batch jobs`,
      timeout: cdk.Duration.minutes(5),
      environment: {
        POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        // The metrics' model dimension, the same as the object function's.
        MODEL_NAME: this.modelName,
      },
      logRetention,
    }).function;
  }

  private makeStateMachine(o: {
    bucket: s3.IBucket;
    maxConcurrency: number;
    itemsPerBatch: number;
    tolerated: number;
    jobTimeout: cdk.Duration;
    logRetention: logs.RetentionDays;
    tracing: boolean;
  }): sfn.StateMachine {
    // ResultWriterV2 (with WriterConfig and bucket paths) is behind a feature flag; this scope turns it on
    // whatever the app's flags say.
    const scope = new Construct(this, 'Workflow');
    scope.node.setContext(cxapi.STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2, true);
    const input = (path: string) => sfn.JsonPath.stringAt(path);
    const summaryPayload = {
      bucket: input('$.bucket'),
      key: input('$.key'),
      job: input('$.job'),
      format: input('$.format'),
      startedAt: input('$$.Execution.StartTime'),
      executionArn: input('$$.Execution.Id'),
    };
    const summarize = new tasks.LambdaInvoke(scope, 'Summarize', {
      comment: 'Adds up the batches and writes output/<job>/summary.json',
      lambdaFunction: this.summaryFunction,
      payload: sfn.TaskInput.fromObject({
        ...summaryPayload,
        manifestKey: input('$.map.ResultWriterDetails.Key'),
      }),
      payloadResponseOnly: true,
    });
    const summarizeFailure = new tasks.LambdaInvoke(scope, 'SummarizeFailure', {
      comment: 'The Map failed: the summary says how far it got, then the execution fails',
      lambdaFunction: this.summaryFunction,
      payload: sfn.TaskInput.fromObject({ ...summaryPayload, error: sfn.JsonPath.objectAt('$.error') }),
      payloadResponseOnly: true,
    });
    const failed = new sfn.Fail(scope, 'JobFailed', { error: 'BatchJobFailed', causePath: '$.error' });
    summarizeFailure.next(failed);
    summarize.next(new sfn.Succeed(scope, 'JobSucceeded'));

    // The ItemReader's input type is fixed in the definition, so each format has its own Map.
    const makeMap = (format: 'csv' | 'jsonl', reader: sfn.IItemReader): sfn.DistributedMap => {
      const label = format === 'csv' ? 'Csv' : 'Jsonl';
      const map = new sfn.DistributedMap(scope, `Predict${label}`, {
        comment: `Predicts a ${format.toUpperCase()} input in batches`,
        itemReader: reader,
        itemSelector: {
          index: sfn.JsonPath.stringAt('$$.Map.Item.Index'),
          value: sfn.JsonPath.stringAt('$$.Map.Item.Value'),
        },
        itemBatcher: new sfn.ItemBatcher({
          maxItemsPerBatch: o.itemsPerBatch,
          maxInputBytesPerBatch: MAX_INPUT_BYTES_PER_BATCH,
          // Rendered as given: the '.$' keys are JSONPath.
          batchInput: { 'bucket.$': '$.bucket', 'job.$': '$.job', format },
        }),
        maxConcurrency: o.maxConcurrency,
        toleratedFailurePercentage: o.tolerated,
        // Bucket paths, not the bucket: CDK would grant its whole bucket; the grants below are by prefix.
        resultWriterV2: new sfn.ResultWriterV2({
          bucketNamePath: input('$.bucket'),
          prefix: input('$.resultPrefix'),
        }),
        resultPath: '$.map',
        label: `Predict${label}`,
      });
      const predict = new tasks.LambdaInvoke(scope, `Batch${label}`, {
        comment: 'Predicts one batch and writes its parts',
        lambdaFunction: this.itemsFunction.function,
        payloadResponseOnly: true,
        retryOnServiceExceptions: true,
      });
      // A burst of batches may meet the account's concurrency: wait, rather than fail the batch.
      predict.addRetry({
        errors: ['Lambda.TooManyRequestsException'],
        interval: cdk.Duration.seconds(2),
        backoffRate: 2,
        maxAttempts: 6,
      });
      map.itemProcessor(predict);
      map.addCatch(summarizeFailure, { resultPath: '$.error' });
      map.next(summarize);
      return map;
    };
    const readerProps = { bucketNamePath: input('$.bucket'), key: input('$.key') };
    const definition = new sfn.Choice(scope, 'Format', { comment: 'CSV or JSON Lines' })
      .when(
        sfn.Condition.stringEquals('$.format', 'csv'),
        makeMap('csv', new sfn.S3CsvItemReader({ ...readerProps, csvHeaders: sfn.CsvHeaders.useFirstRow() })),
      )
      .otherwise(makeMap('jsonl', new sfn.S3JsonLItemReader(readerProps)));

    const logGroup = new logs.LogGroup(scope, 'Logs', {
      retention: o.logRetention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const stateMachine = new sfn.StateMachine(scope, 'StateMachine', {
      comment: `model-deploy-kit: large batch jobs with ${this.modelName}`,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      stateMachineType: sfn.StateMachineType.STANDARD,
      timeout: o.jobTimeout,
      // Every state's events, but no payloads: rows may hold personal data.
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: o.tracing,
    });
    // The ItemReader reads inputs; the ResultWriter writes (multipart) and reads back its own files.
    const inputs = o.bucket.arnForObjects(`${BATCH_INPUT_PREFIX}*`);
    const results = o.bucket.arnForObjects(`${BATCH_OUTPUT_PREFIX}*/map/*`);
    grantObjects(stateMachine, ['s3:GetObject'], [inputs], o.bucket.encryptionKey, ['kms:Decrypt']);
    grantObjects(
      stateMachine,
      ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
      [results],
      o.bucket.encryptionKey,
      ['kms:GenerateDataKey', 'kms:Decrypt'],
    );
    const role = stateMachine.role;
    acknowledgeWildcards(
      role,
      [inputs, results],
      'Reads any job input under input/, and writes the Map Run results of a job named at run time under output/<job>/map/.',
    );
    for (const fn of [this.itemsFunction.function, this.summaryFunction]) {
      acknowledgeWildcards(
        role,
        [`${fn.functionArn}:*`],
        'LambdaInvoke may call the function and its versions; nothing else.',
      );
    }
    acknowledgeWildcards(
      role,
      ['*'],
      'CloudWatch Logs log delivery (the state machine logging), and X-Ray when tracing, have no resource-level permissions.',
    );
    const mapPolicy = stateMachine.node.tryFindChild('DistributedMapPolicy');
    if (mapPolicy instanceof iam.Policy) {
      const doc = cdk.Stack.of(this).resolve(mapPolicy.document.toJSON()) as {
        Statement: { Resource: unknown }[];
      };
      for (const statement of doc.Statement) {
        for (const resource of [statement.Resource].flat()) {
          const id = nagId(resource);
          if (!id.includes('*')) continue;
          cdk.Validations.of(mapPolicy).acknowledge({
            id: `AwsSolutions-IAM5[Resource::${id}]`,
            reason:
              "CDK's Distributed Map statements: describe, stop and redrive this state machine's own child executions, whose names Step Functions makes at run time.",
          });
        }
      }
    }
    if (!o.tracing) {
      cdk.Validations.of(stateMachine).acknowledge({
        id: 'AwsSolutions-SF2',
        reason: 'X-Ray tracing is opt-in (tracingEnabled); the state machine logs every state at ALL level.',
      });
    }
    return stateMachine;
  }

  private makeAlarms(topic: sns.ITopic | undefined): void {
    const period = cdk.Duration.minutes(5);
    const alarm = (id: string, description: string, metric: cloudwatch.IMetric) => {
      const a = thresholdAlarm(this, id, {
        metric,
        threshold: 1,
        description: `${this.node.path}: ${description}`,
        topic,
      });
      this.alarms.push(a);
      return a;
    };
    alarm('JobsFailedAlarm', 'a batch job failed (see its summary.json)', this.metricJobsFailed({ period }));
    alarm(
      'ExecutionsFailedAlarm',
      'a Distributed Map job execution failed',
      this.stateMachine.metricFailed({ period, statistic: 'Sum' }),
    );
    alarm(
      'ExecutionsTimedOutAlarm',
      'a Distributed Map job ran past jobTimeout',
      this.stateMachine.metricTimedOut({ period, statistic: 'Sum' }),
    );
    alarm(
      'ObjectFunctionErrorsAlarm',
      'the object function failed (Lambda retries it twice, then the dead-letter queue has it)',
      this.objectFunction.metricErrors({ period }),
    );
    alarm(
      'DeadLetterAlarm',
      'a job request failed all its retries and waits in the dead-letter queue',
      this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
    );
  }

  /** Lets the grantee submit jobs: put objects under `input/`. */
  public grantSubmitJobs(grantee: iam.IGrantable): iam.Grant {
    return this.jobBucket.grantPut(grantee, `${BATCH_INPUT_PREFIX}*`);
  }

  /** Lets the grantee read every job's results under `output/`. */
  public grantReadResults(grantee: iam.IGrantable): iam.Grant {
    return this.jobBucket.grantRead(grantee, `${BATCH_OUTPUT_PREFIX}*`);
  }

  /** Jobs that failed (EMF, both paths). */
  public metricJobsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.jobMetric('JobsFailed', props);
  }

  public metricJobsSucceeded(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.jobMetric('JobsSucceeded', props);
  }

  /** Rows with a prediction. */
  public metricRowsPredicted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.jobMetric('RowsPredicted', props);
  }

  /** Rows without one: bad rows, and the rows of failed batches. */
  public metricRowsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.jobMetric('RowsFailed', props);
  }

  private jobMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.objectFunction.metricRuntime(metricName, { statistic: 'Sum', ...props });
  }
}

/** A schedule's input key must be one the object function takes. */
function checkInputKey(owner: string, key: string): void {
  if (cdk.Token.isUnresolved(key)) return;
  const ext = key.slice(key.lastIndexOf('.')).toLowerCase();
  if (!key.startsWith(BATCH_INPUT_PREFIX) || key.includes('/../') || !BATCH_INPUT_EXTENSIONS.includes(ext)) {
    throw new Error(
      `${owner}: schedule.inputKey must be under ${BATCH_INPUT_PREFIX} and end ${BATCH_INPUT_EXTENSIONS.join(', ')}, got ${JSON.stringify(key)}`,
    );
  }
}

/** Object actions on exactly these key patterns, and the given key actions when the bucket has a key. */
function grantObjects(
  grantee: iam.IGrantable,
  actions: string[],
  resourceArns: string[],
  key: kms.IKey | undefined,
  keyActions: string[],
): void {
  iam.Grant.addToPrincipal({ grantee, actions, resourceArns });
  key?.grant(grantee, ...keyActions);
}

/** The job bucket, in its own scope (newPrivateBucket sets context there), with Object Created to EventBridge. */
function makeJobBucket(
  parent: Construct,
  owner: string,
  props: JobBucketProps,
): { bucket: s3.IBucket; accessLogsBucket?: s3.IBucket } {
  checkWholeDays(owner, 'jobBucketProps.inputExpiration', props.inputExpiration);
  checkWholeDays(owner, 'jobBucketProps.outputExpiration', props.outputExpiration);
  const lifecycleRules: s3.LifecycleRule[] = [];
  if (props.inputExpiration) {
    lifecycleRules.push({ prefix: BATCH_INPUT_PREFIX, expiration: props.inputExpiration });
  }
  if (props.outputExpiration) {
    lifecycleRules.push({ prefix: BATCH_OUTPUT_PREFIX, expiration: props.outputExpiration });
  }
  const { bucket, accessLogsBucket } = newPrivateBucket(new Construct(parent, 'Jobs'), props, {
    owner,
    propPrefix: 'jobBucketProps.',
    keyDescription: `Encrypts the batch job inputs and results in ${parent.node.path}`,
    accessLogsPrefix: 'job-bucket/',
    noncurrentVersionExpiration: cdk.Duration.days(30),
    lifecycleRules,
  });
  // Object Created events go to EventBridge, where the input rule picks them up. Set on the bucket itself:
  // `eventBridgeEnabled` would add CDK's notifications custom resource (a Python Lambda) to do the same.
  (bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
    eventBridgeConfiguration: { eventBridgeEnabled: true },
  };
  return { bucket, accessLogsBucket };
}

/** cdk-nag's spelling of a resolved value: references as `<Id>` or `<Id.Attr>`, other intrinsics as JSON. */
function nagId(v: unknown): string {
  if (typeof v === 'string') return v;
  const o = v as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Join'?: [string, unknown[]] };
  if (o.Ref !== undefined) return `<${o.Ref}>`;
  if (o['Fn::GetAtt'] !== undefined) return `<${o['Fn::GetAtt'][0]}.${o['Fn::GetAtt'][1]}>`;
  if (o['Fn::Join'] !== undefined) return o['Fn::Join'][1].map(nagId).join(o['Fn::Join'][0]);
  return JSON.stringify(v);
}
