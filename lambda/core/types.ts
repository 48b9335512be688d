/** Open Inference Protocol (KServe V2) wire types, and the model manifest. */

export const DATATYPES = [
  'BOOL',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'FP32',
  'FP64',
  'BYTES',
] as const;
export type Datatype = (typeof DATATYPES)[number];

export type Parameters = Record<string, string | number | boolean>;

/** Tensor data as it appears in JSON: flat or nested, row-major. */
export type JsonData = unknown[] | number | string | boolean;

export interface RequestInput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly parameters?: Parameters;
  readonly data?: JsonData;
}

export interface RequestOutput {
  readonly name: string;
  readonly parameters?: Parameters;
}

export interface InferRequest {
  readonly id?: string;
  readonly parameters?: Parameters;
  readonly inputs: readonly RequestInput[];
  readonly outputs?: readonly RequestOutput[];
}

export interface ResponseOutput {
  name: string;
  shape: number[];
  datatype: Datatype;
  parameters?: Parameters;
  data?: unknown[];
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: Parameters;
  outputs: ResponseOutput[];
}

/** A tensor in the model's metadata. Dynamic dimensions are -1, as in V2 metadata. */
export interface TensorSpec {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  /** Symbolic names of dynamic dimensions, where the model gives them. */
  readonly dimNames?: readonly (string | null)[];
}

/** A numeric column's statistics. Manifests written before `kind` existed are numeric. */
export interface NumericStats {
  readonly kind?: 'numeric';
  readonly count: number;
  readonly mean: number;
  readonly std: number;
  readonly min: number;
  readonly max: number;
  /** Quantiles at 0.1, 0.2, ..., 0.9. */
  readonly quantiles: readonly number[];
  /**
   * Histogram with `edges.length - 1` bins over [min, max]; bins are [lo, hi) except the last, which is
   * closed. Drift puts values below the first edge in the first bin and above the last in the last.
   */
  readonly histogram: { readonly edges: readonly number[]; readonly counts: readonly number[] };
}

/** A categorical column's counts: strings, booleans, and integers with few values. */
export interface CategoricalStats {
  readonly kind: 'categorical';
  readonly count: number;
  /**
   * Rows per value. Keys are the value as text: a string as it is, a number in JavaScript's decimal form
   * (`String(3)` is `'3'`), a boolean as `'true'` or `'false'`.
   */
  readonly categories: Readonly<Record<string, number>>;
}

export type ColumnStats = NumericStats | CategoricalStats;

/** One model input column. */
export type FeatureBaseline = ColumnStats & {
  /** Model input the feature belongs to. */
  readonly input: string;
  /** Position in the input's row, flattened row-major (the last axis for a [batch, n] input). */
  readonly index: number;
  readonly name: string;
};

/** One model output column, from the model's own predictions on held-out data. */
export type PredictionBaseline = ColumnStats & {
  readonly output: string;
  /** Position in the output's row, flattened row-major; 0 for a scalar per row. */
  readonly index: number;
  readonly name: string;
};

/** Reference distributions for drift: what the model saw in training and predicted on held-out data. */
export interface ModelBaseline {
  readonly features: readonly FeatureBaseline[];
  /** @default - none: no prediction drift */
  readonly predictions?: readonly PredictionBaseline[];
  /** Where the numbers came from, e.g. `{"features": "train split, 120 rows", "predictions": "holdout, 30 rows"}`. */
  readonly source?: Readonly<Record<string, string>>;
}

/** `model.json`, written beside `model.onnx` in a model folder. */
export interface ModelManifest {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** Hex sha256 of model.onnx. */
  readonly sha256: string;
  readonly metrics?: Readonly<Record<string, number>>;
  readonly labels?: readonly string[];
  readonly baseline?: ModelBaseline;
  readonly sample?: { readonly request: InferRequest; readonly response: InferResponse };
  readonly training?: Readonly<Record<string, string | number>>;
}

/**
 * Model names and versions as the constructs accept them (lib/model-folder.ts has the same, as lib may not
 * import the runtime): safe as S3 key segments and in CloudFormation; versions allow semver and dates.
 */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
export const MODEL_VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/;
