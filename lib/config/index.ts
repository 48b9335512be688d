import { devConfig } from './dev';
import { prodConfig } from './prod';
import { stageConfig } from './stage';
import type { StageConfig, StageName } from './types';

export * from './types';
export * from './pipeline';
export { devConfig, prodConfig, stageConfig };

/** The three stages, in promotion order. */
export const STAGES: Readonly<Record<StageName, StageConfig>> = {
  dev: devConfig,
  stage: stageConfig,
  prod: prodConfig,
};
