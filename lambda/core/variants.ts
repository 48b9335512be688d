/**
 * A/B variants behind one Lambda alias. The alias's routing config decides which version (variant) a request
 * lands on; each version serves its own model. `X-Model-Variant: <name>` pins a request to a variant whatever
 * version it landed on, for testing: the other variant's model is loaded on the first such request and kept.
 * Nothing else pays for it: without the header no second model is ever loaded.
 */
import type { VariantsConfig } from './runtime-config';
import type { HttpRequest, HttpResponse, InferenceService } from './service';

export const VARIANT_HEADER = 'x-model-variant';

export class VariantRouter {
  private readonly others = new Map<string, Promise<InferenceService>>();

  /**
   * @param own the service of this instance's own variant, loaded as usual
   * @param create a new, empty service for another variant's model
   * @param modelName the name every variant answers to (MODEL_NAME), when it is not the manifest's
   */
  constructor(
    private readonly variants: VariantsConfig,
    private readonly own: InferenceService,
    private readonly create: () => InferenceService,
    private readonly modelName?: string,
  ) {}

  /** The names of the variants, this instance's own first. */
  get names(): string[] {
    return [this.variants.own, ...Object.keys(this.variants.models).filter((n) => n !== this.variants.own)];
  }

  async handle(req: HttpRequest): Promise<HttpResponse> {
    const asked = req.headers[VARIANT_HEADER]?.trim();
    const name = asked === undefined || asked === '' ? this.variants.own : asked;
    if (!(name in this.variants.models)) {
      return {
        status: 400,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          error: `X-Model-Variant ${JSON.stringify(name)} is not a variant of this endpoint; use one of: ${this.names.join(', ')}`,
        }),
      };
    }
    const service = name === this.variants.own ? this.own : await this.other(name);
    const res = await service.handle(req);
    return { ...res, headers: { ...res.headers, [VARIANT_HEADER]: name } };
  }

  /** Releases every model this router loaded for other variants. */
  async close(): Promise<void> {
    const services = await Promise.all(this.others.values());
    this.others.clear();
    await Promise.all(services.map((s) => s.close()));
  }

  private async other(name: string): Promise<InferenceService> {
    let pending = this.others.get(name);
    if (!pending) {
      const model = this.variants.models[name] as VariantsConfig['models'][string];
      const service = this.create();
      pending = service
        .load({ location: model.uri, name: this.modelName, expectedSha256: model.sha256 })
        .then(() => service);
      this.others.set(name, pending);
    }
    const service = await pending;
    // A failed load answers 503 with its reason now; the next pinned request tries again.
    if (service.notReadyReason() !== undefined && this.others.get(name) === pending) this.others.delete(name);
    return service;
  }
}
