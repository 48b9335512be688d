import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { STAGES, type StageName } from '../../lib/config';
import { ModelServingStack } from '../../lib/model-serving-stack';
import { ServingBackend } from '../../lib/onnx-model-endpoint';
import { ServingStage } from '../../lib/serving-stage';
import { IRIS_DIR, TEST_ENV } from '../support/cdk';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';

const outdirs: string[] = [];
afterAll(() => outdirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The ready app's three stages, as bin/app.ts builds them, with bundling skipped. */
function buildApp(nag = false): { app: cdk.App; stages: Record<StageName, ServingStage> } {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-stages-'));
  outdirs.push(outdir);
  const app = new cdk.App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
  if (nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stages = {} as Record<StageName, ServingStage>;
  for (const config of Object.values(STAGES)) {
    stages[config.stageName] = new ServingStage(app, `ModelServing-${config.stageName}`, {
      env: TEST_ENV,
      config,
      modelDir: IRIS_DIR,
    });
  }
  return { app, stages };
}

/**
 * Asset hashes change with every handler edit, and the Lambda version's logical ID hashes the function
 * including the checkout's path when bundling is skipped: the snapshot is about the shape.
 */
function masked(template: unknown): unknown {
  const json = JSON.stringify(template)
    .replace(/[0-9a-f]{64}/g, '<hash>')
    .replace(/(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}/g, '$1<hash>');
  return JSON.parse(json) as unknown;
}

describe('ServingStage and ModelServingStack', () => {
  const { stages } = buildApp();
  const stack = (name: StageName): cdk.Stack => stages[name].servingStack;
  const templates = Object.fromEntries(
    Object.entries(stages).map(([name, stage]) => [name, Template.fromStack(stage.servingStack)]),
  ) as Record<StageName, Template>;

  test.each(['dev', 'stage', 'prod'] as const)('%s matches its snapshot', (name) => {
    expect(masked(templates[name].toJSON())).toMatchSnapshot();
  });

  test('dev is disposable: API keys, bucket destroyed and emptied, no warm instances, no WAF', () => {
    const t = templates.dev;
    t.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
    t.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    // The model bucket and its access logs, and the same two for batch jobs and for captures.
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 6);
    expect(JSON.stringify(t.findResources('AWS::Lambda::Alias'))).not.toContain(
      'ProvisionedConcurrencyConfig',
    );
    t.resourceCountIs('AWS::WAFv2::WebACL', 0);
    t.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 1024 });
  });

  test('stage releases through CodeDeploy after the pre-traffic check, all at once; dev moves its alias at once', () => {
    templates.dev.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 0);
    templates.stage.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 1);
    templates.stage.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', {
      DeploymentConfigName: 'CodeDeployDefault.LambdaAllAtOnce',
    });
    templates.stage.hasResource('AWS::Lambda::Alias', {
      UpdatePolicy: {
        CodeDeployLambdaAliasUpdate: Match.objectLike({ BeforeAllowTrafficHook: Match.anyValue() }),
      },
    });
    // prod's canary applies when it runs on Lambda; on the container ECS rolls back on the same kind of alarms.
    expect(STAGES.prod.release?.trafficShift).toEqual({ type: 'CANARY', percent: 10, intervalMinutes: 5 });
    templates.prod.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 0);
    templates.prod.hasResourceProperties('AWS::ECS::Service', {
      DeploymentConfiguration: Match.objectLike({
        Alarms: Match.objectLike({ Enable: true, Rollback: true }),
      }),
    });
  });

  test('dev and stage run the Lambda backend, prod the container', () => {
    expect(STAGES.dev.backend).toBe(ServingBackend.LAMBDA);
    expect(STAGES.stage.backend).toBe(ServingBackend.LAMBDA);
    expect(STAGES.prod.backend).toBe(ServingBackend.CONTAINER);
    for (const name of ['dev', 'stage'] as const) {
      templates[name].resourceCountIs('AWS::ECS::Service', 0);
      templates[name].resourceCountIs('AWS::Lambda::Alias', 1);
    }
    templates.prod.resourceCountIs('AWS::ECS::Service', 1);
    // prod's functions publish the model, run batch jobs and stream predictions: none serves the API
    const descriptions = Object.values(templates.prod.findResources('AWS::Lambda::Function')).map(
      (f) => (f as { Properties: { Description?: string } }).Properties.Description ?? '',
    );
    expect(descriptions.filter((d) => d.includes('KServe V2'))).toEqual([]);
    templates.prod.resourceCountIs('AWS::Lambda::Alias', 0);
    expect(stages.prod.servingStack.endpoint.onnxFunction).toBeUndefined();
  });

  test('stage is shaped like prod on Lambda: capped, traced, behind IAM and WAF', () => {
    const t = templates.stage;
    t.hasResourceProperties('AWS::Lambda::Function', {
      ReservedConcurrentExecutions: 50,
      TracingConfig: { Mode: 'Active' },
    });
    t.resourceCountIs('AWS::WAFv2::WebACL', 1);
    t.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
  });

  test('prod retains its data, runs two to ten batching tasks, and sits behind IAM and WAF', () => {
    const t = templates.prod;
    t.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    for (const m of Object.values(t.findResources('AWS::ApiGateway::Method'))) {
      const p = (m as { Properties: { AuthorizationType: string; Integration: Record<string, unknown> } })
        .Properties;
      expect(p.AuthorizationType).toBe('AWS_IAM');
      expect(p.Integration).toMatchObject({ Type: 'HTTP_PROXY', ConnectionType: 'VPC_LINK' });
    }
    t.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
    for (const b of Object.values(t.findResources('AWS::S3::Bucket'))) {
      expect((b as { DeletionPolicy: string }).DeletionPolicy).toBe('Retain');
    }
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    t.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Cpu: '1024',
      Memory: '2048',
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
    t.hasResourceProperties('AWS::ECS::Service', {
      DesiredCount: 2,
      DeploymentConfiguration: Match.objectLike({
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      }),
    });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 2,
      MaxCapacity: 10,
    });
    const defs = JSON.stringify(t.findResources('AWS::ECS::TaskDefinition'));
    expect(defs).toContain('{"Name":"BATCH_MAX_SIZE","Value":"32"}');
    expect(defs).toContain('{"Name":"PATH_PREFIX","Value":"/api"}');
    expect(defs).toContain('{"Name":"LOG_LEVEL","Value":"INFO"}');
    t.resourceCountIs('AWS::WAFv2::WebACL', 1);
    for (const g of Object.values(t.findResources('AWS::Logs::LogGroup'))) {
      const retention = (g as { Properties: { RetentionInDays: number } }).Properties.RetentionInDays;
      // the model publisher keeps a year; everything else the stage's six months
      expect([180, 365]).toContain(retention);
    }
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 180 });
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => (a as { Properties: { AlarmDescription: string } }).Properties.AlarmDescription,
    );
    expect(alarms).toEqual(
      expect.arrayContaining([
        expect.stringContaining('container 5XX at or above 1%'),
        expect.stringContaining('container p99 response time at or above 1000 ms'),
        expect.stringContaining('task CPU at or above 85%'),
      ]),
    );
  });

  test('a CONTAINER stage without container settings is refused', () => {
    const app = new cdk.App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const config = { ...STAGES.dev, backend: ServingBackend.CONTAINER };
    expect(
      () => new ModelServingStack(app, 'Serving', { env: TEST_ENV, config, modelDir: IRIS_DIR }),
    ).toThrow(/stage dev runs the CONTAINER backend but its config has no container settings/);
  });

  test('modelBucket: the stage reads and publishes to an existing bucket, decrypting with its key, and creates none', () => {
    const app = new cdk.App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const key = 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555';
    const stack = new ModelServingStack(app, 'Serving', {
      env: TEST_ENV,
      config: STAGES.dev,
      modelDir: IRIS_DIR,
      modelBucket: { bucketName: 'shared-models', encryptionKeyArn: key },
    });
    const t = Template.fromStack(stack);
    // No model bucket: the only buckets are the batch jobs' and the captures', and their access logs.
    expect(
      Object.keys(t.findResources('AWS::S3::Bucket')).filter(
        (id) => !id.startsWith('Batch') && !id.startsWith('EndpointCapture'),
      ),
    ).toEqual([]);
    t.hasResourceProperties('Custom::ModelVersion', { DestinationBucket: 'shared-models' });
    // Batch and stream read the same version there: one publish, no second copy.
    t.resourceCountIs('Custom::ModelVersion', 1);
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(policies).toContain(':s3:::shared-models/iris/*');
    expect(policies).toContain(key);
  });

  test("every stage runs batch jobs and queue-driven predictions on the endpoint's model version", () => {
    for (const [name, stage] of Object.entries(stages)) {
      const st = stage.servingStack;
      const c = STAGES[name as StageName];
      expect(st.batch?.artifact).toBe(st.endpoint.artifact);
      expect(st.stream?.artifact).toBe(st.endpoint.artifact);
      const t = templates[name as StageName];
      t.resourceCountIs('Custom::ModelVersion', 1);
      t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        BatchSize: c.stream?.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
      expect(JSON.stringify(t.findResources('AWS::StepFunctions::StateMachine'))).toContain(
        `\\"MaxConcurrency\\":${c.batch?.maxConcurrency}`,
      );
      expect(Object.keys(t.toJSON().Outputs as object)).toEqual(
        expect.arrayContaining(['BatchBucket', 'StreamInputQueueUrl', 'StreamOutputQueueUrl']),
      );
    }
  });

  test('every stage captures through a Firehose stream into its capture bucket: dev all requests, stage a tenth, prod none until turned on', () => {
    const expected: Record<StageName, { percent: string; days: number }> = {
      dev: { percent: '100', days: 7 },
      stage: { percent: '10', days: 30 },
      prod: { percent: '0', days: 90 },
    };
    expect(STAGES.prod.capture?.samplePercent).toBe(0);
    for (const [name, stage] of Object.entries(stages) as [StageName, ServingStage][]) {
      const t = templates[name];
      const endpoint = stage.servingStack.endpoint;
      const env = JSON.stringify(
        name === 'prod'
          ? t.findResources('AWS::ECS::TaskDefinition')
          : Object.values(t.findResources('AWS::Lambda::Function')).filter((f) =>
              JSON.stringify(f).includes('KServe V2'),
            ),
      );
      expect({ name, env }).toEqual({
        name,
        env: expect.stringMatching(
          name === 'prod'
            ? `{"Name":"CAPTURE_PERCENT","Value":"${expected[name].percent}"}`
            : `"CAPTURE_PERCENT":"${expected[name].percent}"`,
        ) as string,
      });
      // The path is deployed even when nothing is captured, so turning capture on is one line.
      t.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
      t.hasResourceProperties('AWS::Logs::SubscriptionFilter', { FilterPattern: '{ $.mdk_capture = 1 }' });
      const bucket = stack(name).resolve(endpoint.capture?.bucket.bucketName) as { Ref: string };
      const resources = (
        t.toJSON() as {
          Resources: Record<
            string,
            {
              Properties: {
                LifecycleConfiguration: { Rules: { Prefix?: string; ExpirationInDays?: number }[] };
              };
            }
          >;
        }
      ).Resources;
      const rules = resources[bucket.Ref]?.Properties.LifecycleConfiguration.Rules;
      expect(rules).toContainEqual(
        expect.objectContaining({ Prefix: 'captures/', ExpirationInDays: expected[name].days }),
      );
      expect(Object.keys(t.toJSON().Outputs as object)).toContain('CaptureBucket');
    }
  });

  test('every stage runs the drift job hourly over a day of captures, alarming at PSI 0.2 on its alarm topic', () => {
    for (const [name, stage] of Object.entries(stages) as [StageName, ServingStage][]) {
      const t = templates[name];
      const endpoint = stage.servingStack.endpoint;
      expect(STAGES[name].drift).toMatchObject({ featurePsiThreshold: 0.2, predictionPsiThreshold: 0.2 });
      t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
      const topic = stack(name).resolve(endpoint.monitoring.alarmTopic.topicArn) as unknown;
      for (const metricName of ['MaxFeaturePSI', 'PredictionPSI']) {
        t.hasResourceProperties('AWS::CloudWatch::Alarm', {
          MetricName: metricName,
          Threshold: 0.2,
          Period: 3600,
          AlarmActions: [topic],
        });
      }
      t.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: Match.objectLike({ WINDOW_HOURS: '24', MIN_ROWS: '100' }) },
      });
      expect(JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'))).toContain('Feature drift');
    }
  });

  test('every stage outputs its infer URL and model URI', () => {
    for (const t of Object.values(templates)) {
      const outputs = t.toJSON().Outputs as Record<string, unknown>;
      expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['InferUrl', 'ModelUri']));
    }
    expect(Object.keys(templates.dev.toJSON().Outputs as object)).toContain('ApiKeyId');
  });

  test('no physical names: buckets, functions, APIs, topics and alarms are named by CloudFormation', () => {
    for (const t of Object.values(templates)) {
      const json = t.toJSON() as {
        Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
      };
      for (const [id, r] of Object.entries(json.Resources)) {
        const p = r.Properties ?? {};
        for (const key of [
          'BucketName',
          'FunctionName',
          'TopicName',
          'AlarmName',
          'DashboardName',
          'RoleName',
          'LogGroupName',
          'ClusterName',
        ]) {
          // a reference to another resource is fine; a literal name is not
          const literal = typeof p[key] === 'string' ? p[key] : undefined;
          expect({ id, [key]: literal }).toEqual({ id, [key]: undefined });
        }
        // (a VPC endpoint's ServiceName is the AWS service it reaches, not a name)
        const named: Record<string, string> = {
          'AWS::ECS::Service': 'ServiceName',
          'AWS::ElasticLoadBalancingV2::LoadBalancer': 'Name',
          'AWS::ElasticLoadBalancingV2::TargetGroup': 'Name',
        };
        const key = named[r.Type];
        if (key) expect({ id, [key]: p[key] }).toEqual({ id, [key]: undefined });
      }
    }
  });
});

describe('checks over all three stages', () => {
  test('cdk-nag AwsSolutions finds nothing unacknowledged, and aws-cdk-lib annotates no warnings', () => {
    const { app } = buildApp(true);
    const assembly = app.synth();
    expect(annotations(assembly)).toEqual([]);
    expect(assembly.stacksRecursively).toHaveLength(3);
  });

  test('the nag check is live: an unencrypted public-readable bucket fails the synth', () => {
    const { app, stages } = buildApp(true);
    new s3.Bucket(stages.dev.servingStack, 'Careless', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ACLS_ONLY,
    });
    expect(() => app.synth()).toThrow(/AwsSolutions-S1|AwsSolutions-S10|Validation failed/);
  });

  test('cfn-lint reports no errors on any synthesized template', () => {
    const { app } = buildApp();
    const assembly = app.synth();
    const files = templateFiles(assembly);
    expect(files).toHaveLength(3);
    expect(cfnLintErrors(files)).toEqual({ errors: [], errorBit: 0, spawnError: undefined });
  });
});
