import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { DEFAULT_BATCH_SIZE, runBatchJob, type JobSummary } from '../../lambda/core/batch-job';
import { InferenceError } from '../../lambda/core/errors';
import { resolveLimits } from '../../lambda/core/limits';
import { openModel } from '../../lambda/core/open';
import { CliError, int, parse, required, ROW_FILE_OPTIONS, rowFileOptions, str } from './args';

const HELP = `Usage: mdk predict --model PATH --input FILE --output FILE [options]

Runs a model over every row of a JSONL or CSV file and writes JSONL, in input order:
  {"id": ROW_ID, "line": N, "outputs": {"<output>": value, ...}}
The input is streamed and memory stays flat, so files of any size work. A row that cannot be
predicted is written to the errors file with its line number and what to fix; the rest go on.

Input rows:
  JSONL  one JSON value per line: a row of the model's only input (e.g. [5.1, 3.5, 1.4, 0.2]),
         or an object keyed by input name (needed for models with several inputs);
         an "id" key (see --id-field) gives the row's id
  CSV    one row per line. A first line that is not all numbers is a header; it maps columns to
         inputs by input name ('input' for a scalar, 'input[0]', 'input[1]', ... for elements), else
         by the manifest's feature names (baseline), else (one input) by position. An "id" column
         gives the row's id; other columns no input uses are left out (and listed).
  A row's id is its id field or column, else its data row number (1, 2, ...).

Options:
  --model PATH       .onnx file, model folder, or s3:// URI (required)
  --input FILE       rows to predict; '-' reads stdin (required)
  --output FILE      JSONL predictions (required)
  --errors FILE      rows that failed (default: OUTPUT.errors.jsonl, written only if any fail)
  --summary FILE     also write the job summary as JSON (counts, duration, rows/s, peak memory)
  --format F         jsonl or csv (default: from the input's extension, else jsonl)
  --header H         CSV header: auto, present or absent (default auto)
  --id-field NAME    JSONL key or CSV column holding a row id (default id)
  --batch-size N     rows per model run (default 256)
  --threads N        onnxruntime intra-op threads (default: all CPUs)
  -h, --help         this help

Exit status: 0 all rows predicted, 3 some rows failed (see the errors file), 1 the job could not run, 2 usage.
`;

const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/** Fewer, larger reads: the file is read in the same thread that parses it. */
export const READ_BUFFER_BYTES = 1024 * 1024;

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
    summary: { type: 'string' },
    ...ROW_FILE_OPTIONS,
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
  const summaryPath = str(p, 'summary');
  const { format, header, idField } = rowFileOptions(p, inputPath);
  const limits = resolveLimits({});
  const batchSize = int(p, 'batch-size', 1, limits.maxBatch) ?? DEFAULT_BATCH_SIZE;

  let totalBytes: number | undefined;
  if (inputPath !== '-') {
    const stat = await fs.stat(inputPath).catch(() => {
      throw new CliError(`input file ${inputPath} does not exist`);
    });
    totalBytes = stat.size;
  }
  // The session runs on its own thread, so parsing the next batch overlaps the model run.
  const { model } = await openModel(
    { location },
    {
      // Spinning intra-op threads would take CPU from the parser between runs.
      session: { intraOpNumThreads: int(p, 'threads', 1, 1024), allowSpinning: false },
      sessionThread: true,
    },
  ).catch((err: Error) => {
    throw new CliError(err.message);
  });
  const input =
    inputPath === '-' ? process.stdin : createReadStream(inputPath, { highWaterMark: READ_BUFFER_BYTES });
  // A deep buffer: waiting for the disk on every batch would stall the parsing the model run overlaps.
  const output = createWriteStream(outputPath, { highWaterMark: WRITE_BUFFER_BYTES });
  await fs.rm(errorsPath, { force: true });
  let errorsOut: WriteStream | undefined;
  const progress = new Progress(process.stderr.isTTY, totalBytes);
  const bytesRead = () => ('bytesRead' in input ? input.bytesRead : 0);

  let summary: JobSummary;
  try {
    summary = await runBatchJob({
      model,
      limits,
      format,
      batchSize,
      idField,
      csvHeader: header,
      lines: createInterface({ input, crlfDelay: Infinity }),
      writePredictions: (text) => write(output, text),
      writeErrors: (text) => {
        errorsOut ??= createWriteStream(errorsPath, { highWaterMark: WRITE_BUFFER_BYTES });
        return write(errorsOut, text);
      },
      onProgress: (c) => progress.update(c.predicted, c.failed, bytesRead()),
    });
  } catch (err) {
    if (err instanceof InferenceError) throw new CliError(err.message);
    throw err;
  } finally {
    progress.done();
    await closeStream(output);
    if (errorsOut) await closeStream(errorsOut);
    await model.release();
  }
  if (summary.csv?.header) {
    process.stderr.write(`mdk: the first line is a header; columns map to inputs by ${summary.csv.by}\n`);
  }
  if (summary.csv && summary.csv.ignored.length > 0) {
    process.stderr.write(`mdk: left out columns no input uses: ${summary.csv.ignored.join(', ')}\n`);
  }
  const secs = summary.durationMs / 1000;
  const rate = secs > 0 ? Math.round(summary.predicted / secs) : summary.predicted;
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  if (summaryPath) {
    const report = { ...summary, rowsPerSecond: rate, peakRssBytes, output: outputPath };
    await fs.writeFile(summaryPath, `${JSON.stringify(report, null, 2)}\n`);
  }
  process.stderr.write(
    `mdk: predicted ${summary.predicted} rows in ${secs.toFixed(2)} s (${rate} rows/s) into ${outputPath}; ` +
      (summary.failed > 0 ? `${summary.failed} rows failed, see ${errorsPath}\n` : 'no errors\n'),
  );
  return summary.failed > 0 ? 3 : 0;
}
