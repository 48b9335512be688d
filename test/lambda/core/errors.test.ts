import {
  BadRequestError,
  errorKind,
  InferenceError,
  MethodNotAllowedError,
  ModelIntegrityError,
  ModelNotReadyError,
  NotFoundError,
  PayloadTooLargeError,
  statusOf,
  UnsupportedMediaTypeError,
} from '../../../lambda/core/errors';

describe('errors', () => {
  it.each([
    [new BadRequestError('m'), 400, 'BadRequest', 'BadRequestError'],
    [new NotFoundError('m'), 404, 'NotFound', 'NotFoundError'],
    [new MethodNotAllowedError('m', ['GET']), 405, 'MethodNotAllowed', 'MethodNotAllowedError'],
    [new PayloadTooLargeError('m'), 413, 'PayloadTooLarge', 'PayloadTooLargeError'],
    [new UnsupportedMediaTypeError('m'), 415, 'UnsupportedMediaType', 'UnsupportedMediaTypeError'],
    [new ModelNotReadyError('m'), 503, 'ModelNotReady', 'ModelNotReadyError'],
  ])('%s maps to %d (%s)', (err, status, kind, name) => {
    expect(err).toBeInstanceOf(InferenceError);
    expect(err.status).toBe(status);
    expect(statusOf(err)).toBe(status);
    expect(errorKind(err)).toBe(kind);
    expect(err.name).toBe(name);
    expect(err.message).toBe('m');
  });

  it('anything else is an internal 500', () => {
    for (const err of [
      new Error('x'),
      new TypeError('x'),
      new ModelIntegrityError('x'),
      'a string',
      undefined,
    ]) {
      expect(statusOf(err)).toBe(500);
      expect(errorKind(err)).toBe('Internal');
    }
  });

  it('MethodNotAllowedError carries the methods to allow', () => {
    expect(new MethodNotAllowedError('no', ['GET', 'HEAD']).allow).toEqual(['GET', 'HEAD']);
  });

  it('ModelIntegrityError is named for logs', () => {
    expect(new ModelIntegrityError('bad hash').name).toBe('ModelIntegrityError');
  });
});
