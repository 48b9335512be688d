/**
 * Typed errors. Each carries the HTTP status it maps to, so every transport
 * (Lambda, container, local server) answers the same way.
 */
export abstract class InferenceError extends Error {
  abstract readonly status: number;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400: the request is malformed or does not match the model. */
export class BadRequestError extends InferenceError {
  readonly status = 400;
}

/** 404: no such model or route. */
export class NotFoundError extends InferenceError {
  readonly status = 404;
}

/** 405: the route exists but not for this method. */
export class MethodNotAllowedError extends InferenceError {
  readonly status = 405;
  constructor(
    message: string,
    readonly allow: readonly string[],
  ) {
    super(message);
  }
}

/** 413: the body or the batch is larger than the configured limit. */
export class PayloadTooLargeError extends InferenceError {
  readonly status = 413;
}

/** 415: a content type the route does not read. */
export class UnsupportedMediaTypeError extends InferenceError {
  readonly status = 415;
}

/** 503: the model is loading, or failed to load and refuses to serve. */
export class ModelNotReadyError extends InferenceError {
  readonly status = 503;
}

/** The model file does not match its expected sha256; the model must not serve. */
export class ModelIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelIntegrityError';
  }
}

/** A short machine-readable kind for metrics and logs. */
export function errorKind(err: unknown): string {
  if (err instanceof BadRequestError) return 'BadRequest';
  if (err instanceof NotFoundError) return 'NotFound';
  if (err instanceof MethodNotAllowedError) return 'MethodNotAllowed';
  if (err instanceof PayloadTooLargeError) return 'PayloadTooLarge';
  if (err instanceof UnsupportedMediaTypeError) return 'UnsupportedMediaType';
  if (err instanceof ModelNotReadyError) return 'ModelNotReady';
  return 'Internal';
}

export function statusOf(err: unknown): number {
  return err instanceof InferenceError ? err.status : 500;
}
