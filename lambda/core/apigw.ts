/**
 * API Gateway proxy events (REST API v1 and HTTP API v2) to and from the core's
 * HttpRequest/HttpResponse. Binary bodies travel base64-encoded both ways.
 */
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import { HEADER_LENGTH } from './codec';
import type { HttpRequest, HttpResponse } from './service';

export type ProxyEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2;
export type ProxyResult = APIGatewayProxyResult | APIGatewayProxyStructuredResultV2;

export function isV2(event: ProxyEvent): event is APIGatewayProxyEventV2 {
  return (event as APIGatewayProxyEventV2).version === '2.0';
}

/** The route path, without an HTTP API stage prefix. REST API's `path` already has none. */
function routePath(event: ProxyEvent): string {
  if (!isV2(event)) return event.path;
  const stage = event.requestContext.stage;
  const raw = event.rawPath;
  if (stage && stage !== '$default' && (raw === `/${stage}` || raw.startsWith(`/${stage}/`))) {
    return raw.slice(stage.length + 1) || '/';
  }
  return raw;
}

/**
 * Decodes a base64 body so that the binary part after the JSON header starts
 * 8-byte aligned: typed arrays can then view the tensor bytes instead of copying them.
 */
export function decodeBase64(raw: string, headerLength: string | undefined): Buffer {
  const n = Number(headerLength);
  if (headerLength === undefined || !Number.isSafeInteger(n) || n < 0) return Buffer.from(raw, 'base64');
  const room = Buffer.allocUnsafe(Math.ceil((raw.length * 3) / 4) + 8);
  const pad = (8 - ((room.byteOffset + n) % 8)) % 8;
  const written = room.write(raw, pad, 'base64');
  return room.subarray(pad, pad + written);
}

export function toHttpRequest(event: ProxyEvent): HttpRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v;
  const method = isV2(event) ? event.requestContext.http.method : event.httpMethod;
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? decodeBase64(raw, headers[HEADER_LENGTH]) : raw;
  return { method: method.toUpperCase(), path: routePath(event), headers, body };
}

export function toProxyResult(res: HttpResponse): ProxyResult {
  if (typeof res.body === 'string') return { statusCode: res.status, headers: res.headers, body: res.body };
  return {
    statusCode: res.status,
    headers: res.headers,
    body: res.body.toString('base64'),
    isBase64Encoded: true,
  };
}
