/**
 * The GitHub Actions example (examples/github-actions): parsed as GitHub reads it, and checked against the app
 * it deploys: the job order, OIDC, one role and environment per stage, and that every `cdk deploy` names
 * stacks bin/app.ts really synthesizes (the app is run, with bundling skipped).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { parse } from 'yaml';
import { STAGES } from '../../lib/config';
import { smokeAuth, SmokeAuth } from '../../lib/config/pipeline';
import { DEFAULT_API_STAGE_NAME } from '../../lib/inference-api';
import { PIPELINE_PYTHON_TOOLS } from '../../lib/pipeline-stack';

const ROOT = path.join(__dirname, '..', '..');
const EXAMPLES = path.join(ROOT, 'examples', 'github-actions');

interface Step {
  readonly uses?: string;
  readonly run?: string;
  readonly name?: string;
  readonly with?: Record<string, string | number>;
}
interface Job {
  readonly needs?: string | string[];
  readonly environment?: string | { name: string };
  readonly permissions?: Record<string, string>;
  readonly steps: Step[];
}
interface Workflow {
  readonly on: { push?: { branches?: string[] } };
  readonly concurrency: { group: string; 'cancel-in-progress': boolean };
  readonly permissions: Record<string, string>;
  readonly jobs: Record<string, Job>;
}

const workflow = parse(fs.readFileSync(path.join(EXAMPLES, 'deploy.yml'), 'utf8')) as Workflow;
const job = (id: string): Job => {
  const found = workflow.jobs[id];
  if (!found) throw new Error(`deploy.yml has no job ${id}`);
  return found;
};
const runs = (j: Job): string[] => j.steps.flatMap((s) => (s.run ? [s.run] : []));
const DEPLOYS = ['dev', 'stage', 'prod'] as const;

/** The stacks bin/app.ts synthesizes (hierarchical ids, as `cdk deploy` patterns match them) and their outputs. */
function synthesizeApp(): {
  ids: string[];
  stackNames: Record<string, string>;
  outputs: Record<string, string[]>;
} {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-gha-'));
  try {
    const lock = path.join(out, 'model-versions.json');
    fs.copyFileSync(path.join(ROOT, 'model-versions.json'), lock);
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('CDK_')),
    );
    const run = spawnSync(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      [path.join(ROOT, 'bin', 'app.ts')],
      {
        cwd: out,
        env: {
          ...env,
          CDK_OUTDIR: path.join(out, 'cdk.out'),
          CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:bundling-stacks': [], versionLockFile: lock }),
        },
        encoding: 'utf8',
      },
    );
    if (run.status !== 0) throw new Error(`bin/app.ts failed:\n${run.stderr.slice(-3000)}`);
    const assembly = new cxapi.CloudAssembly(path.join(out, 'cdk.out'));
    const stacks = assembly.stacksRecursively;
    return {
      ids: stacks.map((s) => s.hierarchicalId),
      stackNames: Object.fromEntries(stacks.map((s) => [s.hierarchicalId, s.stackName])),
      outputs: Object.fromEntries(
        stacks.map((s) => [s.stackName, Object.keys((s.template as { Outputs?: object }).Outputs ?? {})]),
      ),
    };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** `cdk deploy`'s stack patterns: `*` is any run of characters but `/`. */
function matches(pattern: string, id: string): boolean {
  const re = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`^${re}$`).test(id);
}

describe('examples/github-actions/deploy.yml', () => {
  test('runs on a push to main, one release at a time, with no default permissions', () => {
    expect(workflow.on.push?.branches).toEqual(['main']);
    expect(workflow.concurrency.group).toBeTruthy();
    expect(workflow.concurrency['cancel-in-progress']).toBe(false);
    expect(workflow.permissions).toEqual({});
  });

  test('jobs run test, then dev, then stage, then prod', () => {
    expect(Object.keys(workflow.jobs)).toEqual(['test', 'deploy-dev', 'deploy-stage', 'deploy-prod']);
    expect(job('test').needs).toBeUndefined();
    expect(job('deploy-dev').needs).toBe('test');
    expect(job('deploy-stage').needs).toBe('deploy-dev');
    expect(job('deploy-prod').needs).toBe('deploy-stage');
  });

  test('test runs npm ci and npm test with the pinned Python tools, then synthesizes the one assembly every stage deploys', () => {
    const commands = runs(job('test'));
    const pip = commands.find((c) => c.startsWith('pip install'));
    expect(pip).toBe(`pip install ${["'moto[server]==5.2.1'", 'cfn-lint==1.51.0'].join(' ')}`);
    for (const tool of PIPELINE_PYTHON_TOOLS) expect(pip).toContain(tool);
    expect(commands.indexOf('npm ci')).toBeLessThan(commands.indexOf('npm test'));
    expect(commands.indexOf('npm test')).toBeLessThan(
      commands.indexOf('npx cdk synth --quiet --output cdk.out'),
    );
    const upload = job('test').steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(upload?.with).toMatchObject({ name: 'cdk-out', path: 'cdk.out' });
    // no AWS access in the test job
    expect(job('test').permissions).toEqual({ contents: 'read' });
    expect(JSON.stringify(job('test'))).not.toContain('configure-aws-credentials');
  });

  test.each(DEPLOYS)(
    'deploy-%s assumes its own stage role through OIDC, in its own GitHub environment',
    (stage) => {
      const j = job(`deploy-${stage}`);
      expect(j.permissions).toEqual({ 'id-token': 'write', contents: 'read' });
      expect(j.environment).toBe(stage);
      const creds = j.steps.filter((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'));
      expect(creds).toHaveLength(1);
      expect(creds[0]?.with).toMatchObject({
        'role-to-assume': `\${{ vars.${stage.toUpperCase()}_DEPLOY_ROLE_ARN }}`,
        'aws-region': `\${{ vars.${stage.toUpperCase()}_AWS_REGION }}`,
      });
      expect(creds[0]?.with).not.toHaveProperty('aws-access-key-id');
      const download = j.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'));
      expect(download?.with).toMatchObject({ name: 'cdk-out', path: 'cdk.out' });
      // credentials come after the artifact and before the deploy
      const index = (pred: (s: Step) => boolean) => j.steps.findIndex(pred);
      expect(index((s) => s === download)).toBeLessThan(index((s) => s === creds[0]));
      expect(index((s) => s === creds[0])).toBeLessThan(index((s) => s.run?.includes('cdk deploy') === true));
    },
  );

  test('prod is the only job behind the prod environment (where GitHub holds it for required reviewers)', () => {
    const prodJobs = Object.entries(workflow.jobs).filter(([, j]) => j.environment === 'prod');
    expect(prodJobs.map(([id]) => id)).toEqual(['deploy-prod']);
  });

  describe('against the app bin/app.ts synthesizes', () => {
    let app: ReturnType<typeof synthesizeApp>;
    beforeAll(() => {
      app = synthesizeApp();
    });

    test.each(DEPLOYS)(
      'deploy-%s deploys exactly that stage, from the uploaded assembly, unattended',
      (stage) => {
        const deploys = runs(job(`deploy-${stage}`)).filter((c) => c.includes('cdk deploy'));
        expect(deploys).toHaveLength(1);
        const command = deploys[0] as string;
        expect(command).toMatch(/^npx cdk deploy --app cdk\.out '[^']+' --require-approval never( |$)/);
        const pattern = /'([^']+)'/.exec(command)?.[1] as string;
        expect(pattern).toBe(`ModelServing-${stage}/*`);
        const selected = app.ids.filter((id) => matches(pattern, id));
        expect(selected).toEqual([`ModelServing-${stage}/Serving`]);
        expect(app.stackNames[selected[0] as string]).toBe(`ModelServing-${stage}-Serving`);
      },
    );

    test("stage's smoke test reads the stage stack's ApiUrl output and signs, as stage's IAM auth needs", () => {
      const commands = runs(job('deploy-stage'));
      const deploy = commands.find((c) => c.includes('cdk deploy')) as string;
      expect(deploy).toContain('--outputs-file stage-outputs.json');
      const smoke = commands.find((c) => c.includes('mdk.ts smoke')) as string;
      expect(smoke).toContain(`jq -r '."ModelServing-stage-Serving".ApiUrl' stage-outputs.json`);
      expect(app.outputs['ModelServing-stage-Serving']).toContain('ApiUrl');
      expect(smokeAuth(STAGES.stage)).toBe(SmokeAuth.SIGN);
      expect(smoke).toMatch(/npx tsx bin\/mdk\.ts smoke --url "\$API_URL" --model "\$MODEL_DIR" --sign/);
      expect(parse(fs.readFileSync(path.join(EXAMPLES, 'deploy.yml'), 'utf8'))).toMatchObject({
        env: { MODEL_DIR: 'models/iris' },
      });
      expect(fs.existsSync(path.join(ROOT, 'models', 'iris', 'model.json'))).toBe(true);
    });
  });
});

describe('examples/github-actions IAM policies', () => {
  const read = (file: string) =>
    JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), 'utf8')) as {
      Statement: {
        Effect: string;
        Action: string;
        Resource?: string[];
        Principal?: unknown;
        Condition?: unknown;
      }[];
    };

  test("a stage role trusts only GitHub's OIDC tokens for one repository and one environment", () => {
    const [statement, ...rest] = read('trust-policy.json').Statement;
    expect(rest).toEqual([]);
    expect(statement).toMatchObject({
      Effect: 'Allow',
      Action: 'sts:AssumeRoleWithWebIdentity',
      Principal: { Federated: 'arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com' },
      Condition: {
        StringEquals: {
          'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
          'token.actions.githubusercontent.com:sub': 'repo:OWNER/REPO:environment:STAGE',
        },
      },
    });
    // no wildcard and no StringLike: a branch or another environment's job cannot assume it
    expect(JSON.stringify(statement)).not.toMatch(/StringLike|\*/);
  });

  test('the deploy role may only assume the CDK bootstrap roles of its account and region', () => {
    const [statement, ...rest] = read('deploy-role-policy.json').Statement;
    expect(rest).toEqual([]);
    expect(statement?.Action).toBe('sts:AssumeRole');
    expect(statement?.Resource).toEqual(
      ['deploy', 'file-publishing', 'image-publishing', 'lookup'].map(
        (r) => `arn:aws:iam::ACCOUNT_ID:role/cdk-hnb659fds-${r}-role-ACCOUNT_ID-REGION`,
      ),
    );
  });

  test("the smoke policy allows the stage API's health and infer routes only", () => {
    const [statement, ...rest] = read('smoke-policy.json').Statement;
    expect(rest).toEqual([]);
    expect(statement?.Action).toBe('execute-api:Invoke');
    expect(statement?.Resource).toEqual([
      `arn:aws:execute-api:REGION:ACCOUNT_ID:*/${DEFAULT_API_STAGE_NAME}/GET/v2/*`,
      `arn:aws:execute-api:REGION:ACCOUNT_ID:*/${DEFAULT_API_STAGE_NAME}/POST/v2/models/*/infer`,
    ]);
  });
});
