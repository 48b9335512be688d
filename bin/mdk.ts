#!/usr/bin/env node
/**
 * mdk: serve, inspect and batch-predict ONNX models locally, with the same
 * HTTP contract the Lambda and container backends answer.
 */
import { baselineCommand } from './cli/baseline';
import { driftCommand } from './cli/drift';
import { inspectCommand } from './cli/inspect';
import { predictCommand } from './cli/predict';
import { registryCommand } from './cli/registry';
import { serveCommand } from './cli/serve';
import { smokeCommand } from './cli/smoke';
import { CliError, UsageError } from './cli/args';

const USAGE = `mdk: serve any ONNX model with the Open Inference Protocol (KServe V2)

Usage:
  mdk serve --model PATH [--name N] [--port 8080] [--host 127.0.0.1]
  mdk inspect PATH
  mdk predict --model PATH --input FILE --output FILE
  mdk baseline --model DIR --data FILE [--output FILE] [--header auto|present|absent] [--id-field NAME]
  mdk drift --baseline model.json --data FILE [--chart FILE] [--threshold 0.2] [--json] [--fail-on-drift]
  mdk smoke --url URL --model PATH [--sign [--region R]] [--api-key KEY | --api-key-id ID] [--wait SECONDS]
  mdk registry register --group G --model DIR --bucket B [--approve] [--create-group] [--image URI]
  mdk registry approve|reject --group G --version N [--description TEXT]
  mdk registry list|resolve --group G [--json]

PATH is a .onnx file, a model folder (model.onnx + model.json), or an s3:// URI of either.
Run 'mdk <command> --help' for a command's options.
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: serveCommand,
  inspect: inspectCommand,
  predict: predictCommand,
  baseline: baselineCommand,
  drift: driftCommand,
  smoke: smokeCommand,
  registry: registryCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command)
    throw new UsageError(`unknown command '${name}'; use one of: ${Object.keys(COMMANDS).join(', ')}`);
  return command(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`mdk: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(`Run 'mdk --help' for usage.\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(
        `mdk: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
