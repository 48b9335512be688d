import { toHttpRequest } from '../../../lambda/core/apigw';
import { proxyEvent } from '../../../lambda/core/proxy-event';

describe('proxyEvent', () => {
  it('is a REST proxy event the handler reads back as the same request', () => {
    const body = { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] };
    const event = proxyEvent('POST', '/v2/models/iris/infer', body, { 'X-Model-Variant': 'challenger' });
    expect(event).toMatchObject({ resource: '/{proxy+}', pathParameters: { proxy: 'v2/models/iris/infer' } });
    const req = toHttpRequest(event);
    expect(req).toMatchObject({
      method: 'POST',
      path: '/v2/models/iris/infer',
      headers: { 'content-type': 'application/json', 'x-model-variant': 'challenger' },
    });
    expect(JSON.parse(req.body.toString())).toEqual(body);
  });

  it('has no body and no content type without a body', () => {
    const req = toHttpRequest(proxyEvent('GET', '/v2/health/ready'));
    expect(req.headers['content-type']).toBeUndefined();
    expect(req.body.length).toBe(0);
  });
});
