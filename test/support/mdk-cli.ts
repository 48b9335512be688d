/** Runs the real `mdk` CLI (bin/mdk.ts through tsx) in a child process, as a user would. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

export interface MdkRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function startMdk(args: string[], stdin?: string): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin', 'mdk.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  if (stdin !== undefined) child.stdin.end(stdin);
  return child;
}

/** Runs a command to its end. */
export function runMdk(args: string[], stdin?: string): Promise<MdkRun> {
  const child = startMdk(args, stdin);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

export interface ServingMdk {
  readonly url: string;
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** `mdk serve ARGS`, once it prints `Serving '<model>' at <url>`. */
export async function serveMdk(args: string[], model: string): Promise<ServingMdk> {
  const child = startMdk(['serve', ...args]);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = new RegExp(`Serving '${model}' at (http://\\S+)`).exec(stdout);
      if (m?.[1]) resolve(m[1]);
    });
    void closed.then(() => reject(new Error(`mdk serve exited early: ${stderr}`)));
  });
  return {
    url,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: () => {
      child.kill('SIGTERM');
      return closed;
    },
  };
}
