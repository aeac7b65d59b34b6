/**
 * The key under which a built graph is cached on disk: a hash of everything that shapes its bytes —
 * the builder version, the network, its config JSON, the build options and the external-data layout
 * the graph points into (file, offset, dtype of each weight: a re-converted weights file moves them).
 */
import { canonicalJson, sha256Hex } from './hash';

/** Bump on any change to graph/ or nets/ that changes an emitted graph. */
export const GRAPH_BUILDER_VERSION = 1;

export interface GraphKeyParts {
  /** Which network builder, e.g. 'blip2-qformer'. */
  net: string;
  /** The component's config.json as parsed (key order does not matter). */
  config: unknown;
  /** The resolved build options (defaults filled in, so omitted and explicit defaults agree). */
  options: unknown;
  /** The weights' layout as the graph references it; see `weightsLayout` in nets/weight-catalog. */
  weights: unknown;
}

export function graphCacheKey(parts: GraphKeyParts): string {
  return sha256Hex(canonicalJson({ builderVersion: GRAPH_BUILDER_VERSION, ...parts }));
}
