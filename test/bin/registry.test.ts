/**
 * `mdk registry` against moto: in-process through registryCommand, and as the real CLI in a child process
 * (through bin/mdk.ts once it lists the command).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CliError, UsageError } from '../../bin/cli/args';
import { registryCommand } from '../../bin/cli/registry';
import { irisCopy } from '../support/iris-variants';
import { motoAwsEnv, motoS3Client, startMoto, type MotoServer } from '../support/moto';

const ROOT = path.join(__dirname, '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');
const BUCKET = 'cli-models';

let moto: MotoServer;
let s3: S3Client;
const savedEnv = { ...process.env };
const dirs: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  Object.assign(process.env, awsEnv());
});

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  await moto?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function awsEnv(): Record<string, string> {
  return motoAwsEnv(moto.endpoint);
}

function irisVersion(version: string): string {
  const dir = irisCopy((m) => (m.version = version));
  dirs.push(dir);
  return dir;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** registryCommand in this process, with stdout and stderr captured; a thrown CliError becomes its exit code. */
async function run(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const outSpy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const errSpy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    const code = await registryCommand(args);
    return { code, stdout, stderr };
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    return { code: err.exitCode, stdout, stderr: stderr + `mdk: ${err.message}\n` };
  } finally {
    outSpy.mockRestore();
    errSpy.mockRestore();
  }
}

describe('mdk registry, in process', () => {
  const group = 'cli-iris';

  test('register uploads and creates a pending package; a rerun creates nothing', async () => {
    const first = await run([
      'register',
      '--group',
      group,
      '--model',
      IRIS,
      '--bucket',
      BUCKET,
      '--create-group',
    ]);
    expect(first).toMatchObject({ code: 0 });
    expect(first.stdout).toMatch(/^registered: cli-iris package 1: iris 1\.1\.0, PendingManualApproval\n/);
    expect(first.stdout).toContain('s3://cli-models/iris/1.1.0/');
    expect(first.stderr).toContain('mdk: creating model package group cli-iris');
    expect(first.stderr).toContain('mdk: uploading model.onnx');
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'iris/1.1.0/model.onnx' }));
    expect(head.Metadata?.sha256).toMatch(/^[0-9a-f]{64}$/);

    const again = await run(['register', '--group', group, '--model', IRIS, '--bucket', BUCKET, '--json']);
    expect(again.code).toBe(0);
    const json = JSON.parse(again.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      packageVersion: 1,
      created: false,
      modelName: 'iris',
      version: '1.1.0',
      status: 'PendingManualApproval',
      s3Uri: 's3://cli-models/iris/1.1.0/',
    });
    expect(json.uploads).toEqual([
      { key: 'iris/1.1.0/model.onnx', action: 'unchanged' },
      { key: 'iris/1.1.0/metrics.json', action: 'unchanged' },
      { key: 'iris/1.1.0/model.json', action: 'unchanged' },
    ]);
  });

  test('approve, reject, list and resolve', async () => {
    expect(
      (await run(['register', '--group', group, '--model', irisVersion('1.2.0'), '--bucket', BUCKET])).code,
    ).toBe(0);
    const approved = await run([
      'approve',
      '--group',
      group,
      '--version',
      '1',
      '--description',
      'looks good',
    ]);
    expect(approved).toMatchObject({ code: 0 });
    expect(approved.stdout).toMatch(/^cli-iris package 1: iris 1\.1\.0, Approved/);

    const resolved = await run(['resolve', '--group', group, '--bucket', BUCKET, '--json']);
    expect(JSON.parse(resolved.stdout)).toMatchObject({
      packageVersion: 1,
      version: '1.1.0',
      status: 'Approved',
    });

    // approved at registration, then rejected: resolving falls back to package 1
    const approvedAtOnce = await run([
      'register',
      '--group',
      group,
      '--model',
      irisVersion('1.3.0'),
      '--bucket',
      BUCKET,
      '--approve',
    ]);
    expect(approvedAtOnce.stdout).toMatch(/package 3: iris 1\.3\.0, Approved/);
    expect(JSON.parse((await run(['resolve', '--group', group, '--json'])).stdout)).toMatchObject({
      packageVersion: 3,
    });
    const arn = (
      JSON.parse((await run(['list', '--group', group, '--json'])).stdout) as { packageArn: string }[]
    )[0]!.packageArn;
    expect((await run(['reject', '--group', group, '--version', arn])).stdout).toMatch(
      /package 3: iris 1\.3\.0, Rejected/,
    );
    expect(JSON.parse((await run(['resolve', '--group', group, '--json'])).stdout)).toMatchObject({
      packageVersion: 1,
    });

    const list = await run(['list', '--group', group]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^VERSION\s+STATUS\s+MODEL\s+MODEL VERSION\s+CREATED$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ['3', 'Rejected', 'iris', '1.3.0'],
      ['2', 'PendingManualApproval', 'iris', '1.2.0'],
      ['1', 'Approved', 'iris', '1.1.0'],
    ]);
    expect(lines[1]).toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  });

  test('every bad input is a clear one-line error with the right exit code', async () => {
    const cases: [string[], number, string | RegExp][] = [
      [['register', '--model', IRIS, '--bucket', BUCKET], 2, '--group is required'],
      [['register', '--group', group, '--bucket', BUCKET], 2, '--model is required'],
      [['register', '--group', group, '--model', IRIS], 2, '--bucket is required'],
      [
        ['register', '--group', group, '--model', IRIS, '--bucket', BUCKET, '--nope'],
        2,
        /Unknown option '--nope'/,
      ],
      [
        ['register', '--group', 'no-such', '--model', IRIS, '--bucket', BUCKET],
        1,
        'model package group "no-such" does not exist in us-east-1; pass --create-group to create it',
      ],
      [
        ['register', '--group', group, '--model', '/no/such/dir', '--bucket', BUCKET],
        1,
        'model folder /no/such/dir does not exist',
      ],
      [
        ['register', '--group', group, '--model', IRIS, '--bucket', 'no-such-bucket'],
        1,
        'bucket no-such-bucket does not exist',
      ],
      [['approve', '--group', group], 2, '--version is required'],
      [['approve', '--group', group, '--version', 'latest'], 2, /--version must be a package version number/],
      [
        ['approve', '--group', group, '--version', '42'],
        1,
        'model package group "cli-iris" has no version 42 (it has 1, 2, 3)',
      ],
      [
        ['reject', '--group', 'no-such', '--version', '1'],
        1,
        'model package group "no-such" does not exist in us-east-1',
      ],
      [['list', '--group', 'no-such'], 1, 'model package group "no-such" does not exist in us-east-1'],
      [['resolve', '--group', 'empty'], 1, /model package group "empty" has no Approved model package/],
      [
        ['resolve', '--group', group, '--bucket', 'other'],
        1,
        /points into bucket cli-models, not the model bucket other/,
      ],
      [
        ['publish'],
        2,
        "unknown registry command 'publish'; use one of: register, approve, reject, list, resolve",
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = await run(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toEqual(
        expect.stringMatching(typeof message === 'string' ? new RegExp(escape(message)) : message),
      );
    }
    // a changed model under a registered version: sha256 mismatch with the manifest
    const bad = irisVersion('9.9.9');
    fs.appendFileSync(path.join(bad, 'model.onnx'), Buffer.alloc(1));
    const r = await run(['register', '--group', group, '--model', bad, '--bucket', BUCKET]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /model\.onnx has sha256 [0-9a-f]{64}, but the manifest's sha256 is [0-9a-f]{64}/,
    );
  });

  test('--help prints the usage; no command is a usage error', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: mdk registry <command> [options]');
    expect((await run(['list', '--help'])).stdout).toContain('list --group G [--json]');
    expect((await run([])).code).toBe(2);
    await expect(registryCommand(['approve', '--version', '1'])).rejects.toBeInstanceOf(UsageError);
  });
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The CLI as users run it, in a child process; AWS comes from the environment only. */
function cli(args: string[]): Promise<Run> {
  const mdk = fs.readFileSync(path.join(ROOT, 'bin', 'mdk.ts'), 'utf8');
  // Until bin/mdk.ts lists the command, run registryCommand through the same error handling by hand.
  const entry = mdk.includes('registryCommand')
    ? [path.join(ROOT, 'bin', 'mdk.ts'), 'registry', ...args]
    : [
        '-e',
        `require('./bin/cli/registry').registryCommand(process.argv.slice(1)).then((c) => { process.exitCode = c; }, (e) => { process.stderr.write('mdk: ' + e.message + '\\n'); process.exitCode = e.exitCode ?? 1; })`,
        ...args,
      ];
  const child = spawn(process.execPath, ['--import', 'tsx', ...entry], {
    cwd: ROOT,
    env: { ...savedEnv, ...awsEnv(), NODE_OPTIONS: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

describe('mdk registry, as a child process', () => {
  test('register, approve and list from the environment alone', async () => {
    const group = 'cli-child';
    const reg = await cli([
      'register',
      '--group',
      group,
      '--model',
      irisVersion('3.0.0'),
      '--bucket',
      BUCKET,
      '--create-group',
    ]);
    expect(reg.stderr).toContain('mdk: creating model package group cli-child');
    expect(reg).toMatchObject({ code: 0 });
    expect(reg.stdout).toMatch(/^registered: cli-child package 1: iris 3\.0\.0, PendingManualApproval/);
    expect(await cli(['approve', '--group', group, '--version', '1'])).toMatchObject({ code: 0 });
    const list = await cli(['list', '--group', group, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ packageVersion: 1, status: 'Approved', version: '3.0.0' }),
    ]);
    const bad = await cli(['list', '--group', 'missing-group']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('mdk: model package group "missing-group" does not exist in us-east-1');
  }, 60_000);
});
