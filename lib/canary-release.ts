/**
 * Canary releases of an inference function: CodeDeploy moves the `live` alias to the new version in steps,
 * after a pre-traffic hook has checked the new version with the manifest's `sample`, and rolls back when a
 * step's alarms fire.
 */
import * as cdk from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { bundledCode, LAMBDA_UNZIPPED_LIMIT_BYTES, runtimeEntry } from './bundling';
import { ModelBucket, type IModelVersion } from './model-bucket';
import { readModelFolder, type ModelManifestInfo } from './model-folder';

/** How CodeDeploy moves traffic to the new version. */
export enum TrafficShiftType {
  /** Everything at once, after the pre-traffic check. */
  ALL_AT_ONCE = 'ALL_AT_ONCE',
  /** `percent` first, the rest after `intervalMinutes`. */
  CANARY = 'CANARY',
  /** `percent` more every `intervalMinutes`. */
  LINEAR = 'LINEAR',
}

export interface TrafficShift {
  readonly type: TrafficShiftType;
  /**
   * Percentage of traffic per step, an integer from 1 to 99. Required for CANARY and LINEAR.
   * @default - none
   */
  readonly percent?: number;
  /**
   * Minutes between steps, an integer from 1 to 2880 (2 days, CodeDeploy's limit). Required for CANARY
   * and LINEAR.
   * @default - none
   */
  readonly intervalMinutes?: number;
}

export interface CanaryReleaseProps {
  /** The alias traffic goes through (`OnnxFunction.alias`); CodeDeploy moves it to `version`. */
  readonly alias: lambda.Alias;
  /** The version this deploy publishes (`fn.currentVersion`): the one the pre-traffic hook checks. */
  readonly version: lambda.IVersion;
  /**
   * S3 delivery: the hook reads `<s3Uri>model.json`, and may read that object only. Give this or `modelDir`.
   * @default - none
   */
  readonly modelVersion?: IModelVersion;
  /**
   * Bundled delivery: the model folder whose model.json goes into the hook's own code asset. Give this or
   * `modelVersion`.
   * @default - none
   */
  readonly modelDir?: string;
  /** @default - CANARY, 10 percent for 5 minutes */
  readonly trafficShift?: TrafficShift;
  /**
   * CodeDeploy stops the deployment and rolls back when any of these fires while traffic moves.
   * @default - none: only a failed pre-traffic check or a failed deployment rolls back
   */
  readonly alarms?: cloudwatch.IAlarm[];
  /**
   * Check the new version with the manifest's `sample` before any traffic moves to it.
   * @default true
   */
  readonly preTrafficCheck?: boolean;
  /**
   * Retention of the hook's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

const MAX_INTERVAL_MINUTES = 2880;
const DEFAULT_SHIFT: TrafficShift = { type: TrafficShiftType.CANARY, percent: 10, intervalMinutes: 5 };

function checkShift(owner: string, shift: TrafficShift): void {
  if (!Object.values(TrafficShiftType).includes(shift.type)) {
    throw new Error(
      `${owner}: trafficShift.type must be one of ${Object.values(TrafficShiftType).join(', ')}, got ${String(shift.type)}`,
    );
  }
  if (shift.type === TrafficShiftType.ALL_AT_ONCE) {
    if (shift.percent !== undefined || shift.intervalMinutes !== undefined) {
      throw new Error(`${owner}: trafficShift ALL_AT_ONCE takes no percent or intervalMinutes`);
    }
    return;
  }
  const { percent, intervalMinutes } = shift;
  if (percent === undefined || !Number.isInteger(percent) || percent < 1 || percent > 99) {
    throw new Error(
      `${owner}: trafficShift.percent must be an integer from 1 to 99 for ${shift.type}, got ${percent}`,
    );
  }
  if (
    intervalMinutes === undefined ||
    !Number.isInteger(intervalMinutes) ||
    intervalMinutes < 1 ||
    intervalMinutes > MAX_INTERVAL_MINUTES
  ) {
    throw new Error(
      `${owner}: trafficShift.intervalMinutes must be an integer from 1 to ${MAX_INTERVAL_MINUTES} for ${shift.type}, got ${intervalMinutes}`,
    );
  }
}

/** The manifest a model version carries at synth, when it has one (a ModelArtifact does). */
function synthManifest(modelVersion: IModelVersion): ModelManifestInfo | undefined {
  const manifest = (modelVersion as { manifest?: unknown }).manifest;
  return typeof manifest === 'object' && manifest !== null ? (manifest as ModelManifestInfo) : undefined;
}

/**
 * A CodeDeploy Lambda deployment group on an inference function's alias. Each deploy that publishes a new
 * version runs the pre-traffic hook (the manifest's `sample` against the new version), then shifts traffic
 * as `trafficShift` says, and rolls back automatically on a failed or stopped deployment or a firing alarm.
 */
export class CanaryRelease extends Construct {
  public readonly application: codedeploy.LambdaApplication;
  public readonly deploymentConfig: codedeploy.ILambdaDeploymentConfig;
  public readonly deploymentGroup: codedeploy.LambdaDeploymentGroup;
  /** The pre-traffic hook, unless `preTrafficCheck` is false. */
  public readonly preTrafficHook?: lambda.Function;

  constructor(scope: Construct, id: string, props: CanaryReleaseProps) {
    super(scope, id);
    const owner = `CanaryRelease ${this.node.path}`;
    if ((props.modelVersion === undefined) === (props.modelDir === undefined)) {
      throw new Error(
        `${owner}: give exactly one of modelVersion (S3 delivery) or modelDir (bundled delivery), got ${props.modelVersion ? 'both' : 'neither'}`,
      );
    }
    const shift = props.trafficShift ?? DEFAULT_SHIFT;
    checkShift(owner, shift);
    const check = props.preTrafficCheck ?? true;

    let manifestPath: string | undefined;
    let manifest: ModelManifestInfo | undefined;
    if (props.modelDir !== undefined) {
      const folder = readModelFolder(props.modelDir);
      manifestPath = folder.manifestPath;
      manifest = folder.manifest;
    } else if (props.modelVersion) {
      manifest = synthManifest(props.modelVersion);
    }
    if (check && manifest && manifest.sample === undefined) {
      throw new Error(
        `${owner}: the manifest of ${manifest.name} ${manifest.version} has no "sample", which the pre-traffic check sends to the new version. ` +
          'Add one to model.json ({"request": <V2 infer request>, "response": <its expected response>}), or set preTrafficCheck: false.',
      );
    }

    this.application = new codedeploy.LambdaApplication(this, 'Application');
    this.deploymentConfig = this.makeConfig(shift);
    this.deploymentGroup = new codedeploy.LambdaDeploymentGroup(this, 'DeploymentGroup', {
      application: this.application,
      alias: props.alias,
      deploymentConfig: this.deploymentConfig,
      alarms: props.alarms,
      autoRollback: {
        failedDeployment: true,
        stoppedDeployment: true,
        deploymentInAlarm: (props.alarms ?? []).length > 0,
      },
    });
    cdk.Validations.of(this.deploymentGroup).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]',
      reason:
        "CodeDeploy's own managed policy for Lambda deployments: it may update aliases and read alarms, the least a Lambda deployment needs.",
    });

    if (check) {
      this.preTrafficHook = this.makeHook(props, manifestPath);
      this.deploymentGroup.addPreHook(this.preTrafficHook);
      const hookId = cdk.Stack.of(this).getLogicalId(
        this.preTrafficHook.node.defaultChild as lambda.CfnFunction,
      );
      cdk.Validations.of(this.deploymentGroup).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${hookId}.Arn>:*]`,
        reason:
          "addPreHook's grant: CodeDeploy may invoke this hook function (and its versions) only, by its name.",
      });
    }
    // The alias update starts the deployment: the hook (with the new version in its environment), its
    // permissions and the group must be in place first. Stated, not left to the Refs in the UpdatePolicy.
    props.alias.node.addDependency(this);
  }

  private makeConfig(shift: TrafficShift): codedeploy.ILambdaDeploymentConfig {
    if (shift.type === TrafficShiftType.ALL_AT_ONCE) return codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE;
    const interval = cdk.Duration.minutes(shift.intervalMinutes as number);
    const percentage = shift.percent as number;
    return new codedeploy.LambdaDeploymentConfig(this, 'Config', {
      trafficRouting:
        shift.type === TrafficShiftType.CANARY
          ? codedeploy.TrafficRouting.timeBasedCanary({ interval, percentage })
          : codedeploy.TrafficRouting.timeBasedLinear({ interval, percentage }),
    });
  }

  private makeHook(props: CanaryReleaseProps, manifestPath: string | undefined): lambda.Function {
    const logGroup = new logs.LogGroup(this, 'HookLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'HookRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Checks a new inference function version with its sample before traffic moves to it',
    });
    logGroup.grantWrite(role);
    const environment: Record<string, string> = { TARGET_VERSION_ARN: props.version.functionArn };
    const modelVersion = props.modelVersion;
    if (modelVersion) environment.MANIFEST_URI = `${modelVersion.s3Uri}model.json`;

    const hook = new lambda.Function(this, 'PreTrafficHook', {
      description:
        'model-deploy-kit: CodeDeploy pre-traffic hook, sends the manifest sample to the new version',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      // With a bundled model the hook reads model.json beside index.mjs (MANIFEST_URI is unset).
      code: bundledCode({
        entry: runtimeEntry('pre-traffic-hook'),
        architecture: lambda.Architecture.ARM_64,
        includeOnnxRuntime: false,
        files: manifestPath ? { 'model.json': manifestPath } : undefined,
        maxBytes: LAMBDA_UNZIPPED_LIMIT_BYTES,
      }),
      memorySize: 256,
      // A cold new version loads its model before it answers; CodeDeploy waits up to an hour for the verdict.
      timeout: cdk.Duration.minutes(2),
      environment,
      role,
      logGroup,
    });
    cdk.Validations.of(hook).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Pinned to nodejs22.x, the runtime the bundle is built and tested for.',
    });
    // Exactly the version under test, and exactly its manifest.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.version.functionArn] }),
    );
    if (modelVersion) {
      iam.Grant.addToPrincipal({
        grantee: role,
        actions: ['s3:GetObject'],
        resourceArns: [modelVersion.bucket.arnForObjects(`${ModelBucket.keyPrefix(modelVersion)}model.json`)],
      });
      modelVersion.bucket.encryptionKey?.grantDecrypt(role);
      hook.node.addDependency(modelVersion.resource);
    }
    return hook;
  }
}
