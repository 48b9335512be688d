/**
 * A batch job over a whole file: lines in, JSONL predictions and errors out, in input order. Used by
 * `mdk predict`, the S3-triggered batch Lambda and (per batch of items) the Distributed Map worker.
 * Memory holds a few batches at most, whatever the file's size. While one batch runs, the next is parsed:
 * with the session on a worker thread (SessionThread) the two overlap.
 */
import { BatchPredictor, type BatchResult } from './batch';
import { InferenceError } from './errors';
import type { Limits } from './limits';
import type { OnnxModel } from './model';
import {
  CsvHeaderError,
  RowReader,
  type CsvMapping,
  type ParsedRow,
  type RowFormat,
  type RowReaderOptions,
} from './rows';

export interface JobCounts {
  /** Data rows read (blank lines and a CSV header are not rows). */
  rows: number;
  predicted: number;
  failed: number;
}

export interface JobSummary extends JobCounts {
  durationMs: number;
  startedAt: string;
  finishedAt: string;
  format: RowFormat;
  batchSize: number;
  model: { name: string; version: string };
  /** How a CSV header was mapped to the model's inputs. */
  csv?: CsvMapping;
}

export const DEFAULT_BATCH_SIZE = 256;
/** Batches predicted but not yet written: enough for parsing to run ahead of the model by one batch. */
const IN_FLIGHT = 2;

export interface BatchJobOptions extends RowReaderOptions {
  readonly model: OnnxModel;
  readonly limits: Limits;
  readonly format: RowFormat;
  /** Rows per model run. @default 256 */
  readonly batchSize?: number;
  /** The input's lines in order; a CSV may start with a header line. */
  readonly lines: AsyncIterable<string>;
  /** Receives whole JSONL lines of predictions, in input order. */
  readonly writePredictions: (jsonl: string) => Promise<void>;
  /** Receives whole JSONL lines of rows that failed, in input order. */
  readonly writeErrors: (jsonl: string) => Promise<void>;
  readonly onProgress?: (c: JobCounts) => void;
}

/** `{"id","line","outputs"}` and `{"id","line","error"}` lines for a batch's results. */
export function formatResults(results: readonly BatchResult[]): { predictions: string; errors: string } {
  let predictions = '';
  let errors = '';
  for (const r of results) {
    if ('ok' in r) {
      predictions += `${JSON.stringify({ id: r.ok.id, line: r.ok.line, outputs: r.ok.outputs })}\n`;
    } else {
      errors += `${JSON.stringify({ id: r.failed.id, line: r.failed.line, error: r.failed.error })}\n`;
    }
  }
  return { predictions, errors };
}

function errorLine(line: number, id: string | number, error: string): string {
  return `${JSON.stringify({ id, line, error })}\n`;
}

function checkBatchSize(batchSize: number, limits: Limits): void {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > limits.maxBatch) {
    throw new Error(`batch size must be an integer from 1 to ${limits.maxBatch}, got ${batchSize}`);
  }
}

export async function runBatchJob(o: BatchJobOptions): Promise<JobSummary> {
  const batchSize = o.batchSize ?? DEFAULT_BATCH_SIZE;
  checkBatchSize(batchSize, o.limits);
  const startedAt = new Date();
  const started = performance.now();
  const reader = new RowReader(o.model, o.format, o);
  const predictor = new BatchPredictor(o.model, o.limits);
  const counts: JobCounts = { rows: 0, predicted: 0, failed: 0 };

  // Errors found while parsing wait for the batch they belong to, so both files stay in input order.
  let batch: ParsedRow[] = [];
  let parseErrors = '';
  let parseFailed = 0;
  const pending: Promise<() => Promise<void>>[] = [];

  const drain = async (keep: number) => {
    while (pending.length > keep) {
      const write = await (pending.shift() as Promise<() => Promise<void>>);
      await write();
      o.onProgress?.({ ...counts });
    }
  };
  const submit = () => {
    const rows = batch;
    const before = parseErrors;
    const beforeFailed = parseFailed;
    batch = [];
    parseErrors = '';
    parseFailed = 0;
    pending.push(
      predictor.predict(rows).then((results) => async () => {
        const text = formatResults(results);
        const failed = results.length - results.filter((r) => 'ok' in r).length;
        counts.predicted += results.length - failed;
        counts.failed += failed + beforeFailed;
        // Parse errors sit before the batch's own: they came from lines read before the batch was full.
        const errors = mergeByLine(before, text.errors);
        if (text.predictions) await o.writePredictions(text.predictions);
        if (errors) await o.writeErrors(errors);
      }),
    );
  };

  let lineNo = 0;
  for await (const text of o.lines) {
    lineNo++;
    let parsed: ParsedRow | undefined;
    try {
      parsed = reader.line(lineNo, text);
    } catch (err) {
      // A header the model cannot use fails the job: every row would fail the same way.
      if (!(err instanceof InferenceError) || err instanceof CsvHeaderError) throw err;
      counts.rows++;
      parseFailed++;
      parseErrors += errorLine(lineNo, reader.lastId, err.message);
      // A long run of bad lines is written as it goes, like predictions: memory stays flat either way.
      if (parseFailed >= batchSize) {
        submit();
        await drain(IN_FLIGHT - 1);
      }
      continue;
    }
    if (!parsed) continue;
    counts.rows++;
    batch.push(parsed);
    if (batch.length >= batchSize) {
      submit();
      await drain(IN_FLIGHT - 1);
    }
  }
  if (batch.length > 0 || parseErrors) submit();
  await drain(0);
  const finishedAt = new Date();
  return {
    ...counts,
    durationMs: Math.round(performance.now() - started),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    format: o.format,
    batchSize,
    model: { name: o.model.name, version: o.model.version },
    csv: reader.mapping,
  };
}

/** Error lines from two sources, each in line order, merged into one in line order. */
function mergeByLine(a: string, b: string): string {
  if (!a || !b) return a + b;
  const lines = [...a.split('\n'), ...b.split('\n')].filter((l) => l !== '');
  const lineOf = (l: string) => (JSON.parse(l) as { line: number }).line;
  return lines.sort((x, y) => lineOf(x) - lineOf(y)).join('\n') + '\n';
}

/** A Distributed Map item as the ItemSelector shapes it: its index in the file and its value. */
export interface MapItem {
  readonly index: number;
  readonly value: unknown;
}

export interface PredictItemsOptions extends RowReaderOptions {
  readonly model: OnnxModel;
  readonly limits: Limits;
  readonly format: RowFormat;
  readonly items: readonly MapItem[];
}

/**
 * Predicts one ItemBatcher batch. CSV items are objects keyed by the header (the header is line 1, so
 * item i is line i + 2); JSONL items are parsed lines (item i is line i + 1).
 */
export async function predictItems(
  o: PredictItemsOptions,
): Promise<{ predictions: string; errors: string; counts: JobCounts }> {
  const reader = new RowReader(o.model, o.format, o);
  const predictor = new BatchPredictor(o.model, o.limits);
  const rows: ParsedRow[] = [];
  const parseErrors: { line: number; text: string }[] = [];
  for (const item of o.items) {
    const line = item.index + (o.format === 'csv' ? 2 : 1);
    try {
      rows.push(reader.item(line, item.index, item.value));
    } catch (err) {
      if (!(err instanceof InferenceError) || err instanceof CsvHeaderError) throw err;
      parseErrors.push({ line, text: errorLine(line, reader.lastId, err.message) });
    }
  }
  const results: BatchResult[] = [];
  for (let i = 0; i < rows.length; i += o.limits.maxBatch) {
    results.push(...(await predictor.predict(rows.slice(i, i + o.limits.maxBatch))));
  }
  const text = formatResults(results);
  const failed = results.filter((r) => !('ok' in r)).length;
  return {
    predictions: text.predictions,
    errors: mergeByLine(parseErrors.map((e) => e.text).join(''), text.errors),
    counts: {
      rows: o.items.length,
      predicted: results.length - failed,
      failed: failed + parseErrors.length,
    },
  };
}
