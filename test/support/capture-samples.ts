/**
 * Capture records drawn from a baseline, for drift tests: seeded, so a run draws the same rows every time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { CAPTURE_FORMAT, type CaptureRecord } from '../../lambda/core/capture-record';
import type { ModelBaseline, ModelManifest, NumericStats } from '../../lambda/core/types';
import { seededRandom } from '../../models/onnx-builder';

export const IRIS_DIR = path.join(__dirname, '..', '..', 'models', 'iris');

/** The example iris manifest as it is on disk (its baseline, labels and version are read, never assumed). */
export function irisManifest(): ModelManifest & { readonly baseline: ModelBaseline } {
  const manifest = JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as ModelManifest;
  if (!manifest.baseline) throw new Error('models/iris/model.json has no baseline');
  return manifest as ModelManifest & { readonly baseline: ModelBaseline };
}

/** A seeded generator in [0, 1): the one the model builder uses for weights. */
export const seeded = seededRandom;

/** Standard normal draws (Box-Muller). */
export function normal(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** A value drawn from a histogram: a bin by its count, then uniform inside it. */
export function fromHistogram(h: NumericStats['histogram'], random: () => number): number {
  const total = h.counts.reduce((s, c) => s + c, 0);
  let r = random() * total;
  for (let i = 0; i < h.counts.length; i++) {
    r -= h.counts[i] as number;
    if (r < 0) {
      const lo = h.edges[i] as number;
      const hi = h.edges[i + 1] as number;
      return lo + random() * (hi - lo);
    }
  }
  return h.edges[h.edges.length - 1] as number;
}

/** A category's text drawn by its count. */
export function fromCategories(categories: Readonly<Record<string, number>>, random: () => number): string {
  const entries = Object.entries(categories);
  let r = random() * entries.reduce((s, [, n]) => s + n, 0);
  for (const [text, n] of entries) {
    r -= n;
    if (r < 0) return text;
  }
  return (entries[entries.length - 1] as [string, number])[0];
}

export interface SampleOptions {
  readonly model: string;
  readonly version: string;
  /** Added to a feature's values, by feature name. @default - none */
  readonly shift?: Readonly<Record<string, number>>;
  /** The record's time, by its number. */
  readonly time: (i: number) => Date;
  readonly random: () => number;
}

/**
 * Records drawn from a baseline: each feature from its histogram (plus its shift), each prediction from its
 * categories or histogram. A categorical value that reads as a number is written as one, as the model's
 * INT64 output would be. Features of one input share a row.
 */
export function sampleRecords(baseline: ModelBaseline, count: number, o: SampleOptions): CaptureRecord[] {
  const records: CaptureRecord[] = [];
  const widths = new Map<string, number>();
  for (const f of baseline.features) widths.set(f.input, Math.max(widths.get(f.input) ?? 0, f.index + 1));
  for (let i = 0; i < count; i++) {
    const inputs: Record<string, number[]> = {};
    for (const [input, width] of widths) inputs[input] = new Array<number>(width).fill(0);
    for (const f of baseline.features) {
      const row = inputs[f.input] as number[];
      row[f.index] =
        f.kind === 'categorical'
          ? Number(fromCategories(f.categories, o.random))
          : fromHistogram(f.histogram, o.random) + (o.shift?.[f.name] ?? 0);
    }
    const outputs: Record<string, number | string> = {};
    for (const p of baseline.predictions ?? []) {
      if (p.kind === 'categorical') {
        const text = fromCategories(p.categories, o.random);
        outputs[p.output] = /^-?\d+$/.test(text) ? Number(text) : text;
      } else {
        outputs[p.output] = fromHistogram(p.histogram, o.random);
      }
    }
    records.push({
      mdk_capture: CAPTURE_FORMAT,
      time: o.time(i).toISOString(),
      model: o.model,
      version: o.version,
      row: 0,
      rows: 1,
      latency_ms: 1.5,
      inputs,
      outputs,
    });
  }
  return records;
}

/** Lines as Firehose files them: JSONL, gzipped. */
export function gzipLines(lines: readonly (string | object)[]): Buffer {
  return gzipSync(lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
}
