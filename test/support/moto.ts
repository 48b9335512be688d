/**
 * A real moto server for the AWS APIs the tests use. Each test file starts its own (jest runs files in
 * parallel workers) on a free port, and stops it in afterAll.
 *
 * `startMoto({ runLambdas: true })` starts it through `moto_lambda.py`, which makes Lambda functions really
 * run: Node.js code in a local node process instead of moto's Docker container. CloudFormation custom
 * resources then work too (their ResponseURL points back at this server), so a stack that has one completes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { CreateFunctionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { zip } from './zip';

export interface MotoServer {
  /** e.g. http://127.0.0.1:43127 */
  readonly endpoint: string;
  stop(): Promise<void>;
}

export interface MotoOptions {
  /**
   * Run Lambda functions' Node.js code (Invoke, and CloudFormation custom resources) in local node processes.
   * The functions find the AWS SDK v3 in the project's node_modules, as they would in Lambda's runtime.
   */
  readonly runLambdas?: boolean;
}

const START_TIMEOUT_MS = 30_000;
const ROOT = path.join(__dirname, '..', '..');

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

/** The command that serves moto: `moto_server`, or the launcher that also runs Lambda code. */
function motoCommand(
  port: number,
  options: MotoOptions,
): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const serverArgs = ['-H', '127.0.0.1', '-p', String(port)];
  if (!options.runLambdas) return { command: 'moto_server', args: serverArgs, env: motoEnv() };
  return {
    command: 'python3',
    args: [path.join(__dirname, 'moto_lambda.py'), ...serverArgs],
    env: {
      ...motoEnv(),
      MOTO_LAMBDA_NODE: process.execPath,
      MOTO_LAMBDA_RUNNER: path.join(__dirname, 'lambda-runner.mjs'),
      MOTO_LAMBDA_NODE_MODULES: path.join(ROOT, 'node_modules'),
    },
  };
}

async function startOnce(options: MotoOptions): Promise<MotoServer | { failed: string }> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const { command, args, env } = motoCommand(port, options);
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
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
    if (spawnError) return { failed: `${command} could not start: ${spawnError.message}` };
    if (child.exitCode !== null || child.signalCode !== null) {
      return { failed: `${command} exited (${child.exitCode ?? child.signalCode}): ${stderr}` };
    }
    if (await answers(endpoint)) {
      return { endpoint, stop: () => stopChild(child) };
    }
    await sleep(100);
  }
  await stopChild(child);
  return { failed: `${command} did not answer on ${endpoint} within ${START_TIMEOUT_MS} ms: ${stderr}` };
}

/** Starts `moto_server` on a free port and waits until it answers HTTP. Retries if the port was taken meanwhile. */
export async function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await startOnce(options);
    if ('endpoint' in started) return started;
    failures.push(started.failed);
  }
  throw new Error(`could not start moto:\n${failures.join('\n')}`);
}

/** A client configuration for a moto server: us-east-1 and dummy credentials (e.g. `new SageMakerClient(...)`). */
export function motoClientConfig(endpoint: string): {
  region: string;
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  return {
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

/** An S3 client for a moto server: us-east-1, path-style addressing, dummy credentials. */
export function motoS3Client(endpoint: string): S3Client {
  return new S3Client({ ...motoClientConfig(endpoint), forcePathStyle: true });
}

/** Uploads a model folder's model.onnx and model.json under `prefix` (`name/version/`), as a publish would. */
export async function putModelFolder(
  s3: S3Client,
  bucket: string,
  prefix: string,
  dir: string,
): Promise<void> {
  for (const file of ['model.onnx', 'model.json']) {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${prefix}${file}`,
        Body: fs.readFileSync(path.join(dir, file)),
      }),
    );
  }
}

/** The environment from which code that builds its own SDK clients (a CLI, a handler) reaches moto. */
export function motoAwsEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
}

/** A handler's environment in moto: moto's, and quiet logs. */
export function motoLambdaEnv(endpoint: string): Record<string, string> {
  return { ...motoAwsEnv(endpoint), POWERTOOLS_LOG_LEVEL: 'SILENT' };
}

/**
 * Loads a fresh copy of `lambda/handlers/<name>` as a Lambda in moto would: its environment (motoLambdaEnv) is
 * set before the module makes its clients at load, and stays, as the SDK reads it on first use.
 * The caller restores process.env when done.
 */
export function loadHandlerInMoto<T extends object>(endpoint: string, name: string): T {
  Object.assign(process.env, motoLambdaEnv(endpoint));
  let loaded: T | undefined;
  jest.isolateModules(() => {
    loaded = jest.requireActual<T>(path.join(ROOT, 'lambda', 'handlers', name));
  });
  if (!loaded) throw new Error(`handler module ${name} did not load`);
  return loaded;
}

export interface MotoFunctionProps {
  readonly name: string;
  readonly roleArn: string;
  /** The zip's files: name to source. */
  readonly files: Record<string, string>;
  readonly environment: Record<string, string>;
  /** @default - Lambda's (3 s) */
  readonly timeout?: number;
}

/** A nodejs22.x function in moto with the handler `index.handler`. */
export async function createMotoFunction(client: LambdaClient, props: MotoFunctionProps): Promise<void> {
  await client.send(
    new CreateFunctionCommand({
      FunctionName: props.name,
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Role: props.roleArn,
      Code: { ZipFile: zip(props.files) },
      Timeout: props.timeout,
      Environment: { Variables: props.environment },
    }),
  );
}

/**
 * A role Lambda may assume, made through a CloudFormation stack (there is no IAM client among the project's
 * dependencies): moto checks that a function's role exists.
 */
export async function motoLambdaRole(endpoint: string): Promise<string> {
  const cfn = new CloudFormationClient(motoClientConfig(endpoint));
  try {
    const StackName = `role-${Date.now()}`;
    await cfn.send(
      new CreateStackCommand({
        StackName,
        Capabilities: ['CAPABILITY_IAM'],
        TemplateBody: JSON.stringify({
          Resources: {
            Role: {
              Type: 'AWS::IAM::Role',
              Properties: {
                AssumeRolePolicyDocument: {
                  Version: '2012-10-17',
                  Statement: [
                    {
                      Effect: 'Allow',
                      Principal: { Service: 'lambda.amazonaws.com' },
                      Action: 'sts:AssumeRole',
                    },
                  ],
                },
              },
            },
          },
          Outputs: { RoleArn: { Value: { 'Fn::GetAtt': ['Role', 'Arn'] } } },
        }),
      }),
    );
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName }));
    const arn = Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === 'RoleArn')?.OutputValue;
    if (!arn) throw new Error(`the role stack ended ${Stacks?.[0]?.StackStatus ?? 'missing'} without a role`);
    return arn;
  } finally {
    cfn.destroy();
  }
}
