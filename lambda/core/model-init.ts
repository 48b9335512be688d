/**
 * The model load a job or stream handler starts at init: opened as its environment says (MODEL_URI,
 * MODEL_SHA256, ...), timed, and reported through Powertools. A failed load is logged here; the handler
 * awaits the promise, so its invocations fail and their source retries them.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { OnnxModel } from './model';
import { openModel } from './open';
import type { RuntimeConfig } from './runtime-config';

/**
 * @param consequence what a failed load means for this handler, for the log line
 *   (e.g. 'no job will run')
 */
export function loadModelAtInit(
  config: RuntimeConfig,
  logger: Logger,
  metrics: Metrics,
  consequence: string,
): Promise<OnnxModel> {
  const ready = (async () => {
    const started = performance.now();
    const { model, source } = await openModel(
      { location: config.modelUri, name: config.modelName, expectedSha256: config.modelSha256 },
      { session: { intraOpNumThreads: config.intraOpNumThreads, allowSpinning: config.allowSpinning } },
    );
    const loadMs = performance.now() - started;
    metrics.setDefaultDimensions({ model: model.name });
    metrics.singleMetric().addMetric('ModelLoadTime', MetricUnit.Milliseconds, loadMs);
    logger.info('model loaded', { model: model.name, version: model.version, source, loadMs });
    return model;
  })();
  ready.catch((err: unknown) => {
    metrics.singleMetric().addMetric('ModelLoadFailures', MetricUnit.Count, 1);
    logger.error(`model failed to load; ${consequence}`, { error: err as Error });
  });
  return ready;
}
