import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { readModelFolder } from '../../lib/model-folder';
import {
  modelServerDockerfile,
  modelServerImage,
  serverArch,
  stageModelServer,
} from '../../lib/container-image';
import { copyModel, IRIS_DIR, TEST_ENV, testStack } from '../support/cdk';

interface ImageSource {
  directory: string;
  platform?: string;
  dockerBuildArgs?: Record<string, string>;
}

/** Binds the image to a task definition and returns the docker image asset the assembly will build. */
function imageSource(stack: cdk.Stack, image: ecs.ContainerImage, outdir: string): ImageSource {
  const task = new ecs.FargateTaskDefinition(stack, 'Task');
  task.addContainer('Server', { image });
  const assembly = (stack.node.root as cdk.App).synth();
  const manifest = JSON.parse(
    fs.readFileSync(path.join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'),
  ) as { dockerImages: Record<string, { source: ImageSource }> };
  const images = Object.values(manifest.dockerImages);
  expect(images).toHaveLength(1);
  const source = (images[0] as { source: ImageSource }).source;
  expect(assembly.directory).toBe(outdir);
  return { ...source, directory: path.join(outdir, source.directory) };
}

/** onnxruntime-node's linux binaries in a staged context: one folder per architecture shipped. */
const linuxBinaries = (context: string) =>
  path.join(context, 'app', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux');

let scratch: string;
beforeAll(() => (scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-image-test-'))));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('modelServerImage', () => {
  it('stages the real context when the stack bundles: arm64 by default, built with APP_SOURCE=staged', () => {
    const outdir = fs.mkdtempSync(path.join(scratch, 'out-'));
    const stack = new cdk.Stack(new cdk.App({ outdir }), 'Bundled', { env: TEST_ENV });
    const source = imageSource(stack, modelServerImage(stack, { model: readModelFolder(IRIS_DIR) }), outdir);
    expect(source.platform).toBe('linux/arm64');
    expect(source.dockerBuildArgs).toEqual({ APP_SOURCE: 'staged' });
    expect(fs.readdirSync(source.directory).sort()).toEqual(['Dockerfile', 'app', 'model']);
    expect(fs.readdirSync(linuxBinaries(source.directory))).toEqual(['arm64']);
    expect(fs.readdirSync(path.join(source.directory, 'model')).sort()).toEqual(['model.json', 'model.onnx']);
  });

  it('stages for x86_64 when asked', () => {
    const outdir = fs.mkdtempSync(path.join(scratch, 'out-'));
    const stack = new cdk.Stack(new cdk.App({ outdir }), 'X86', { env: TEST_ENV });
    const image = modelServerImage(stack, { cpuArchitecture: ecs.CpuArchitecture.X86_64 });
    const source = imageSource(stack, image, outdir);
    expect(source.platform).toBe('linux/amd64');
    expect(fs.readdirSync(linuxBinaries(source.directory))).toEqual(['x64']);
  });

  it('uses a small placeholder context when the stack skips bundling', () => {
    const stack = testStack();
    const outdir = (stack.node.root as cdk.App).outdir;
    const source = imageSource(stack, modelServerImage(stack), outdir);
    expect(fs.readdirSync(source.directory)).toEqual(['Dockerfile']);
    expect(fs.readFileSync(path.join(source.directory, 'Dockerfile'), 'utf8')).toMatch(
      /bundling was skipped/,
    );
  });

  it('gives the same baked model the same image asset, and another manifest another one', () => {
    const other = copyModel({ manifest: (m) => (m.description = 'same model, other manifest') });
    try {
      const imageDir = (folder: string) => {
        const outdir = fs.mkdtempSync(path.join(scratch, 'out-'));
        const stack = new cdk.Stack(new cdk.App({ outdir }), 'Baked', { env: TEST_ENV });
        return imageSource(stack, modelServerImage(stack, { model: readModelFolder(folder) }), outdir)
          .directory;
      };
      const first = imageDir(IRIS_DIR);
      const again = imageDir(IRIS_DIR);
      const changed = imageDir(other);
      // The folder names are the asset hashes.
      expect(path.basename(again)).toBe(path.basename(first));
      expect(path.basename(changed)).not.toBe(path.basename(first));
      expect(fs.readFileSync(path.join(changed, 'model', 'model.json'), 'utf8')).toMatch(/other manifest/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('stageModelServer', () => {
  it('will not write into a folder that already holds files', () => {
    const out = fs.mkdtempSync(path.join(scratch, 'full-'));
    fs.writeFileSync(path.join(out, 'keep.txt'), 'mine');
    expect(() => stageModelServer({ arch: 'arm64', outDir: out })).toThrow(
      /is not empty: stage the model server into a new folder/,
    );
    expect(fs.readdirSync(out)).toEqual(['keep.txt']);
  });

  it('copies the repository Dockerfile', () => {
    const out = path.join(scratch, 'fresh');
    stageModelServer({ arch: 'x64', outDir: out });
    expect(fs.readFileSync(path.join(out, 'Dockerfile'), 'utf8')).toBe(
      fs.readFileSync(modelServerDockerfile(), 'utf8'),
    );
  });
});

describe('serverArch', () => {
  it.each([
    ['arm64', 'arm64'],
    ['aarch64', 'arm64'],
    ['ARM64', 'arm64'],
    ['amd64', 'x64'],
    ['x64', 'x64'],
    ['X86_64', 'x64'],
  ])('maps %s to %s', (given, want) => expect(serverArch(given)).toBe(want));

  it('names an unknown one', () => {
    expect(() => serverArch('riscv64')).toThrow(/Unsupported architecture "riscv64": use arm64 or amd64/);
  });
});
