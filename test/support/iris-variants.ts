/**
 * Iris-like models for release checks: the same inputs, outputs, name, version and `sample` as
 * models/iris, but other weights, so they load and answer yet give other answers than the sample expects.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sha256Hex } from '../../lambda/core/model-store';
import type { ModelManifest } from '../../lambda/core/types';
import { buildModel, int, tensorInfo } from '../../models/onnx-builder';

export const IRIS_DIR = path.join(__dirname, '..', '..', 'models', 'iris');

export function irisManifest(): ModelManifest {
  return JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as ModelManifest;
}

/**
 * input [batch, 4] -> Gemm(W, b) -> Softmax -> probabilities [batch, 3] -> ArgMax -> label [batch]: iris's
 * graph shape with these weights. The default favours class 2 for every flower, unlike the real model.
 */
export function irisLikeModel(weights: readonly number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]): Uint8Array {
  return buildModel({
    inputs: [tensorInfo('input', 'float', ['batch', 4])],
    outputs: [tensorInfo('probabilities', 'float', ['batch', 3]), tensorInfo('label', 'int64', ['batch'])],
    initializers: [
      { name: 'W', elem: 'float', dims: [3, 4], data: weights },
      { name: 'b', elem: 'float', dims: [3], data: [0, 0, 0] },
    ],
    nodes: [
      { op: 'Gemm', inputs: ['input', 'W', 'b'], outputs: ['logits'], attrs: { transB: int(1) } },
      { op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attrs: { axis: int(1) } },
      {
        op: 'ArgMax',
        inputs: ['probabilities'],
        outputs: ['label'],
        attrs: { axis: int(1), keepdims: int(0) },
      },
    ],
    opset: 17,
  });
}

/**
 * A model folder in a new temp dir (`<root>/iris`): `bytes` as model.onnx, and iris's manifest with its sha256
 * and `edit` applied. Remove `root` when done.
 */
export function writeIrisVariant(
  bytes: Uint8Array = irisLikeModel(),
  edit: (m: Record<string, unknown>) => void = () => undefined,
): { root: string; dir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-iris-variant-'));
  const dir = path.join(root, 'iris');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'model.onnx'), bytes);
  const manifest = { ...irisManifest(), sha256: sha256Hex(bytes) } as Record<string, unknown>;
  edit(manifest);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(manifest, null, 2));
  return { root, dir };
}

/**
 * A copy of models/iris in a new temp dir (remove it when done): its manifest edited (e.g. another version),
 * and `extraBytes` zero bytes appended to model.onnx, which then no longer has the manifest's sha256.
 */
export function irisCopy(
  edit: (m: Record<string, unknown>) => void = () => undefined,
  extraBytes = 0,
): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-iris-copy-'));
  const model = fs.readFileSync(path.join(IRIS_DIR, 'model.onnx'));
  fs.writeFileSync(path.join(dir, 'model.onnx'), Buffer.concat([model, Buffer.alloc(extraBytes)]));
  const manifest = irisManifest() as unknown as Record<string, unknown>;
  edit(manifest);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
