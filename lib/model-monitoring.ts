import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { InferenceApi } from './inference-api';
import type { OnnxContainerService } from './onnx-container-service';
import type { OnnxFunction } from './onnx-function';
import { thresholdAlarm } from './alarms';
import { checkPositiveInteger } from './validate';

/** Alarm thresholds. Every alarm is created; a field left out takes its default. */
export interface AlarmThresholds {
  /** Lambda errors as a % of invocations. @default 1 */
  readonly errorRatePercent?: number;
  /** Lambda throttles in one period. @default 1 */
  readonly throttles?: number;
  /** Lambda p99 duration, ms. @default 1000 */
  readonly p99DurationMs?: number;
  /** API 5XX responses as a % of requests. @default 1 */
  readonly api5xxRatePercent?: number;
  /** API 4XX responses as a % of requests: a client integration gone wrong. @default 10 */
  readonly api4xxRatePercent?: number;
  /** API p99 latency, ms. @default 2000 */
  readonly p99LatencyMs?: number;
  /** Concurrent executions as a % of the function's limit. @default 80 */
  readonly concurrencyPercent?: number;
  /** Failed model loads in one period (a Lambda instance answers 503; a task exits). @default 1 */
  readonly modelLoadFailures?: number;
  /** Container: task 5XX responses as a % of the load balancer's requests to them. @default 1 */
  readonly target5xxRatePercent?: number;
  /** Container: p99 of the load balancer's time to the tasks and back, ms. @default 1000 */
  readonly p99TargetResponseTimeMs?: number;
  /** Container: tasks failing the load balancer's health check. @default 1 */
  readonly unhealthyHosts?: number;
  /** Container: average task CPU, %; above what autoscaling holds, so it means scaling is not keeping up. @default 85 */
  readonly cpuUtilizationPercent?: number;
  /** Container: average task memory, %. @default 85 */
  readonly memoryUtilizationPercent?: number;
}

export interface ModelMonitoringProps {
  /** The Lambda backend. Give this or `containerService`. @default - none */
  readonly onnxFunction?: OnnxFunction;
  /** The Fargate backend. Give this or `onnxFunction`. @default - none */
  readonly containerService?: OnnxContainerService;
  /** @default - no API alarms or graphs */
  readonly api?: InferenceApi;
  /** @default - the defaults in AlarmThresholds */
  readonly thresholds?: AlarmThresholds;
  /** @default Duration.minutes(5) */
  readonly period?: cdk.Duration;
  /**
   * Periods that must breach, out of `evaluationPeriods`, before an alarm fires.
   * @default 2
   */
  readonly datapointsToAlarm?: number;
  /** @default 3 */
  readonly evaluationPeriods?: number;
  /**
   * The account's concurrency limit, for a function with no reserved concurrency.
   * @default 1000, the default Lambda quota
   */
  readonly accountConcurrencyLimit?: number;
  /**
   * Where alarms notify (alarm and OK).
   * @default - a new topic, KMS-encrypted, SSL only
   */
  readonly alarmTopic?: sns.ITopic;
  /** @default true */
  readonly dashboard?: boolean;
  /**
   * Lambda backend: also watch the version this deploy publishes, minute by minute, for a release that
   * shifts traffic to it (see `releaseAlarms`).
   * @default false
   */
  readonly watchNewVersion?: boolean;
}

/** The latency percentiles the dashboard draws. */
const PERCENTILES = ['p50', 'p90', 'p99'] as const;

const DEFAULTS: Required<AlarmThresholds> = {
  errorRatePercent: 1,
  throttles: 1,
  p99DurationMs: 1000,
  api5xxRatePercent: 1,
  api4xxRatePercent: 10,
  p99LatencyMs: 2000,
  concurrencyPercent: 80,
  modelLoadFailures: 1,
  target5xxRatePercent: 1,
  p99TargetResponseTimeMs: 1000,
  unhealthyHosts: 1,
  cpuUtilizationPercent: 85,
  memoryUtilizationPercent: 85,
};

/**
 * CloudWatch alarms with typed thresholds, an SNS topic and a dashboard for one model endpoint: the
 * function's alarms for a Lambda backend, the service's and load balancer's for a container.
 */
export class ModelMonitoring extends Construct {
  public readonly alarmTopic: sns.ITopic;
  public readonly thresholds: Required<AlarmThresholds>;
  /** Lambda backend. */
  public readonly errorRateAlarm?: cloudwatch.Alarm;
  /** Lambda backend. */
  public readonly throttlesAlarm?: cloudwatch.Alarm;
  /** Lambda backend. */
  public readonly durationAlarm?: cloudwatch.Alarm;
  /** Lambda backend. */
  public readonly concurrencyAlarm?: cloudwatch.Alarm;
  /** Container backend. */
  public readonly target5xxAlarm?: cloudwatch.Alarm;
  /** Container backend. */
  public readonly targetResponseTimeAlarm?: cloudwatch.Alarm;
  /** Container backend. */
  public readonly unhealthyHostsAlarm?: cloudwatch.Alarm;
  /** Container backend. */
  public readonly cpuAlarm?: cloudwatch.Alarm;
  /** Container backend. */
  public readonly memoryAlarm?: cloudwatch.Alarm;
  public readonly modelLoadFailuresAlarm: cloudwatch.Alarm;
  public readonly api5xxAlarm?: cloudwatch.Alarm;
  public readonly api4xxAlarm?: cloudwatch.Alarm;
  public readonly latencyAlarm?: cloudwatch.Alarm;
  /**
   * Lambda backend with an A/B challenger: each variant's own error-rate and p99-duration alarms, by variant
   * name, on the alias's invocations that ran on that variant's version.
   */
  public readonly variantAlarms: Record<string, { errorRate: cloudwatch.Alarm; duration: cloudwatch.Alarm }> =
    {};
  /**
   * Lambda backend with `watchNewVersion`: the new version's error rate and p99 duration over one minute, so
   * a canary of a few minutes can still be stopped by them (the other alarms need 2 of 3 periods).
   */
  public readonly newVersionErrorRateAlarm?: cloudwatch.Alarm;
  public readonly newVersionDurationAlarm?: cloudwatch.Alarm;
  /** Every alarm above. */
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly dashboard?: cloudwatch.Dashboard;
  private readonly dashboardAlarms: cloudwatch.IAlarm[] = [];

  constructor(scope: Construct, id: string, props: ModelMonitoringProps) {
    super(scope, id);
    if ((props.onnxFunction === undefined) === (props.containerService === undefined)) {
      throw new Error(
        `ModelMonitoring ${this.node.path}: give exactly one of onnxFunction or containerService, got ${props.onnxFunction ? 'both' : 'neither'}`,
      );
    }
    const t = { ...DEFAULTS, ...(props.thresholds ?? {}) };
    for (const [key, value] of Object.entries(t)) {
      if (!Number.isFinite(value) || value <= 0) {
        throw new Error(
          `ModelMonitoring ${this.node.path}: thresholds.${key} must be a positive number, got ${value}`,
        );
      }
    }
    for (const key of [
      'errorRatePercent',
      'api5xxRatePercent',
      'api4xxRatePercent',
      'concurrencyPercent',
      'target5xxRatePercent',
      'cpuUtilizationPercent',
      'memoryUtilizationPercent',
    ] as const) {
      if (t[key] > 100) {
        throw new Error(
          `ModelMonitoring ${this.node.path}: thresholds.${key} is a percentage, at most 100, got ${t[key]}`,
        );
      }
    }
    const evaluationPeriods = props.evaluationPeriods ?? 3;
    const datapointsToAlarm = props.datapointsToAlarm ?? 2;
    checkPositiveInteger(`ModelMonitoring ${this.node.path}`, 'evaluationPeriods', evaluationPeriods);
    if (
      !Number.isInteger(datapointsToAlarm) ||
      datapointsToAlarm < 1 ||
      datapointsToAlarm > evaluationPeriods
    ) {
      throw new Error(
        `ModelMonitoring ${this.node.path}: datapointsToAlarm must be an integer from 1 to evaluationPeriods (${evaluationPeriods}), got ${datapointsToAlarm}`,
      );
    }
    this.thresholds = t;
    const period = props.period ?? cdk.Duration.minutes(5);
    const fn = props.onnxFunction;
    const service = props.containerService;
    const modelName = fn ? fn.modelName : (service as OnnxContainerService).modelName;

    this.alarmTopic = props.alarmTopic ?? this.createTopic();
    const alarm = (
      id: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
      periods = { evaluationPeriods, datapointsToAlarm },
    ): cloudwatch.Alarm => {
      const created = thresholdAlarm(this, id, {
        metric,
        threshold,
        ...periods,
        description: `${modelName}: ${description}`,
        topic: this.alarmTopic,
        notifyOk: true,
      });
      this.alarms.push(created);
      return created;
    };

    if (fn) {
      this.errorRateAlarm = alarm(
        'ErrorRate',
        fn.metricErrorRate({ period }),
        t.errorRatePercent,
        `Lambda errors at or above ${t.errorRatePercent}% of invocations`,
      );
      this.throttlesAlarm = alarm(
        'Throttles',
        fn.metricThrottles({ period }),
        t.throttles,
        `${t.throttles} or more Lambda throttles in ${period.toHumanString()}`,
      );
      this.durationAlarm = alarm(
        'Duration',
        fn.metricDuration({ period }),
        t.p99DurationMs,
        `Lambda p99 duration at or above ${t.p99DurationMs} ms`,
      );
      const concurrencyLimit = fn.reservedConcurrentExecutions ?? props.accountConcurrencyLimit ?? 1000;
      const concurrencyThreshold = Math.max(1, Math.floor((concurrencyLimit * t.concurrencyPercent) / 100));
      this.concurrencyAlarm = alarm(
        'Concurrency',
        fn.metricConcurrentExecutions({ period }),
        concurrencyThreshold,
        `concurrency at or above ${t.concurrencyPercent}% of its limit of ${concurrencyLimit}`,
      );
      this.modelLoadFailuresAlarm = alarm(
        'ModelLoadFailures',
        fn.metricModelLoadFailures({ period }),
        t.modelLoadFailures,
        'instances could not load the model and answer 503 (bad sha256, missing object, no read access)',
      );
      if (props.watchNewVersion) {
        const minute = cdk.Duration.minutes(1);
        const now = { evaluationPeriods: 1, datapointsToAlarm: 1 };
        this.newVersionErrorRateAlarm = alarm(
          'NewVersionErrorRate',
          fn.metricVersionErrorRate(fn.liveVersion, { period: minute }),
          t.errorRatePercent,
          `the version this deploy published: Lambda errors at or above ${t.errorRatePercent}% of its invocations in a minute`,
          now,
        );
        this.newVersionDurationAlarm = alarm(
          'NewVersionDuration',
          fn.metricVersion(fn.liveVersion, 'Duration', { statistic: 'p99', period: minute }),
          t.p99DurationMs,
          `the version this deploy published: Lambda p99 duration at or above ${t.p99DurationMs} ms in a minute`,
          now,
        );
      }
      if (fn.variants.length > 1) {
        for (const v of fn.variants) {
          // Construct ids from the name: alarm names are generated, the id only has to be unique.
          const id = `Variant${v.name.replace(/[^A-Za-z0-9]/g, '')}`;
          this.variantAlarms[v.name] = {
            errorRate: alarm(
              `${id}ErrorRate`,
              fn.metricVariantErrorRate(v.name, { period }),
              t.errorRatePercent,
              `variant ${v.name} (model ${v.modelVersion}): Lambda errors at or above ${t.errorRatePercent}% of its invocations`,
            ),
            duration: alarm(
              `${id}Duration`,
              fn.metricVariant(v.name, 'Duration', { statistic: 'p99', period }),
              t.p99DurationMs,
              `variant ${v.name} (model ${v.modelVersion}): Lambda p99 duration at or above ${t.p99DurationMs} ms`,
            ),
          };
        }
      }
    } else {
      const s = service as OnnxContainerService;
      this.target5xxAlarm = alarm(
        'Target5xxRate',
        s.metricTarget5xxRate({ period }),
        t.target5xxRatePercent,
        `container 5XX at or above ${t.target5xxRatePercent}% of load balancer requests`,
      );
      this.targetResponseTimeAlarm = alarm(
        'TargetResponseTime',
        s.metricTargetResponseTime({ period }),
        // The load balancer reports seconds.
        t.p99TargetResponseTimeMs / 1000,
        `container p99 response time at or above ${t.p99TargetResponseTimeMs} ms`,
      );
      this.unhealthyHostsAlarm = alarm(
        'UnhealthyHosts',
        s.metricUnhealthyHostCount({ period }),
        t.unhealthyHosts,
        `${t.unhealthyHosts} or more tasks failing the load balancer health check`,
      );
      this.cpuAlarm = alarm(
        'Cpu',
        s.metricCpuUtilization({ period }),
        t.cpuUtilizationPercent,
        `task CPU at or above ${t.cpuUtilizationPercent}%: autoscaling is not keeping up, or is at its maximum`,
      );
      this.memoryAlarm = alarm(
        'Memory',
        s.metricMemoryUtilization({ period }),
        t.memoryUtilizationPercent,
        `task memory at or above ${t.memoryUtilizationPercent}%`,
      );
      this.modelLoadFailuresAlarm = alarm(
        'ModelLoadFailures',
        s.metricModelLoadFailures({ period }),
        t.modelLoadFailures,
        'tasks could not load the model and exited (bad sha256, missing object, no read access)',
      );
    }
    if (props.api) {
      const api = props.api;
      this.api5xxAlarm = alarm(
        'Api5xxRate',
        api.metricErrorRate('5XX', { period }),
        t.api5xxRatePercent,
        `API 5XX at or above ${t.api5xxRatePercent}% of requests`,
      );
      this.api4xxAlarm = alarm(
        'Api4xxRate',
        api.metricErrorRate('4XX', { period }),
        t.api4xxRatePercent,
        `API 4XX at or above ${t.api4xxRatePercent}% of requests`,
      );
      this.latencyAlarm = alarm(
        'Latency',
        api.metricLatency({ period }),
        t.p99LatencyMs,
        `API p99 latency at or above ${t.p99LatencyMs} ms`,
      );
    }

    if (props.dashboard ?? true) {
      this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
        defaultInterval: cdk.Duration.hours(3),
      });
      const graph = (title: string, left: cloudwatch.IMetric[], right: cloudwatch.IMetric[] = []) =>
        new cloudwatch.GraphWidget({ title, left, right, width: 8, height: 6 });
      // p50, p90 and p99 of one latency metric, each labelled with its statistic.
      const percentiles = (metric: (stat: string) => cloudwatch.IMetric) =>
        PERCENTILES.map((stat) => metric(stat));
      const widgets: cloudwatch.IWidget[] = [];
      if (props.api) {
        const api = props.api;
        widgets.push(
          graph(
            'API requests and errors',
            [api.metricCount({ period })],
            [api.metricClientError({ period }), api.metricServerError({ period })],
          ),
          graph(
            'API latency (ms)',
            percentiles((statistic) =>
              api.metricLatency({ period, statistic, label: `Latency ${statistic}` }),
            ),
          ),
        );
      }
      if (fn) {
        const runtime = (metricName: string, statistic: string) =>
          fn.metricRuntime(metricName, { period, statistic, label: `${metricName} ${statistic}` });
        widgets.push(
          graph(
            'Lambda invocations, errors, throttles',
            [fn.metricInvocations({ period })],
            [fn.metricErrors({ period }), fn.metricThrottles({ period })],
          ),
          graph(
            'Lambda duration (ms)',
            percentiles((statistic) =>
              fn.metricDuration({ period, statistic, label: `Duration ${statistic}` }),
            ),
          ),
          graph(
            'Request in the runtime (ms)',
            percentiles((statistic) => runtime('RequestLatency', statistic)),
          ),
          graph(
            'Model run (ms) and rows per run',
            percentiles((statistic) => runtime('InferenceLatency', statistic)),
            [fn.metricBatchSize({ period })],
          ),
          graph('Concurrency', [fn.metricConcurrentExecutions({ period })]),
        );
        if (fn.variants.length > 1) {
          const each = (metricName: string, statistic: string) =>
            fn.variants.map((v) => fn.metricVariant(v.name, metricName, { statistic, period }));
          widgets.push(
            graph('Invocations per variant', each('Invocations', 'Sum'), each('Errors', 'Sum')),
            graph('p99 duration per variant (ms)', each('Duration', 'p99')),
          );
        }
      } else {
        const s = service as OnnxContainerService;
        const containerRuntime = (metricName: string, statistic: string) =>
          s.metricRuntime(metricName, { period, statistic, label: `${metricName} ${statistic}` });
        widgets.push(
          graph(
            'Load balancer requests and 5XX',
            [s.metricRequestCount({ period })],
            [s.metricTarget5xxCount({ period }), s.metricHttpCodeElb5xx({ period })],
          ),
          graph(
            'Container response time (s)',
            percentiles((statistic) =>
              s.metricTargetResponseTime({ period, statistic, label: `Response time ${statistic}` }),
            ),
          ),
          graph(
            'Task CPU and memory (%)',
            [s.metricCpuUtilization({ period }), s.metricMemoryUtilization({ period })],
            [s.metricUnhealthyHostCount({ period })],
          ),
          graph('Requests per task', [s.metricRequestCountPerTarget({ period })]),
          // The server's own EMF metrics, as the Lambda handler writes them.
          graph(
            'Request in the server (ms)',
            percentiles((statistic) => containerRuntime('RequestLatency', statistic)),
          ),
          graph(
            'Model run (ms) and rows per run',
            percentiles((statistic) => containerRuntime('InferenceLatency', statistic)),
            [containerRuntime('BatchSize', 'Average')],
          ),
        );
      }
      // The widget reads the list at synth: alarms added later (addDashboardAlarms) are shown too.
      this.dashboardAlarms.push(...this.alarms);
      widgets.push(
        new cloudwatch.AlarmStatusWidget({
          title: 'Alarms',
          alarms: this.dashboardAlarms,
          width: 8,
          height: 6,
        }),
      );
      this.dashboard.addWidgets(...widgets);
    }
  }

  /**
   * Adds widgets to the dashboard, below what is there, e.g. a DriftMonitor's `widgets()`. Nothing happens
   * when the dashboard is off.
   */
  public addWidgets(...widgets: cloudwatch.IWidget[]): void {
    this.dashboard?.addWidgets(...widgets);
  }

  /**
   * Shows more alarms in the dashboard's alarm status widget, e.g. a DriftMonitor's. They join neither
   * `alarms` nor `releaseAlarms`: drift is no reason to roll a release back.
   */
  public addDashboardAlarms(...alarms: cloudwatch.IAlarm[]): void {
    this.dashboardAlarms.push(...alarms);
  }

  /**
   * The alarms a release rolls back on: whatever says the new model or code is wrong (errors, slowness,
   * failed loads, 5XX), not what says there is too much traffic (throttles, concurrency, 4XX, CPU).
   * The API's 5XX alarm only for the container: the Lambda alias that CodeDeploy watches is behind the API,
   * so an alarm on the API would make the deployment group depend on itself.
   */
  public get releaseAlarms(): cloudwatch.Alarm[] {
    return [
      this.newVersionErrorRateAlarm,
      this.newVersionDurationAlarm,
      this.errorRateAlarm,
      this.durationAlarm,
      this.target5xxAlarm,
      this.unhealthyHostsAlarm,
      this.modelLoadFailuresAlarm,
      this.target5xxAlarm ? this.api5xxAlarm : undefined,
    ].filter((a): a is cloudwatch.Alarm => a !== undefined);
  }

  private createTopic(): sns.Topic {
    const key = new kms.Key(this, 'TopicKey', {
      description: `Encrypts the alarm topic of ${this.node.path}`,
      enableKeyRotation: true,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    // CloudWatch publishes to an encrypted topic only if it may use the key.
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    return new sns.Topic(this, 'AlarmTopic', {
      masterKey: key,
      enforceSSL: true,
      displayName: 'Model endpoint alarms',
    });
  }
}
