import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { BatchPredictor, parseRow, type RowFormat } from '../../lambda/core/batch';
import { InferenceError } from '../../lambda/core/errors';
import { resolveLimits } from '../../lambda/core/limits';
import { openModel } from '../../lambda/core/open';
import { CliError, int, parse, required, str, UsageError } from './args';

const HELP = `Usage: mdk predict --model PATH --input FILE --output FILE [options]

Runs a model over every row of a JSONL or CSV file and writes JSONL:
  {"line": N, "outputs": {"<output>": value, ...}}
The input is streamed, so files of any size work. A row that cannot be
predicted is written to the errors file with its line number; the rest go on.

Input rows:
  JSONL  one JSON value per line: a row of the model's only input (e.g. [5.1, 3.5, 1.4, 0.2]),
         or an object keyed by input name for models with several inputs
  CSV    numbers only, one row per line, for a model with one input; a header line is skipped

Options:
  --model PATH       .onnx file, model folder, or s3:// URI (required)
  --input FILE       rows to predict; '-' reads stdin (required)
  --output FILE      JSONL predictions (required)
  --errors FILE      rows that failed (default: OUTPUT.errors.jsonl, written only if any fail)
  --format F         jsonl or csv (default: from the input's extension, else jsonl)
  --batch-size N     rows per model run (default 256)
  --threads N        onnxruntime intra-op threads (default: all CPUs)
  -h, --help         this help

Exit status: 0 all rows predicted, 3 some rows failed (see the errors file), 1 the job could not run, 2 usage.
`;

class Progress {
  private last = 0;
  private readonly started = performance.now();
  constructor(
    private readonly tty: boolean,
    private readonly totalBytes: number | undefined,
  ) {}

  update(rows: number, errors: number, bytesRead: number, force = false): void {
    if (!this.tty) return;
    const now = performance.now();
    if (!force && now - this.last < 200) return;
    this.last = now;
    const secs = (now - this.started) / 1000;
    const rate = secs > 0 ? Math.round(rows / secs) : 0;
    const pct = this.totalBytes ? ` ${Math.min(100, Math.floor((bytesRead / this.totalBytes) * 100))}%` : '';
    process.stderr.write(
      `\r\x1b[K${rows.toLocaleString()} rows, ${errors} errors, ${rate.toLocaleString()} rows/s${pct}`,
    );
  }

  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}

async function write(stream: WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

async function closeStream(stream: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

export async function predictCommand(argv: string[]): Promise<number> {
  const p = parse(argv, {
    model: { type: 'string' },
    input: { type: 'string' },
    output: { type: 'string' },
    errors: { type: 'string' },
    format: { type: 'string' },
    'batch-size': { type: 'string' },
    threads: { type: 'string' },
  });
  if (p.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const location = required(p, 'model');
  const inputPath = required(p, 'input');
  const outputPath = required(p, 'output');
  const errorsPath = str(p, 'errors') ?? `${outputPath}.errors.jsonl`;
  const formatFlag = str(p, 'format');
  if (formatFlag !== undefined && formatFlag !== 'jsonl' && formatFlag !== 'csv') {
    throw new UsageError(`--format must be jsonl or csv, got ${JSON.stringify(formatFlag)}`);
  }
  const format: RowFormat =
    formatFlag ?? (path.extname(inputPath).toLowerCase() === '.csv' ? 'csv' : 'jsonl');
  const limits = resolveLimits({});
  const batchSize = int(p, 'batch-size', 1, limits.maxBatch) ?? 256;

  let totalBytes: number | undefined;
  if (inputPath !== '-') {
    const stat = await fs.stat(inputPath).catch(() => {
      throw new CliError(`input file ${inputPath} does not exist`);
    });
    totalBytes = stat.size;
  }
  const { model } = await openModel(
    { location },
    { session: { intraOpNumThreads: int(p, 'threads', 1, 1024) } },
  ).catch((err: Error) => {
    throw new CliError(err.message);
  });
  const predictor = new BatchPredictor(model, limits);
  const input = inputPath === '-' ? process.stdin : createReadStream(inputPath);
  const output = createWriteStream(outputPath);
  await fs.rm(errorsPath, { force: true });
  let errorsOut: WriteStream | undefined;
  const progress = new Progress(process.stderr.isTTY, totalBytes);
  const bytesRead = () => ('bytesRead' in input ? input.bytesRead : 0);

  let rows = 0;
  let errors = 0;
  let lineNo = 0;
  let batch: { line: number; row: Record<string, unknown> }[] = [];
  const started = performance.now();

  const fail = async (line: number, error: string) => {
    errors++;
    errorsOut ??= createWriteStream(errorsPath);
    await write(errorsOut, `${JSON.stringify({ line, error })}\n`);
  };
  const flush = async () => {
    const results = await predictor.predict(batch);
    batch = [];
    let text = '';
    for (const r of results) {
      if ('ok' in r) {
        rows++;
        text += `${JSON.stringify(r.ok)}\n`;
      } else {
        await fail(r.failed.line, r.failed.error);
      }
    }
    if (text) await write(output, text);
    progress.update(rows, errors, bytesRead());
  };

  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const text of lines) {
    lineNo++;
    if (text.trim() === '') continue;
    try {
      batch.push({ line: lineNo, row: parseRow(model, format, { line: lineNo, text }) });
    } catch (err) {
      if (!(err instanceof InferenceError)) throw err;
      // A CSV header is the one non-numeric line that is not an error.
      if (format === 'csv' && rows === 0 && errors === 0 && batch.length === 0) {
        process.stderr.write(`mdk: line ${lineNo} is not numeric; treating it as a header\n`);
        continue;
      }
      await fail(lineNo, err.message);
    }
    if (batch.length >= batchSize) await flush();
  }
  if (batch.length > 0) await flush();
  progress.done();
  await closeStream(output);
  if (errorsOut) await closeStream(errorsOut);
  await model.release();

  const secs = (performance.now() - started) / 1000;
  const rate = secs > 0 ? Math.round(rows / secs) : rows;
  process.stderr.write(
    `mdk: predicted ${rows} rows in ${secs.toFixed(2)} s (${rate} rows/s) into ${outputPath}; ` +
      (errors > 0 ? `${errors} rows failed, see ${errorsPath}\n` : 'no errors\n'),
  );
  return errors > 0 ? 3 : 0;
}
