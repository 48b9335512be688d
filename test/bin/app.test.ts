/**
 * `npx cdk synth` of the ready app, as a platform engineer runs it: offline, no AWS credentials, real
 * bundling; by default the three stages, with `-c pipeline=true` the pipeline that deploys them. The time is
 * printed, not asserted.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cxapi from 'aws-cdk-lib/cx-api';

const ROOT = path.join(__dirname, '..', '..');

/** Nothing from this machine's AWS setup may leak in. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('CDK_')),
  );
  return { ...env, AWS_EC2_METADATA_DISABLED: 'true' };
}

/**
 * `npx cdk synth --quiet --output <out> <args>`, which must succeed without warnings (neither construct
 * annotations nor aws-cdk-lib's own template validation may warn). Returns how long it took, in seconds.
 */
function synthOk(out: string, args: string[]): number {
  const started = Date.now();
  const run = spawnSync('npx', ['cdk', 'synth', '--quiet', '--output', out, ...args], {
    cwd: ROOT,
    env: cleanEnv(),
    encoding: 'utf8',
  });
  const seconds = (Date.now() - started) / 1000;
  expect({ status: run.status, stderr: run.status === 0 ? '' : run.stderr.slice(-3000) }).toEqual({
    status: 0,
    stderr: '',
  });
  expect(run.stderr).not.toMatch(/\[Warning|validation found issues|WARNING/);
  return seconds;
}

describe('bin/app.ts', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-synth-'));
  const lock = path.join(outdir, 'model-versions.json');
  afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

  test('npx cdk synth builds dev, stage and prod with no credentials and no warnings', () => {
    fs.copyFileSync(path.join(ROOT, 'model-versions.json'), lock);
    const seconds = synthOk(path.join(outdir, 'cdk.out'), ['-c', `versionLockFile=${lock}`]);
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
    // the assets that run the model, one each, shared by the stages (the API, the batch job's object and batch
    // functions, the stream function): arm64 onnxruntime only
    const assets = fs.readdirSync(assembly).filter((d) => d.startsWith('asset.'));
    const withModel = assets.filter((d) =>
      fs.existsSync(path.join(assembly, d, 'node_modules', 'onnxruntime-node')),
    );
    expect(withModel).toHaveLength(4);
    for (const asset of withModel) {
      const napi = path.join(assembly, asset, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
      expect(fs.readdirSync(napi)).toEqual(['linux']);
      expect(fs.readdirSync(path.join(napi, 'linux'))).toEqual(['arm64']);
    }
    // the lock file already held iris 1.1.0: a synth does not rewrite it
    expect(fs.readFileSync(lock, 'utf8')).toBe(
      fs.readFileSync(path.join(ROOT, 'model-versions.json'), 'utf8'),
    );
    console.log(`npx cdk synth of three stages took ${seconds.toFixed(1)} s`);
  });

  test('-c pipeline=true synthesizes the pipeline stack alone, its stages nested, with the context overrides applied and passed on', () => {
    fs.copyFileSync(path.join(ROOT, 'model-versions.json'), lock);
    const out = path.join(outdir, 'cdk.out.pipeline');
    const connection = 'arn:aws:codestar-connections:eu-west-1:123456789012:connection/abcd-1234';
    const seconds = synthOk(out, [
      '-c',
      `versionLockFile=${lock}`,
      '-c',
      'pipeline=true',
      '-c',
      'repository=acme/models',
      '-c',
      'branch=release',
      '-c',
      `connectionArn=${connection}`,
      '-c',
      'prodApproval=true',
    ]);
    // the pipeline stack only: the three stages are inside it, not beside it
    const assembly = new cxapi.CloudAssembly(out);
    expect(assembly.stacks.map((s) => s.stackName)).toEqual(['ModelServingPipeline']);
    expect(assembly.stacksRecursively.map((s) => s.stackName).sort()).toEqual([
      'ModelServing-dev-Serving',
      'ModelServing-prod-Serving',
      'ModelServing-stage-Serving',
      'ModelServingPipeline',
    ]);
    const template = assembly.getStackByName('ModelServingPipeline').template as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const resources = Object.values(template.Resources);
    const pipeline = resources.find((r) => r.Type === 'AWS::CodePipeline::Pipeline');
    const stages = pipeline?.Properties.Stages as { Name: string; Actions: { Configuration: unknown }[] }[];
    expect(stages.map((s) => s.Name)).toEqual([
      'Source',
      'Build',
      'UpdatePipeline',
      'Assets',
      'ModelServing-dev',
      'ModelServing-stage',
      'ModelServing-prod',
    ]);
    expect(stages[0]?.Actions[0]?.Configuration).toEqual({
      ConnectionArn: connection,
      FullRepositoryId: 'acme/models',
      BranchName: 'release',
    });
    // the pipeline's own synth repeats the overrides, so self-mutation keeps them (but not this machine's lock file)
    const synthSpec = resources
      .filter((r) => r.Type === 'AWS::CodeBuild::Project')
      .map(
        (r) =>
          JSON.parse((r.Properties.Source as { BuildSpec: string }).BuildSpec) as {
            phases: { build: { commands: string[] } };
          },
      )
      .find((spec) => spec.phases.build.commands.includes('npm test'));
    expect(synthSpec?.phases.build.commands).toEqual([
      'npm ci',
      'npm test',
      `npx cdk synth -c branch=release -c connectionArn=${connection} -c pipeline=true -c prodApproval=true -c repository=acme/models`,
    ]);
    console.log(`npx cdk synth -c pipeline=true took ${seconds.toFixed(1)} s`);
  });

  test('-c prodApproval takes true or false only', () => {
    const run = spawnSync(
      'npx',
      [
        'cdk',
        'synth',
        '--quiet',
        '--output',
        path.join(outdir, 'cdk.out.bad'),
        '-c',
        'pipeline=true',
        '-c',
        'prodApproval=maybe',
      ],
      { cwd: ROOT, env: cleanEnv(), encoding: 'utf8' },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("-c prodApproval must be true or false, got 'maybe'");
  });
});
