import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { bundledCode, LAMBDA_UNZIPPED_LIMIT_BYTES, runtimeEntry } from './bundling';

export interface RuntimeFunctionProps {
  /** The handler in `lambda/handlers/`, without `.ts`. */
  readonly handler: string;
  readonly description: string;
  /** What the role is for, in its description. */
  readonly purpose: string;
  readonly timeout: cdk.Duration;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default - none */
  readonly environment?: Record<string, string>;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * One of the runtime's handlers that needs no model (no onnxruntime in its bundle): Node.js 22 on arm64, its own
 * role (which may write its own log group and nothing else until something grants more), a log group with
 * retention. ModelFunction is the same for the handlers that run a model.
 */
export class RuntimeFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RuntimeFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: props.purpose,
    });
    this.logGroup.grantWrite(this.role);
    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: bundledCode({
        entry: runtimeEntry(props.handler),
        architecture: lambda.Architecture.ARM_64,
        includeOnnxRuntime: false,
        maxBytes: LAMBDA_UNZIPPED_LIMIT_BYTES,
      }),
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      environment: props.environment,
      role: this.role,
      logGroup: this.logGroup,
    });
    cdk.Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Pinned to nodejs22.x, the runtime the bundle is built and tested for.',
    });
  }
}
