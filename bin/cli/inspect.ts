import { openModel } from '../../lambda/core/open';
import { CliError, parse, UsageError } from './args';

const HELP = `Usage: mdk inspect PATH

Prints the model's name, version, sha256, inputs and outputs as JSON.
PATH is a .onnx file, a model folder, or an s3:// URI of either.
`;

export async function inspectCommand(argv: string[]): Promise<number> {
  const p = parse(argv, {}, true);
  if (p.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [location, ...extra] = p.positionals;
  if (location === undefined) throw new UsageError('inspect needs a PATH');
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const { model, source } = await openModel({ location }, { session: { intraOpNumThreads: 1 } }).catch(
    (err: Error) => {
      throw new CliError(err.message);
    },
  );
  const { name, versions, platform, inputs, outputs, unsupported_inputs, unsupported_outputs } =
    model.metadata();
  const m = model.manifest;
  const report = {
    name,
    version: versions[0],
    platform,
    source,
    sha256: model.sha256,
    inputs,
    outputs,
    unsupported_inputs,
    unsupported_outputs,
    description: m?.description,
    labels: m?.labels,
    metrics: m?.metrics,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  await model.release();
  return 0;
}
