/**
 * The HTTP server for local mode (`mdk serve`) and the container. It only moves
 * bytes: routing, validation and inference are the core's InferenceService.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { alignedConcat, HEADER_LENGTH } from '../core/codec';
import type { HttpResponse, InferenceService } from '../core/service';

export interface AccessLogEntry {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly bytes: number;
  readonly ms: number;
}

export interface ServerOptions {
  /** @default 8080 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** One call per request; never given bodies. @default - no access log */
  readonly accessLog?: (entry: AccessLogEntry) => void;
  /** Called with each request body read, for LOG_PAYLOADS. @default - bodies are never logged */
  readonly payloadLog?: (path: string, body: Buffer) => void;
  /** How long an idle keep-alive connection stays open. @default 65 s, above common load balancer idle timeouts */
  readonly keepAliveTimeoutMs?: number;
  /** How long shutdown waits for in-flight requests before closing connections. @default 10 s */
  readonly drainTimeoutMs?: number;
  /**
   * Requests in flight (reading, queued, running or answering) before new ones get a 503 with
   * Retry-After. Bounds memory at about this many request bodies. Health checks are never refused.
   * @default 256
   */
  readonly maxInFlight?: number;
  /**
   * A leading path such as `/prod` to strip: API Gateway private integrations may send the stage in
   * the path. Paths without it are served as they are.
   * @default - none
   */
  readonly pathPrefix?: string;
}

export interface RunningServer {
  readonly server: http.Server;
  readonly url: string;
  readonly port: number;
  /** Requests accepted and not yet answered. */
  inFlight(): number;
  /**
   * Stops accepting, answers readiness checks with 503 so load balancers move on, lets in-flight
   * requests finish (up to the drain timeout), then closes.
   */
  close(): Promise<void>;
}

/** Routes that report health: always answered, never counted against the in-flight bound. */
const HEALTH_PATHS = new Set(['/v2/health/live', '/v2/health/ready', '/ping']);
const READINESS_PATHS = new Set(['/v2/health/ready', '/ping']);

/** Retry-After, in seconds, on a 503 for a full server: one batch or two usually clears it. */
const RETRY_AFTER_S = 1;

function checkPathPrefix(prefix: string | undefined): string | undefined {
  if (prefix === undefined || prefix === '' || prefix === '/') return undefined;
  if (!/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(prefix)) {
    throw new Error(
      `pathPrefix must look like /stage (letters, digits, '.', '_', '~', '-'), got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(alignedConcat(chunks, size, req.headers[HEADER_LENGTH] as string | undefined)),
    );
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, out: HttpResponse, close: boolean): number {
  const body = typeof out.body === 'string' ? Buffer.from(out.body, 'utf8') : out.body;
  res.writeHead(out.status, {
    ...out.headers,
    'content-length': body.length,
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
  return body.length;
}

const JSON_TYPE = { 'content-type': 'application/json' };

export function startServer(service: InferenceService, options: ServerOptions = {}): Promise<RunningServer> {
  const limit = service.limits.maxPayloadBytes;
  const maxInFlight = options.maxInFlight ?? 256;
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1)
    throw new Error(`maxInFlight must be a positive integer, got ${maxInFlight}`);
  const prefix = checkPathPrefix(options.pathPrefix);
  let draining = false;
  let inFlight = 0;

  const server = http.createServer((req, res) => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    let path = (req.url ?? '/').split('?')[0] ?? '/';
    if (prefix && (path === prefix || path.startsWith(`${prefix}/`))) path = path.slice(prefix.length) || '/';
    const log = (status: number, bytes: number) =>
      options.accessLog?.({
        method,
        path,
        status,
        bytes,
        ms: Math.round((performance.now() - started) * 1000) / 1000,
      });

    if (HEALTH_PATHS.has(path)) {
      if (draining && READINESS_PATHS.has(path)) {
        req.resume();
        const body = JSON.stringify({ ready: false, error: 'the server is shutting down' });
        log(503, send(res, { status: 503, headers: JSON_TYPE, body }, true));
        return;
      }
    } else if (inFlight >= maxInFlight) {
      // Refused before its body is read: a full server holds no more than maxInFlight bodies.
      req.resume();
      const body = JSON.stringify({
        error: `the server is at its limit of ${maxInFlight} requests in flight; retry after ${RETRY_AFTER_S} s or add capacity`,
      });
      log(
        503,
        send(
          res,
          { status: 503, headers: { ...JSON_TYPE, 'retry-after': String(RETRY_AFTER_S) }, body },
          draining,
        ),
      );
      return;
    } else {
      inFlight++;
      res.once('close', () => inFlight--);
    }

    readBody(req, limit)
      .then(async (body) => {
        options.payloadLog?.(path, body);
        const headers: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        const out = await service.handle({ method, path, headers, body });
        // While draining, each response closes its connection so clients reconnect elsewhere.
        log(out.status, send(res, out, draining));
      })
      .catch((err: unknown) => {
        const tooLarge = err instanceof BodyTooLarge;
        const status = tooLarge ? 413 : 400;
        const error = tooLarge
          ? `request body is larger than the limit of ${limit} bytes; send a smaller batch`
          : 'the request body could not be read';
        // The rest of an oversized body is not read, so this connection cannot be reused.
        const body = JSON.stringify({ error });
        log(status, send(res, { status, headers: JSON_TYPE, body }, true));
      });
  });
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 65_000;
  server.headersTimeout = server.keepAliveTimeout + 1_000;

  const close = async (): Promise<void> => {
    if (draining) return;
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), options.drainTimeoutMs ?? 10_000);
    timer.unref();
    await closed;
    clearTimeout(timer);
  };

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        server,
        url: `http://${host}:${addr.port}`,
        port: addr.port,
        inFlight: () => inFlight,
        close,
      });
    });
  });
}
