/**
 * `mdk smoke`: after a deploy, wait for the endpoint to be ready, send the manifest's sample request and
 * compare the answer, the same check the pre-traffic hook runs before traffic moves.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { readManifest, runSampleCheck, type InvokeResult } from '../../lambda/core/sample-check';
import type { ModelManifest } from '../../lambda/core/types';
import { CliError, int, parse, required, str, UsageError } from './args';

const HELP = `Usage: mdk smoke --url URL --model PATH [options]

Waits for GET <URL>v2/health/ready, then POSTs the manifest's sample request to
<URL>v2/models/<name>/infer and compares the answer with the sample's response.
Exits 0 when it matches, 1 with the differences when it does not.

Options:
  --url URL          the API's base URL: the stage URL (ApiUrl output), or
                     http://127.0.0.1:8080/ for mdk serve (required)
  --model PATH       model folder, model.json, or s3:// folder with the manifest (required)
  --sign             sign requests with SigV4 (service execute-api) for IAM-auth APIs,
                     with credentials from the environment, profile or role
  --region R         region to sign for, and of --api-key-id (default: from the
                     execute-api URL, else AWS_REGION)
  --api-key KEY      send this x-api-key header
  --api-key-id ID    look the key's value up with API Gateway GetApiKey, and send it
  --wait SECONDS     how long to wait for readiness (default 60)
  -h, --help         this help
`;

/** Output streams, so tests can read what a run printed. */
export interface SmokeIo {
  out(text: string): void;
  err(text: string): void;
}

const PROCESS_IO: SmokeIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

const POLL_MS = 1000;

/** Node's sha256 in the shape SignatureV4 wants: a hash, or an HMAC when given a secret. */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    if (this.secret === undefined) return createHash('sha256');
    const key =
      typeof this.secret === 'string'
        ? this.secret
        : ArrayBuffer.isView(this.secret)
          ? Buffer.from(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength)
          : Buffer.from(this.secret);
    return createHmac('sha256', key);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    if (typeof data === 'string') this.hash.update(data, 'utf8');
    else if (ArrayBuffer.isView(data))
      this.hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else this.hash.update(new Uint8Array(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

/** The region in an `https://<id>.execute-api.<region>.amazonaws.com/...` URL. */
export function regionOfUrl(url: URL): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(url.hostname)?.[1];
}

type Send = (method: 'GET' | 'POST', url: URL, body?: string) => Promise<InvokeResult>;

/** fetch, with an API key header and SigV4 when asked. */
async function sender(apiKey: string | undefined, signRegion: string | undefined): Promise<Send> {
  let sign:
    | ((
        method: string,
        url: URL,
        headers: Record<string, string>,
        body?: string,
      ) => Promise<Record<string, string>>)
    | undefined;
  if (signRegion) {
    const { SignatureV4 } = await import('@smithy/signature-v4');
    const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
    const signer = new SignatureV4({
      service: 'execute-api',
      region: signRegion,
      credentials: defaultProvider(),
      sha256: NodeSha256,
    });
    sign = async (method, url, headers, body) => {
      const query: Record<string, string> = {};
      url.searchParams.forEach((v, k) => (query[k] = v));
      const signed = await signer.sign({
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port ? Number(url.port) : undefined,
        path: url.pathname,
        query,
        headers: { ...headers, host: url.host },
        body,
      });
      return signed.headers;
    };
  }
  return async (method, url, body) => {
    let headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (apiKey) headers['x-api-key'] = apiKey;
    if (sign) headers = await sign(method, url, headers, body);
    // fetch sets Host itself from the URL; it refuses one given by hand.
    const sent = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'host'));
    const res = await fetch(url, { method, headers: sent, body });
    return { status: res.status, body: await res.text() };
  };
}

function errorOf(body: unknown): string {
  if (typeof body !== 'string') return '';
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    const e = parsed.error ?? parsed.message;
    return typeof e === 'string' ? e : body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

/** Polls readiness until 200 or `waitSeconds` have passed; progress goes to stderr. */
async function waitReady(send: Send, url: URL, waitSeconds: number, io: SmokeIo): Promise<void> {
  const deadline = Date.now() + waitSeconds * 1000;
  const started = Date.now();
  for (;;) {
    let last: string;
    try {
      const res = await send('GET', url);
      if (res.status === 200) return;
      last = `HTTP ${res.status}${errorOf(res.body) ? `: ${errorOf(res.body)}` : ''}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      last = cause?.code ?? cause?.message ?? (err as Error).message;
    }
    const waited = Math.round((Date.now() - started) / 1000);
    if (Date.now() + POLL_MS > deadline) {
      throw new CliError(`${url.href} was not ready within ${waitSeconds} s; the last answer was ${last}`);
    }
    io.err(`waiting for ${url.href} (${waited}/${waitSeconds} s): ${last}\n`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function apiKeyValue(id: string, region: string | undefined): Promise<string> {
  const { APIGatewayClient, GetApiKeyCommand } = await import('@aws-sdk/client-api-gateway');
  const client = new APIGatewayClient(region ? { region } : {});
  try {
    const res = await client.send(new GetApiKeyCommand({ apiKey: id, includeValue: true }));
    if (!res.value) throw new CliError(`API key ${id} has no value (is it enabled?)`);
    return res.value;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read API key ${id}: ${(err as Error).name}: ${(err as Error).message}`);
  } finally {
    client.destroy();
  }
}

export async function smokeCommand(argv: string[], io: SmokeIo = PROCESS_IO): Promise<number> {
  const p = parse(argv, {
    url: { type: 'string' },
    model: { type: 'string' },
    sign: { type: 'boolean' },
    region: { type: 'string' },
    'api-key': { type: 'string' },
    'api-key-id': { type: 'string' },
    wait: { type: 'string' },
  });
  if (p.help) {
    io.out(HELP);
    return 0;
  }
  const rawUrl = required(p, 'url');
  const location = required(p, 'model');
  const waitSeconds = int(p, 'wait', 0, 3600) ?? 60;
  let base: URL;
  try {
    base = new URL(rawUrl.endsWith('/') ? rawUrl : `${rawUrl}/`);
  } catch {
    throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(rawUrl)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(rawUrl)}`);
  }
  if (str(p, 'api-key') !== undefined && str(p, 'api-key-id') !== undefined) {
    throw new UsageError('give --api-key or --api-key-id, not both');
  }
  const region =
    str(p, 'region') ?? regionOfUrl(base) ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  const signing = p.values.sign === true;
  if (str(p, 'region') !== undefined && !signing && str(p, 'api-key-id') === undefined) {
    throw new UsageError('--region is for --sign or --api-key-id');
  }
  if (signing && !region) {
    throw new UsageError('--sign needs a region: give --region, or an execute-api URL, or set AWS_REGION');
  }

  let manifest: ModelManifest;
  try {
    manifest = await readManifest(location);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const keyId = str(p, 'api-key-id');
  const apiKey = keyId !== undefined ? await apiKeyValue(keyId, region) : str(p, 'api-key');
  const send = await sender(apiKey, signing ? region : undefined);

  await waitReady(send, new URL('v2/health/ready', base), waitSeconds, io);
  const inferUrl = new URL(`v2/models/${encodeURIComponent(manifest.name)}/infer`, base);
  const result = await runSampleCheck(manifest, (request) => send('POST', inferUrl, JSON.stringify(request)));
  if (result.passed) {
    io.out(
      `smoke test passed: ${base.href} is ready, and ${manifest.name} ${manifest.version} answered its sample as expected\n`,
    );
    return 0;
  }
  io.out(
    `smoke test FAILED: ${inferUrl.href} (${manifest.name} ${manifest.version}):\n  ${result.differences.join('\n  ')}\n`,
  );
  return 1;
}
