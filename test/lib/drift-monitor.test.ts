import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DataCapture } from '../../lib/data-capture';
import { DriftMonitor, type DriftMonitorProps } from '../../lib/drift-monitor';
import { ModelBucket } from '../../lib/model-bucket';
import { onlyResource, template, testApp, testStack } from '../support/cdk';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';

function build(props: Partial<DriftMonitorProps> = {}, stack = testStack()) {
  const models = new ModelBucket(stack, 'Models');
  const capture = new DataCapture(stack, 'Capture', {});
  const drift = new DriftMonitor(stack, 'Drift', {
    capture,
    modelBucket: models.bucket,
    modelName: 'iris',
    ...props,
  });
  return { stack, models, capture, drift };
}

/** The logical id in a resolved `Fn::GetAtt`. */
const logicalId = (resolved: unknown): string =>
  (resolved as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];

type AlarmProps = Record<string, unknown> & { AlarmDescription: string };
function alarms(t: ReturnType<typeof template>): AlarmProps[] {
  return Object.values(t.findResources('AWS::CloudWatch::Alarm')).map(
    (a) => (a as { Properties: AlarmProps }).Properties,
  );
}
function alarmOn(t: ReturnType<typeof template>, metricName: string): AlarmProps {
  const found = alarms(t).filter((a) => a.MetricName === metricName);
  expect(found).toHaveLength(1);
  return found[0] as AlarmProps;
}

/** The drift job's function: the one whose handler environment names a capture bucket. */
function jobFunction(t: ReturnType<typeof template>): { logicalId: string; props: Record<string, unknown> } {
  const found = Object.entries(t.findResources('AWS::Lambda::Function')).filter(([, f]) =>
    JSON.stringify(f).includes('CAPTURE_BUCKET'),
  );
  expect(found).toHaveLength(1);
  const [logicalId, f] = found[0] as [string, { Properties: Record<string, unknown> }];
  return { logicalId, props: f.Properties };
}

describe('DriftMonitor', () => {
  test('an hourly job over the last 24 hours: the environment the drift handler reads, Node.js 22 on arm64', () => {
    const { stack, capture, models, drift } = build();
    const t = template(stack);
    const fn = jobFunction(t);
    expect(fn.props).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'] });
    expect((fn.props.Environment as { Variables: Record<string, unknown> }).Variables).toEqual({
      POWERTOOLS_SERVICE_NAME: 'model-deploy-kit',
      CAPTURE_BUCKET: stack.resolve(capture.bucket.bucketName) as unknown,
      CAPTURE_PREFIX: 'captures/',
      REPORT_PREFIX: 'drift-reports/',
      MODEL_BUCKET: stack.resolve(models.bucket.bucketName) as unknown,
      MODEL_NAME: 'iris',
      WINDOW_HOURS: '24',
      MIN_ROWS: '100',
      PSI_THRESHOLD: '0.2',
      METRIC_NAMESPACE: 'ModelDeployKit',
    });
    const rule = onlyResource(t, 'AWS::Events::Rule').props as {
      ScheduleExpression: string;
      Targets: { Arn: unknown }[];
    };
    expect(rule.ScheduleExpression).toBe('rate(1 hour)');
    expect(rule.Targets).toHaveLength(1);
    expect(rule.Targets[0]?.Arn).toEqual({ 'Fn::GetAtt': [fn.logicalId, 'Arn'] });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [fn.logicalId, 'Arn'] },
    });
    // Its log group keeps what it did for a year, by default.
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
    expect(drift.period.toSeconds()).toBe(3600);
    expect(drift.rule).toBeDefined();
    expect(drift.alarms).toEqual([drift.featureDriftAlarm, drift.predictionDriftAlarm, drift.jobErrorsAlarm]);
  });

  test('alarms on the highest feature PSI and the prediction PSI (model dimension, Maximum, one hour, 1 of 1), and on the job failing', () => {
    const { stack } = build();
    const t = template(stack);
    expect(alarms(t)).toHaveLength(3);
    for (const metricName of ['MaxFeaturePSI', 'PredictionPSI']) {
      expect(alarmOn(t, metricName)).toMatchObject({
        Namespace: 'ModelDeployKit',
        Dimensions: [{ Name: 'model', Value: 'iris' }],
        Statistic: 'Maximum',
        Period: 3600,
        Threshold: 0.2,
        EvaluationPeriods: 1,
        DatapointsToAlarm: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        // An hour with no run, or too few rows for a PSI, is not drift.
        TreatMissingData: 'notBreaching',
      });
    }
    expect(alarmOn(t, 'MaxFeaturePSI').AlarmDescription).toMatch(
      /^iris: input drift: a feature's PSI at or above 0\.2/,
    );
    expect(alarmOn(t, 'Errors')).toMatchObject({ Namespace: 'AWS/Lambda', Threshold: 1, Period: 3600 });
    // No topic given: no actions.
    for (const a of alarms(t)) expect(a.AlarmActions).toBeUndefined();
  });

  test('thresholds, window, rows, schedule, periods and the topic are props', () => {
    const stack = testStack();
    const topic = sns.Topic.fromTopicArn(stack, 'Ops', 'arn:aws:sns:us-east-1:123456789012:ops');
    const { drift } = build(
      {
        thresholds: { featurePsi: 0.25, predictionPsi: 0.1 },
        window: cdk.Duration.hours(48),
        minRows: 500,
        schedule: events.Schedule.rate(cdk.Duration.hours(6)),
        evaluationPeriods: 2,
        datapointsToAlarm: 1,
        alarmTopic: topic,
      },
      stack,
    );
    const t = template(stack);
    expect(jobFunction(t).props.Environment).toMatchObject({
      Variables: { WINDOW_HOURS: '48', MIN_ROWS: '500', PSI_THRESHOLD: '0.25' },
    });
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(6 hours)' });
    // The schedule's rate is the alarms' period: one data point per run.
    expect(drift.period.toHours()).toBe(6);
    expect(alarmOn(t, 'MaxFeaturePSI')).toMatchObject({
      Threshold: 0.25,
      Period: 21600,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 1,
      AlarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'],
      OKActions: ['arn:aws:sns:us-east-1:123456789012:ops'],
    });
    expect(alarmOn(t, 'PredictionPSI').Threshold).toBe(0.1);
    // A cron schedule: an hour unless the period is given.
    const cron = build({ schedule: events.Schedule.cron({ minute: '5' }) }).drift;
    expect(cron.period.toSeconds()).toBe(3600);
    const daily = build({
      schedule: events.Schedule.cron({ hour: '3', minute: '0' }),
      period: cdk.Duration.days(1),
    }).drift;
    expect(daily.period.toHours()).toBe(24);
  });

  test('least privilege: captures read, reports written, only the manifests of this model read, metrics only in its namespace', () => {
    const { stack, models, drift } = build();
    const t = template(stack);
    const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles).includes(
        (stack.resolve(drift.role.roleName) as { Ref: string }).Ref,
      ),
    );
    expect(policies).toHaveLength(1);
    const statements = (
      policies[0] as { Properties: { PolicyDocument: { Statement: Record<string, unknown>[] } } }
    ).Properties.PolicyDocument.Statement;
    const text = JSON.stringify(statements);
    // The model bucket: model.json of any version of iris, never the model bytes.
    const modelReads = statements.filter((s) =>
      JSON.stringify(s.Resource).includes(logicalId(stack.resolve(models.bucket.bucketArn))),
    );
    expect(modelReads).toHaveLength(1);
    expect(modelReads[0]?.Action).toBe('s3:GetObject');
    expect(JSON.stringify(modelReads[0]?.Resource)).toContain('/iris/*/model.json');
    expect(text).not.toContain('/iris/*"');
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: 'cloudwatch:PutMetricData',
        Resource: '*',
        Condition: { StringEquals: { 'cloudwatch:namespace': 'ModelDeployKit' } },
      }),
    );
    // The capture bucket's prefixes, as DataCapture grants them.
    expect(text).toContain('captures/');
    expect(text).toContain('drift-reports/');
    // The model bucket's key, to read the manifests.
    expect(text).toContain(logicalId(stack.resolve(models.encryptionKey?.keyArn)));
  });

  test('metrics name the model, the feature and the class with lowercase dimensions', () => {
    const { stack, drift } = build();
    const dims = (m: cloudwatch.Metric) => stack.resolve(m.dimensions) as Record<string, string>;
    expect(dims(drift.metricFeaturePsi('petal_length'))).toEqual({ model: 'iris', feature: 'petal_length' });
    expect(drift.metricFeaturePsi('petal_length').metricName).toBe('FeaturePSI');
    expect(drift.metricMaxFeaturePsi().metricName).toBe('MaxFeaturePSI');
    expect(drift.metricPredictionPsi().statistic).toBe('Maximum');
    expect(dims(drift.metricClassShare('setosa'))).toEqual({ model: 'iris', class: 'setosa' });
    expect(drift.metricCapturedRows()).toMatchObject({
      namespace: 'ModelDeployKit',
      metricName: 'CapturedRows',
    });
    expect(drift.metricCapturedRows().period.toSeconds()).toBe(3600);
  });

  test('widgets: per-feature PSI and the class mix by SEARCH (names unknown at synth), thresholds drawn', () => {
    const { stack, drift } = build({ thresholds: { featurePsi: 0.3 } });
    new cloudwatch.Dashboard(stack, 'Board', { widgets: [drift.widgets()] });
    const body = JSON.stringify(template(stack).findResources('AWS::CloudWatch::Dashboard'));
    expect(body).toContain(
      `SEARCH('{ModelDeployKit,model,feature} MetricName=\\\\\\"FeaturePSI\\\\\\" model=\\\\\\"iris\\\\\\"', 'Maximum', 3600)`,
    );
    expect(body).toContain('{ModelDeployKit,model,class} MetricName=\\\\\\"ClassShare\\\\\\"');
    // each line is named by its feature or class, not by the expression
    expect(body).toContain(`\\"label\\":\\"\${PROP('Dim.feature')}\\"`);
    expect(body).toContain(`\\"label\\":\\"\${PROP('Dim.class')}\\"`);
    expect(body).toContain('Feature drift (PSI per feature)');
    expect(body).toContain('Prediction class mix (%)');
    expect(body).toContain('\\"annotations\\":{\\"horizontal\\":[{\\"value\\":0.3');
    expect(body).toContain('CapturedRows');
  });

  test.each<[string, Partial<DriftMonitorProps>, RegExp]>([
    [
      'a zero threshold',
      { thresholds: { featurePsi: 0 } },
      /thresholds.featurePsi must be a positive number \(PSI\), got 0/,
    ],
    [
      'a negative prediction threshold',
      { thresholds: { predictionPsi: -0.1 } },
      /thresholds.predictionPsi must be a positive number \(PSI\), got -0.1/,
    ],
    [
      'a window under an hour',
      { window: cdk.Duration.minutes(30) },
      /window must be whole hours from 1 hour to 14 days, got 30 minutes/,
    ],
    [
      'a window over 14 days',
      { window: cdk.Duration.days(15) },
      /window must be whole hours from 1 hour to 14 days, got 15 days/,
    ],
    ['a window of part hours', { window: cdk.Duration.minutes(90) }, /window must be whole hours/],
    ['zero rows', { minRows: 0 }, /minRows must be a positive integer, got 0/],
    [
      'a period under a minute',
      { period: cdk.Duration.seconds(30) },
      /period must be whole minutes from 1 minute to 1 day/,
    ],
    [
      'a period over a day',
      { period: cdk.Duration.days(2) },
      /period must be whole minutes from 1 minute to 1 day/,
    ],
    [
      'zero evaluation periods',
      { evaluationPeriods: 0 },
      /evaluationPeriods must be a positive integer, got 0/,
    ],
    [
      'more datapoints than periods',
      { evaluationPeriods: 2, datapointsToAlarm: 3 },
      /datapointsToAlarm must be an integer from 1 to evaluationPeriods \(2\), got 3/,
    ],
    [
      'periods longer than a day in all',
      { schedule: events.Schedule.rate(cdk.Duration.hours(12)), evaluationPeriods: 3 },
      /evaluationPeriods \(3\) times period \(12 hours\) must be at most 1 day/,
    ],
    ['an empty model name', { modelName: ' ' }, /modelName must not be empty/],
  ])('%s is refused with a message naming it', (_name, props, message) => {
    expect(() => build(props)).toThrow(message);
  });

  test('cdk-nag finds nothing unacknowledged and cfn-lint no errors', () => {
    const app = testApp();
    cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    build({ alarmTopic: undefined }, testStack(app, 'Drift'));
    const assembly = app.synth();
    expect(annotations(assembly)).toEqual([]);
    expect(cfnLintErrors(templateFiles(assembly))).toEqual({
      errors: [],
      errorBit: 0,
      spawnError: undefined,
    });
  });
});
