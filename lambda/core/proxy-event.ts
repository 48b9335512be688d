/**
 * Building the REST API proxy event API Gateway sends, for callers that invoke the inference function
 * directly. Kept apart from apigw.ts, which needs the codec (and so onnxruntime): the pre-traffic hook bundles
 * this without it.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';

/**
 * A REST API proxy event (resource `/{proxy+}`) as API Gateway sends it to the inference handler; a body is
 * sent as JSON. For callers that invoke a function directly: the pre-traffic hook, and tests.
 */
export function proxyEvent(
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyEvent {
  return {
    resource: '/{proxy+}',
    path: route,
    httpMethod: method,
    headers: body === undefined ? { ...headers } : { 'content-type': 'application/json', ...headers },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: route.slice(1) },
    stageVariables: null,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
  };
}
