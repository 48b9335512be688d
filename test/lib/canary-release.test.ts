import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CanaryRelease, TrafficShiftType, type CanaryReleaseProps } from '../../lib/canary-release';
import { clearBundleCache } from '../../lib/bundling';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket } from '../../lib/model-bucket';
import { OnnxFunction } from '../../lib/onnx-function';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';
import { copyModel, IRIS_DIR, onlyResource, template, testApp, testStack } from '../support/cdk';

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  clearBundleCache();
});

/** An S3-delivered inference function with an errors alarm, and a CanaryRelease on it. */
function s3Release(props: Partial<CanaryReleaseProps> = {}, stack = testStack()) {
  const models = new ModelBucket(stack, 'Models');
  const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
  const fn = new OnnxFunction(stack, 'Inference', { artifact });
  const alarm = new cloudwatch.Alarm(stack, 'Errors', {
    metric: fn.metricErrors({ period: cdk.Duration.minutes(1) }),
    threshold: 1,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const release = new CanaryRelease(stack, 'Release', {
    alias: fn.alias,
    version: fn.function.currentVersion,
    modelVersion: artifact,
    alarms: [alarm],
    ...props,
  });
  return { stack, fn, alarm, release, artifact };
}

/** A bundled-model inference function and a CanaryRelease reading the same folder. */
function bundledRelease(props: Partial<CanaryReleaseProps> = {}, stack = testStack(), modelDir = IRIS_DIR) {
  const fn = new OnnxFunction(stack, 'Inference', { bundledModelDir: modelDir });
  const release = new CanaryRelease(stack, 'Release', {
    alias: fn.alias,
    version: fn.function.currentVersion,
    modelDir,
    ...props,
  });
  return { stack, fn, release };
}

function logicalId(stack: cdk.Stack, c: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(c.node.defaultChild as cdk.CfnElement);
}

describe('CanaryRelease', () => {
  test('defaults: canary 10 % for 5 minutes, alarms, rollback on failure, stop and alarm', () => {
    const { stack, alarm, release } = s3Release();
    const t = template(stack);
    const config = onlyResource(t, 'AWS::CodeDeploy::DeploymentConfig');
    expect(config.props).toEqual({
      ComputePlatform: 'Lambda',
      TrafficRoutingConfig: {
        Type: 'TimeBasedCanary',
        TimeBasedCanary: { CanaryInterval: 5, CanaryPercentage: 10 },
      },
    });
    const group = onlyResource(t, 'AWS::CodeDeploy::DeploymentGroup');
    expect(group.props).toMatchObject({
      ApplicationName: { Ref: logicalId(stack, release.application) },
      DeploymentConfigName: { Ref: config.logicalId },
      DeploymentStyle: { DeploymentType: 'BLUE_GREEN', DeploymentOption: 'WITH_TRAFFIC_CONTROL' },
      AlarmConfiguration: { Enabled: true, Alarms: [{ Name: { Ref: logicalId(stack, alarm) } }] },
      AutoRollbackConfiguration: {
        Enabled: true,
        Events: ['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_REQUEST', 'DEPLOYMENT_STOP_ON_ALARM'],
      },
    });
    expect(group.props).not.toHaveProperty('DeploymentGroupName');
    t.hasResourceProperties('AWS::CodeDeploy::Application', { ComputePlatform: 'Lambda' });
    expect(JSON.stringify(t.findResources('AWS::CodeDeploy::Application'))).not.toContain('ApplicationName');
  });

  test('the live alias is updated by CodeDeploy, with the hook run before traffic moves', () => {
    const { stack, fn, release } = s3Release();
    const t = template(stack);
    const alias = t.findResources('AWS::Lambda::Alias')[logicalId(stack, fn.alias)] as {
      UpdatePolicy?: unknown;
      DependsOn?: string[];
    };
    // Updated only once the hook (with the new version in its environment), its policy and the group exist.
    const hook = release.preTrafficHook as lambda.Function;
    const hookPolicy = hook.role?.node.tryFindChild('DefaultPolicy') as cdk.Resource;
    expect(alias.DependsOn).toEqual(
      expect.arrayContaining([
        logicalId(stack, hook),
        logicalId(stack, hookPolicy),
        logicalId(stack, release.deploymentGroup),
      ]),
    );
    expect(alias.UpdatePolicy).toEqual({
      CodeDeployLambdaAliasUpdate: {
        ApplicationName: { Ref: logicalId(stack, release.application) },
        DeploymentGroupName: { Ref: logicalId(stack, release.deploymentGroup) },
        BeforeAllowTrafficHook: { Ref: logicalId(stack, release.preTrafficHook as lambda.Function) },
      },
    });
  });

  test('the hook: arm64 nodejs22.x, the version under test and the manifest in S3 in its environment', () => {
    const { stack, fn, release } = s3Release({ logRetention: logs.RetentionDays.ONE_WEEK });
    const t = template(stack);
    const hookId = logicalId(stack, release.preTrafficHook as lambda.Function);
    const hook = (t.findResources('AWS::Lambda::Function')[hookId] as { Properties: Record<string, unknown> })
      .Properties;
    expect(hook).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Timeout: 120 });
    const env = (hook.Environment as { Variables: Record<string, unknown> }).Variables;
    const versionRef = stack.resolve(fn.function.currentVersion.functionArn) as unknown;
    expect(env.TARGET_VERSION_ARN).toEqual(versionRef);
    expect(versionRef).toEqual({ Ref: expect.stringMatching(/^InferenceFunctionCurrentVersion/) as string });
    expect(JSON.stringify(env.MANIFEST_URI)).toMatch(
      /"s3:\/\/",\{"Ref":"Models\w+"\},"\/iris\/1\.1\.0\/model\.json"/,
    );
    // It waits for the model version to be published before it can read its manifest.
    const depends = (t.findResources('AWS::Lambda::Function')[hookId] as { DependsOn?: string[] }).DependsOn;
    expect(depends).toEqual(expect.arrayContaining([expect.stringMatching(/^IrisVersion/) as string]));
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  test('the hook may invoke that version only, report to this deployment group only, and read model.json only', () => {
    const { stack, fn, release } = s3Release();
    const t = template(stack);
    const hookRole = (release.preTrafficHook as lambda.Function).role;
    const roleId = stack.getLogicalId(hookRole?.node.defaultChild as cdk.CfnElement);
    const policies = t.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } });
    const statements = Object.values(policies).flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: { Action: unknown; Resource: unknown }[] } } })
          .Properties.PolicyDocument.Statement,
    );
    const versionRef = stack.resolve(fn.function.currentVersion.functionArn) as unknown;
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: 'lambda:InvokeFunction', Resource: versionRef }),
    );
    const report = statements.find((s) => s.Action === 'codedeploy:PutLifecycleEventHookExecutionStatus');
    // arn:<partition>:codedeploy:<region>:<account>:deploymentgroup:<application>/<group>
    expect(report?.Resource).toEqual({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':codedeploy:us-east-1:123456789012:deploymentgroup:',
          { Ref: logicalId(stack, release.application) },
          '/',
          { Ref: logicalId(stack, release.deploymentGroup) },
        ],
      ],
    });
    const read = statements.find((s) => s.Action === 's3:GetObject');
    expect(JSON.stringify(read?.Resource)).toContain('/iris/1.1.0/model.json');
    const all = JSON.stringify(statements);
    expect(all).not.toContain('model.onnx');
    expect(all).not.toContain('"Resource":"*"');
    expect(all).toContain('kms:Decrypt');
    expect(statements.filter((s) => String(s.Action).startsWith('lambda:'))).toHaveLength(1);
  });

  test.each([
    [
      { type: TrafficShiftType.LINEAR, percent: 25, intervalMinutes: 3 },
      { Type: 'TimeBasedLinear', TimeBasedLinear: { LinearInterval: 3, LinearPercentage: 25 } },
    ],
    [
      { type: TrafficShiftType.CANARY, percent: 1, intervalMinutes: 2880 },
      { Type: 'TimeBasedCanary', TimeBasedCanary: { CanaryInterval: 2880, CanaryPercentage: 1 } },
    ],
  ])('trafficShift %o', (trafficShift, routing) => {
    const t = template(s3Release({ trafficShift }).stack);
    t.hasResourceProperties('AWS::CodeDeploy::DeploymentConfig', { TrafficRoutingConfig: routing });
  });

  test('ALL_AT_ONCE uses the predefined config; no alarms means no alarm rollback', () => {
    const { stack } = s3Release({ trafficShift: { type: TrafficShiftType.ALL_AT_ONCE }, alarms: [] });
    const t = template(stack);
    t.resourceCountIs('AWS::CodeDeploy::DeploymentConfig', 0);
    const group = onlyResource(t, 'AWS::CodeDeploy::DeploymentGroup');
    expect(group.props.DeploymentConfigName).toBe('CodeDeployDefault.LambdaAllAtOnce');
    expect(group.props.AutoRollbackConfiguration).toEqual({
      Enabled: true,
      Events: ['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_REQUEST'],
    });
  });

  test.each([
    [
      { type: TrafficShiftType.CANARY, intervalMinutes: 5 },
      /trafficShift.percent must be an integer from 1 to 99 for CANARY, got undefined/,
    ],
    [
      { type: TrafficShiftType.CANARY, percent: 100, intervalMinutes: 5 },
      /percent must be an integer from 1 to 99 for CANARY, got 100/,
    ],
    [{ type: TrafficShiftType.LINEAR, percent: 0, intervalMinutes: 5 }, /percent .* got 0/],
    [{ type: TrafficShiftType.LINEAR, percent: 12.5, intervalMinutes: 5 }, /percent .* got 12\.5/],
    [
      { type: TrafficShiftType.LINEAR, percent: 10 },
      /intervalMinutes must be an integer from 1 to 2880 for LINEAR, got undefined/,
    ],
    [{ type: TrafficShiftType.CANARY, percent: 10, intervalMinutes: 2881 }, /intervalMinutes .* got 2881/],
    [{ type: TrafficShiftType.CANARY, percent: 10, intervalMinutes: 0 }, /intervalMinutes .* got 0/],
    [{ type: TrafficShiftType.ALL_AT_ONCE, percent: 10 }, /ALL_AT_ONCE takes no percent or intervalMinutes/],
    [
      { type: 'BLUE_GREEN' as TrafficShiftType },
      /type must be one of ALL_AT_ONCE, CANARY, LINEAR, got BLUE_GREEN/,
    ],
  ])('refuses trafficShift %o', (trafficShift, message) => {
    expect(() => s3Release({ trafficShift })).toThrow(message);
  });

  test('exactly one of modelVersion or modelDir', () => {
    const { stack, fn, artifact } = s3Release();
    const base = { alias: fn.alias, version: fn.function.currentVersion };
    expect(
      () => new CanaryRelease(stack, 'Both', { ...base, modelVersion: artifact, modelDir: IRIS_DIR }),
    ).toThrow(
      /CanaryRelease Test\/Both: give exactly one of modelVersion \(S3 delivery\) or modelDir \(bundled delivery\), got both/,
    );
    expect(() => new CanaryRelease(stack, 'Neither', base)).toThrow(/got neither/);
  });

  test('a manifest without a sample fails the synth unless preTrafficCheck is false', () => {
    const noSample = copyModel({ manifest: (m) => delete m.sample });
    tempDirs.push(noSample);
    expect(() => bundledRelease({}, testStack(), noSample)).toThrow(
      /the manifest of iris 1\.1\.0 has no "sample".*Add one to model\.json .* or set preTrafficCheck: false/,
    );
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: noSample });
    const fn = new OnnxFunction(stack, 'Inference', { artifact });
    const base = { alias: fn.alias, version: fn.function.currentVersion, modelVersion: artifact };
    expect(() => new CanaryRelease(stack, 'Checked', base)).toThrow(/has no "sample"/);
    const unchecked = new CanaryRelease(stack, 'Unchecked', { ...base, preTrafficCheck: false });
    expect(unchecked.preTrafficHook).toBeUndefined();
    const t = template(stack);
    const alias = Object.values(t.findResources('AWS::Lambda::Alias'))[0] as {
      UpdatePolicy: { CodeDeployLambdaAliasUpdate: Record<string, unknown> };
    };
    expect(alias.UpdatePolicy.CodeDeployLambdaAliasUpdate).not.toHaveProperty('BeforeAllowTrafficHook');
    expect(JSON.stringify(t.toJSON())).not.toContain('TARGET_VERSION_ARN');
  });

  test('bundled delivery: the hook reads model.json from its own asset, and has no S3 access', () => {
    const { stack, release } = bundledRelease();
    const t = template(stack);
    const hookId = logicalId(stack, release.preTrafficHook as lambda.Function);
    const hook = t.findResources('AWS::Lambda::Function')[hookId] as { Properties: Record<string, unknown> };
    const env = (hook.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(env)).toEqual(['TARGET_VERSION_ARN']);
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).not.toContain('s3:');
  });
});

describe('the hook asset, bundled for real', () => {
  test('bundled delivery: index.mjs with model.json beside it; S3 delivery: index.mjs alone', () => {
    const app = new cdk.App({ outdir: fs.mkdtempSync(path.join(testApp().outdir, 'real-')) });
    const bundled = bundledRelease({}, new cdk.Stack(app, 'Bundled')).release;
    const fromS3 = s3Release({}, new cdk.Stack(app, 'FromS3')).release;
    const assembly = app.synth();
    const assetFiles = (stackName: string, hook: lambda.Function) => {
      const t = assembly.getStackByName(stackName).template as {
        Resources: Record<string, { Properties: { Code: { S3Key: string } } }>;
      };
      const key = t.Resources[logicalId(hook.stack, hook)]?.Properties.Code.S3Key ?? '';
      const dir = path.join(assembly.directory, `asset.${key.replace(/\.zip$/, '')}`);
      return fs.readdirSync(dir).sort();
    };
    expect(assetFiles('Bundled', bundled.preTrafficHook as lambda.Function)).toEqual([
      'index.mjs',
      'model.json',
    ]);
    expect(assetFiles('FromS3', fromS3.preTrafficHook as lambda.Function)).toEqual(['index.mjs']);
  }, 120_000);
});

describe('checks', () => {
  function checkedApp(nag: boolean): cdk.App {
    const app = testApp();
    if (nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    s3Release({}, testStack(app, 'FromS3'));
    bundledRelease(
      { trafficShift: { type: TrafficShiftType.LINEAR, percent: 10, intervalMinutes: 1 } },
      testStack(app, 'Bundled'),
    );
    return app;
  }

  test('cdk-nag AwsSolutions finds nothing unacknowledged, and aws-cdk-lib annotates no warnings', () => {
    expect(annotations(checkedApp(true).synth())).toEqual([]);
  });

  test('cfn-lint reports no errors', () => {
    const files = templateFiles(checkedApp(false).synth());
    expect(files).toHaveLength(2);
    expect(cfnLintErrors(files)).toEqual({ errors: [], errorBit: 0, spawnError: undefined });
  });
});
