import * as cdk from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as codepipeline from 'aws-cdk-lib/aws-codepipeline';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as pipelines from 'aws-cdk-lib/pipelines';
import { Construct } from 'constructs';
import { STAGES, type StageConfig, type StageName } from './config';
import { smokeAuth, SmokeAuth, type PipelineConfig, type PipelineStageTarget } from './config/pipeline';
import { DEFAULT_API_STAGE_NAME } from './inference-api';
import { approvalEventPattern, ModelSource } from './model-source';
import { ServingStage } from './serving-stage';

/** The Python tools `npm test` runs (moto's server and cfn-lint), pinned to the versions the tests were written against. */
export const PIPELINE_PYTHON_TOOLS = ['moto[server]==5.2.1', 'cfn-lint==1.51.0'];

/** Promotion order. */
const ORDER: readonly StageName[] = ['dev', 'stage', 'prod'];

export interface ModelPipelineStackProps extends cdk.StackProps {
  /** Source, per-stage accounts and regions, model folder, registry group, prod approval. */
  readonly config: PipelineConfig;
  /** The model folder to read at synth: `config.modelDir` resolved by the caller. */
  readonly modelDir: string;
  /** What each stage deploys. @default STAGES */
  readonly stages?: Readonly<Record<StageName, StageConfig>>;
  /** @default - none; see ModelArtifactProps.versionLockFile */
  readonly versionLockFile?: string;
  /** Another source (CodeCommit, S3, ...). @default - `config.source` through its CodeStar connection */
  readonly source?: pipelines.IFileSetProducer;
  /**
   * Context the synth step passes to `cdk synth` (`-c key=value`), so that the pipeline, rebuilt by its own
   * self-mutation, has the settings it was deployed with.
   * @default - none
   */
  readonly synthContext?: Readonly<Record<string, string>>;
  /**
   * With `config.modelPackageGroup`: the registry resolves the newest Approved package again whenever this
   * changes. The synth step sets it to its CodeBuild build id (`-c resolveToken=...`), so each run resolves.
   * @default - resolved when each stage's resource is created
   */
  readonly resolveToken?: string;
}

/** The context key the synth step sets to its build id, so that each pipeline run resolves the registry again. */
export const RESOLVE_TOKEN_CONTEXT = 'resolveToken';

/**
 * CDK Pipelines: source, synth (`npm ci`, `npm test`, `cdk synth`), self-mutation and assets, then dev, then
 * stage with a smoke test, then a manual approval and prod. Each stage may live in its own account and region.
 */
export class ModelPipelineStack extends cdk.Stack {
  public readonly pipeline: pipelines.CodePipeline;
  public readonly source: pipelines.IFileSetProducer;
  public readonly artifactBucket: s3.Bucket;
  public readonly artifactKey: kms.Key;
  public readonly accessLogsBucket: s3.Bucket;
  /** The deployed environments, in promotion order. */
  public readonly stages: Readonly<Record<StageName, ServingStage>>;
  /** The post-deploy smoke tests, by stage. */
  public readonly smokeSteps: Readonly<Partial<Record<StageName, pipelines.CodeBuildStep>>>;
  /** The gate before prod, when `config.prodApproval` is on. */
  public readonly approval?: pipelines.ManualApprovalStep;
  /** Starts the pipeline when a model package in `config.modelPackageGroup` is approved. */
  public readonly approvalRule?: events.Rule;

  constructor(scope: Construct, id: string, props: ModelPipelineStackProps) {
    super(scope, id, props);
    const { config } = props;
    validatePipelineConfig(this, config, props.synthContext);
    const stageConfigs = props.stages ?? STAGES;

    this.source =
      props.source ??
      pipelines.CodePipelineSource.connection(config.source.repository, config.source.branch, {
        connectionArn: config.source.connectionArn,
        actionName: 'Checkout',
      });

    const store = new Construct(this, 'ArtifactStore');
    // Log delivery by bucket policy, not ACLs, whatever the app's feature flags say: ACLs stay disabled.
    store.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    this.accessLogsBucket = new s3.Bucket(store, 'AccessLogs', {
      // Log delivery cannot write to a KMS-encrypted bucket.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: cdk.Duration.days(365) }],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    cdk.Validations.of(this.accessLogsBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This is the access log bucket itself; logging it into another bucket would only move the question.',
    });
    this.artifactKey = new kms.Key(store, 'Key', {
      description: `Pipeline artifacts of ${this.node.path}; stage accounts decrypt with it`,
      enableKeyRotation: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    this.artifactBucket = new s3.Bucket(store, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.artifactKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'artifacts/',
      // Each run writes new artifacts; old runs are never read again.
      lifecycleRules: [{ expiration: cdk.Duration.days(90) }],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });

    // Sorted, so the synth command (and the synth project) does not change with the order keys were read in.
    const synthContext = Object.entries(props.synthContext ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => ` -c ${shellQuote(`${k}=${v}`)}`)
      .join('');
    // Double quotes: the shell fills in the build id, so the command itself stays the same from run to run.
    const resolve =
      config.modelPackageGroup !== undefined ? ` -c "${RESOLVE_TOKEN_CONTEXT}=$CODEBUILD_BUILD_ID"` : '';
    this.pipeline = new pipelines.CodePipeline(this, 'Pipeline', {
      pipelineType: codepipeline.PipelineType.V2,
      crossAccountKeys: true,
      enableKeyRotation: true,
      artifactBucket: this.artifactBucket,
      // No step bundles with Docker at synth (lib/bundling.ts is local); the asset step for prod's image gets
      // Docker on its own (CDK Pipelines runs Docker asset publishing privileged).
      dockerEnabledForSynth: false,
      dockerEnabledForSelfMutation: false,
      codeBuildDefaults: {
        buildEnvironment: {
          buildImage: codebuild.LinuxBuildImage.STANDARD_7_0,
          computeType: codebuild.ComputeType.MEDIUM,
        },
        partialBuildSpec: codebuild.BuildSpec.fromObject({
          phases: { install: { 'runtime-versions': { nodejs: 22, python: '3.11' } } },
        }),
        timeout: cdk.Duration.minutes(60),
      },
      synth: new pipelines.CodeBuildStep('Synth', {
        input: this.source,
        installCommands: [`pip install ${PIPELINE_PYTHON_TOOLS.map(shellQuote).join(' ')}`],
        commands: ['npm ci', 'npm test', `npx cdk synth${synthContext}${resolve}`],
        primaryOutputDirectory: 'cdk.out',
        rolePolicyStatements: this.lookupRoleStatements(config),
      }),
    });

    const stages = {} as Record<StageName, ServingStage>;
    const smokeSteps: Partial<Record<StageName, pipelines.CodeBuildStep>> = {};
    for (const name of ORDER) {
      const target = config.stages[name];
      const stageAccount = target.account ?? props.env?.account;
      // An IAM-auth stage in another account must let the pipeline's smoke test in through its resource policy.
      const stageConfig =
        target.smokeTest &&
        stageAccount !== undefined &&
        stageAccount !== this.account &&
        smokeAuth(stageConfigs[name]) === SmokeAuth.SIGN
          ? {
              ...stageConfigs[name],
              api: {
                ...stageConfigs[name].api,
                invokeAccounts: [...(stageConfigs[name].api.invokeAccounts ?? []), this.account],
              },
            }
          : stageConfigs[name];
      const stage = new ServingStage(this, `ModelServing-${name}`, {
        env: { account: target.account ?? props.env?.account, region: target.region ?? props.env?.region },
        config: stageConfig,
        ...(config.modelPackageGroup !== undefined
          ? {
              modelSource: ModelSource.fromRegistry(config.modelPackageGroup, {
                modelName: config.modelName,
                resolveToken: props.resolveToken,
              }),
              modelBucket: config.modelBucket,
            }
          : { modelDir: props.modelDir, modelBucket: config.modelBucket }),
        versionLockFile: props.versionLockFile,
      });
      stages[name] = stage;
      const pre: pipelines.Step[] = [];
      if (name === 'prod' && (config.prodApproval ?? true)) {
        this.approval = new pipelines.ManualApprovalStep('PromoteToProd', {
          comment: `Promote ${config.source.repository}@${config.source.branch} to prod: it is deployed in dev and stage${config.stages.stage.smokeTest ? ', and passed the smoke test in stage' : ''}.`,
        });
        pre.push(this.approval);
      }
      const post: pipelines.Step[] = [];
      if (target.smokeTest) {
        const smoke = this.smokeStep(stage, stageConfig, target, config);
        smokeSteps[name] = smoke;
        post.push(smoke);
      }
      this.pipeline.addStage(stage, { pre, post });
    }
    this.stages = stages;
    this.smokeSteps = smokeSteps;

    this.pipeline.buildPipeline();
    cdk.Aspects.of(this.pipeline).add(new AcknowledgePipelineGrants(this.pipeline));
    for (const support of Object.values(this.pipeline.pipeline.crossRegionSupport)) {
      cdk.Validations.of(support.replicationBucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason:
          "CodePipeline's own replication bucket in a stage's region (in its generated support stack): transient copies of the artifacts, KMS-encrypted, SSL only, public access blocked; CodePipeline offers no access-log setting for it.",
      });
    }

    if (config.modelPackageGroup !== undefined) {
      this.approvalRule = new events.Rule(this, 'ModelApproved', {
        description: `Starts the release when a model package in ${config.modelPackageGroup} is approved`,
        eventPattern: approvalEventPattern(config.modelPackageGroup),
        targets: [new targets.CodePipeline(this.pipeline.pipeline)],
      });
    }
  }

  /**
   * `mdk smoke` against a stage from the source checkout: health, then the manifest's sample. Its URL and
   * key id come from the stage stack's outputs; its role may call only that account and region's API.
   */
  private smokeStep(
    stage: ServingStage,
    stageConfig: StageConfig,
    target: PipelineStageTarget,
    config: PipelineConfig,
  ): pipelines.CodeBuildStep {
    const serving = stage.servingStack;
    const account = target.account ?? this.account;
    const region = target.region ?? this.region;
    const auth = smokeAuth(stageConfig);
    const envFromCfnOutputs: Record<string, cdk.CfnOutput> = { API_URL: serving.apiUrlOutput };
    const statements: iam.PolicyStatement[] = [];
    let model = shellQuote(config.modelDir);
    if (config.modelPackageGroup !== undefined) {
      // The package that was deployed is not in the checkout: send the sample of its own manifest.
      if (!serving.modelUriOutput) {
        throw new Error(
          `ModelPipelineStack ${this.node.path}: stage ${stageConfig.stageName} serves a registry model but outputs no model URI`,
        );
      }
      envFromCfnOutputs.MODEL_URI = serving.modelUriOutput;
      model = '"$MODEL_URI"';
      // The registry's bucket is named in the config (validated with the group), so the read is that bucket's.
      const bucket = config.modelBucket as NonNullable<PipelineConfig['modelBucket']>;
      statements.push(
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [`arn:${this.partition}:s3:::${bucket.bucketName}/*/model.json`],
        }),
      );
      if (bucket.encryptionKeyArn !== undefined) {
        statements.push(
          new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [bucket.encryptionKeyArn] }),
        );
      }
    }
    const args = ['--url', '"$API_URL"', '--model', model, '--wait', '120'];
    let policy: iam.PolicyStatement;
    if (auth === SmokeAuth.SIGN) {
      // (mdk smoke signs for the region in the execute-api URL)
      args.push('--sign');
      // The API's id exists only once the stage deploys; the stage name and routes are fixed.
      const apiStage = DEFAULT_API_STAGE_NAME;
      policy = new iam.PolicyStatement({
        actions: ['execute-api:Invoke'],
        resources: [
          `arn:${this.partition}:execute-api:${region}:${account}:*/${apiStage}/GET/v2/*`,
          `arn:${this.partition}:execute-api:${region}:${account}:*/${apiStage}/POST/v2/models/*/infer`,
        ],
      });
    } else {
      if (!serving.apiKeyIdOutput) {
        throw new Error(
          `ModelPipelineStack ${this.node.path}: stage ${stageConfig.stageName} uses API keys but its stack outputs no key id`,
        );
      }
      envFromCfnOutputs.API_KEY_ID = serving.apiKeyIdOutput;
      args.push('--api-key-id', '"$API_KEY_ID"');
      policy = new iam.PolicyStatement({
        actions: ['apigateway:GET'],
        resources: [`arn:${this.partition}:apigateway:${region}::/apikeys/*`],
      });
    }
    const step = new pipelines.CodeBuildStep(`Smoke-${stageConfig.stageName}`, {
      input: this.source,
      envFromCfnOutputs,
      installCommands: ['npm ci'],
      commands: [`npx tsx bin/mdk.ts smoke ${args.join(' ')}`],
      rolePolicyStatements: [policy, ...statements],
      timeout: cdk.Duration.minutes(15),
    });
    return step;
  }

  /**
   * Prod's VPC looks its availability zones up at synth; in CodeBuild that is done through each stage
   * account's bootstrap lookup role (read-only), unless cdk.context.json already holds the answer.
   */
  private lookupRoleStatements(config: PipelineConfig): iam.PolicyStatement[] {
    const qualifier = cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER;
    const arns = new Set<string>();
    for (const name of ORDER) {
      const account = config.stages[name].account ?? this.account;
      const region = config.stages[name].region ?? this.region;
      arns.add(
        `arn:${this.partition}:iam::${account}:role/cdk-${qualifier}-lookup-role-${account}-${region}`,
      );
    }
    return [new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [...arns] })];
  }
}

/** Why each kind of wildcard CDK Pipelines (and the smoke step) writes into a role is needed. */
const GRANT_REASONS = {
  artifactActions:
    "CDK's bucket and key grants (s3:GetObject*, s3:List*, kms:GenerateDataKey*, ...) for the pipeline's artifact bucket and key: object-level actions on that bucket and key only.",
  artifactObjects:
    "Artifacts are objects under the pipeline bucket (or its cross-region replica), one key per run: the grant is that bucket's objects, no other bucket.",
  buildLogs:
    "CodeBuild names its log streams and report groups at build time, under this project's (or, for the shared asset roles, the pipeline's asset projects') log group and report-group prefix.",
  bootstrapRoles:
    'Self-mutation and asset publishing assume the CDK bootstrap roles, whose names carry the target account and region; the statement only matches roles tagged aws-cdk:bootstrap-role.',
  describeAnything:
    'Actions with no resource-level permissions or read-only lookups CDK Pipelines needs: CloudFormation DescribeStacks and s3:ListBucket for self-mutation, StartBuild/BatchGetBuilds of asset projects, and the cross-region replication key (known by alias only).',
  smokeManifest:
    "The smoke test reads the deployed version's model.json, whose version is resolved at deploy: only model.json objects, only in the registry's model bucket.",
  smokeApi:
    "The smoke test calls the stage's API, whose id exists only after that stage deploys: it may call only the health and infer routes of the API stage, in the stage's account and region (or read its API key).",
} as const;

/** IAM wildcard findings, computed as cdk-nag computes them: `Action::<a>` and `Resource::<flattened arn>`. */
function flattenReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const o = node as Record<string, unknown>;
    if (Array.isArray(o['Fn::Join'])) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if (o['Fn::Sub'] !== undefined) return flattenReference(o['Fn::Sub']);
    if (Array.isArray(o['Fn::GetAtt'])) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if (o['Fn::ImportValue'] !== undefined) return flattenReference(o['Fn::ImportValue']);
    if (o.Ref !== undefined) return `<${flattenReference(o.Ref)}>`;
  }
  return JSON.stringify(node);
}

interface Statement {
  readonly Effect?: string;
  readonly Action?: string | string[];
  readonly Resource?: unknown;
  readonly Condition?: Record<string, unknown>;
}

const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Acknowledges, on each policy CDK Pipelines generates, exactly the wildcard findings it is known to need, each
 * with its reason. A wildcard not recognised here stays a cdk-nag error. The names in those ARNs depend on
 * logical IDs, so they are read from the policies rather than listed by hand.
 */
class AcknowledgePipelineGrants implements cdk.IAspect {
  constructor(private readonly pipeline: pipelines.CodePipeline) {}

  public visit(node: IConstructLike): void {
    if (node instanceof codebuild.CfnProject) {
      const env = cdk.Stack.of(node).resolve(node.environment) as { privilegedMode?: boolean };
      if (env.privilegedMode === true && node.node.path.includes('/Assets/')) {
        cdk.Validations.of(node).acknowledge({
          id: 'AwsSolutions-CB3',
          reason:
            "Only the asset step that builds prod's model server image runs privileged, because docker build needs it; its role may only assume the bootstrap image-publishing role.",
        });
      }
      return;
    }
    if (!(node instanceof iam.CfnPolicy)) return;
    const stack = cdk.Stack.of(node);
    const doc = stack.resolve(node.policyDocument) as { Statement?: Statement[] };
    const artifactObjects = new Set(
      [
        this.pipeline.pipeline.artifactBucket,
        ...Object.values(this.pipeline.pipeline.crossRegionSupport).map((s) => s.replicationBucket),
      ].map((b) => `${flattenReference(stack.resolve(b.bucketArn))}/*`),
    );
    const reasons = new Map<string, string | undefined>();
    const note = (finding: string, reason: string | undefined) => {
      // A finding is acknowledged only if every statement that raises it is understood.
      reasons.set(finding, reasons.has(finding) && reasons.get(finding) === undefined ? undefined : reason);
    };
    for (const statement of doc.Statement ?? []) {
      if (statement.Effect !== 'Allow') continue;
      const actions = asArray(statement.Action);
      for (const action of actions.filter((a) => a.includes('*'))) {
        note(
          `Action::${action}`,
          /^(s3:(GetObject|GetBucket|List|DeleteObject|Abort)|kms:(ReEncrypt|GenerateDataKey))\*$/.test(
            action,
          )
            ? GRANT_REASONS.artifactActions
            : undefined,
        );
      }
      for (const resource of asArray(statement.Resource)
        .map(flattenReference)
        .filter((r) => r.includes('*'))) {
        note(`Resource::${resource}`, classifyResource(resource, actions, statement, artifactObjects));
      }
    }
    for (const [finding, reason] of reasons) {
      if (reason !== undefined)
        cdk.Validations.of(node).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
    }
  }
}

type IConstructLike = Parameters<cdk.IAspect['visit']>[0];

/** One ARN segment: a literal, or a flattened reference such as `<AWS::Region>`. */
const SEG = '(?:<[^>]+>|[^:<>]+)';

function classifyResource(
  resource: string,
  actions: string[],
  statement: Statement,
  artifactObjects: ReadonlySet<string>,
): string | undefined {
  if (artifactObjects.has(resource)) return GRANT_REASONS.artifactObjects;
  if (
    new RegExp(`:logs:${SEG}:${SEG}:log-group:`).test(resource) &&
    /:log-group:\/aws\/codebuild\/(<[^>]+>:\*|\*)$/.test(resource)
  )
    return GRANT_REASONS.buildLogs;
  if (
    new RegExp(`:codebuild:${SEG}:${SEG}:report-group`).test(resource) &&
    /:report-group\/(<[^>]+>-\*|\*)$/.test(resource)
  )
    return GRANT_REASONS.buildLogs;
  if (
    new RegExp(`^arn:\\*:iam::${SEG}:role/\\*$`).test(resource) &&
    actions.every((a) => a === 'sts:AssumeRole') &&
    JSON.stringify(statement.Condition ?? {}).includes('aws-cdk:bootstrap-role')
  )
    return GRANT_REASONS.bootstrapRoles;
  if (resource === '*') {
    const readOnly =
      /^(cloudformation:DescribeStacks|s3:ListBucket|codebuild:(BatchGetBuilds|StartBuild|StopBuild)|kms:(Decrypt|DescribeKey|Encrypt|ReEncrypt\*|GenerateDataKey\*))$/;
    return actions.every((a) => readOnly.test(a)) ? GRANT_REASONS.describeAnything : undefined;
  }
  if (
    actions.every((a) => a === 'execute-api:Invoke') &&
    new RegExp(`:execute-api:${SEG}:${SEG}:\\*/`).test(resource)
  )
    return GRANT_REASONS.smokeApi;
  if (
    actions.every((a) => a === 's3:GetObject') &&
    /^arn:(<[^>]+>|[a-z-]+):s3:::[a-z0-9][a-z0-9.-]*\/\*\/model\.json$/.test(resource)
  )
    return GRANT_REASONS.smokeManifest;
  if (
    actions.every((a) => a === 'apigateway:GET') &&
    new RegExp(`:apigateway:${SEG}::/apikeys/\\*$`).test(resource)
  )
    return GRANT_REASONS.smokeApi;
  return undefined;
}

/** Checks the config's shape before anything is built, naming the bad value. */
function validatePipelineConfig(
  scope: Construct,
  config: PipelineConfig,
  synthContext: Readonly<Record<string, string>> | undefined,
): void {
  const where = `ModelPipelineStack ${scope.node.path}`;
  const { repository, branch, connectionArn } = config.source;
  if (!/^[\w.-]+\/[\w.-]+$/.test(repository))
    throw new Error(`${where}: source.repository must be owner/repo, got '${repository}'`);
  if (branch.trim() === '') throw new Error(`${where}: source.branch is empty`);
  if (
    !/^arn:aws[\w-]*:(codestar-connections|codeconnections):[\w-]+:\d{12}:connection\/[\w-]+$/.test(
      connectionArn,
    )
  )
    throw new Error(`${where}: source.connectionArn is not a CodeStar Connections ARN: '${connectionArn}'`);
  const stack = cdk.Stack.of(scope);
  for (const name of ORDER) {
    const target = config.stages[name] as PipelineStageTarget | undefined;
    if (!target) throw new Error(`${where}: stages.${name} is missing`);
    if (target.account !== undefined && !/^\d{12}$/.test(target.account))
      throw new Error(`${where}: stages.${name}.account must be 12 digits, got '${target.account}'`);
    if (target.region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(target.region))
      throw new Error(`${where}: stages.${name}.region is not a region: '${target.region}'`);
    const crossEnv = target.account !== undefined || target.region !== undefined;
    if (crossEnv && (cdk.Token.isUnresolved(stack.account) || cdk.Token.isUnresolved(stack.region)))
      throw new Error(
        `${where}: stages.${name} names an account or region, so the pipeline stack needs a concrete env (account and region) too`,
      );
  }
  if (config.modelDir.startsWith('/') || config.modelDir.split('/').includes('..'))
    throw new Error(`${where}: modelDir must be relative to the repository root, got '${config.modelDir}'`);
  if (
    config.modelPackageGroup !== undefined &&
    !/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/.test(config.modelPackageGroup)
  )
    throw new Error(
      `${where}: modelPackageGroup is not a model package group name: '${config.modelPackageGroup}'`,
    );
  if (config.modelPackageGroup !== undefined && config.modelBucket === undefined)
    throw new Error(
      `${where}: modelPackageGroup needs modelBucket, the bucket its packages are registered in (mdk registry register --bucket): a stage's own bucket does not exist before its first deploy, so no package can point into it`,
    );
  for (const key of Object.keys(synthContext ?? {}))
    if (!/^[\w:.-]+$/.test(key)) throw new Error(`${where}: synthContext key '${key}' is not a context key`);
}

/** Single-quoted for sh, unless it needs no quotes. */
function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
