/** A/B variants: X-Model-Variant pins a request to a variant's model, loaded on first use, on real models. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelManifest } from '../../../lambda/core/types';
import { InferenceService, type HttpRequest, type HttpResponse } from '../../../lambda/core/service';
import { VariantRouter, VARIANT_HEADER } from '../../../lambda/core/variants';
import { copyModel, IRIS_DIR } from '../../support/cdk';

const manifest = JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as ModelManifest;
const sample = manifest.sample as NonNullable<ModelManifest['sample']>;

function infer(headers: Record<string, string> = {}, body = JSON.stringify(sample.request)): HttpRequest {
  return { method: 'POST', path: '/v2/models/iris/infer', headers, body };
}
const parse = (r: HttpResponse) => JSON.parse(r.body.toString()) as Record<string, unknown>;

describe('VariantRouter', () => {
  const challengerDir = copyModel({ manifest: (m) => (m.version = '1.2.0') });
  let loads: string[];
  let created: InferenceService[];
  let router: VariantRouter;
  let own: InferenceService;

  function newService(): InferenceService {
    const s = new InferenceService({ telemetry: { modelLoaded: (e) => loads.push(e.version) } });
    created.push(s);
    return s;
  }

  function makeRouter(challengerSha?: string): VariantRouter {
    return new VariantRouter(
      {
        own: 'primary',
        models: {
          primary: { uri: IRIS_DIR, sha256: manifest.sha256 },
          challenger: { uri: challengerDir, sha256: challengerSha ?? manifest.sha256 },
        },
      },
      own,
      newService,
    );
  }

  beforeEach(async () => {
    loads = [];
    created = [];
    own = newService();
    await own.load({ location: IRIS_DIR });
    router = makeRouter();
  });

  afterEach(async () => {
    await router.close();
    await own.close();
  });

  afterAll(() => fs.rmSync(challengerDir, { recursive: true, force: true }));

  it('serves its own variant without the header, and never loads the other model', async () => {
    const res = await router.handle(infer());
    expect(res.status).toBe(200);
    expect(res.headers[VARIANT_HEADER]).toBe('primary');
    expect(parse(res)).toEqual(sample.response);
    expect(loads).toEqual(['1.1.0']);
  });

  it('pins a request to the other variant, loading its model once', async () => {
    const first = await router.handle(infer({ [VARIANT_HEADER]: 'challenger' }));
    expect(first.status).toBe(200);
    expect(first.headers[VARIANT_HEADER]).toBe('challenger');
    expect(parse(first)).toEqual({ ...sample.response, model_version: '1.2.0' });
    const [a, b] = await Promise.all([
      router.handle(infer({ [VARIANT_HEADER]: 'challenger' })),
      router.handle(infer({ [VARIANT_HEADER]: ' primary ' })),
    ]);
    expect(parse(a).model_version).toBe('1.2.0');
    expect(parse(b).model_version).toBe('1.1.0');
    expect(b.headers[VARIANT_HEADER]).toBe('primary');
    expect(loads).toEqual(['1.1.0', '1.2.0']);
  });

  it('answers an unknown variant with 400 and the names to use', async () => {
    const res = await router.handle(infer({ [VARIANT_HEADER]: 'canary' }));
    expect(res.status).toBe(400);
    expect(parse(res).error).toBe(
      'X-Model-Variant "canary" is not a variant of this endpoint; use one of: primary, challenger',
    );
  });

  it('passes bad requests to the pinned variant, which answers 400 as usual', async () => {
    const res = await router.handle(infer({ [VARIANT_HEADER]: 'challenger' }, '{"inputs": ['));
    expect(res.status).toBe(400);
    expect(res.headers[VARIANT_HEADER]).toBe('challenger');
    expect(String(parse(res).error)).toMatch(/JSON/);
  });

  it('answers 503 with the reason when the pinned model cannot load, and tries again next time', async () => {
    await router.close();
    router = makeRouter('0'.repeat(64));
    for (let i = 0; i < 2; i++) {
      const res = await router.handle(infer({ [VARIANT_HEADER]: 'challenger' }));
      expect(res.status).toBe(503);
      expect(String(parse(res).error)).toMatch(/sha256/);
    }
    // One service per attempt: the failed one is not kept.
    expect(created).toHaveLength(3);
    const ownRes = await router.handle(infer());
    expect(ownRes.status).toBe(200);
  });
});
