/**
 * Which network builds read each model component's weights: one table, used by `inspect` (and the
 * model adoption check later) to derive the tensors a config implies. The UNet, VAE and ControlNet
 * join this table with their nets.
 */
import { buildClipTextGraph, buildContextClipTextGraph } from './clip-text-encoder';
import { parseBlipQFormerModelConfig } from './configs';
import { impliedParameters } from './implied-parameters';
import { buildQFormerGraph } from './qformer';
import type { TensorRequest, WeightCatalog } from './weight-catalog';

type Build = (config: unknown, catalog: WeightCatalog, pipeline: PipelineFacts) => unknown;

export interface PipelineFacts {
  /** model_index.json ctx_begin_pos */
  ctxBeginPos: number;
  /** The Q-Former's num_query_tokens (it sets the text encoder's prompt length). */
  queryTokenCount: number;
}

/** The prompt or category length does not change which tensors a net reads: any valid length will do. */
const ANY_CATEGORY_LENGTH = 3;

export const COMPONENT_BUILDS: Readonly<Record<string, readonly Build[]>> = {
  qformer: [(config, catalog) => buildQFormerGraph(config, catalog, { textLength: ANY_CATEGORY_LENGTH })],
  text_encoder: [
    (config, catalog) => buildClipTextGraph(config, catalog),
    (config, catalog, pipeline) => buildContextClipTextGraph(config, catalog, { queryTokenCount: pipeline.queryTokenCount, ctxBeginPos: pipeline.ctxBeginPos }),
  ],
};

/** Every tensor the component's config implies (union over its builds), or null when no net reads it yet. */
export function impliedComponentParameters(component: string, config: unknown, pipeline: PipelineFacts): TensorRequest[] | null {
  const builds = COMPONENT_BUILDS[component];
  if (!builds) return null;
  const byName = new Map<string, TensorRequest>();
  for (const build of builds) for (const request of impliedParameters((catalog) => build(config, catalog, pipeline))) byName.set(request.name, request);
  return [...byName.values()];
}

export function queryTokenCountOf(qformerConfig: unknown): number {
  return parseBlipQFormerModelConfig(qformerConfig).numQueryTokens;
}
