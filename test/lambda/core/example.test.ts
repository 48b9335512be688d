import * as path from 'node:path';
import { encodeResponse, parseBody, prepareInference } from '../../../lambda/core/codec';
import { exampleRequest } from '../../../lambda/core/example';
import { resolveLimits } from '../../../lambda/core/limits';
import { OnnxModel } from '../../../lambda/core/model';
import { openModel } from '../../../lambda/core/open';
import { mixedModel, scalarModel } from '../../fixtures/models';

const limits = resolveLimits({});

describe('exampleRequest', () => {
  it("uses the manifest's sample when there is one", async () => {
    const { model } = await openModel({ location: path.join(__dirname, '..', '..', '..', 'models', 'iris') });
    expect(exampleRequest(model)).toEqual(model.manifest?.sample?.request);
    await model.release();
  });

  it.each([
    ['mixed', mixedModel().bytes],
    ['scalar', scalarModel().bytes],
  ])('builds a request the %s model accepts', async (name, bytes) => {
    const model = await OnnxModel.create(bytes, { name, version: '1' });
    const body = Buffer.from(JSON.stringify(exampleRequest(model)));
    const prepared = prepareInference(model, parseBody(body, undefined, limits), limits);
    const results = await model.run(prepared.feeds, prepared.fetches);
    const encoded = encodeResponse({ modelName: name, modelVersion: '1' }, prepared, results);
    expect(JSON.parse(encoded.body as string)).toMatchObject({
      model_name: name,
      outputs: expect.any(Array) as unknown,
    });
    await model.release();
  });
});
