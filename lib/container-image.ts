/**
 * The model server image. Its Dockerfile (lambda/container/Dockerfile) has two ways in: from this
 * repository's sources, or from a context staged here at synth with no Docker and no network. Both run
 * the same staging step, `stageModelServer`: the server bundled by esbuild, its health check, and
 * onnxruntime-node for `linux/<arch>` only; `scripts/stage-container.ts` is that step on the command line.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type { Construct } from 'constructs';
import { copyFiles, copyOnnxRuntime, dirBytes, esbuildModule, runtimeEntry } from './bundling';
import { MODEL_FILES, type ModelFile, type ModelFolder } from './model-folder';

/** The port the server listens on in the image: SageMaker's. */
export const MODEL_SERVER_PORT = 8080;
/** What a load balancer should probe: 200 once the model is loaded, 503 before and while draining. */
export const MODEL_SERVER_HEALTH_PATH = '/v2/health/ready';
/** The image's HEALTHCHECK, in the form an ECS container health check takes. */
export const MODEL_SERVER_HEALTH_COMMAND: string[] = ['CMD', 'node', '/app/healthcheck.mjs'];
/** Where the image keeps a baked-in model, and where SageMaker mounts one. */
export const MODEL_SERVER_MODEL_DIR = '/opt/ml/model';

export type ServerArch = 'arm64' | 'x64';

/** Node's name for an architecture, from Docker's (`amd64`), Node's (`x64`) or ECS's (`X86_64`). */
export function serverArch(name: string): ServerArch {
  const known: Record<string, ServerArch> = {
    arm64: 'arm64',
    aarch64: 'arm64',
    ARM64: 'arm64',
    x64: 'x64',
    amd64: 'x64',
    x86_64: 'x64',
    X86_64: 'x64',
  };
  const found = known[name];
  if (!found) throw new Error(`Unsupported architecture ${JSON.stringify(name)}: use arm64 or amd64 (x64)`);
  return found;
}

export interface StageModelServerOptions {
  readonly arch: ServerArch;
  /** An empty or missing folder to write the context into. */
  readonly outDir: string;
  /** A model folder to bake in, as readModelFolder checked it. @default - none */
  readonly model?: ModelFolder;
}

export interface StagedModelServer {
  readonly serverBytes: number;
  readonly onnxRuntimeBytes: number;
  readonly modelBytes: number;
}

/** The Dockerfile, from this repository or from the installed package. */
export function modelServerDockerfile(): string {
  const candidates = [
    path.join(__dirname, '..', 'lambda', 'container', 'Dockerfile'),
    path.join(__dirname, '..', '..', 'lambda', 'container', 'Dockerfile'),
  ];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(
      `Cannot find the model server Dockerfile at ${candidates.join(' or ')}: the model-deploy-kit package is incomplete`,
    );
  }
  return found;
}

/**
 * Writes a Docker build context: `Dockerfile`, `app/` (index.mjs, healthcheck.mjs, node_modules with
 * onnxruntime for one architecture) and `model/` (the baked model, or empty).
 */
export function stageModelServer(options: StageModelServerOptions): StagedModelServer {
  const out = path.resolve(options.outDir);
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) {
    throw new Error(`${out} is not empty: stage the model server into a new folder`);
  }
  const app = path.join(out, 'app');
  fs.mkdirSync(app, { recursive: true });
  const main = runtimeEntry('main', 'server');
  esbuildModule(main, `import ${JSON.stringify('./main')};\n`, path.join(app, 'index.mjs'), true);
  esbuildModule(
    runtimeEntry('healthcheck', 'server'),
    `import ${JSON.stringify('./healthcheck')};\n`,
    path.join(app, 'healthcheck.mjs'),
    false,
  );
  const serverBytes = dirBytes(app);
  copyOnnxRuntime(app, options.arch, path.dirname(main));
  const onnxRuntimeBytes = dirBytes(path.join(app, 'node_modules'));

  const model = path.join(out, 'model');
  fs.mkdirSync(model);
  let modelBytes = 0;
  if (options.model) {
    copyFiles(options.model.dir, model, (n) => MODEL_FILES.includes(n as ModelFile));
    modelBytes = dirBytes(model);
  } else {
    // Docker's COPY needs something to copy; the server ignores this file.
    fs.writeFileSync(path.join(model, '.no-baked-model'), 'Set MODEL_URI to the s3:// folder to serve.\n');
  }
  fs.copyFileSync(modelServerDockerfile(), path.join(out, 'Dockerfile'));
  return { serverBytes, onnxRuntimeBytes, modelBytes };
}

export interface ModelServerImageOptions {
  /** @default ecs.CpuArchitecture.ARM64 */
  readonly cpuArchitecture?: ecs.CpuArchitecture;
  /**
   * A model folder baked into the image at /opt/ml/model, as readModelFolder checked it (its manifest's
   * sha256 matches the model), so a wrong file is never baked in.
   * @default - none: the task pulls MODEL_URI from S3
   */
  readonly model?: ModelFolder;
}

// Staged contexts are kept for the process (synth stages each one once) and removed when it exits.
const staged = new Map<string, string>();
let stagingRoot: string | undefined;
let cleanupRegistered = false;

/**
 * Removes the image contexts this process staged (tens of MB each in the temp folder). It runs when the
 * process exits; call it sooner where that exit hook never fires, such as in a jest test file.
 */
export function clearStagedImages(): void {
  if (stagingRoot) fs.rmSync(stagingRoot, { recursive: true, force: true });
  stagingRoot = undefined;
  staged.clear();
}

function stagingDir(key: string): string {
  if (!stagingRoot) {
    stagingRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-image-'));
    if (!cleanupRegistered) {
      cleanupRegistered = true;
      process.once('exit', clearStagedImages);
    }
  }
  return path.join(stagingRoot, crypto.createHash('sha256').update(key).digest('hex').slice(0, 16));
}

function stagedContext(arch: ServerArch, model: ModelFolder | undefined, placeholder: boolean): string {
  const key = JSON.stringify({
    arch,
    model: model && [model.dir, model.sha256, model.manifestSha256],
    placeholder,
  });
  let dir = staged.get(key);
  if (!dir) {
    dir = stagingDir(key);
    if (placeholder) {
      fs.mkdirSync(dir);
      fs.writeFileSync(
        path.join(dir, 'Dockerfile'),
        `# Placeholder: bundling was skipped for this stack (${arch}).\nFROM scratch\n`,
      );
    } else stageModelServer({ arch, outDir: dir, model });
    staged.set(key, dir);
  }
  return dir;
}

/**
 * The model server as an asset image: staged locally at synth, built by Docker when the asset is
 * published (`cdk deploy`). A stack that skips bundling (`'aws:cdk:bundling-stacks': []`) gets a small
 * placeholder context instead, so template tests stay fast.
 */
export function modelServerImage(
  scope: Construct,
  options: ModelServerImageOptions = {},
): ecs.ContainerImage {
  const arch = serverArch((options.cpuArchitecture ?? ecs.CpuArchitecture.ARM64)._cpuArchitecture);
  const directory = stagedContext(arch, options.model, !cdk.Stack.of(scope).bundlingRequired);
  return ecs.ContainerImage.fromAsset(directory, {
    platform: arch === 'arm64' ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
    buildArgs: { APP_SOURCE: 'staged' },
  });
}
