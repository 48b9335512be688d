import * as cdk from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { CustomResourceProvider } from './custom-resource-provider';
import { ModelArtifact } from './model-artifact';
import { grantReadModelVersions, type IModelVersion } from './model-bucket';
import { MODEL_NAME_PATTERN } from './model-folder';
import { acknowledgeWildcards } from './nag';

/** What a model source needs from the endpoint that serves it. */
export interface ModelSourceBindOptions {
  /** The model bucket: versions live at `s3://<bucket>/<name>/<version>/`. */
  readonly bucket: s3.IBucket;
  /** See ModelArtifactProps.versionLockFile; only a folder uses it. */
  readonly versionLockFile?: string;
}

/** Where an endpoint's model version comes from: a local folder, or the SageMaker Model Registry. */
export abstract class ModelSource {
  /** A model folder (model.onnx + model.json), published to the model bucket at deploy by a ModelArtifact. */
  public static fromFolder(modelDir: string): ModelSource {
    return new FolderSource(modelDir);
  }

  /**
   * The newest Approved package of a SageMaker model package group, registered with `mdk registry register`,
   * resolved at deploy by a RegistryModel.
   */
  public static fromRegistry(group: string, options: RegistryModelOptions = {}): ModelSource {
    return new RegistrySource(group, options);
  }

  /** The folder, when there is one at synth (BUNDLED delivery needs it). */
  public abstract readonly modelDir?: string;

  /** Creates the construct that provides the version, under `scope`. */
  public abstract bind(scope: Construct, id: string, options: ModelSourceBindOptions): IModelVersion;
}

class FolderSource extends ModelSource {
  constructor(public readonly modelDir: string) {
    super();
  }

  public bind(scope: Construct, id: string, options: ModelSourceBindOptions): IModelVersion {
    return new ModelArtifact(scope, id, {
      bucket: options.bucket,
      modelDir: this.modelDir,
      versionLockFile: options.versionLockFile,
    });
  }
}

class RegistrySource extends ModelSource {
  /** A registry model has no folder at synth, so it cannot be BUNDLED. */
  public readonly modelDir?: string = undefined;

  constructor(
    private readonly group: string,
    private readonly options: RegistryModelOptions,
  ) {
    super();
    // Early, so a bad group fails where fromRegistry is called rather than at bind.
    checkGroup(group, 'ModelSource.fromRegistry');
  }

  public bind(scope: Construct, id: string, options: ModelSourceBindOptions): IModelVersion {
    return new RegistryModel(scope, id, { ...this.options, group: this.group, bucket: options.bucket });
  }
}

export interface RegistryModelOptions {
  /**
   * The model's name, when it is known at synth. The read grant then covers `<name>/*` only, and a deploy
   * fails if the approved package is another model.
   * @default - any model: the read grant covers the bucket's objects
   */
  readonly modelName?: string;
  /**
   * Resolve the group's latest Approved package again when this value changes. CloudFormation re-runs a
   * custom resource only when its properties change, so without a new value a deploy keeps the package it
   * resolved before, even after a newer one was approved. A pipeline passes a value per release, e.g. its
   * execution id, or the ARN of the package whose approval started it.
   *
   * Nothing is resolved on a deploy that does not change it: a redeploy of the same app serves the same
   * model, and an approval alone never changes what runs (no surprise rollouts).
   * @default - resolved when the resource is created, and again only when the group, bucket or name change
   */
  readonly resolveToken?: string;
}

export interface RegistryModelProps extends RegistryModelOptions {
  /** The SageMaker model package group. */
  readonly group: string;
  /** The model bucket: the approved package must point into it, at `<name>/<version>/`. */
  readonly bucket: s3.IBucket;
}

/** ModelPackageGroupName's pattern in the SageMaker API. */
const GROUP_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

function checkGroup(group: string, where: string): void {
  if (cdk.Token.isUnresolved(group)) {
    // The IAM policy names the group's packages, whose ARNs SageMaker spells in lower case.
    throw new Error(`${where}: group must be a literal name, not a token`);
  }
  if (!GROUP_NAME.test(group)) {
    throw new Error(
      `${where}: group ${JSON.stringify(group)} is not a model package group name (1-63 letters, digits and hyphens, starting and ending with a letter or digit)`,
    );
  }
}

/** The one Lambda per stack that resolves `Custom::RegistryModel`. */
function registryResolver(scope: Construct): CustomResourceProvider {
  return CustomResourceProvider.of(scope, {
    id: 'ModelDeployKitRegistryResolver',
    handler: 'resolve-model',
    description:
      'model-deploy-kit: resolves the latest Approved model package of a SageMaker model package group (Custom::RegistryModel)',
    purpose: 'Reads SageMaker model package groups to resolve their latest Approved package',
    timeout: cdk.Duration.minutes(2),
    memorySize: 256,
  });
}

/**
 * The latest Approved package of a SageMaker model package group, resolved at deploy to the model version it
 * names in the model bucket (`mdk registry register` records it). The deploy fails if the group has no
 * Approved package, or if the package points outside the bucket (or at another model than `modelName`).
 * Every field is a deploy-time token, except `modelName` when given.
 */
export class RegistryModel extends Construct implements IModelVersion {
  public readonly group: string;
  public readonly bucket: s3.IBucket;
  public readonly modelName: string;
  public readonly version: string;
  /** `s3://<bucket>/<name>/<version>/` */
  public readonly s3Uri: string;
  /** sha256 of model.onnx, hex, as registered. */
  public readonly sha256: string;
  /** The resolved package's ARN. */
  public readonly packageArn: string;
  /** The resolved package's version number in its group, as a string. */
  public readonly packageVersion: string;
  /** The `Custom::RegistryModel` resource; depend on it to read the model. */
  public readonly resource: cdk.CustomResource;
  private readonly knownName?: string;

  constructor(scope: Construct, id: string, props: RegistryModelProps) {
    super(scope, id);
    checkGroup(props.group, `RegistryModel ${this.node.path}`);
    if (
      props.modelName !== undefined &&
      !cdk.Token.isUnresolved(props.modelName) &&
      !MODEL_NAME_PATTERN.test(props.modelName)
    ) {
      throw new Error(
        `RegistryModel ${this.node.path}: modelName ${JSON.stringify(props.modelName)} is not a model name (1-63 letters, digits, '.', '_' or '-')`,
      );
    }
    if (props.resolveToken !== undefined && props.resolveToken === '') {
      throw new Error(
        `RegistryModel ${this.node.path}: resolveToken must not be empty; leave it out instead`,
      );
    }
    this.group = props.group;
    this.bucket = props.bucket;
    this.knownName = props.modelName;

    const provider = registryResolver(this);
    const stack = cdk.Stack.of(this);
    const groupArn = stack.formatArn({
      service: 'sagemaker',
      resource: 'model-package-group',
      resourceName: props.group,
    });
    // Package ARNs spell the group in lower case; the name as given is kept too, in case they do not.
    const packageArns = [...new Set([props.group.toLowerCase(), props.group])].map((name) =>
      stack.formatArn({ service: 'sagemaker', resource: 'model-package', resourceName: `${name}/*` }),
    );
    const statement = new iam.PolicyStatement({
      actions: ['sagemaker:ListModelPackages', 'sagemaker:DescribeModelPackage'],
      resources: [groupArn, ...packageArns],
    });
    provider.function.addToRolePolicy(statement);
    const role = provider.function.role;
    if (role)
      acknowledgeWildcards(
        role,
        packageArns,
        "Package ARNs end in their version number, which the registry assigns; the wildcard covers this group's packages only.",
      );

    this.resource = new cdk.CustomResource(this, 'Resource', {
      serviceToken: provider.function.functionArn,
      resourceType: 'Custom::RegistryModel',
      properties: {
        GroupName: props.group,
        BucketName: props.bucket.bucketName,
        ...(props.modelName !== undefined ? { ModelName: props.modelName } : {}),
        ...(props.resolveToken !== undefined ? { ResolveToken: props.resolveToken } : {}),
      },
      // Resolving creates nothing, so deleting removes nothing (the handler's Delete is a no-op).
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    // The policy must be in place before the resolver runs.
    this.resource.node.addDependency(provider.function.role ?? provider.function);

    this.modelName = props.modelName ?? this.resource.getAttString('ModelName');
    this.version = this.resource.getAttString('Version');
    this.s3Uri = this.resource.getAttString('S3Uri');
    this.sha256 = this.resource.getAttString('Sha256');
    this.packageArn = this.resource.getAttString('PackageArn');
    this.packageVersion = this.resource.getAttString('PackageVersion');
  }

  /**
   * s3:GetObject on `<name>/*` (or on the bucket's objects when the name is not known at synth), and
   * kms:Decrypt. Not just the resolved version's two objects: the grant is on the reader's role, which
   * changes at once for every version of a function, and a Lambda version or a task still serving the
   * previous package (a canary, a rollback) must keep reading it.
   */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return grantReadModelVersions(this.bucket, grantee, this.knownName);
  }
}

/**
 * The EventBridge pattern of a package in `group` turning Approved: SageMaker sends
 * "SageMaker Model Package State Change" events on creation and on each status update.
 */
export function approvalEventPattern(group: string): events.EventPattern {
  checkGroup(group, 'approvalEventPattern');
  return {
    source: ['aws.sagemaker'],
    detailType: ['SageMaker Model Package State Change'],
    detail: {
      ModelPackageGroupName: [group],
      ModelApprovalStatus: ['Approved'],
    },
  };
}
