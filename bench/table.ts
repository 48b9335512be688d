/** Fixed-width text tables: left-aligned text, right-aligned numbers. */

export type Cell = string | number | undefined;

export interface Column {
  readonly title: string;
  /** @default 'r' for numbers, 'l' otherwise (decided by the first data row) */
  readonly align?: 'l' | 'r';
  /** Decimals for numbers. @default 0 */
  readonly decimals?: number;
}

export function fmt(v: Cell, decimals = 0): string {
  if (v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export function table(columns: readonly Column[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((r) => columns.map((c, i) => fmt(r[i], c.decimals ?? 0)));
  const align = columns.map((c, i) => c.align ?? (typeof rows[0]?.[i] === 'number' ? 'r' : 'l'));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...text.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((s, i) => (align[i] === 'r' ? s.padStart(widths[i] as number) : s.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...text.map(line)].join(
    '\n',
  );
}
