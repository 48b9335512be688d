/**
 * CloudFormation's side of a custom resource, for handler tests: the event it sends, and a local HTTP server
 * standing in for its pre-signed ResponseURL that keeps what CloudFormation would receive.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CustomResourceEvent, CustomResourceResponse } from '../../lambda/core/custom-resource';

export const TEST_STACK_ID = 'arn:aws:cloudformation:us-east-1:123456789012:stack/ModelServing-dev/1';

/** A Custom::ModelVersion event with no properties; `extra` replaces any field. */
export function customResourceEvent(
  type: CustomResourceEvent['RequestType'],
  extra: Partial<CustomResourceEvent> = {},
): CustomResourceEvent {
  return {
    RequestType: type,
    ResponseURL: 'https://cloudformation-custom-resource-response.example/abc',
    StackId: TEST_STACK_ID,
    RequestId: 'request-1',
    LogicalResourceId: 'IrisVersion',
    ResourceType: 'Custom::ModelVersion',
    ResourceProperties: {},
    ...extra,
  };
}

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly contentType: string | undefined;
  readonly body: string;
}

/** A stand-in for CloudFormation's pre-signed response URL: answers each request with the next status given. */
export class ResponseEndpoint {
  readonly received: ReceivedRequest[] = [];
  /** Statuses for the next requests, in order; 200 once they run out. */
  statuses: number[] = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(this.statuses.shift() ?? 200).end();
    });
  });

  /** Listens on a free local port; returns its base URL (`http://127.0.0.1:<port>`). */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The responses received since the last take, parsed, and forgets them. */
  take(): CustomResourceResponse[] {
    return this.received.splice(0).map((r) => JSON.parse(r.body) as CustomResourceResponse);
  }
}
