import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModelFolder } from '../../lib/model-folder';
import { copyModel, IRIS_DIR } from '../support/cdk';

describe('readModelFolder', () => {
  test('the example model: manifest fields, both hashes, size', () => {
    const folder = readModelFolder(IRIS_DIR);
    const manifest = JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as {
      sha256: string;
    };
    expect(folder.manifest).toMatchObject({ name: 'iris', version: '1.1.0' });
    expect(folder.sha256).toBe(manifest.sha256);
    expect(folder.manifestSha256).toBe(
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(IRIS_DIR, 'model.json')))
        .digest('hex'),
    );
    expect(folder.modelBytes).toBe(fs.statSync(path.join(IRIS_DIR, 'model.onnx')).size);
  });

  test('a model larger than one hashing chunk hashes the same as in one piece', () => {
    // 8 MiB chunks: 20 MiB of varied bytes spans three reads, the last one partial.
    const dir = copyModel({ appendBytes: 20 * 1024 * 1024 - 3, manifest: (m) => delete m.sha256 });
    try {
      const bytes = fs.readFileSync(path.join(dir, 'model.onnx'));
      for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
      fs.writeFileSync(path.join(dir, 'model.onnx'), bytes);
      expect(readModelFolder(dir).sha256).toBe(crypto.createHash('sha256').update(bytes).digest('hex'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
