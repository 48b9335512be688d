import * as fs from 'node:fs';
import { Match } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as cdk from 'aws-cdk-lib';
import { InferenceApi } from '../../lib/inference-api';
import { ModelMonitoring, type ModelMonitoringProps } from '../../lib/model-monitoring';
import { OnnxContainerService } from '../../lib/onnx-container-service';
import { OnnxFunction } from '../../lib/onnx-function';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket } from '../../lib/model-bucket';
import { copyModel, IRIS_DIR, template, testStack } from '../support/cdk';

function build(
  props: Partial<ModelMonitoringProps> = {},
  fnProps: { reservedConcurrentExecutions?: number } = {},
) {
  const stack = testStack();
  const onnxFunction = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR, ...fnProps });
  const api = new InferenceApi(stack, 'Api', {
    integration: new apigw.LambdaIntegration(onnxFunction.alias),
  });
  const monitoring = new ModelMonitoring(stack, 'Monitoring', { onnxFunction, api, ...props });
  return { stack, monitoring, t: template(stack) };
}

/** The Fargate backend (a baked model) behind its API. */
function buildContainer(props: Partial<ModelMonitoringProps> = {}) {
  const stack = testStack();
  const containerService = new OnnxContainerService(stack, 'Server', { bakedModelDir: IRIS_DIR });
  const api = new InferenceApi(stack, 'Api', { backend: containerService.inferenceBackend() });
  const monitoring = new ModelMonitoring(stack, 'Monitoring', { containerService, api, ...props });
  return { stack, containerService, monitoring, t: template(stack) };
}

type AlarmProps = {
  AlarmDescription: string;
  Threshold: number;
  MetricName?: string;
  Namespace?: string;
  ExtendedStatistic?: string;
  Statistic?: string;
  Metrics?: unknown[];
};
function alarms(t: ReturnType<typeof template>): AlarmProps[] {
  return Object.values(t.findResources('AWS::CloudWatch::Alarm')).map(
    (a) => (a as { Properties: AlarmProps }).Properties,
  );
}
function alarm(t: ReturnType<typeof template>, describes: string): AlarmProps {
  const found = alarms(t).filter((a) => a.AlarmDescription.includes(describes));
  expect(found).toHaveLength(1);
  return found[0] as AlarmProps;
}

describe('ModelMonitoring', () => {
  test('eight alarms with the default thresholds, each notifying the topic on alarm and OK', () => {
    const { t, monitoring } = build();
    expect(alarms(t)).toHaveLength(8);
    expect(monitoring.alarms).toHaveLength(8);
    expect(monitoring.target5xxAlarm).toBeUndefined();
    expect(monitoring.cpuAlarm).toBeUndefined();
    expect(alarm(t, 'Lambda errors').Threshold).toBe(1);
    expect(alarm(t, 'throttles').Threshold).toBe(1);
    expect(alarm(t, 'Lambda p99 duration').Threshold).toBe(1000);
    expect(alarm(t, 'API 5XX').Threshold).toBe(1);
    expect(alarm(t, 'API 4XX').Threshold).toBe(10);
    expect(alarm(t, 'API p99 latency').Threshold).toBe(2000);
    // no reserved concurrency: 80% of the default account limit of 1000
    expect(alarm(t, 'concurrency').Threshold).toBe(800);
    expect(alarm(t, 'could not load the model').Threshold).toBe(1);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      EvaluationPeriods: 3,
      DatapointsToAlarm: 2,
      TreatMissingData: 'notBreaching',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    for (const a of Object.values(t.findResources('AWS::CloudWatch::Alarm'))) {
      const p = (a as { Properties: { AlarmActions: unknown[]; OKActions: unknown[] } }).Properties;
      expect(p.AlarmActions).toHaveLength(1);
      expect(p.OKActions).toEqual(p.AlarmActions);
    }
    // error rates are math over two metrics; the rest are plain metrics
    expect(JSON.stringify(alarm(t, 'Lambda errors').Metrics)).toContain('100 * errors / invocations');
    expect(alarm(t, 'could not load the model')).toMatchObject({
      MetricName: 'ModelLoadFailures',
      Namespace: 'ModelDeployKit',
    });
  });

  test('the topic it creates is KMS-encrypted, SSL only, and CloudWatch may use its key', () => {
    const { t } = build();
    t.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('TopicKey'), 'Arn'] },
    });
    expect(JSON.stringify(t.findResources('AWS::SNS::TopicPolicy'))).toContain('aws:SecureTransport');
    expect(JSON.stringify(t.findResources('AWS::KMS::Key'))).toContain('cloudwatch.amazonaws.com');
  });

  test('thresholds, periods and the concurrency limit are props', () => {
    const { t } = build(
      {
        thresholds: { errorRatePercent: 5, p99LatencyMs: 4000, concurrencyPercent: 50 },
        evaluationPeriods: 5,
        datapointsToAlarm: 5,
      },
      { reservedConcurrentExecutions: 40 },
    );
    expect(alarm(t, 'Lambda errors').Threshold).toBe(5);
    expect(alarm(t, 'API p99 latency').Threshold).toBe(4000);
    expect(alarm(t, 'concurrency').Threshold).toBe(20);
    expect(alarm(t, 'API 4XX').Threshold).toBe(10);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { EvaluationPeriods: 5, DatapointsToAlarm: 5 });
  });

  test('the period and the account concurrency limit are props', () => {
    const { t } = build({ period: cdk.Duration.minutes(1), accountConcurrencyLimit: 3000 });
    expect(alarm(t, 'concurrency').Threshold).toBe(2400);
    expect(alarm(t, 'throttles')).toMatchObject({ Period: 60 });
    expect(alarm(t, 'throttles').AlarmDescription).toContain('in 1 minute');
  });

  test('a topic can be brought in; no topic or key is created', () => {
    const stack = testStack();
    const topic = sns.Topic.fromTopicArn(stack, 'Ops', 'arn:aws:sns:us-east-1:123456789012:ops');
    const onnxFunction = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR });
    const m = new ModelMonitoring(stack, 'Monitoring', { onnxFunction, alarmTopic: topic });
    const t = template(stack);
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.resourceCountIs('AWS::KMS::Key', 0);
    expect(m.alarmTopic).toBe(topic);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'],
    });
    // without an API: only the five function alarms
    expect(m.alarms).toHaveLength(5);
    expect(m.api5xxAlarm).toBeUndefined();
  });

  test('the dashboard graphs the API, the function and the model run, and lists the alarms', () => {
    const { t } = build();
    const body = JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'));
    for (const text of [
      'API latency',
      'Lambda duration',
      'Model run',
      'InferenceLatency',
      'Concurrency',
      'alarms',
    ]) {
      expect(body).toContain(text);
    }
    const none = build({ dashboard: false }).t;
    none.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });

  test('the dashboard draws p50, p90 and p99 of API latency, Lambda duration, and the runtime request and model run', () => {
    const { t } = build();
    const body = JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'));
    for (const name of ['Latency', 'Duration', 'RequestLatency', 'InferenceLatency']) {
      for (const stat of ['p50', 'p90', 'p99']) expect(body).toContain(`${name} ${stat}`);
    }
    expect(body).toContain('Request in the runtime (ms)');
    // the runtime's EMF metrics, by model
    expect(body).toContain('\\"ModelDeployKit\\",\\"RequestLatency\\",\\"model\\",\\"iris\\"');
  });

  test('addWidgets and addDashboardAlarms put more on the same dashboard, without making them release alarms', () => {
    const stack = testStack();
    const onnxFunction = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR });
    const monitoring = new ModelMonitoring(stack, 'Monitoring', { onnxFunction });
    const extra = new cdk.aws_cloudwatch.Alarm(stack, 'Extra', {
      metric: new cdk.aws_cloudwatch.Metric({ namespace: 'ModelDeployKit', metricName: 'MaxFeaturePSI' }),
      threshold: 0.2,
      evaluationPeriods: 1,
    });
    monitoring.addWidgets(new cdk.aws_cloudwatch.TextWidget({ markdown: '# Drift below', width: 24 }));
    monitoring.addDashboardAlarms(extra);
    const t = template(stack);
    const body = JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'));
    expect(body).toContain('# Drift below');
    const extraId = Object.keys(t.findResources('AWS::CloudWatch::Alarm')).find((id) =>
      id.startsWith('Extra'),
    );
    // the status widget lists the monitoring's alarms and the extra one
    expect(body).toContain(`{"Fn::GetAtt":["${extraId}","Arn"]}`);
    expect(monitoring.alarms).toHaveLength(5);
    expect(monitoring.alarms).not.toContain(extra);
    expect(monitoring.releaseAlarms).not.toContain(extra);
    // no dashboard: nothing to add to, and no error
    const off = build({ dashboard: false }).monitoring;
    expect(() => off.addWidgets(new cdk.aws_cloudwatch.TextWidget({ markdown: 'x' }))).not.toThrow();
    expect(off.dashboard).toBeUndefined();
  });

  test('an A/B function: error-rate and p99 alarms per variant on its executed version, and traffic per variant', () => {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const next = copyModel({ manifest: (m) => (m.version = '1.2.0') });
    const challenger = new ModelArtifact(stack, 'Next', { bucket: models.bucket, modelDir: next });
    fs.rmSync(next, { recursive: true, force: true });
    const onnxFunction = new OnnxFunction(stack, 'Inference', {
      bundledModelDir: IRIS_DIR,
      challenger: { model: challenger, weight: 0.25, name: 'v1-2' },
    });
    const monitoring = new ModelMonitoring(stack, 'Monitoring', {
      onnxFunction,
      thresholds: { errorRatePercent: 3, p99DurationMs: 700 },
    });
    expect(Object.keys(monitoring.variantAlarms)).toEqual(['primary', 'v1-2']);
    expect(monitoring.alarms).toEqual(
      expect.arrayContaining(
        Object.values(monitoring.variantAlarms).flatMap((a) => [a.errorRate, a.duration]),
      ),
    );
    const t = template(stack);
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => (a as { Properties: AlarmProps }).Properties,
    );
    const errorRate = alarms.find((a) =>
      a.AlarmDescription.includes('variant v1-2 (model 1.2.0): Lambda errors'),
    );
    expect(errorRate?.Threshold).toBe(3);
    expect(JSON.stringify(errorRate?.Metrics)).toContain('ExecutedVersion');
    const duration = alarms.find((a) =>
      a.AlarmDescription.includes('variant primary (model 1.1.0): Lambda p99'),
    );
    expect(duration?.Threshold).toBe(700);
    const metric = JSON.stringify(duration);
    for (const text of ['"MetricName":"Duration"', '"Stat":"p99"', 'ExecutedVersion', ':live']) {
      expect(metric).toContain(text);
    }
    const body = JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'));
    expect(body).toContain('Invocations per variant');
    expect(body).toContain('Invocations (v1-2)');
    // One model, no variant alarms.
    expect(build().monitoring.variantAlarms).toEqual({});
  });

  test('a container backend: alarms on task 5XX, response time, unhealthy tasks, CPU, memory, failed loads', () => {
    const { t, monitoring, containerService } = buildContainer();
    expect(alarms(t)).toHaveLength(9);
    expect(monitoring.alarms).toHaveLength(9);
    expect(JSON.stringify(alarm(t, 'container 5XX').Metrics)).toContain('100 * errors / requests');
    expect(alarm(t, 'container 5XX').Threshold).toBe(1);
    // the load balancer reports seconds
    expect(alarm(t, 'container p99 response time at or above 1000 ms')).toMatchObject({
      Threshold: 1,
      MetricName: 'TargetResponseTime',
      ExtendedStatistic: 'p99',
    });
    expect(alarm(t, 'failing the load balancer health check')).toMatchObject({
      Threshold: 1,
      MetricName: 'UnHealthyHostCount',
      Statistic: 'Maximum',
    });
    expect(alarm(t, 'task CPU')).toMatchObject({ Threshold: 85, MetricName: 'CPUUtilization' });
    expect(alarm(t, 'task memory')).toMatchObject({ Threshold: 85, MetricName: 'MemoryUtilization' });
    expect(alarm(t, 'could not load the model')).toMatchObject({
      Threshold: 1,
      Namespace: 'ModelDeployKit',
      MetricName: containerService.metricModelLoadFailures().metricName,
    });
    // the API alarms are the same as with a Lambda; the Lambda ones are not there
    expect(alarm(t, 'API 5XX').Threshold).toBe(1);
    expect(alarm(t, 'API p99 latency').Threshold).toBe(2000);
    expect(monitoring.errorRateAlarm).toBeUndefined();
    expect(monitoring.concurrencyAlarm).toBeUndefined();
    expect(monitoring.target5xxAlarm).toBeDefined();
    for (const a of alarms(t)) expect(a.AlarmDescription).toMatch(/^iris: /);
  });

  test('a container backend: thresholds are props', () => {
    const { t } = buildContainer({
      thresholds: {
        target5xxRatePercent: 5,
        p99TargetResponseTimeMs: 250,
        unhealthyHosts: 2,
        cpuUtilizationPercent: 90,
        memoryUtilizationPercent: 75,
        modelLoadFailures: 3,
      },
    });
    expect(alarm(t, 'container 5XX').Threshold).toBe(5);
    expect(alarm(t, 'container p99 response time at or above 250 ms').Threshold).toBe(0.25);
    expect(alarm(t, 'failing the load balancer health check').Threshold).toBe(2);
    expect(alarm(t, 'task CPU').Threshold).toBe(90);
    expect(alarm(t, 'task memory').Threshold).toBe(75);
    expect(alarm(t, 'could not load the model').Threshold).toBe(3);
  });

  test('a container backend: the dashboard graphs the load balancer and the tasks', () => {
    const body = JSON.stringify(buildContainer().t.findResources('AWS::CloudWatch::Dashboard'));
    for (const text of [
      'API latency',
      'Load balancer requests and 5XX',
      'Container response time',
      'Task CPU and memory',
      'Requests per task',
      'alarms',
      'Response time p50',
      'Response time p90',
      'Response time p99',
      'Request in the server (ms)',
      'RequestLatency p90',
      'InferenceLatency p99',
    ]) {
      expect(body).toContain(text);
    }
    expect(body).not.toContain('Lambda duration');
  });

  test('exactly one backend: both or neither is refused', () => {
    const stack = testStack();
    const onnxFunction = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR });
    const containerService = new OnnxContainerService(stack, 'Server', { bakedModelDir: IRIS_DIR });
    expect(() => new ModelMonitoring(stack, 'Both', { onnxFunction, containerService })).toThrow(
      /give exactly one of onnxFunction or containerService, got both/,
    );
    expect(() => new ModelMonitoring(stack, 'Neither', {})).toThrow(
      /give exactly one of onnxFunction or containerService, got neither/,
    );
  });

  test.each<[string, Partial<ModelMonitoringProps>, RegExp]>([
    [
      'a negative threshold',
      { thresholds: { throttles: -1 } },
      /thresholds.throttles must be a positive number, got -1/,
    ],
    [
      'a rate over 100%',
      { thresholds: { api5xxRatePercent: 150 } },
      /thresholds.api5xxRatePercent is a percentage, at most 100, got 150/,
    ],
    [
      'more datapoints than periods',
      { evaluationPeriods: 2, datapointsToAlarm: 3 },
      /datapointsToAlarm must be an integer from 1 to evaluationPeriods \(2\), got 3/,
    ],
    ['zero periods', { evaluationPeriods: 0 }, /evaluationPeriods must be a positive integer, got 0/],
    [
      'a CPU threshold over 100%',
      { thresholds: { cpuUtilizationPercent: 101 } },
      /thresholds.cpuUtilizationPercent is a percentage, at most 100, got 101/,
    ],
    [
      'a zero response time',
      { thresholds: { p99TargetResponseTimeMs: 0 } },
      /thresholds.p99TargetResponseTimeMs must be a positive number, got 0/,
    ],
  ])('%s is refused with a message naming it', (_name, props, message) => {
    const stack: cdk.Stack = testStack();
    const onnxFunction = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR });
    expect(() => new ModelMonitoring(stack, 'Monitoring', { onnxFunction, ...props })).toThrow(message);
  });
});
