/** Spawns bench child processes, collects their IPC messages, and kills any that overrun their time bound. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { ChildMessage } from './common';

export const ROOT = path.resolve(__dirname, '..');
/** How children run TypeScript: tsx's loader on plain node (no npx wrapper process in between). */
export const TSX_ARGS = ['--import', 'tsx'];

const live = new Set<ChildProcess>();

/** Kills the children this process started that are still running (each by its own handle). */
export function killChildren(): void {
  for (const c of live) c.kill('SIGKILL');
}

export interface SpawnOptions {
  /** The node arguments before the script; @default TSX_ARGS */
  readonly nodeArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** 'ignore' sends the child's stdout to /dev/null; 'pipe' collects it. */
  readonly stdout: 'ignore' | 'pipe';
  /** The child is killed after this long. */
  readonly timeoutMs: number;
}

export class Child {
  readonly process: ChildProcess;
  readonly spawnedAt: number;
  readonly messages: ChildMessage[] = [];
  /** Resolves when the process exits, after all its messages. Rejects on an error message, exit code or timeout. */
  readonly done: Promise<void>;
  private stdoutText = '';
  private readonly waiters: { kind: ChildMessage['kind']; resolve: (m: ChildMessage) => void }[] = [];

  constructor(script: string, arg: unknown, options: SpawnOptions) {
    const label = path.basename(script);
    this.spawnedAt = performance.now();
    this.process = spawn(process.execPath, [...(options.nodeArgs ?? TSX_ARGS), script, JSON.stringify(arg)], {
      cwd: ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', options.stdout, 'inherit', 'ipc'],
    });
    live.add(this.process);
    this.process.on('close', () => live.delete(this.process));
    this.process.stdout?.setEncoding('utf8');
    this.process.stdout?.on('data', (chunk: string) => {
      // Bounded: only the start of the output is ever needed (the model-load log line).
      if (this.stdoutText.length < 1_000_000) this.stdoutText += chunk;
    });
    this.process.on('message', (raw) => {
      const msg = raw as ChildMessage;
      this.messages.push(msg);
      for (const w of this.waiters.filter((x) => x.kind === msg.kind)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    });
    this.done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.process.kill('SIGKILL');
        reject(new Error(`${label} took longer than ${options.timeoutMs} ms; killed`));
      }, options.timeoutMs);
      this.process.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      // 'close', not 'exit': it comes after the IPC channel has delivered every message.
      this.process.on('close', (code, signal) => {
        clearTimeout(timer);
        const failure = this.messages.find((m) => m.kind === 'error');
        if (failure && failure.kind === 'error') reject(new Error(`${label} failed: ${failure.message}`));
        else if (code !== 0) reject(new Error(`${label} exited with ${signal ?? code}`));
        else resolve();
      });
    });
    // Callers await `done` or `waitFor`; this keeps an early failure from being an unhandled rejection.
    this.done.catch(() => undefined);
  }

  get stdout(): string {
    return this.stdoutText;
  }

  /** The first message of this kind; rejects if the child ends first. */
  waitFor<K extends ChildMessage['kind']>(kind: K): Promise<Extract<ChildMessage, { kind: K }>> {
    const seen = this.messages.find((m) => m.kind === kind);
    if (seen) return Promise.resolve(seen as Extract<ChildMessage, { kind: K }>);
    return this.next(kind);
  }

  /** The next message of this kind to arrive after this call; rejects if the child ends first. */
  next<K extends ChildMessage['kind']>(kind: K): Promise<Extract<ChildMessage, { kind: K }>> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ kind, resolve: (m) => resolve(m as Extract<ChildMessage, { kind: K }>) });
      this.done.then(
        () => reject(new Error(`${kind}: child exited without sending it`)),
        (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
      );
    });
  }

  /** Sends `msg` and waits for the child's next message of `kind`, its answer. */
  ask<K extends ChildMessage['kind']>(msg: string, kind: K): Promise<Extract<ChildMessage, { kind: K }>> {
    const answer = this.next(kind);
    this.send(msg);
    return answer;
  }

  send(msg: string): void {
    this.process.send(msg);
  }
}

/** Runs a child to completion and returns its one message of `kind`. */
export async function runChild<K extends ChildMessage['kind']>(
  script: string,
  arg: unknown,
  kind: K,
  options: SpawnOptions,
): Promise<Extract<ChildMessage, { kind: K }>> {
  const child = new Child(script, arg, options);
  const msg = await child.waitFor(kind);
  await child.done;
  return msg;
}
