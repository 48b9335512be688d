import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** An error the CLI reports as one line, without a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Bad flags or arguments: exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
  readonly help: boolean;
}

/** Strict parsing: an unknown flag or a missing value is a usage error naming the flag. */
export function parse(argv: string[], options: Options, allowPositionals = false): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals,
    });
    const v = values as Record<string, string | boolean | undefined>;
    return { values: v, positionals, help: v.help === true };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function required(p: Parsed, name: string): string {
  const v = str(p, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

export function int(p: Parsed, name: string, min: number, max: number): number | undefined {
  const raw = str(p, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** The row-file flags that `mdk predict` and `mdk baseline` share. */
export const ROW_FILE_OPTIONS = {
  format: { type: 'string' },
  header: { type: 'string' },
  'id-field': { type: 'string' },
} as const;

/** `--format` (else from the file's extension), `--header` and `--id-field`, checked. */
export function rowFileOptions(
  p: Parsed,
  file: string,
): { format: 'jsonl' | 'csv'; header: 'auto' | 'present' | 'absent'; idField: string | undefined } {
  const format = str(p, 'format');
  if (format !== undefined && format !== 'jsonl' && format !== 'csv') {
    throw new UsageError(`--format must be jsonl or csv, got ${JSON.stringify(format)}`);
  }
  const header = str(p, 'header') ?? 'auto';
  if (header !== 'auto' && header !== 'present' && header !== 'absent') {
    throw new UsageError(`--header must be auto, present or absent, got ${JSON.stringify(header)}`);
  }
  const idField = str(p, 'id-field');
  if (idField === '') throw new UsageError('--id-field must not be empty');
  return {
    format: format ?? (path.extname(file).toLowerCase() === '.csv' ? 'csv' : 'jsonl'),
    header,
    idField,
  };
}
