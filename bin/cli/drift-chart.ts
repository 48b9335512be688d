/**
 * The drift chart: one self-contained HTML page (inline SVG and CSS, no scripts, nothing fetched) with, per
 * column, the baseline's and the captured data's share of each bin side by side, and its PSI. Drifted
 * columns come first and are marked, so the page opens on what moved. Every name from the data is escaped:
 * column names and categories come from files anyone could have written.
 */
import type { ColumnDrift, DriftReport } from '../../lambda/core/drift';

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe for HTML and SVG, both in element content and in quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

const BAR = 14;
const GROUP = 2 * BAR + 12;
const PLOT_HEIGHT = 140;
const TOP = 12;
const LABEL_SPACE = 56;
const LEFT = 40;
const EXPECTED_COLOR = '#9aa5b1';
const ACTUAL_COLOR = '#2f6fdf';
const DRIFT_COLOR = '#d64545';

const pct = (x: number): string => `${(x * 100).toFixed(x >= 0.1 || x === 0 ? 0 : 1)}%`;
const short = (label: string): string => (label.length > 14 ? `${label.slice(0, 13)}…` : label);
const fmt = (x: number | undefined, digits = 3): string => (x === undefined ? '-' : x.toFixed(digits));

function isDrifted(c: ColumnDrift, threshold: number): boolean {
  return c.psi !== undefined && c.psi >= threshold;
}

/** Bars of expected and actual shares per bin, on one scale, with the bin labels under them. */
function barsSvg(c: ColumnDrift, drifted: boolean): string {
  const { labels, expected, actual } = c.bins;
  const top = Math.max(0.01, ...expected, ...actual);
  const width = LEFT + labels.length * GROUP + 8;
  const height = TOP + PLOT_HEIGHT + LABEL_SPACE;
  const y = (share: number) => TOP + PLOT_HEIGHT - (share / top) * PLOT_HEIGHT;
  const actualColor = drifted ? DRIFT_COLOR : ACTUAL_COLOR;
  const parts: string[] = [];
  // A scale: 0 and the largest share.
  parts.push(
    `<line x1="${LEFT - 4}" y1="${TOP + PLOT_HEIGHT}" x2="${width - 4}" y2="${TOP + PLOT_HEIGHT}" stroke="#ccc"/>`,
    `<text x="${LEFT - 6}" y="${TOP + PLOT_HEIGHT}" text-anchor="end" class="axis">0</text>`,
    `<text x="${LEFT - 6}" y="${TOP + 8}" text-anchor="end" class="axis">${pct(top)}</text>`,
  );
  labels.forEach((label, i) => {
    const x = LEFT + i * GROUP;
    const e = expected[i] ?? 0;
    const a = actual[i] ?? 0;
    const name = escapeHtml(label);
    parts.push(
      `<rect x="${x}" y="${y(e).toFixed(1)}" width="${BAR}" height="${(TOP + PLOT_HEIGHT - y(e)).toFixed(1)}" fill="${EXPECTED_COLOR}"><title>${name}: baseline ${pct(e)}</title></rect>`,
      `<rect x="${x + BAR}" y="${y(a).toFixed(1)}" width="${BAR}" height="${(TOP + PLOT_HEIGHT - y(a)).toFixed(1)}" fill="${actualColor}"><title>${name}: captured ${pct(a)}</title></rect>`,
      `<text transform="translate(${x + BAR},${TOP + PLOT_HEIGHT + 10}) rotate(35)" class="bin">${escapeHtml(short(label))}</text>`,
    );
  });
  const title = `${escapeHtml(c.name)}: baseline and captured share per bin`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">` +
    `<title>${title}</title>${parts.join('')}</svg>`
  );
}

function columnFigure(c: ColumnDrift, threshold: number): string {
  const drifted = isDrifted(c, threshold);
  const status = c.skipped !== undefined ? `skipped: ${c.skipped}` : drifted ? 'DRIFT' : 'ok';
  const facts = [
    `${c.source} ${c.tensor}[${c.index}]`,
    c.kind,
    `${c.count} values${c.missing > 0 ? `, ${c.missing} missing` : ''}`,
    `PSI ${fmt(c.psi)}`,
    ...(c.chiSquare ? [`chi-square p ${c.chiSquare.pValue.toPrecision(3)}`] : []),
  ];
  return (
    `<figure class="${drifted ? 'column drifted' : 'column'}">` +
    `<figcaption><strong>${escapeHtml(c.name)}</strong> <span class="status">${escapeHtml(status)}</span><br>` +
    `<span class="facts">${escapeHtml(facts.join(' · '))}</span></figcaption>` +
    `${barsSvg(c, drifted)}</figure>`
  );
}

/** Drifted columns first (largest PSI first), then the rest in the baseline's order. */
export function chartOrder(report: DriftReport): ColumnDrift[] {
  const all = [...report.features, ...report.predictions];
  const drifted = all
    .filter((c) => isDrifted(c, report.threshold))
    .sort((a, b) => (b.psi ?? 0) - (a.psi ?? 0));
  return [...drifted, ...all.filter((c) => !isDrifted(c, report.threshold))];
}

function section(report: DriftReport): string {
  const window = report.window ? `, ${report.window.start} to ${report.window.end}` : '';
  const summary =
    report.skipped !== undefined
      ? `no PSI: ${report.skipped}`
      : report.drifted.length > 0
        ? `drift in ${report.drifted.length} column${report.drifted.length === 1 ? '' : 's'}: ${report.drifted.join(', ')}`
        : 'no drift';
  const mix = report.classShare
    ? `<p class="mix">Class mix: ${escapeHtml(
        Object.entries(report.classShare)
          .map(([k, v]) => `${k} ${v.toFixed(1)}%`)
          .join(', '),
      )}</p>`
    : '';
  return (
    `<section><h2>${escapeHtml(`${report.model} ${report.version}`)}</h2>` +
    `<p>${escapeHtml(`${report.rows} rows${window}; PSI threshold ${report.threshold}; ${summary}`)}</p>${mix}` +
    chartOrder(report)
      .map((c) => columnFigure(c, report.threshold))
      .join('') +
    `</section>`
  );
}

/** The whole page for some reports; `source` names the data that was compared (a file name, say). */
export function renderDriftChart(reports: readonly DriftReport[], source: string): string {
  const style = [
    'body{font:14px system-ui,sans-serif;margin:24px;color:#1f2933}',
    'figure{display:inline-block;vertical-align:top;margin:8px;padding:8px;border:1px solid #e4e7eb;border-radius:4px}',
    'figure.drifted{border:2px solid #d64545}',
    '.status{font-weight:bold}.drifted .status{color:#d64545}',
    '.facts{color:#52606d;font-size:12px}',
    'svg text{font-size:10px;fill:#52606d}',
    `.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}`,
  ].join('\n');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(`Drift: ${source}`)}</title>`,
    `<style>${style}</style></head><body>`,
    `<h1>${escapeHtml(`Drift of ${source} against the baseline`)}</h1>`,
    `<p><span class="key" style="background:${EXPECTED_COLOR}"></span>baseline` +
      `<span class="key" style="background:${ACTUAL_COLOR}"></span>captured` +
      `<span class="key" style="background:${DRIFT_COLOR}"></span>captured, drifted (PSI at or over the threshold)</p>`,
    ...reports.map(section),
    '</body></html>',
    '',
  ].join('\n');
}
