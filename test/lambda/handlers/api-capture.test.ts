/**
 * Data capture adds no network call to a request: the api handler runs in a fresh node process whose every
 * outbound connection and DNS lookup fails (test/support/block-network.cjs), serves captured requests, and
 * its capture lines come out on stdout, which is all Lambda needs to ship them to CloudWatch Logs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCaptureRecord, type CaptureRecord } from '../../../lambda/core/capture-record';

const ROOT = path.join(__dirname, '..', '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');
const HANDLER = path.join(ROOT, 'lambda', 'handlers', 'api.ts');
const SUPPORT = path.join(ROOT, 'test', 'support');

interface Run {
  results: { statusCode: number; body: string }[];
  blocked: string[];
  stdout: string[];
}

async function runOffline(env: Record<string, string>, events: unknown[]): Promise<Run> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-offline-'));
  try {
    const eventsFile = path.join(work, 'events.json');
    const resultFile = path.join(work, 'result.json');
    fs.writeFileSync(eventsFile, JSON.stringify(events));
    const out: string[] = [];
    const err: string[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          '--require',
          path.join(SUPPORT, 'block-network.cjs'),
          '--import',
          'tsx',
          path.join(SUPPORT, 'handler-runner.mjs'),
          HANDLER,
          eventsFile,
          resultFile,
        ],
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? '', HOME: work, TMPDIR: work, AWS_REGION: 'us-east-1', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 60_000,
        },
      );
      child.stdout.on('data', (c: Buffer) => out.push(c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => err.push(c.toString('utf8')));
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) throw new Error(`the handler process exited with ${code}:\n${err.join('').slice(-3000)}`);
    const result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as Omit<Run, 'stdout'>;
    return {
      ...result,
      stdout: out
        .join('')
        .split('\n')
        .filter((l) => l !== ''),
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function restEvent(route: string, body: string, headers: Record<string, string> = {}) {
  return {
    resource: '/{proxy+}',
    path: route,
    httpMethod: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {},
    body,
    isBase64Encoded: false,
  };
}

const ROWS = [
  [6.4, 3.2, 4.5, 1.5],
  [4.7, 3.2, 1.3, 0.2],
  [7.7, 2.6, 6.9, 2.3],
];

const captures = (lines: string[]): CaptureRecord[] =>
  lines.map((l) => JSON.parse(l) as unknown).filter((l): l is CaptureRecord => isCaptureRecord(l));

describe('api handler with data capture, network blocked', () => {
  it('serves every request and writes the capture lines to stdout, with no connection attempted', async () => {
    const run = await runOffline({ MODEL_URI: IRIS, CAPTURE_PERCENT: '100', CAPTURE_HASH: 'sepal_width' }, [
      restEvent(
        '/v2/models/iris/infer',
        JSON.stringify({
          id: 'batch-1',
          inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: ROWS.flat() }],
        }),
      ),
      restEvent('/v2/models/iris/infer', JSON.stringify({ instances: [ROWS[0]] })),
      restEvent('/v2/models/iris/infer', '{"inputs": [nope'),
    ]);
    expect(run.results.map((r) => r.statusCode)).toEqual([200, 200, 400]);
    expect(run.blocked).toEqual([]);
    const records = captures(run.stdout);
    expect(records.map((r) => [r.request_id, r.row, r.rows])).toEqual([
      ['batch-1', 0, 3],
      ['batch-1', 1, 3],
      ['batch-1', 2, 3],
      [undefined, 0, 1],
    ]);
    expect(records[0]?.inputs.input).toEqual([6.4, expect.stringMatching(/^sha256:[0-9a-f]{16}$/), 4.5, 1.5]);
    expect(records[0]?.hashed).toEqual(['sepal_width']);
    // The EMF line counts the captured rows, so a dashboard can show capture is flowing.
    expect(run.stdout.some((l) => l.includes('"CapturedRows":3'))).toBe(true);
  }, 90_000);

  it('the blocker does block: a model in S3 cannot load, and the attempts are recorded', async () => {
    const run = await runOffline(
      {
        MODEL_URI: 's3://models-bucket/iris/1.0.0/',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        CAPTURE_PERCENT: '100',
      },
      [restEvent('/v2/models/iris/infer', JSON.stringify({ instances: [ROWS[0]] }))],
    );
    expect(run.results.map((r) => r.statusCode)).toEqual([503]);
    expect(run.blocked.length).toBeGreaterThan(0);
    expect(run.blocked[0]).toMatch(/^connect models-bucket\.s3\.us-east-1\.amazonaws\.com:443$/);
    expect(captures(run.stdout)).toEqual([]);
  }, 90_000);
});
