/**
 * The `Custom::RegistryModel` CloudFormation resource: resolves the latest Approved package of a SageMaker
 * model package group to the model version it names in the model bucket (`registryModelEvent` in
 * `lambda/core/registry.ts`).
 *
 * - Create / Update: SUCCESS with PhysicalResourceId = the package ARN and Data
 *   `{ModelName, Version, S3Uri, Sha256, PackageArn, PackageVersion}`; FAILED, with the reason, when the group
 *   has no Approved package or the package points outside the model bucket.
 * - Delete: does nothing: resolving created nothing.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { registryModelEvent } from '../core/registry';
import { customResourceHandler } from './custom-resource';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
// Once per container. AWS_ENDPOINT_URL, when set (moto), is honoured by the SDK itself.
const sagemaker = new SageMakerClient({});

export const handler = customResourceHandler(logger, 'resolving the registry model', (event) =>
  registryModelEvent(sagemaker, event),
);
