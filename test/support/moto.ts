/**
 * A real moto server for the AWS APIs the tests use. Each test file starts its own (jest runs files in
 * parallel workers) on a free port, and stops it in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { S3Client } from '@aws-sdk/client-s3';

export interface MotoServer {
  /** e.g. http://127.0.0.1:43127 */
  readonly endpoint: string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;

/** A port nothing listens on right now: the OS picks one for port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** The environment for moto_server: PATH with pyenv's shims folder, where the binary lives. */
function motoEnv(): NodeJS.ProcessEnv {
  const shims = path.join(process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv'), 'shims');
  const parts = (process.env.PATH ?? '').split(path.delimiter).filter((p) => p !== '');
  const PATH = parts.includes(shims) ? parts.join(path.delimiter) : [shims, ...parts].join(path.delimiter);
  return { ...process.env, PATH };
}

function answers(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(endpoint, (res) => {
      res.resume();
      resolve(true);
    });
    req.setTimeout(1000, () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}

async function startOnce(): Promise<MotoServer | { failed: string }> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    env: motoEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (spawnError) return { failed: `moto_server could not start: ${spawnError.message}` };
    if (child.exitCode !== null || child.signalCode !== null) {
      return { failed: `moto_server exited (${child.exitCode ?? child.signalCode}): ${stderr}` };
    }
    if (await answers(endpoint)) {
      return { endpoint, stop: () => stopChild(child) };
    }
    await sleep(100);
  }
  await stopChild(child);
  return { failed: `moto_server did not answer on ${endpoint} within ${START_TIMEOUT_MS} ms: ${stderr}` };
}

/** Starts `moto_server` on a free port and waits until it answers HTTP. Retries if the port was taken meanwhile. */
export async function startMoto(): Promise<MotoServer> {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await startOnce();
    if ('endpoint' in started) return started;
    failures.push(started.failed);
  }
  throw new Error(`could not start moto:\n${failures.join('\n')}`);
}

/** An S3 client for a moto server: us-east-1, path-style addressing, dummy credentials. */
export function motoS3Client(endpoint: string): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
}
