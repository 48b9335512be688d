/**
 * The `Custom::ModelVariantVersion` CloudFormation resource: publishes the Lambda version of an A/B variant
 * (see `lambda/core/variant-version.ts`). SUCCESS carries Data `{Version, VersionArn}`; Delete does nothing.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { variantVersionEvent } from '../core/variant-version';
import { customResourceHandler } from './custom-resource';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
const lambda = new LambdaClient({});

export const handler = customResourceHandler(logger, 'publishing the variant version', (event) =>
  variantVersionEvent(lambda, event),
);
