import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as pipelines from 'aws-cdk-lib/pipelines';
import { AwsSolutionsChecks } from 'cdk-nag';
import { STAGES } from '../../lib/config';
import {
  isPlaceholderSource,
  pipelineConfig,
  smokeAuth,
  SmokeAuth,
  type PipelineConfig,
} from '../../lib/config/pipeline';
import { ApiAuthorization } from '../../lib/inference-api';
import { ModelPipelineStack, PIPELINE_PYTHON_TOOLS } from '../../lib/pipeline-stack';
import { IRIS_DIR, testApp, TEST_ENV } from '../support/cdk';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';

const CONNECTION =
  'arn:aws:codestar-connections:us-east-1:123456789012:connection/11111111-2222-3333-4444-555555555555';
const CONFIG: PipelineConfig = {
  ...pipelineConfig,
  source: { repository: 'acme/models', branch: 'release', connectionArn: CONNECTION },
};
/** stage in another account, prod in another account and region: the cross-account shape. */
const CROSS_ACCOUNT: PipelineConfig = {
  ...CONFIG,
  stages: {
    dev: CONFIG.stages.dev,
    stage: { account: '333333333333', smokeTest: true },
    prod: { account: '222222222222', region: 'eu-west-1', smokeTest: false },
  },
  modelPackageGroup: 'iris-models',
  modelBucket: { bucketName: 'registered-models' },
};

interface Built {
  readonly app: cdk.App;
  readonly stack: ModelPipelineStack;
  readonly t: Template;
}

function build(
  config: PipelineConfig = CONFIG,
  opts: { nag?: boolean; stages?: typeof STAGES; change?: (stack: ModelPipelineStack) => void } = {},
): Built {
  const app = testApp();
  if (opts.nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stack = new ModelPipelineStack(app, 'ModelServingPipeline', {
    env: TEST_ENV,
    config,
    stages: opts.stages,
    modelDir: IRIS_DIR,
    synthContext: { pipeline: 'true', repository: config.source.repository },
  });
  opts.change?.(stack);
  // (this synthesizes the app, and runs cdk-nag when it is on)
  return { app, stack, t: Template.fromStack(stack) };
}

interface Action {
  Name: string;
  ActionTypeId: { Category: string; Provider: string };
  RunOrder: number;
  Configuration?: Record<string, unknown>;
  InputArtifacts?: { Name: string }[];
  OutputArtifacts?: { Name: string }[];
}
interface PipelineStage {
  Name: string;
  Actions: Action[];
}

function pipelineStages(t: Template): PipelineStage[] {
  const [pipeline] = Object.values(t.findResources('AWS::CodePipeline::Pipeline')) as {
    Properties: { Stages: PipelineStage[] };
  }[];
  return pipeline?.Properties.Stages ?? [];
}

function stageNamed(t: Template, name: string): PipelineStage {
  const stage = pipelineStages(t).find((s) => s.Name === name);
  if (!stage) throw new Error(`no pipeline stage ${name}`);
  return stage;
}

/** The buildspec of the CodeBuild project that an action of the pipeline runs. */
function buildSpecOf(
  t: Template,
  action: Action,
): { phases: Record<string, { commands?: string[] }> } & Record<string, unknown> {
  const ref = (action.Configuration?.ProjectName as { Ref: string }).Ref;
  const resources = (
    t.toJSON() as { Resources: Record<string, { Properties: { Source: { BuildSpec: string } } }> }
  ).Resources;
  const project = resources[ref]!;
  return JSON.parse(project.Properties.Source.BuildSpec) as {
    phases: Record<string, { commands?: string[] }>;
  };
}

/** cfn-lint 1.51's E3703 checks a CloudFormation action's RoleArn and reports I1022's "prefer Fn::Sub" advice under its own id: style, not an error. */
const notJoinAdvice = (line: string) =>
  !/:E3703:Prefer using Fn::Sub over Fn::Join with an empty delimiter$/.test(line);

describe('ModelPipelineStack', () => {
  const { stack, t } = build();

  test('stages run in order: source, synth, self-mutation, assets, dev, stage, then prod', () => {
    expect(pipelineStages(t).map((s) => s.Name)).toEqual([
      'Source',
      'Build',
      'UpdatePipeline',
      'Assets',
      'ModelServing-dev',
      'ModelServing-stage',
      'ModelServing-prod',
    ]);
    const source = stageNamed(t, 'Source').Actions;
    expect(source).toHaveLength(1);
    expect(source[0]).toMatchObject({
      Name: 'Checkout',
      ActionTypeId: { Category: 'Source', Provider: 'CodeStarSourceConnection' },
      Configuration: { ConnectionArn: CONNECTION, FullRepositoryId: 'acme/models', BranchName: 'release' },
    });
    expect(stageNamed(t, 'Build').Actions.map((a) => a.Name)).toEqual(['Synth']);
    expect(stageNamed(t, 'UpdatePipeline').Actions.map((a) => a.Name)).toEqual(['SelfMutate']);
    t.hasResourceProperties('AWS::CodePipeline::Pipeline', { PipelineType: 'V2' });
  });

  test('each stage deploys its own stack, named as the manual deploy names it', () => {
    for (const name of ['dev', 'stage', 'prod'] as const) {
      const deploys = stageNamed(t, `ModelServing-${name}`).Actions.filter(
        (a) => a.ActionTypeId.Provider === 'CloudFormation',
      );
      expect(deploys.map((a) => a.Configuration?.ActionMode)).toEqual([
        'CHANGE_SET_REPLACE',
        'CHANGE_SET_EXECUTE',
      ]);
      for (const d of deploys) expect(d.Configuration?.StackName).toBe(`ModelServing-${name}-Serving`);
      expect(stack.stages[name].servingStack.stackName).toBe(`ModelServing-${name}-Serving`);
    }
  });

  test('stage runs the smoke test after its deploy, and prod waits for a manual approval before its own', () => {
    const stage = stageNamed(t, 'ModelServing-stage').Actions;
    const deploy = stage.find((a) => a.Configuration?.ActionMode === 'CHANGE_SET_EXECUTE');
    const smoke = stage.find((a) => a.Name === 'Smoke-stage');
    expect(smoke?.ActionTypeId.Provider).toBe('CodeBuild');
    expect(smoke!.RunOrder).toBeGreaterThan(deploy!.RunOrder);

    const prod = stageNamed(t, 'ModelServing-prod').Actions;
    const approval = prod.find((a) => a.ActionTypeId.Category === 'Approval');
    expect(approval).toMatchObject({ Name: 'PromoteToProd', ActionTypeId: { Provider: 'Manual' } });
    const prodDeploys = prod.filter((a) => a.ActionTypeId.Category === 'Deploy');
    expect(prodDeploys.length).toBe(2);
    for (const d of prodDeploys) expect(d.RunOrder).toBeGreaterThan(approval!.RunOrder);
    // the approval gates prod only: dev and stage have none
    for (const s of pipelineStages(t).filter((p) => p.Name !== 'ModelServing-prod'))
      expect(s.Actions.filter((a) => a.ActionTypeId.Category === 'Approval')).toEqual([]);
    expect(stack.approval).toBeInstanceOf(pipelines.ManualApprovalStep);
  });

  test('the smoke test runs mdk smoke from the checkout, signed, with the URL from the stage stack output', () => {
    const smoke = stageNamed(t, 'ModelServing-stage').Actions.find((a) => a.Name === 'Smoke-stage')!;
    const spec = buildSpecOf(t, smoke);
    expect(spec.phases.install?.commands).toEqual(['npm ci']);
    expect(spec.phases.build?.commands).toEqual([
      'npx tsx bin/mdk.ts smoke --url "$API_URL" --model models/iris --wait 120 --sign',
    ]);
    const servingArtifact = stack.stages.stage.servingStack.artifactId;
    expect(JSON.parse(smoke.Configuration?.EnvironmentVariables as string)).toEqual([
      { name: 'API_URL', type: 'PLAINTEXT', value: `#{${servingArtifact}.ApiUrl}` },
    ]);
    // its input is the source checkout (what the Checkout action outputs), not the synth output
    const checkout = stageNamed(t, 'Source').Actions[0]!;
    expect(smoke.InputArtifacts).toEqual(checkout.OutputArtifacts);
    expect(smoke.InputArtifacts).toEqual([{ Name: 'acme_models_Source' }]);
    // it may invoke that stage's health and infer routes, and nothing else of API Gateway
    const stmts = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(stmts).toContain(':execute-api:us-east-1:123456789012:*/api/GET/v2/*');
    expect(stmts).toContain(':execute-api:us-east-1:123456789012:*/api/POST/v2/models/*/infer');
    expect(stmts).not.toContain('"execute-api:*"');
  });

  test('a stage behind API keys gets its key id and may read that key, instead of signing', () => {
    const stages = {
      ...STAGES,
      stage: { ...STAGES.stage, api: { ...STAGES.stage.api, authorization: ApiAuthorization.API_KEY } },
    };
    const keyed = build(CONFIG, { stages });
    const smoke = stageNamed(keyed.t, 'ModelServing-stage').Actions.find((a) => a.Name === 'Smoke-stage')!;
    expect(buildSpecOf(keyed.t, smoke).phases.build?.commands).toEqual([
      'npx tsx bin/mdk.ts smoke --url "$API_URL" --model models/iris --wait 120 --api-key-id "$API_KEY_ID"',
    ]);
    const artifact = keyed.stack.stages.stage.servingStack.artifactId;
    expect(JSON.parse(smoke.Configuration?.EnvironmentVariables as string)).toEqual([
      { name: 'API_URL', type: 'PLAINTEXT', value: `#{${artifact}.ApiUrl}` },
      { name: 'API_KEY_ID', type: 'PLAINTEXT', value: `#{${artifact}.ApiKeyId}` },
    ]);
    keyed.t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'apigateway:GET',
            Resource: {
              'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':apigateway:us-east-1::/apikeys/*']],
            },
          }),
        ]),
      },
    });
  });

  test('smoke auth follows the stage API: IAM signs, API keys send the key', () => {
    expect(smokeAuth(STAGES.stage)).toBe(SmokeAuth.SIGN);
    expect(smokeAuth(STAGES.prod)).toBe(SmokeAuth.SIGN);
    expect(smokeAuth(STAGES.dev)).toBe(SmokeAuth.API_KEY);
  });

  test('synth installs the pinned Python tools, tests, and synthesizes the pipeline app with its own context', () => {
    const synth = stageNamed(t, 'Build').Actions[0]!;
    const spec = buildSpecOf(t, synth);
    expect(spec.phases.install).toEqual({
      'runtime-versions': { nodejs: 22, python: '3.11' },
      commands: ["pip install 'moto[server]==5.2.1' cfn-lint==1.51.0"],
    });
    expect(spec.phases.build?.commands).toEqual([
      'npm ci',
      'npm test',
      'npx cdk synth -c pipeline=true -c repository=acme/models',
    ]);
    expect(spec.artifacts).toEqual({ 'base-directory': 'cdk.out', files: ['**/*'] });
  });

  test('the pinned Python tools are the versions the tests run against here', () => {
    const shims = path.join(process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv'), 'shims');
    const run = spawnSync('pip', ['show', 'moto', 'cfn-lint'], {
      env: { ...process.env, PATH: `${shims}${path.delimiter}${process.env.PATH ?? ''}` },
      encoding: 'utf8',
    });
    const installed = [...run.stdout.matchAll(/^Name: (.+)\nVersion: (.+)$/gm)].map(
      (m) => `${m[1]}==${m[2]}`,
    );
    expect(installed.sort()).toEqual(PIPELINE_PYTHON_TOOLS.map((p) => p.replace('[server]', '')).sort());
  });

  test('only the Docker asset step runs privileged; synth and self-mutation need no Docker', () => {
    const projects = Object.entries(t.findResources('AWS::CodeBuild::Project')) as [
      string,
      { Properties: { Environment: { PrivilegedMode: boolean; Image: string } } },
    ][];
    const privileged = projects.filter(([, p]) => p.Properties.Environment.PrivilegedMode).map(([id]) => id);
    expect(privileged).toHaveLength(1);
    expect(privileged[0]).toMatch(/^PipelineAssetsDockerAsset/);
    for (const [, p] of projects) expect(p.Properties.Environment.Image).toBe('aws/codebuild/standard:7.0');
  });

  test('artifacts: cross-account KMS key with rotation, SSL-only bucket with access logs, retained', () => {
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    const keyId = t.toJSON().Resources as Record<string, { Type: string }>;
    const [keyLogicalId] = Object.entries(keyId).find(([, r]) => r.Type === 'AWS::KMS::Key')!;
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [keyLogicalId, 'Arn'] },
            },
          }),
        ],
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'artifacts/' }),
    });
    t.hasResourceProperties('AWS::CodePipeline::Pipeline', {
      ArtifactStore: Match.objectLike({
        Type: 'S3',
        EncryptionKey: { Id: { 'Fn::GetAtt': [keyLogicalId, 'Arn'] }, Type: 'KMS' },
      }),
    });
    for (const b of Object.values(t.findResources('AWS::S3::Bucket')))
      expect((b as { DeletionPolicy: string }).DeletionPolicy).toBe('Retain');
  });

  test('no registry group, no rule: only a push starts the pipeline', () => {
    t.resourceCountIs('AWS::Events::Rule', 0);
    expect(stack.approvalRule).toBeUndefined();
  });

  test('prodApproval false drops the gate', () => {
    const { t: open } = build({ ...CONFIG, prodApproval: false });
    expect(stageNamed(open, 'ModelServing-prod').Actions.map((a) => a.ActionTypeId.Category)).toEqual([
      'Deploy',
      'Deploy',
    ]);
  });
});

describe('ModelPipelineStack across accounts, started by model approvals', () => {
  const { stack, t } = build(CROSS_ACCOUNT);

  test('an approved package in the group starts the pipeline', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.sagemaker'],
        'detail-type': ['SageMaker Model Package State Change'],
        detail: { ModelPackageGroupName: ['iris-models'], ModelApprovalStatus: ['Approved'] },
      },
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: Match.objectLike({
            'Fn::Join': Match.arrayWith([Match.arrayWith([{ Ref: Match.stringLikeRegexp('^Pipeline') }])]),
          }),
        }),
      ],
    });
    expect(stack.approvalRule).toBeDefined();
  });

  test('the stages serve the newest Approved package, resolved again on each run, and smoke-test its own sample', () => {
    for (const name of ['dev', 'stage', 'prod'] as const) {
      const serving = Template.fromStack(stack.stages[name].servingStack);
      serving.resourceCountIs('Custom::ModelVersion', 0);
      serving.hasResourceProperties('Custom::RegistryModel', {
        GroupName: 'iris-models',
        BucketName: 'registered-models',
      });
      // every stage reads the bucket the packages are registered in; none has its own model bucket (the
      // buckets are batch jobs' and captures', their access logs, and prod's load balancer logs)
      const buckets = Object.keys(serving.findResources('AWS::S3::Bucket'));
      expect(
        buckets.filter((id) => !id.startsWith('Batch') && !id.startsWith('EndpointCapture')),
      ).toHaveLength(name === 'prod' ? 1 : 0);
      serving.resourceCountIs('Custom::ModelVersion', 0);
      expect(JSON.stringify(serving.findResources('AWS::IAM::Policy'))).toContain(':s3:::registered-models/');
    }
    const synth = stageNamed(t, 'Build').Actions[0]!;
    expect(buildSpecOf(t, synth).phases.build?.commands?.at(-1)).toMatch(
      /^npx cdk synth .* -c "resolveToken=\$CODEBUILD_BUILD_ID"$/,
    );
    const smoke = stageNamed(t, 'ModelServing-stage').Actions.find((a) => a.Name === 'Smoke-stage')!;
    expect(buildSpecOf(t, smoke).phases.build?.commands).toEqual([
      'npx tsx bin/mdk.ts smoke --url "$API_URL" --model "$MODEL_URI" --wait 120 --sign',
    ]);
    const artifact = stack.stages.stage.servingStack.artifactId;
    expect(JSON.parse(smoke.Configuration?.EnvironmentVariables as string)).toContainEqual({
      name: 'MODEL_URI',
      type: 'PLAINTEXT',
      value: `#{${artifact}.ModelUri}`,
    });
    // it may read model.json objects in the registry's bucket, and nothing else of S3
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(policies).toContain(':s3:::registered-models/*/model.json');
    expect(policies).not.toContain(':s3:::*/');
    // the bucket's key, when it has one, and only that key
    const keyArn = 'arn:aws:kms:us-east-1:111111111111:key/11111111-2222-3333-4444-555555555555';
    const keyed = build({
      ...CROSS_ACCOUNT,
      modelBucket: { bucketName: 'registered-models', encryptionKeyArn: keyArn },
    });
    const keyedPolicies = Object.values(keyed.t.findResources('AWS::IAM::Policy')).flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: { Action: unknown; Resource: unknown }[] } } })
          .Properties.PolicyDocument.Statement,
    );
    expect(keyedPolicies).toContainEqual(
      expect.objectContaining({ Action: 'kms:Decrypt', Resource: keyArn }),
    );
  });

  test('the token a run resolves with reaches each stage', () => {
    const app = testApp();
    const resolved = new ModelPipelineStack(app, 'ModelServingPipeline', {
      env: TEST_ENV,
      config: CROSS_ACCOUNT,
      modelDir: IRIS_DIR,
      resolveToken: 'build-42',
    });
    Template.fromStack(resolved.stages.stage.servingStack).hasResourceProperties('Custom::RegistryModel', {
      ResolveToken: 'build-42',
    });
  });

  test("prod deploys with prod's account bootstrap roles, in its region", () => {
    const prod = stageNamed(t, 'ModelServing-prod').Actions.filter(
      (a) => a.ActionTypeId.Category === 'Deploy',
    );
    const roles = JSON.stringify(prod.map((a) => a.Configuration?.RoleArn));
    expect(roles).toContain(':iam::222222222222:role/cdk-hnb659fds-cfn-exec-role-222222222222-eu-west-1');
    for (const a of prod) expect((a as unknown as { Region: string }).Region).toBe('eu-west-1');
    const dev = stageNamed(t, 'ModelServing-dev').Actions;
    expect(JSON.stringify(dev.map((a) => a.Configuration?.RoleArn))).toContain(
      ':iam::123456789012:role/cdk-hnb659fds-cfn-exec-role-123456789012-us-east-1',
    );
  });

  test("the artifact keys let the other accounts' deploy roles decrypt, in their regions", () => {
    const key = Object.values(t.findResources('AWS::KMS::Key'))[0] as { Properties: { KeyPolicy: unknown } };
    expect(JSON.stringify(key.Properties.KeyPolicy)).toContain(
      ':iam::333333333333:role/cdk-hnb659fds-deploy-role-333333333333-us-east-1',
    );
    // prod's region gets CodePipeline's replication bucket and key, in a support stack
    const support = stack.pipeline.pipeline.crossRegionSupport['eu-west-1'];
    expect(support?.stack.region).toBe('eu-west-1');
    const supportKey = Object.values(
      Template.fromStack(support!.stack).findResources('AWS::KMS::Key'),
    )[0] as {
      Properties: { KeyPolicy: unknown };
    };
    expect(JSON.stringify(supportKey.Properties.KeyPolicy)).toContain(
      ':iam::222222222222:role/cdk-hnb659fds-deploy-role-222222222222-eu-west-1',
    );
  });

  test("the stage's smoke test may call only the stage account's API, whose resource policy lets it in", () => {
    const api = Template.fromStack(stack.stages.stage.servingStack).findResources('AWS::ApiGateway::RestApi');
    expect(JSON.stringify(api)).toContain(':iam::123456789012:root');
    // dev and prod run no smoke test in another account: no resource policy
    expect(
      JSON.stringify(
        Template.fromStack(stack.stages.prod.servingStack).findResources('AWS::ApiGateway::RestApi'),
      ),
    ).not.toContain('"Policy"');
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(policies).toContain(':execute-api:us-east-1:333333333333:*/api/GET/v2/*');
    expect(policies).not.toContain(':execute-api:us-east-1:123456789012:');
  });

  test("synth may assume each stage account's lookup role, for prod's availability zones", () => {
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(policies).toContain(':iam::222222222222:role/cdk-hnb659fds-lookup-role-222222222222-eu-west-1');
    expect(policies).toContain(':iam::123456789012:role/cdk-hnb659fds-lookup-role-123456789012-us-east-1');
  });
});

describe('ModelPipelineStack checks', () => {
  test.each([
    ['default', CONFIG],
    ['cross-account with a registry rule', CROSS_ACCOUNT],
  ])('%s: cdk-nag finds nothing unacknowledged and CDK annotates no warnings', (_name, config) => {
    const { app } = build(config, { nag: true });
    const assembly = app.synth();
    expect(annotations(assembly)).toEqual([]);
  });

  test('the nag check is live: a wildcard the pipeline does not need fails the synth', () => {
    // a synth role allowed to do anything in S3: nothing acknowledges it
    const change = (stack: ModelPipelineStack) =>
      stack.pipeline.synthProject.addToRolePolicy(
        new cdk.aws_iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }),
      );
    expect(() => build(CONFIG, { nag: true, change })).toThrow(/AwsSolutions-IAM5\[Action::s3:\*\]/);
  });

  test.each([
    ['default', CONFIG],
    ['cross-account with a registry rule', CROSS_ACCOUNT],
  ])('%s: cfn-lint reports no errors on the pipeline, support and stage templates', (_name, config) => {
    const { app } = build(config);
    const files = templateFiles(app.synth());
    expect(files.length).toBeGreaterThanOrEqual(4);
    const lint = cfnLintErrors(files);
    expect(lint.spawnError).toBeUndefined();
    expect(lint.errors.filter(notJoinAdvice)).toEqual([]);
  });
});

describe('ModelPipelineStack props', () => {
  test.each([
    [
      { ...CONFIG, source: { ...CONFIG.source, repository: 'just-a-name' } },
      /source.repository must be owner\/repo, got 'just-a-name'/,
    ],
    [
      { ...CONFIG, source: { ...CONFIG.source, connectionArn: 'arn:aws:s3:::bucket' } },
      /not a CodeStar Connections ARN: 'arn:aws:s3:::bucket'/,
    ],
    [{ ...CONFIG, source: { ...CONFIG.source, branch: ' ' } }, /source.branch is empty/],
    [
      { ...CONFIG, stages: { ...CONFIG.stages, stage: { account: '12345', smokeTest: true } } },
      /stages.stage.account must be 12 digits, got '12345'/,
    ],
    [
      { ...CONFIG, stages: { ...CONFIG.stages, prod: { region: 'Mars', smokeTest: false } } },
      /stages.prod.region is not a region: 'Mars'/,
    ],
    [
      { ...CONFIG, modelDir: '../elsewhere' },
      /modelDir must be relative to the repository root, got '..\/elsewhere'/,
    ],
    [
      { ...CONFIG, modelPackageGroup: 'bad name!' },
      /modelPackageGroup is not a model package group name: 'bad name!'/,
    ],
    [
      { ...CONFIG, modelPackageGroup: 'iris-models' },
      /modelPackageGroup needs modelBucket, the bucket its packages are registered in/,
    ],
  ])('refuses a bad config (%#)', (config, message) => {
    expect(() => build(config as PipelineConfig)).toThrow(message);
  });

  test('a stage in another account needs a pipeline with a concrete account and region', () => {
    const app = testApp();
    expect(() => new ModelPipelineStack(app, 'P', { config: CROSS_ACCOUNT, modelDir: IRIS_DIR })).toThrow(
      /stages.stage names an account or region, so the pipeline stack needs a concrete env/,
    );
  });

  test('an env-agnostic pipeline deploys every stage into its own account and region', () => {
    const app = testApp();
    const stack = new ModelPipelineStack(app, 'P', { config: CONFIG, modelDir: IRIS_DIR });
    for (const s of Object.values(stack.stages))
      expect(cdk.Token.isUnresolved(s.servingStack.account)).toBe(true);
    expect(pipelineStages(Template.fromStack(stack)).map((s) => s.Name)).toContain('ModelServing-prod');
  });

  test('the default config synthesizes offline, and says its source is a placeholder', () => {
    const { t } = build(pipelineConfig);
    const source = stageNamed(t, 'Source').Actions[0]?.Configuration;
    expect(source?.FullRepositoryId).toBe('your-org/model-deploy-kit');
    expect(source?.ConnectionArn).toMatch(/:000000000000:connection\//);
    expect(isPlaceholderSource(pipelineConfig.source)).toBe(true);
    expect(isPlaceholderSource(CONFIG.source)).toBe(false);
  });

  test('another source replaces the connection', () => {
    const app = testApp();
    const bucket = new cdk.aws_s3.Bucket(new cdk.Stack(app, 'Sources', { env: TEST_ENV }), 'Src');
    const source = pipelines.CodePipelineSource.s3(bucket, 'source.zip');
    const stack = new ModelPipelineStack(app, 'P', {
      env: TEST_ENV,
      config: CONFIG,
      modelDir: IRIS_DIR,
      source,
    });
    expect(stack.source).toBe(source);
    const actions = stageNamed(Template.fromStack(stack), 'Source').Actions;
    expect(actions.map((a) => a.ActionTypeId.Provider)).toEqual(['S3']);
  });
});
