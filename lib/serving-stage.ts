import * as cdk from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ModelServingStack, type ServingOptions } from './model-serving-stack';

export interface ServingStageProps extends cdk.StageProps, ServingOptions {}

/** One environment (dev, stage or prod): the unit a pipeline deploys and promotes. */
export class ServingStage extends cdk.Stage {
  public readonly servingStack: ModelServingStack;

  constructor(scope: Construct, id: string, props: ServingStageProps) {
    super(scope, id, props);
    this.servingStack = new ModelServingStack(this, 'Serving', {
      config: props.config,
      modelDir: props.modelDir,
      modelSource: props.modelSource,
      modelBucket: props.modelBucket,
      versionLockFile: props.versionLockFile,
      description: `model-deploy-kit ${props.config.stageName}: ONNX inference API, model bucket and alarms`,
    });
  }
}
