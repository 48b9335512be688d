/**
 * The `Custom::ModelVersion` CloudFormation resource: publishes a model folder (model.onnx + model.json) from
 * the CDK asset bucket to `s3://<DestinationBucket>/<DestinationPrefix>` (see `lambda/core/publish.ts`).
 *
 * CloudFormation invokes this function directly (no CDK Provider framework), so the handler itself PUTs the
 * response to the event's ResponseURL (https on AWS, http in moto), and it ALWAYS answers: any error becomes a
 * FAILED response, and the work races a deadline before the Lambda's own timeout. A stack whose custom resource
 * never answers waits an hour. Only when the response itself cannot be delivered does the invocation fail,
 * so that Lambda's retries of the asynchronous invocation run it again (publishing is idempotent).
 *
 * - Create / Update: publish; SUCCESS with PhysicalResourceId `s3://<bucket>/<prefix>` and
 *   Data `{ModelUri, Sha256}`. A version that exists with other bytes is FAILED: versions are immutable.
 * - Delete: does nothing and answers SUCCESS. Published versions are immutable and a stage or a rollback
 *   may still point at one; the model bucket's removal policy decides what happens to them.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { Logger } from '@aws-lambda-powertools/logger';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import {
  failureResponse,
  modelVersionEvent,
  responseBody,
  successResponse,
  withDeadline,
  type CustomResourceEvent,
  type CustomResourceResponse,
} from '../core/publish';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
// Once per container. AWS_ENDPOINT_URL, when set (moto), is honoured by the SDK itself.
const s3 = new S3Client({});

/** Time kept back from the Lambda's remaining time to deliver the response. */
const RESPONSE_MARGIN_MS = 10_000;
const RESPONSE_TIMEOUT_MS = 10_000;
const RESPONSE_ATTEMPTS = 4;

export async function handler(event: CustomResourceEvent, context?: Context): Promise<void> {
  if (context) logger.addContext(context);
  logger.info('custom resource event', {
    requestType: event.RequestType,
    logicalResourceId: event.LogicalResourceId,
    physicalResourceId: event.PhysicalResourceId,
    properties: event.ResourceProperties,
  });
  let response: CustomResourceResponse;
  try {
    const budget = context ? workBudgetMs(context.getRemainingTimeInMillis()) : Infinity;
    const outcome = await withDeadline(
      modelVersionEvent(s3, event),
      budget,
      `publishing did not finish within ${Math.round(budget / 1000)} s; raise the function's timeout`,
    );
    response = successResponse(event, outcome);
  } catch (err) {
    logger.error('custom resource failed', { error: err as Error });
    response = failureResponse(event, err);
  }
  await sendResponse(event.ResponseURL, responseBody(response));
  logger.info('custom resource answered', { status: response.Status, reason: response.Reason });
}

/** The work gets the remaining time less a margin for the response, but never less than half of it. */
function workBudgetMs(remainingMs: number): number {
  return Math.max(remainingMs - RESPONSE_MARGIN_MS, remainingMs / 2);
}

async function sendResponse(url: string, body: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await put(url, body);
      return;
    } catch (err) {
      if (attempt >= RESPONSE_ATTEMPTS) throw err;
      logger.warn('could not deliver the response; retrying', { attempt, error: err as Error });
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
    }
  }
}

/** PUT to a pre-signed URL: the content type must be empty, as it was not part of the signature. */
function put(url: string, body: string): Promise<void> {
  const target = new URL(url);
  const transport = target.protocol === 'http:' ? http : target.protocol === 'https:' ? https : undefined;
  if (!transport) return Promise.reject(new Error(`ResponseURL has unsupported protocol ${target.protocol}`));
  return new Promise((resolve, reject) => {
    const req = transport.request(
      target,
      {
        method: 'PUT',
        headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) },
        timeout: RESPONSE_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`ResponseURL answered HTTP ${status}`));
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`ResponseURL did not answer within ${RESPONSE_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(body);
  });
}
