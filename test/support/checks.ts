/** The checks every infrastructure test applies to a synthesized assembly: cdk-nag (and CDK) annotations, and cfn-lint. */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cxapi from 'aws-cdk-lib/cx-api';

/** Warnings and errors annotated on any stack, nested stages included: cdk-nag findings not acknowledged, and CDK's own. */
export function annotations(assembly: cxapi.CloudAssembly): string[] {
  return assembly.stacksRecursively.flatMap((s) =>
    s.messages
      .filter((m) => m.level !== cxapi.SynthesisMessageLevel.INFO)
      .map((m) => `${m.id}: ${JSON.stringify(m.entry.data)}`),
  );
}

/** The templates of every stack, nested stages included. */
export function templateFiles(assembly: cxapi.CloudAssembly): string[] {
  return assembly.stacksRecursively.map((s) => path.join(s.assembly.directory, s.templateFile));
}

/** cfn-lint's errors on the given templates; it lives in pyenv's shims folder. */
export function cfnLintErrors(files: string[]): { errors: string[]; errorBit: number; spawnError?: Error } {
  const shims = path.join(process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv'), 'shims');
  const run = spawnSync('cfn-lint', ['--format', 'parseable', ...files], {
    env: { ...process.env, PATH: `${shims}${path.delimiter}${process.env.PATH ?? ''}` },
    encoding: 'utf8',
  });
  // cfn-lint's exit code is a bit mask: 2 means errors, 4 warnings, 8 informational.
  const errors = (run.stdout ?? '').split('\n').filter((line) => /:E\d{4}:/.test(line));
  return { errors, errorBit: (run.status ?? 2) & 2, spawnError: run.error };
}
