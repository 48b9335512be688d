/**
 * The I/O every custom resource handler of this project shares. CloudFormation invokes the functions directly
 * (no CDK Provider framework), so the handler itself PUTs the response to the event's ResponseURL (https on
 * AWS, http in moto), and it ALWAYS answers: any error becomes a FAILED response, and the work races a
 * deadline before the Lambda's own timeout. A stack whose custom resource never answers waits an hour. Only
 * when the response itself cannot be delivered does the invocation fail, so that Lambda's retries of the
 * asynchronous invocation run it again (every resource's work is idempotent).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import {
  failureResponse,
  responseBody,
  successResponse,
  withDeadline,
  type CustomResourceEvent,
  type CustomResourceOutcome,
  type CustomResourceResponse,
} from '../core/custom-resource';

/** Time kept back from the Lambda's remaining time to deliver the response. */
const RESPONSE_MARGIN_MS = 10_000;
const RESPONSE_TIMEOUT_MS = 10_000;
const RESPONSE_ATTEMPTS = 4;

/** A Lambda handler that runs `work` for each event and always answers CloudFormation. */
export function customResourceHandler(
  logger: Logger,
  what: string,
  work: (event: CustomResourceEvent) => Promise<CustomResourceOutcome>,
): (event: CustomResourceEvent, context?: Context) => Promise<void> {
  return async (event, context) => {
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
        work(event),
        budget,
        `${what} did not finish within ${Math.round(budget / 1000)} s; raise the function's timeout`,
      );
      response = successResponse(event, outcome);
    } catch (err) {
      logger.error('custom resource failed', { error: err as Error });
      response = failureResponse(event, err);
    }
    await sendResponse(logger, event.ResponseURL, responseBody(response));
    logger.info('custom resource answered', { status: response.Status, reason: response.Reason });
  };
}

/** The work gets the remaining time less a margin for the response, but never less than half of it. */
function workBudgetMs(remainingMs: number): number {
  return Math.max(remainingMs - RESPONSE_MARGIN_MS, remainingMs / 2);
}

async function sendResponse(logger: Logger, url: string, body: string): Promise<void> {
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
