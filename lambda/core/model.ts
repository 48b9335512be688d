import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { infoForOrt, type DatatypeInfo } from './datatypes';
import { BadRequestError } from './errors';
import type { Datatype, ModelManifest } from './types';

/** A dimension as the model declares it: a size, or a dynamic one with its symbolic name ('' when unnamed). */
export type ModelDim = number | { readonly dynamic: string };

export interface TensorIO {
  readonly name: string;
  readonly tensor: true;
  readonly info: DatatypeInfo;
  /** undefined when the model does not say (onnxruntime reports no shape). */
  readonly dims: readonly ModelDim[] | undefined;
}

export interface UnsupportedIO {
  readonly name: string;
  readonly tensor: false;
  readonly reason: string;
}

export type ModelIO = TensorIO | UnsupportedIO;

/** V2 model metadata, plus the outputs this runtime cannot return. */
export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: { name: string; datatype: Datatype; shape: number[] }[];
  outputs: { name: string; datatype: Datatype; shape: number[] }[];
  unsupported_inputs?: { name: string; reason: string }[];
  unsupported_outputs?: { name: string; reason: string }[];
}

export interface SessionTuning {
  /** Threads for one operator. @default - the CPUs this process may use */
  readonly intraOpNumThreads?: number;
  /** @default 'all' */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Let intra-op worker threads spin between runs. Spinning saves a wake-up per run but holds a core
   * while idle, which a long-running server's CPU metrics (and CPU autoscaling) read as load.
   * @default true, onnxruntime's own default
   */
  readonly allowSpinning?: boolean;
}

export interface OnnxModelOptions {
  readonly name: string;
  readonly version: string;
  readonly manifest?: ModelManifest;
  readonly sha256?: string;
  readonly session?: SessionTuning;
}

function toIO(
  meta: ort.InferenceSession.ValueMetadata,
  manifestShape: readonly number[] | undefined,
): ModelIO {
  if (!meta.isTensor) {
    return {
      name: meta.name,
      tensor: false,
      reason: 'a sequence or map (e.g. ZipMap), which onnxruntime-node cannot return',
    };
  }
  const info = infoForOrt(meta.type);
  if (!info) {
    return { name: meta.name, tensor: false, reason: `element type ${meta.type} is not supported` };
  }
  let dims: ModelDim[] | undefined = meta.shape.map((d) =>
    typeof d === 'number' && d >= 0 ? d : { dynamic: typeof d === 'string' ? d : '' },
  );
  // onnxruntime reports [] both for a scalar and for an unknown rank; the manifest can tell them apart.
  if (dims.length === 0 && manifestShape?.length !== 0) dims = undefined;
  return { name: meta.name, tensor: true, info, dims };
}

export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism());
}

/** onnxruntime's options for a session tuned this way. */
export function sessionOptions(tuning: SessionTuning = {}): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: tuning.intraOpNumThreads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: tuning.graphOptimizationLevel ?? 'all',
    ...(tuning.allowSpinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
}

/** Something that runs a session: the model's own, or a copy of it on another thread. */
export interface SessionRunner {
  run(
    feeds: Record<string, ort.Tensor>,
    fetches: readonly string[],
  ): Promise<ort.InferenceSession.ReturnType>;
  release(): Promise<void>;
}

/** One loaded ONNX model with its session, created once and reused for every request. */
export class OnnxModel {
  static async create(bytes: Uint8Array, options: OnnxModelOptions): Promise<OnnxModel> {
    const session = await ort.InferenceSession.create(bytes, sessionOptions(options.session));
    return new OnnxModel(session, options);
  }

  readonly name: string;
  readonly version: string;
  readonly manifest: ModelManifest | undefined;
  readonly sha256: string | undefined;
  readonly inputs: readonly ModelIO[];
  readonly outputs: readonly ModelIO[];
  readonly tensorOutputs: readonly string[];
  private readonly inputsByName: ReadonlyMap<string, ModelIO>;
  private readonly outputsByName: ReadonlyMap<string, ModelIO>;
  private runner?: SessionRunner;

  private constructor(
    readonly session: ort.InferenceSession,
    options: OnnxModelOptions,
  ) {
    this.name = options.name;
    this.version = options.version;
    this.manifest = options.manifest;
    this.sha256 = options.sha256;
    const shapeOf = (list: ModelManifest['inputs'] | undefined, name: string) =>
      list?.find((t) => t.name === name)?.shape;
    this.inputs = session.inputMetadata.map((m) => toIO(m, shapeOf(options.manifest?.inputs, m.name)));
    this.outputs = session.outputMetadata.map((m) => toIO(m, shapeOf(options.manifest?.outputs, m.name)));
    this.tensorOutputs = this.outputs.filter((o) => o.tensor).map((o) => o.name);
    this.inputsByName = new Map(this.inputs.map((i) => [i.name, i]));
    this.outputsByName = new Map(this.outputs.map((o) => [o.name, o]));
  }

  input(name: string): ModelIO | undefined {
    return this.inputsByName.get(name);
  }

  output(name: string): ModelIO | undefined {
    return this.outputsByName.get(name);
  }

  metadata(): ModelMetadata {
    const shape = (io: TensorIO) => (io.dims ?? []).map((d) => (typeof d === 'number' ? d : -1));
    const tensors = (list: readonly ModelIO[]) =>
      list
        .filter((io): io is TensorIO => io.tensor)
        .map((io) => ({ name: io.name, datatype: io.info.datatype, shape: shape(io) }));
    const unsupported = (list: readonly ModelIO[]) =>
      list
        .filter((io): io is UnsupportedIO => !io.tensor)
        .map((io) => ({ name: io.name, reason: io.reason }));
    const meta: ModelMetadata = {
      name: this.name,
      versions: [this.version],
      platform: 'onnxruntime_onnx',
      inputs: tensors(this.inputs),
      outputs: tensors(this.outputs),
    };
    const ui = unsupported(this.inputs);
    const uo = unsupported(this.outputs);
    if (ui.length > 0) meta.unsupported_inputs = ui;
    if (uo.length > 0) meta.unsupported_outputs = uo;
    return meta;
  }

  /**
   * Runs the session. Inputs are already validated against the metadata, so what
   * onnxruntime still rejects depends on the values sent: a 400, not a 5xx.
   */
  async run(
    feeds: Record<string, ort.Tensor>,
    fetches: readonly string[],
  ): Promise<ort.InferenceSession.ReturnType> {
    try {
      return await (this.runner
        ? this.runner.run(feeds, fetches)
        : this.session.run(feeds, fetches as string[]));
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new BadRequestError(`the model could not run on this input: ${msg}`);
    }
  }

  /** Runs from now on through `runner` (e.g. a SessionThread), which must hold the same model. */
  useRunner(runner: SessionRunner): void {
    this.runner = runner;
  }

  async release(): Promise<void> {
    await this.runner?.release();
    await this.session.release();
  }
}
