import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { bundleHandler, clearBundleCache, runtimeEntry } from '../../lib/bundling';

const ROOT = path.join(__dirname, '..', '..');

describe('bundleHandler', () => {
  // Its reuse cache lives in os.tmpdir() and is removed by an exit hook: that needs a real process, since
  // jest's sandbox neither passes TMPDIR to os.tmpdir() nor runs the test's exit listeners.
  test('keeps a working folder only for a bundle that succeeded, and none after the process exits', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-bundling-test-'));
    try {
      const script = `
        const fs = require('node:fs');
        const os = require('node:os');
        const lambda = require('aws-cdk-lib/aws-lambda');
        const { bundleHandler, runtimeEntry } = require('./lib/bundling.ts');
        const options = { entry: runtimeEntry('publish-model'), architecture: lambda.Architecture.ARM_64, includeOnnxRuntime: false };
        const out = (name) => require('node:path').join(os.tmpdir(), name);
        bundleHandler({ ...options, maxBytes: 250 * 1024 * 1024 }, out('ok'));
        let error = '';
        try { bundleHandler({ ...options, maxBytes: 1 }, out('too-big')); } catch (err) { error = err.message; }
        console.log(JSON.stringify({ error, during: fs.readdirSync(os.tmpdir()) }));
      `;
      const run = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], {
        cwd: ROOT,
        env: { ...process.env, TMPDIR: tmp },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(0);
      const { error, during } = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as {
        error: string;
        during: string[];
      };
      expect(error).toMatch(/over the 0\.0 MB limit/);
      expect(during.filter((n) => n.startsWith('mdk-bundle-'))).toHaveLength(1);
      expect(during).toContain('ok');
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('mdk-bundle-'))).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('bundleHandler files', () => {
  test('puts the files beside index.mjs, counts them as the handler, and a file with other bytes is another bundle', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-bundling-files-'));
    try {
      const manifest = path.join(tmp, 'model.json');
      fs.writeFileSync(manifest, '{"name":"a"}');
      const options = {
        entry: runtimeEntry('pre-traffic-hook'),
        architecture: lambda.Architecture.ARM_64,
        includeOnnxRuntime: false,
        files: { 'model.json': manifest },
        maxBytes: 250 * 1024 * 1024,
      };
      const first = path.join(tmp, 'first');
      const stats = bundleHandler(options, first);
      expect(fs.readdirSync(first).sort()).toEqual(['index.mjs', 'model.json']);
      expect(stats.handlerBytes).toBe(fs.statSync(path.join(first, 'index.mjs')).size + 12);
      expect(stats.totalBytes).toBe(stats.handlerBytes);
      // Same path, other bytes: not served from the cache.
      fs.writeFileSync(manifest, '{"name":"b"}');
      const second = path.join(tmp, 'second');
      bundleHandler(options, second);
      expect(fs.readFileSync(path.join(second, 'model.json'), 'utf8')).toBe('{"name":"b"}');
    } finally {
      clearBundleCache();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
