/**
 * CloudFormation custom resources, whatever they do: the event fields they read, the response CloudFormation
 * gets (success, failure, a body within its 4 KB limit), and a deadline so a resource always answers before its
 * Lambda times out. The handlers (`lambda/handlers/custom-resource.ts`) do the HTTP.
 */

/** The fields of a CloudFormation custom resource event these resources read. */
export interface CustomResourceEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResponseURL: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly ResourceType?: string;
  /** Absent on Create. */
  readonly PhysicalResourceId?: string;
  readonly ResourceProperties?: Readonly<Record<string, unknown>>;
}

export interface CustomResourceOutcome {
  readonly physicalResourceId: string;
  readonly data?: Readonly<Record<string, string>>;
}

/** CloudFormation rejects a response body over 4096 bytes. */
export const RESPONSE_LIMIT_BYTES = 4096;

export interface CustomResourceResponse {
  readonly Status: 'SUCCESS' | 'FAILED';
  readonly Reason: string;
  readonly PhysicalResourceId: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly Data?: Readonly<Record<string, string>>;
}

export function successResponse(
  event: CustomResourceEvent,
  outcome: CustomResourceOutcome,
): CustomResourceResponse {
  return {
    Status: 'SUCCESS',
    Reason: `${event.RequestType} ${outcome.physicalResourceId}`,
    PhysicalResourceId: outcome.physicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    ...(outcome.data ? { Data: outcome.data } : {}),
  };
}

/**
 * A failure keeps the resource's current physical id (an Update that fails must not look like a
 * replacement). A failed Create has none yet; it gets one that says so, and the Delete that CloudFormation's
 * rollback then sends for it does nothing.
 */
export function failureResponse(event: CustomResourceEvent, err: unknown): CustomResourceResponse {
  return {
    Status: 'FAILED',
    Reason: err instanceof Error ? err.message || err.name : String(err),
    PhysicalResourceId: event.PhysicalResourceId ?? `${event.LogicalResourceId}-create-failed`,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  };
}

const ELLIPSIS = ' [...]';

/** The response as JSON, with Reason shortened (at the end) so the whole body fits CloudFormation's limit. */
export function responseBody(response: CustomResourceResponse, limitBytes = RESPONSE_LIMIT_BYTES): string {
  const body = JSON.stringify(response);
  if (Buffer.byteLength(body) <= limitBytes) return body;
  const reason = [...response.Reason]; // code points, so a cut never splits a surrogate pair
  const fits = (n: number) =>
    Buffer.byteLength(JSON.stringify({ ...response, Reason: reason.slice(0, n).join('') + ELLIPSIS })) <=
    limitBytes;
  let lo = 0;
  let hi = reason.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  const trimmed = JSON.stringify({ ...response, Reason: reason.slice(0, lo).join('') + ELLIPSIS });
  if (Buffer.byteLength(trimmed) > limitBytes) {
    throw new Error(`custom resource response is over ${limitBytes} bytes even with an empty Reason`);
  }
  return trimmed;
}

/**
 * Settles like `work`, or rejects with `message` after `ms`: a custom resource must answer before its Lambda
 * times out, or the stack waits an hour for a response that never comes.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  if (!Number.isFinite(ms)) return work;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), Math.max(0, ms));
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
