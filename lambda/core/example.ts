import type { ModelIO, OnnxModel, TensorIO } from './model';
import type { InferRequest } from './types';

function filler(io: TensorIO): string | boolean | number {
  if (io.info.kind === 'string') return '';
  if (io.info.kind === 'bool') return false;
  return 0;
}

/**
 * A request the model accepts: the manifest's sample when there is one, else
 * zeros shaped by the metadata with each dynamic dimension set to 1.
 */
export function exampleRequest(model: OnnxModel): InferRequest {
  const sample = model.manifest?.sample?.request;
  if (sample) return sample;
  const tensors = model.inputs.filter((io: ModelIO): io is TensorIO => io.tensor);
  return {
    inputs: tensors.map((io) => {
      const shape = (io.dims ?? [1]).map((d) => (typeof d === 'number' ? d : 1));
      const count = shape.reduce((a, b) => a * b, 1);
      return {
        name: io.name,
        shape,
        datatype: io.info.datatype,
        data: new Array<unknown>(count).fill(filler(io)),
      };
    }),
  };
}
