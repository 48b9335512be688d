/** Runs a synthesized Lambda asset's handler as Lambda would: a fresh node process, only the env it is given. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const RUNNER = path.join(__dirname, 'bundle-runner.mjs');

/** What bundle-runner.mjs writes: the handler's answers, its init time and the native libraries it loaded. */
export interface BundleRun<T> {
  readonly initMs: number;
  readonly results: T[];
  readonly nativeLibs: string[];
}

/**
 * Invokes the asset's `index.handler` on each of `events` in turn, in a fresh node process whose environment is
 * exactly `env` plus PATH, HOME and TMPDIR (no NODE_OPTIONS or AWS profile from this machine).
 */
export async function runBundle<T>(
  assetDir: string,
  env: Record<string, string>,
  events: unknown[],
  timeoutMs = 30_000,
): Promise<BundleRun<T>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-run-'));
  try {
    const eventsFile = path.join(work, 'events.json');
    const resultFile = path.join(work, 'result.json');
    fs.writeFileSync(eventsFile, JSON.stringify(events));
    const output: string[] = [];
    const code = await new Promise<number | string>((resolve, reject) => {
      const child = spawn(process.execPath, [RUNNER, assetDir, eventsFile, resultFile], {
        cwd: assetDir,
        env: { PATH: process.env.PATH ?? '', HOME: work, TMPDIR: work, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: timeoutMs,
      });
      child.stdout.on('data', (c: Buffer) => output.push(c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => output.push(c.toString('utf8')));
      child.on('error', reject);
      child.on('exit', (exitCode, signal) => resolve(exitCode ?? signal ?? 'unknown'));
    });
    if (code !== 0 || !fs.existsSync(resultFile)) {
      throw new Error(`the bundle runner exited with ${code}:\n${output.join('').slice(-4000)}`);
    }
    return JSON.parse(fs.readFileSync(resultFile, 'utf8')) as BundleRun<T>;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
