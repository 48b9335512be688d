/** The CloudFormation side every custom resource shares: responses, their size limit, the deadline. */
import {
  failureResponse,
  responseBody,
  RESPONSE_LIMIT_BYTES,
  successResponse,
  withDeadline,
} from '../../../lambda/core/custom-resource';
import { customResourceEvent } from '../../support/custom-resource';

const MODEL_SHA = 'a'.repeat(64);

const event = customResourceEvent;

describe('responses to CloudFormation', () => {
  it('a success carries the physical id and Data', () => {
    const outcome = {
      physicalResourceId: 's3://models/iris/1.0.0/',
      data: { ModelUri: 's3://models/iris/1.0.0/', Sha256: MODEL_SHA },
    };
    expect(successResponse(event('Create'), outcome)).toEqual({
      Status: 'SUCCESS',
      Reason: 'Create s3://models/iris/1.0.0/',
      PhysicalResourceId: 's3://models/iris/1.0.0/',
      StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/ModelServing-dev/1',
      RequestId: 'request-1',
      LogicalResourceId: 'IrisVersion',
      Data: { ModelUri: 's3://models/iris/1.0.0/', Sha256: MODEL_SHA },
    });
  });

  it('a failure keeps the current physical id, and a failed Create gets one that says so', () => {
    const update = failureResponse(
      event('Update', { PhysicalResourceId: 's3://models/iris/1.0.0/' }),
      new Error('boom'),
    );
    expect(update).toMatchObject({
      Status: 'FAILED',
      Reason: 'boom',
      PhysicalResourceId: 's3://models/iris/1.0.0/',
    });
    expect(update).not.toHaveProperty('Data');
    expect(failureResponse(event('Create'), 'not an error')).toMatchObject({
      Reason: 'not an error',
      PhysicalResourceId: 'IrisVersion-create-failed',
    });
  });

  it('a long Reason is cut so the whole body fits in 4096 bytes, without splitting a character', () => {
    const response = failureResponse(event('Create'), new Error('é'.repeat(1000) + '😀'.repeat(2000)));
    const body = responseBody(response);
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(RESPONSE_LIMIT_BYTES);
    expect(Buffer.byteLength(body)).toBeGreaterThan(RESPONSE_LIMIT_BYTES - 8);
    const parsed = JSON.parse(body) as typeof response;
    // The cut lands among the 4-byte emoji: a split surrogate pair would not match.
    expect(parsed.Reason).toMatch(/^é{1000}(😀)+ \[\.\.\.\]$/u);
    expect(parsed).toEqual({ ...response, Reason: parsed.Reason });
  });

  it('a short body is left as it is', () => {
    const response = failureResponse(event('Create'), new Error('short'));
    expect(responseBody(response)).toBe(JSON.stringify(response));
  });
});

describe('withDeadline', () => {
  it('passes the result through when the work finishes', async () => {
    await expect(withDeadline(Promise.resolve(7), 60_000, 'late')).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('failed')), 60_000, 'late')).rejects.toThrow('failed');
    await expect(withDeadline(Promise.resolve(8), Infinity, 'late')).resolves.toBe(8);
  });

  it('rejects with the message when the work never finishes', async () => {
    await expect(
      withDeadline(new Promise<never>(() => undefined), 1, 'publishing took too long'),
    ).rejects.toThrow('publishing took too long');
  });
});
