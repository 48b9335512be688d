import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as destinations from 'aws-cdk-lib/aws-logs-destinations';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { newPrivateBucket, type ModelBucketProps } from './model-bucket';
import { runtimeMetric } from './model-function';
import { acknowledgeWildcards } from './nag';
import { RuntimeFunction } from './runtime-function';
import { checkWholeDays } from './validate';

/** The capture bucket this construct creates: the model bucket's settings, and a shorter version history. */
export interface CaptureBucketProps extends Omit<ModelBucketProps, 'existingBucket'> {
  /**
   * How long an overwritten or deleted (expired) object version is kept. Captures may hold personal data, so
   * an expired capture should not linger as a noncurrent version.
   * @default Duration.days(1)
   */
  readonly noncurrentVersionExpiration?: cdk.Duration;
}

export interface DataCaptureProps {
  /** Log groups whose capture lines to deliver. @default - none; add with addLogGroup */
  readonly logGroups?: logs.ILogGroup[];
  /**
   * Deliver into this bucket instead of a new one. Bring its KMS key with it (`s3.Bucket.fromBucketAttributes`)
   * so that Firehose and the readers may use it. Its expiry is its owner's to set: this construct adds none.
   * @default - a new bucket: KMS (a new key with rotation), versioned, SSL only, private, access logs,
   * `captures/` expiring after `retention` and `drift-reports/` after `reportRetention`
   */
  readonly existingBucket?: s3.IBucket;
  /** Settings for the bucket this construct creates. @default - CaptureBucketProps' defaults */
  readonly bucketProps?: CaptureBucketProps;
  /** How long captured rows (and records Firehose could not process) are kept. @default Duration.days(30) */
  readonly retention?: cdk.Duration;
  /** How long drift reports are kept. @default Duration.days(365) */
  readonly reportRetention?: cdk.Duration;
  /**
   * Firehose buffering before a file is written: the longest a captured row waits to reach S3. Dynamic
   * partitioning needs a size buffer of at least 64 MiB, so at low traffic this interval is what writes.
   * 60 seconds to 15 minutes.
   * @default Duration.minutes(5)
   */
  readonly bufferingInterval?: cdk.Duration;
  /** Retention of the transform function's and Firehose's error logs. @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

/** The capture lines' filter: what `CaptureRecord.mdk_capture` says. */
export const CAPTURE_FILTER_PATTERN = '{ $.mdk_capture = 1 }';

/**
 * Firehose hands the transform this much gzipped input at a time (0.2 to 3 MB is allowed). Kept small
 * because the output is decompressed and base64 and must fit Lambda's 6 MB response; the transform fails
 * any record that would not fit rather than the batch.
 */
export const CAPTURE_TRANSFORM_BUFFER_MB = 0.25;

/** Where Firehose files records it could not transform or deliver. */
export const CAPTURE_ERROR_PREFIX = 'capture-errors/';

const MIN_BUFFERING_SECONDS = 60;
const MAX_BUFFERING_SECONDS = 900;

/**
 * The transform as a Lambda processor whose buffer is under 1 MB: LambdaFunctionProcessor's buffer size is a
 * `Size` in whole mebibytes, so the parameters are written here.
 */
class CaptureTransformProcessor implements firehose.IDataProcessor {
  public readonly props: firehose.DataProcessorProps = {};
  private readonly inner: firehose.LambdaFunctionProcessor;

  constructor(fn: lambda.IFunction) {
    this.inner = new firehose.LambdaFunctionProcessor(fn);
  }

  public bind(scope: Construct, options: firehose.DataProcessorBindOptions): firehose.DataProcessorConfig {
    const config = this.inner.bind(scope, options);
    return {
      ...config,
      parameters: [
        { parameterName: 'RoleArn', parameterValue: options.role.roleArn },
        config.processorIdentifier,
        { parameterName: 'BufferSizeInMBs', parameterValue: String(CAPTURE_TRANSFORM_BUFFER_MB) },
        { parameterName: 'BufferIntervalInSeconds', parameterValue: '60' },
        { parameterName: 'NumberOfRetries', parameterValue: '3' },
      ],
    };
  }
}

/**
 * Data capture: the sampled rows an endpoint writes to its log (one `CaptureRecord` JSON line each) delivered
 * to S3. A subscription filter on each log group sends the capture lines to a Firehose delivery stream; its
 * Lambda transform keeps the capture records and names their model and version, and Firehose files them as
 * gzipped JSON lines under `captures/model=<m>/version=<v>/date=<yyyy-MM-dd>/` (the date Firehose received
 * them, UTC). The serving path makes no network call for any of it. Drift reports go to `drift-reports/`.
 */
export class DataCapture extends Construct {
  public readonly bucket: s3.IBucket;
  /** The bucket's KMS key, when it has one. */
  public readonly encryptionKey?: kms.IKey;
  /** The access log bucket this construct created, if it made one. */
  public readonly accessLogsBucket?: s3.IBucket;
  public readonly deliveryStream: firehose.DeliveryStream;
  /** Firehose's role: writes `captures/` and `capture-errors/`, invokes the transform, writes its error log. */
  public readonly deliveryRole: iam.Role;
  /** The Firehose data transformation (lambda/handlers/capture-transform.ts). */
  public readonly transform: lambda.Function;
  /** Where Firehose logs delivery and transformation errors. */
  public readonly deliveryLogGroup: logs.LogGroup;
  /** CloudWatch Logs' role for putting records into the stream, shared by every subscription. */
  public readonly subscriptionRole: iam.Role;
  public readonly capturePrefix = 'captures/';
  public readonly reportPrefix = 'drift-reports/';
  public readonly errorPrefix = CAPTURE_ERROR_PREFIX;
  private readonly subscriptions = new Map<string, logs.SubscriptionFilter>();

  constructor(scope: Construct, id: string, props: DataCaptureProps = {}) {
    super(scope, id);
    const owner = `DataCapture ${this.node.path}`;
    const retention = props.retention ?? cdk.Duration.days(30);
    const reportRetention = props.reportRetention ?? cdk.Duration.days(365);
    checkWholeDays(owner, 'retention', retention);
    checkWholeDays(owner, 'reportRetention', reportRetention);
    const bufferingInterval = props.bufferingInterval ?? cdk.Duration.minutes(5);
    const seconds = bufferingInterval.toSeconds({ integral: false });
    if (
      !cdk.Token.isUnresolved(seconds) &&
      (seconds < MIN_BUFFERING_SECONDS || seconds > MAX_BUFFERING_SECONDS || !Number.isInteger(seconds))
    ) {
      throw new Error(
        `${owner}: bufferingInterval must be whole seconds from 60 to 900 (dynamic partitioning's range), got ${bufferingInterval.toHumanString()}`,
      );
    }
    if (props.existingBucket && props.bucketProps) {
      throw new Error(`${owner}: give existingBucket or bucketProps, not both`);
    }
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;

    if (props.existingBucket) {
      this.bucket = props.existingBucket;
      this.encryptionKey = props.existingBucket.encryptionKey;
    } else {
      const made = makeCaptureBucket(this, owner, props.bucketProps ?? {}, {
        [this.capturePrefix]: retention,
        [CAPTURE_ERROR_PREFIX]: retention,
        [this.reportPrefix]: reportRetention,
      });
      this.bucket = made.bucket;
      this.encryptionKey = made.encryptionKey;
      this.accessLogsBucket = made.accessLogsBucket;
    }

    const transform = new RuntimeFunction(this, 'Transform', {
      handler: 'capture-transform',
      description: 'Keeps the capture records of CloudWatch Logs envelopes and names their model and version',
      purpose: 'Firehose data transformation for data capture: no AWS access beyond its own log group',
      // Firehose waits for it; a 0.25 MB buffer takes milliseconds.
      timeout: cdk.Duration.minutes(1),
      memorySize: 512,
      logRetention,
    });
    this.transform = transform.function;

    this.deliveryLogGroup = new logs.LogGroup(this, 'DeliveryLogs', {
      retention: logRetention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });

    // Firehose's S3 destination grants its role read and write on the whole bucket (reports included); this
    // role gets exactly what delivery needs, and the L2's own grants go to an immutable view of it.
    this.deliveryRole = new iam.Role(this, 'DeliveryRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': cdk.Stack.of(this).account } },
      }),
      description:
        'Firehose delivery of captured rows: writes captures/ and capture-errors/, invokes the transform',
    });
    this.grantDelivery(this.deliveryRole);
    const role = this.deliveryRole.withoutPolicyUpdates();

    this.deliveryStream = new firehose.DeliveryStream(this, 'Stream', {
      // Records wait at most `bufferingInterval` in Firehose; S3 holds them under the bucket's key.
      encryption: firehose.StreamEncryption.awsOwnedKey(),
      destination: new firehose.S3Bucket(this.bucket, {
        role,
        dataOutputPrefix: `${this.capturePrefix}model=!{partitionKeyFromLambda:model}/version=!{partitionKeyFromLambda:version}/date=!{timestamp:yyyy-MM-dd}/`,
        errorOutputPrefix: `${CAPTURE_ERROR_PREFIX}!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/`,
        dynamicPartitioning: { enabled: true },
        processors: [new CaptureTransformProcessor(this.transform)],
        compression: firehose.Compression.GZIP,
        bufferingInterval,
        bufferingSize: cdk.Size.mebibytes(64),
        loggingConfig: new firehose.EnableLogging(this.deliveryLogGroup),
      }),
    });
    // Firehose checks its role's access when the stream is created.
    this.deliveryStream.node.addDependency(this.deliveryRole);

    this.subscriptionRole = new iam.Role(this, 'SubscriptionRole', {
      assumedBy: new iam.ServicePrincipal('logs.amazonaws.com', {
        conditions: {
          // Any log group of this account and region: the subscriptions name theirs.
          StringLike: { 'aws:SourceArn': cdk.Stack.of(this).formatArn({ service: 'logs', resource: '*' }) },
        },
      }),
      description: 'CloudWatch Logs subscriptions: put capture lines into the data capture delivery stream',
    });

    for (const logGroup of props.logGroups ?? []) this.addLogGroup(logGroup);
  }

  /** Sends the log group's capture lines (`{ $.mdk_capture = 1 }`) to the stream. A log group may have two subscriptions. */
  public addLogGroup(logGroup: logs.ILogGroup): logs.SubscriptionFilter {
    // By name: two imports of one log group are one log group.
    const keyText = JSON.stringify(cdk.Stack.of(this).resolve(logGroup.logGroupName));
    const existing = this.subscriptions.get(keyText);
    if (existing) return existing;
    // Named after the log group, not the order of adding: removing one must not replace the others.
    const filter = new logs.SubscriptionFilter(this, `Subscription${cdk.Names.uniqueId(logGroup)}`, {
      logGroup,
      destination: new destinations.FirehoseDestination(this.deliveryStream, { role: this.subscriptionRole }),
      filterPattern: logs.FilterPattern.literal(CAPTURE_FILTER_PATTERN),
    });
    this.subscriptions.set(keyText, filter);
    return filter;
  }

  /** List and read the captured rows under `captures/`, and decrypt them. */
  public grantReadCaptures(grantee: iam.IGrantable): iam.Grant {
    return this.grantReadPrefix(
      grantee,
      this.capturePrefix,
      'Reads every captured row of the window it is given',
    );
  }

  /** Write drift reports under `drift-reports/`. */
  public grantWriteReports(grantee: iam.IGrantable): iam.Grant {
    const objects = this.bucket.arnForObjects(`${this.reportPrefix}*`);
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject'], resourceArns: [objects] });
    this.encryptionKey?.grant(grantee, 'kms:GenerateDataKey');
    acknowledgeWildcards(
      grantee.grantPrincipal,
      [objects],
      'Writes drift reports, one per model, version and run, under drift-reports/ only.',
    );
    return grant;
  }

  /** List and read drift reports under `drift-reports/`. */
  public grantReadReports(grantee: iam.IGrantable): iam.Grant {
    return this.grantReadPrefix(grantee, this.reportPrefix, 'Reads the drift reports of any model and run');
  }

  /** Records the stream received from the subscriptions (Sum). */
  public metricIncomingRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metricIncomingRecords({ statistic: 'Sum', ...props });
  }

  /** Bytes the stream received (Sum). */
  public metricIncomingBytes(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metricIncomingBytes({ statistic: 'Sum', ...props });
  }

  /** Share of S3 puts that succeeded, 0 to 1 (Minimum): below 1 means captures went to the error prefix or wait. */
  public metricDeliverySuccess(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metric('DeliveryToS3.Success', { statistic: 'Minimum', ...props });
  }

  /**
   * Share of S3 puts that failed, 0 to 1 (`1 - DeliveryToS3.Success`, worst in the period): above 0 means
   * captures are being retried, or went to `capture-errors/` once Firehose gave up.
   */
  public metricDeliveryFailures(props?: cloudwatch.MetricOptions): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      expression: '1 - success',
      usingMetrics: { success: this.metricDeliverySuccess(props) },
      label: props?.label ?? 'Failed share of capture deliveries to S3',
      period: props?.period,
    });
  }

  /** Age of the oldest record not yet in S3, seconds (Maximum): grows when delivery stalls. */
  public metricDataFreshness(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metric('DeliveryToS3.DataFreshness', { statistic: 'Maximum', ...props });
  }

  /** Records delivered to S3 (Sum). */
  public metricDeliveredRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metric('DeliveryToS3.Records', { statistic: 'Sum', ...props });
  }

  /** Share of transform invocations that succeeded, 0 to 1 (Minimum). */
  public metricTransformSuccess(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metric('ExecuteProcessing.Success', { statistic: 'Minimum', ...props });
  }

  /** Records the transform handed back, Ok or Dropped (Sum). */
  public metricTransformedRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metric('SucceedProcessing.Records', { statistic: 'Sum', ...props });
  }

  /** Time of each transform invocation, ms (p99). */
  public metricTransformDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deliveryStream.metric('ExecuteProcessing.Duration', { statistic: 'p99', ...props });
  }

  /**
   * Envelopes the transform failed (Sum, EMF): unreadable, an unsafe model or version name, or too large for
   * Lambda's response. Firehose files them under `capture-errors/processing-failed/`.
   */
  public metricTransformFailedRecords(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.transformMetric('CaptureRecordsFailed', props);
  }

  /** Captured rows handed to Firehose for S3 (Sum, EMF). */
  public metricCapturedRows(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.transformMetric('CaptureRowsDelivered', props);
  }

  private transformMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return runtimeMetric(
      metricName,
      { stream: this.deliveryStream.deliveryStreamName },
      { statistic: 'Sum', ...props },
    );
  }

  private grantReadPrefix(grantee: iam.IGrantable, prefix: string, reason: string): iam.Grant {
    const objects = this.bucket.arnForObjects(`${prefix}*`);
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [objects] });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
    });
    this.encryptionKey?.grantDecrypt(grantee);
    acknowledgeWildcards(grantee.grantPrincipal, [objects], `${reason}, under ${prefix} only.`);
    return grant;
  }

  /** What Firehose needs to deliver: the destination prefixes, the key, the transform and its error log. */
  private grantDelivery(role: iam.Role): void {
    const objects = [this.capturePrefix, CAPTURE_ERROR_PREFIX].map((p) => this.bucket.arnForObjects(`${p}*`));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
        resources: objects,
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
        resources: [this.bucket.bucketArn],
      }),
    );
    this.encryptionKey?.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction', 'lambda:GetFunctionConfiguration'],
        resources: [this.transform.functionArn],
      }),
    );
    this.deliveryLogGroup.grantWrite(role);
    acknowledgeWildcards(
      role,
      objects,
      'Firehose names each object itself (partition, date, a unique suffix), under captures/ and capture-errors/ only.',
    );
  }
}

/** The capture bucket, in its own scope (newPrivateBucket sets context there), each prefix expiring after its own time. */
function makeCaptureBucket(
  parent: Construct,
  owner: string,
  props: CaptureBucketProps,
  expiry: Record<string, cdk.Duration>,
): { bucket: s3.Bucket; encryptionKey?: kms.IKey; accessLogsBucket?: s3.IBucket } {
  return newPrivateBucket(new Construct(parent, 'Captures'), props, {
    owner,
    propPrefix: 'bucketProps.',
    keyDescription: `Encrypts the captured rows and drift reports of ${parent.node.path}`,
    accessLogsPrefix: 'capture-bucket/',
    // Captures may hold personal data: an expired one should not linger as a noncurrent version.
    noncurrentVersionExpiration: cdk.Duration.days(1),
    lifecycleRules: Object.entries(expiry).map(([prefix, expiration]) => ({ prefix, expiration })),
  });
}
