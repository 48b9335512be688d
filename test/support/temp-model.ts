import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { sha256Hex } from '../../lambda/core/model-store';
import type { ModelManifest } from '../../lambda/core/types';

/** Writes a model folder (model.onnx, and model.json when given) to a fresh temp dir; returns the folder. */
export async function writeTempModel(
  name: string,
  bytes: Uint8Array,
  manifest?: Partial<ModelManifest>,
): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mdk-test-'));
  const dir = path.join(root, name);
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'model.onnx'), bytes);
  if (manifest) {
    const full: ModelManifest = {
      name,
      version: '1',
      inputs: [],
      outputs: [],
      sha256: sha256Hex(bytes),
      ...manifest,
    };
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(full, null, 2));
  }
  return dir;
}
