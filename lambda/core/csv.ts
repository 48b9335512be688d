import { BadRequestError, PayloadTooLargeError } from './errors';
import { strictNumber } from './rows';

/**
 * Parses headerless numeric CSV (the SageMaker text/csv convention) into rows.
 * Quoted fields are not numbers, so they are rejected rather than parsed.
 */
export function parseCsv(text: string, maxRows: number): number[][] {
  const rows: number[][] = [];
  const lines = text.split(/\r?\n/);
  let width = -1;
  let firstLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    if (rows.length === maxRows) {
      throw new PayloadTooLargeError(
        `the CSV body has more than ${maxRows} rows; split it into smaller requests`,
      );
    }
    const row = parseCsvLine(line, i + 1);
    if (width === -1) {
      width = row.length;
      firstLine = i + 1;
    } else if (row.length !== width) {
      throw new BadRequestError(
        `CSV line ${i + 1} has ${row.length} columns; line ${firstLine} has ${width}`,
      );
    }
    rows.push(row);
  }
  if (rows.length === 0) throw new BadRequestError('the CSV body has no rows');
  return rows;
}

export function parseCsvLine(line: string, lineNo: number): number[] {
  return line.split(',').map((cell, col) => {
    const v = strictNumber(cell);
    if (Number.isNaN(v)) {
      throw new BadRequestError(
        `CSV line ${lineNo}, column ${col + 1}: ${JSON.stringify(cell.trim())} is not a number`,
      );
    }
    return v;
  });
}

function cell(v: unknown): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: readonly (readonly unknown[])[]): string {
  return rows.map((r) => r.map(cell).join(',')).join('\n') + '\n';
}
