/**
 * The `Custom::ModelVersion` CloudFormation resource: publishes a model folder (model.onnx + model.json) from
 * the CDK asset bucket to `s3://<DestinationBucket>/<DestinationPrefix>` (see `lambda/core/publish.ts`).
 *
 * - Create / Update: publish; SUCCESS with PhysicalResourceId `s3://<bucket>/<prefix>` and
 *   Data `{ModelUri, Sha256}`. A version that exists with other bytes is FAILED: versions are immutable.
 * - Delete: does nothing and answers SUCCESS. Published versions are immutable and a stage or a rollback
 *   may still point at one; the model bucket's removal policy decides what happens to them.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { S3Client } from '@aws-sdk/client-s3';
import { modelVersionEvent } from '../core/publish';
import { customResourceHandler } from './custom-resource';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
// Once per container. AWS_ENDPOINT_URL, when set (moto), is honoured by the SDK itself.
const s3 = new S3Client({});

export const handler = customResourceHandler(logger, 'publishing', (event) => modelVersionEvent(s3, event));
