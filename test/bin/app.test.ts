/**
 * `npx cdk synth` of the ready app, as a platform engineer runs it: offline, no AWS credentials, real
 * bundling. The time is printed, not asserted.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

describe('bin/app.ts', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-synth-'));
  const lock = path.join(outdir, 'model-versions.json');
  afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

  test('npx cdk synth builds dev, stage and prod with no credentials and no warnings', () => {
    fs.copyFileSync(path.join(ROOT, 'model-versions.json'), lock);
    // Nothing from this machine's AWS setup may leak in.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('CDK_')),
    );
    const started = Date.now();
    const run = spawnSync(
      'npx',
      ['cdk', 'synth', '--quiet', '--output', path.join(outdir, 'cdk.out'), '-c', `versionLockFile=${lock}`],
      { cwd: ROOT, env: { ...env, AWS_EC2_METADATA_DISABLED: 'true' }, encoding: 'utf8' },
    );
    const seconds = (Date.now() - started) / 1000;
    expect({ status: run.status, stderr: run.status === 0 ? '' : run.stderr.slice(-3000) }).toEqual({
      status: 0,
      stderr: '',
    });
    // neither construct annotations nor aws-cdk-lib's own template validation may warn
    expect(run.stderr).not.toMatch(/\[Warning|validation found issues|WARNING/);
    const assembly = path.join(outdir, 'cdk.out');
    const stages = fs
      .readdirSync(assembly)
      .filter((d) => d.startsWith('assembly-'))
      .sort();
    expect(stages).toEqual([
      'assembly-ModelServing-dev',
      'assembly-ModelServing-prod',
      'assembly-ModelServing-stage',
    ]);
    for (const stage of stages) {
      const templates = fs
        .readdirSync(path.join(assembly, stage))
        .filter((f) => f.endsWith('.template.json'));
      expect(templates).toHaveLength(1);
    }
    // the inference asset: arm64 onnxruntime only
    const assets = fs.readdirSync(assembly).filter((d) => d.startsWith('asset.'));
    const inference = assets.filter((d) =>
      fs.existsSync(path.join(assembly, d, 'node_modules', 'onnxruntime-node')),
    );
    expect(inference).toHaveLength(1);
    const napi = path.join(
      assembly,
      inference[0] as string,
      'node_modules',
      'onnxruntime-node',
      'bin',
      'napi-v6',
    );
    expect(fs.readdirSync(napi)).toEqual(['linux']);
    expect(fs.readdirSync(path.join(napi, 'linux'))).toEqual(['arm64']);
    // the lock file already held iris 1.0.0: a synth does not rewrite it
    expect(fs.readFileSync(lock, 'utf8')).toBe(
      fs.readFileSync(path.join(ROOT, 'model-versions.json'), 'utf8'),
    );
    console.log(`npx cdk synth of three stages took ${seconds.toFixed(1)} s`);
  });
});
