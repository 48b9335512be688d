/** Stacks for template tests: bundling skipped (one test bundles for real), fixed account and region. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { clearStagedImages } from '../../lib/container-image';

export const IRIS_DIR = path.join(__dirname, '..', '..', 'models', 'iris');
export const TEST_ENV = { account: '123456789012', region: 'us-east-1' };

/** Every App synthesizes into a folder; without one CDK leaves a `cdk.out*` in the temp dir per app. */
let outRoot: string | undefined;
afterAll(() => {
  if (outRoot) fs.rmSync(outRoot, { recursive: true, force: true });
  outRoot = undefined;
  // Jest's workers outlive a test file, so the exit hook that removes staged image contexts comes late.
  clearStagedImages();
});

export function testApp(): cdk.App {
  outRoot ??= fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-cdk-test-'));
  const outdir = fs.mkdtempSync(path.join(outRoot, 'app-'));
  return new cdk.App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
}

export function testStack(app: cdk.App = testApp(), id = 'Test'): cdk.Stack {
  return new cdk.Stack(app, id, { env: TEST_ENV });
}

export function template(stack: cdk.Stack): Template {
  return Template.fromStack(stack);
}

/** The one resource of a type, failing clearly when there are none or several. */
export function onlyResource(
  t: Template,
  type: string,
): { logicalId: string; props: Record<string, unknown> } {
  const found = Object.entries(t.findResources(type));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  const [logicalId, resource] = found[0] as [string, { Properties?: Record<string, unknown> }];
  return { logicalId, props: resource.Properties ?? {} };
}

/** A copy of a model folder in a temp dir, optionally with its manifest edited or its model bytes changed. */
export function copyModel(
  edit: { manifest?: (m: Record<string, unknown>) => void; appendBytes?: number } = {},
  src = IRIS_DIR,
): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-model-'));
  const model = fs.readFileSync(path.join(src, 'model.onnx'));
  const manifest = JSON.parse(fs.readFileSync(path.join(src, 'model.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  edit.manifest?.(manifest);
  fs.writeFileSync(
    path.join(dir, 'model.onnx'),
    edit.appendBytes ? Buffer.concat([model, Buffer.alloc(edit.appendBytes)]) : model,
  );
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
