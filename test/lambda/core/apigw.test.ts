import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import { decodeBase64, isV2, toHttpRequest, toProxyResult } from '../../../lambda/core/apigw';

const v1 = (over: Partial<APIGatewayProxyEvent>): APIGatewayProxyEvent =>
  ({
    httpMethod: 'POST',
    path: '/v2/models/m/infer',
    headers: {},
    body: null,
    isBase64Encoded: false,
    ...over,
  }) as APIGatewayProxyEvent;

const v2 = (
  rawPath: string,
  stage: string,
  over: Partial<APIGatewayProxyEventV2> = {},
): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    rawPath,
    headers: {},
    isBase64Encoded: false,
    requestContext: { stage, http: { method: 'get' } },
    ...over,
  }) as unknown as APIGatewayProxyEventV2;

describe('toHttpRequest', () => {
  it('reads REST API events, lower-casing header names', () => {
    const req = toHttpRequest(v1({ headers: { 'Inference-Header-Content-Length': '12' }, body: '{"a":1}' }));
    expect(req).toEqual({
      method: 'POST',
      path: '/v2/models/m/infer',
      headers: { 'inference-header-content-length': '12' },
      body: '{"a":1}',
    });
  });

  it('decodes a binary body so the tensor bytes after the JSON header start 8-byte aligned', () => {
    const tensor = Buffer.from(new Float64Array([1.5, -2.25, 3]).buffer);
    for (let headerLength = 0; headerLength < 16; headerLength++) {
      const bytes = Buffer.concat([Buffer.alloc(headerLength, 0x20), tensor]);
      const body = decodeBase64(bytes.toString('base64'), String(headerLength));
      expect(body).toEqual(bytes);
      expect((body.byteOffset + headerLength) % 8).toBe(0);
    }
    expect(decodeBase64(Buffer.from('plain').toString('base64'), undefined).toString()).toBe('plain');
    expect(decodeBase64(Buffer.from('plain').toString('base64'), 'junk').toString()).toBe('plain');
  });

  it('decodes base64 bodies byte for byte', () => {
    const bytes = Buffer.from([0, 255, 128, 1, 2, 3]);
    expect(toHttpRequest(v1({ body: bytes.toString('base64'), isBase64Encoded: true })).body).toEqual(bytes);
  });

  it('strips an HTTP API stage from the path, but not the $default stage', () => {
    expect(isV2(v2('/dev/v2/health/ready', 'dev'))).toBe(true);
    expect(toHttpRequest(v2('/dev/v2/health/ready', 'dev'))).toMatchObject({
      method: 'GET',
      path: '/v2/health/ready',
    });
    expect(toHttpRequest(v2('/v2/health/ready', '$default')).path).toBe('/v2/health/ready');
    expect(toHttpRequest(v2('/devices/x', 'dev')).path).toBe('/devices/x');
    expect(toHttpRequest(v2('/dev', 'dev')).path).toBe('/');
  });

  it('treats a missing body as empty', () => {
    expect(toHttpRequest(v1({ body: null })).body).toBe('');
  });
});

describe('toProxyResult', () => {
  it('passes text through and base64-encodes bytes', () => {
    expect(toProxyResult({ status: 200, headers: { a: 'b' }, body: '{}' })).toEqual({
      statusCode: 200,
      headers: { a: 'b' },
      body: '{}',
    });
    const bytes = Buffer.from([1, 2, 3, 250]);
    expect(toProxyResult({ status: 200, headers: {}, body: bytes })).toEqual({
      statusCode: 200,
      headers: {},
      body: bytes.toString('base64'),
      isBase64Encoded: true,
    });
  });
});
