import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { thresholdAlarm } from './alarms';
import type { DataCapture } from './data-capture';
import { METRICS_NAMESPACE, METRICS_SERVICE } from './model-function';
import { acknowledgeWildcards } from './nag';
import { RuntimeFunction } from './runtime-function';
import { checkPositiveInteger } from './validate';

/** PSI at or above which a column has drifted: the usual rule of thumb (0.1 to 0.2 moderate, above 0.2 major). */
export const DEFAULT_PSI_THRESHOLD = 0.2;

/** Drift alarm thresholds. */
export interface DriftThresholds {
  /** The highest PSI of any input feature. @default 0.2 */
  readonly featurePsi?: number;
  /** The highest PSI of any prediction column (the class mix, or a score's distribution). @default 0.2 */
  readonly predictionPsi?: number;
}

export interface DriftMonitorProps {
  /** Where the captured rows are, and where reports go. */
  readonly capture: DataCapture;
  /** The bucket that holds the model's versions (`<name>/<version>/model.json`, with the baselines). */
  readonly modelBucket: s3.IBucket;
  /** The model whose captures the job reads; each of its versions is compared with its own baseline. */
  readonly modelName: string;
  /** When the job runs. @default events.Schedule.rate(Duration.hours(1)) */
  readonly schedule?: events.Schedule;
  /**
   * How often the job runs: the period of its alarms and graphs, one data point each.
   * @default - the schedule's rate when it is a `rate(...)`, else one hour
   */
  readonly period?: cdk.Duration;
  /** The captures each run reads: the last `window` before the run, whole hours. @default Duration.hours(24) */
  readonly window?: cdk.Duration;
  /** A version with fewer captured rows in the window gets no PSI (too noisy), only its row count. @default 100 */
  readonly minRows?: number;
  /** @default - the defaults in DriftThresholds */
  readonly thresholds?: DriftThresholds;
  /** Where the alarms notify (alarm and OK). @default - no notification */
  readonly alarmTopic?: sns.ITopic;
  /** Periods the alarms look at. @default 1: each run is a full window's verdict */
  readonly evaluationPeriods?: number;
  /** Of `evaluationPeriods`, how many must breach. @default - evaluationPeriods */
  readonly datapointsToAlarm?: number;
  /** @default 1024 */
  readonly memorySize?: number;
  /** @default Duration.minutes(10) */
  readonly timeout?: cdk.Duration;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;

/** The period a `rate(...)` schedule runs at, or undefined for a cron. */
function rateOf(schedule: events.Schedule): cdk.Duration | undefined {
  const m = RATE.exec(schedule.expressionString);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? '';
  if (unit.startsWith('minute')) return cdk.Duration.minutes(n);
  if (unit.startsWith('hour')) return cdk.Duration.hours(n);
  return cdk.Duration.days(n);
}

/**
 * The scheduled drift job of one model: a Lambda (`lambda/handlers/drift.ts`) that reads the window's captured
 * rows from the capture bucket and each version's baseline from the model bucket, publishes PSI per feature,
 * prediction PSI and the class mix to CloudWatch (namespace `ModelDeployKit`), and writes a JSON report per
 * version under the capture's report prefix. Alarms on the highest feature PSI and the prediction PSI, and
 * on the job's own errors (a job that stops running is a monitor that fails quietly).
 */
export class DriftMonitor extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.IRole;
  public readonly logGroup: logs.ILogGroup;
  public readonly rule: events.Rule;
  public readonly modelName: string;
  public readonly thresholds: Required<DriftThresholds>;
  /** How often the job runs; its metrics' period. */
  public readonly period: cdk.Duration;
  public readonly featureDriftAlarm: cloudwatch.Alarm;
  public readonly predictionDriftAlarm: cloudwatch.Alarm;
  /** The job itself failed in a period. */
  public readonly jobErrorsAlarm: cloudwatch.Alarm;
  /** Every alarm above. */
  public readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: DriftMonitorProps) {
    super(scope, id);
    const owner = `DriftMonitor ${this.node.path}`;
    if (!cdk.Token.isUnresolved(props.modelName) && props.modelName.trim() === '') {
      throw new Error(`${owner}: modelName must not be empty`);
    }
    const thresholds = {
      featurePsi: props.thresholds?.featurePsi ?? DEFAULT_PSI_THRESHOLD,
      predictionPsi: props.thresholds?.predictionPsi ?? DEFAULT_PSI_THRESHOLD,
    };
    for (const [key, value] of Object.entries(thresholds)) {
      if (!Number.isFinite(value) || value <= 0) {
        throw new Error(`${owner}: thresholds.${key} must be a positive number (PSI), got ${value}`);
      }
    }
    this.thresholds = thresholds;
    const window = props.window ?? cdk.Duration.hours(24);
    const windowHours = window.toHours({ integral: false });
    if (!Number.isInteger(windowHours) || windowHours < 1 || windowHours > 14 * 24) {
      throw new Error(
        `${owner}: window must be whole hours from 1 hour to 14 days, got ${window.toHumanString()}`,
      );
    }
    const minRows = props.minRows ?? 100;
    checkPositiveInteger(owner, 'minRows', minRows);
    const schedule = props.schedule ?? events.Schedule.rate(cdk.Duration.hours(1));
    if (schedule.expressionString.trim() === '') {
      throw new Error(`${owner}: schedule must be a rate(...) or cron(...) expression, got an empty one`);
    }
    this.period = props.period ?? rateOf(schedule) ?? cdk.Duration.hours(1);
    const periodSeconds = this.period.toSeconds({ integral: false });
    if (!Number.isInteger(periodSeconds / 60) || periodSeconds < 60 || periodSeconds > 86400) {
      throw new Error(
        `${owner}: period must be whole minutes from 1 minute to 1 day (CloudWatch's alarm limits), got ${this.period.toHumanString()}`,
      );
    }
    const evaluationPeriods = props.evaluationPeriods ?? 1;
    checkPositiveInteger(owner, 'evaluationPeriods', evaluationPeriods);
    const datapointsToAlarm = props.datapointsToAlarm ?? evaluationPeriods;
    if (
      !Number.isInteger(datapointsToAlarm) ||
      datapointsToAlarm < 1 ||
      datapointsToAlarm > evaluationPeriods
    ) {
      throw new Error(
        `${owner}: datapointsToAlarm must be an integer from 1 to evaluationPeriods (${evaluationPeriods}), got ${datapointsToAlarm}`,
      );
    }
    if (evaluationPeriods * periodSeconds > 86400) {
      throw new Error(
        `${owner}: evaluationPeriods (${evaluationPeriods}) times period (${this.period.toHumanString()}) must be at most 1 day, CloudWatch's limit for an alarm`,
      );
    }
    this.modelName = props.modelName;
    const capture = props.capture;

    const job = new RuntimeFunction(this, 'Job', {
      handler: 'drift',
      description: `model-deploy-kit: drift of ${props.modelName} against its baselines, every ${this.period.toHumanString()}`,
      purpose: `Computes the drift of model ${props.modelName} from its captured rows`,
      timeout: props.timeout ?? cdk.Duration.minutes(10),
      memorySize: props.memorySize ?? 1024,
      logRetention: props.logRetention,
      environment: {
        POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
        CAPTURE_BUCKET: capture.bucket.bucketName,
        CAPTURE_PREFIX: capture.capturePrefix,
        REPORT_PREFIX: capture.reportPrefix,
        MODEL_BUCKET: props.modelBucket.bucketName,
        MODEL_NAME: props.modelName,
        WINDOW_HOURS: String(windowHours),
        MIN_ROWS: String(minRows),
        PSI_THRESHOLD: String(thresholds.featurePsi),
        METRIC_NAMESPACE: METRICS_NAMESPACE,
      },
    });
    this.function = job.function;
    this.role = job.role;
    this.logGroup = job.logGroup;

    capture.grantReadCaptures(job.role);
    capture.grantWriteReports(job.role);
    // Only the manifests (with the baselines), never the model bytes: `<name>/<version>/model.json`.
    const manifests = props.modelBucket.arnForObjects(`${props.modelName}/*/model.json`);
    iam.Grant.addToPrincipal({ grantee: job.role, actions: ['s3:GetObject'], resourceArns: [manifests] });
    props.modelBucket.encryptionKey?.grantDecrypt(job.role);
    job.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': METRICS_NAMESPACE } },
      }),
    );
    acknowledgeWildcards(
      job.role,
      [manifests],
      `Reads the manifest (model.json, with its baseline) of every version of model ${props.modelName}: captures name the version, and each is compared with its own baseline.`,
    );
    acknowledgeWildcards(
      job.role,
      ['*'],
      `cloudwatch:PutMetricData has no resource-level permissions; the cloudwatch:namespace condition holds it to ${METRICS_NAMESPACE}.`,
    );

    this.rule = new events.Rule(this, 'Schedule', {
      description: `model-deploy-kit: drift job of ${props.modelName}`,
      schedule,
      targets: [new targets.LambdaFunction(job.function, { retryAttempts: 2 })],
    });

    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, description: string) =>
      thresholdAlarm(this, id, {
        metric,
        threshold,
        description: `${props.modelName}: ${description}`,
        topic: props.alarmTopic,
        notifyOk: true,
        evaluationPeriods,
        datapointsToAlarm,
      });
    this.featureDriftAlarm = alarm(
      'FeatureDrift',
      this.metricMaxFeaturePsi(),
      thresholds.featurePsi,
      `input drift: a feature's PSI at or above ${thresholds.featurePsi} over the last ${window.toHumanString()} (see the drift report)`,
    );
    this.predictionDriftAlarm = alarm(
      'PredictionDrift',
      this.metricPredictionPsi(),
      thresholds.predictionPsi,
      `prediction drift: the predictions' PSI at or above ${thresholds.predictionPsi} over the last ${window.toHumanString()}`,
    );
    this.jobErrorsAlarm = alarm(
      'JobErrors',
      job.function.metricErrors({ statistic: 'Sum', period: this.period }),
      1,
      'the drift job failed: drift is not being measured',
    );
    this.alarms = [this.featureDriftAlarm, this.predictionDriftAlarm, this.jobErrorsAlarm];
  }

  /** One of the drift job's metrics for this model (dimension `model`, plus `extra`). */
  public metric(
    metricName: string,
    extra: Record<string, string> = {},
    props?: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { model: this.modelName, ...extra },
      statistic: 'Maximum',
      period: this.period,
      ...props,
    });
  }

  /** One feature's PSI, over all versions (Maximum). */
  public metricFeaturePsi(feature: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('FeaturePSI', { feature }, { label: `PSI ${feature}`, ...props });
  }

  /** The highest feature PSI of a run (Maximum). */
  public metricMaxFeaturePsi(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('MaxFeaturePSI', {}, props);
  }

  /** The predictions' PSI (Maximum). */
  public metricPredictionPsi(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('PredictionPSI', {}, props);
  }

  /** Rows the job found in its window (Maximum: each run counts the whole window). */
  public metricCapturedRows(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('CapturedRows', {}, props);
  }

  /** One class's share of the predictions, %. */
  public metricClassShare(className: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ClassShare', { class: className }, { label: className, ...props });
  }

  /**
   * Dashboard widgets: per-feature PSI and the class mix over time, found by SEARCH so features and classes
   * need not be known at synth; the prediction PSI with the captured rows; the threshold drawn on each.
   */
  public widgets(): cloudwatch.IWidget[] {
    // A dynamic label names each line the search finds by its own dimension (the feature, the class).
    const search = (dim: string, metricName: string) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},model,${dim}} MetricName="${metricName}" model="${this.modelName}"', 'Maximum', ${this.period.toSeconds()})`,
        usingMetrics: {},
        label: `\${PROP('Dim.${dim}')}`,
        period: this.period,
      });
    const line = (value: number, label: string): cloudwatch.HorizontalAnnotation => ({
      value,
      label,
      color: cloudwatch.Color.RED,
    });
    return [
      new cloudwatch.GraphWidget({
        title: 'Feature drift (PSI per feature)',
        left: [search('feature', 'FeaturePSI')],
        leftAnnotations: [line(this.thresholds.featurePsi, 'drift threshold')],
        leftYAxis: { min: 0 },
        width: 12,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Prediction class mix (%)',
        left: [search('class', 'ClassShare')],
        leftYAxis: { min: 0, max: 100 },
        stacked: true,
        width: 12,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Prediction drift (PSI) and captured rows',
        left: [
          this.metricPredictionPsi({ label: 'Prediction PSI' }),
          this.metricMaxFeaturePsi({ label: 'Highest feature PSI' }),
        ],
        right: [this.metricCapturedRows({ label: 'Captured rows in the window' })],
        leftAnnotations: [line(this.thresholds.predictionPsi, 'prediction drift threshold')],
        leftYAxis: { min: 0 },
        rightYAxis: { min: 0 },
        width: 12,
        height: 6,
      }),
    ];
  }
}
