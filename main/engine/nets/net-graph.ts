/**
 * What every network builder returns, and the shared steps around a build: a builder plus a weight
 * binder in, a checked ONNX model with its cache key out.
 */
import { GraphBuilder, type ElementType, type Value } from '../graph/builder';
import { graphCacheKey } from '../graph/cache-key';
import { countFlops } from '../graph/flops';
import type { OnnxModel } from '../graph/onnx-writer';
import type { Shape } from '../graph/shapes';
import { WeightBinder } from './weight-binder';
import type { AttentionLowering } from '../providers/provider-types';
import { weightsLayout, type TensorRequest, type WeightCatalog } from './weight-catalog';

export interface GraphPort {
  name: string;
  type: ElementType;
  shape: Shape;
}

export interface NetGraph {
  model: OnnxModel;
  /** Stable across runs: hash of (builder version, net, config JSON, resolved options, weights layout). */
  cacheKey: string;
  inputs: readonly GraphPort[];
  outputs: readonly GraphPort[];
  /** Every tensor the net requested from the catalog, in request order. */
  parameters: readonly TensorRequest[];
  /** Multiply-add FLOPs of one run (graph/flops.ts), for throughput figures. */
  flops: number;
}

/** What a net's body works with while it builds. */
export interface NetContext {
  b: GraphBuilder;
  weights: WeightBinder;
  /** Fused ORT kernels (inference) or the primitive op set (differentiable). */
  fused: boolean;
  /** Attention as the fused kernel: only when `fused`, and not where the provider's kernel is wrong (kernel-routing.ts). */
  fusedAttention: boolean;
}

/** The kernel options every net takes. */
export interface NetKernelOptions {
  fused?: boolean;
  attention?: AttentionLowering;
}

/** Defaults: fused kernels, fused attention; the primitive op set has primitive attention too. */
export function resolveKernels(options: NetKernelOptions): { fused: boolean; attention: AttentionLowering } {
  const fused = options.fused ?? true;
  return { fused, attention: fused ? (options.attention ?? 'fused') : 'primitive' };
}

export interface NetBuildSpec {
  /** Network id for the cache key and the graph name, e.g. 'blip2-qformer'. */
  net: string;
  /** Weights component named in errors, e.g. 'qformer'. */
  component: string;
  config: unknown;
  options: { fused: boolean; attention: AttentionLowering };
  catalog: WeightCatalog;
  /** Builds the body and names the outputs (in order). */
  body: (context: NetContext) => readonly { name: string; value: Value }[];
}

/** Runs a net's body, checks its weights (one error listing every problem) and lowers it to ONNX. */
export function buildNetGraph(spec: NetBuildSpec): NetGraph {
  const b = new GraphBuilder();
  const weights = new WeightBinder(b, spec.catalog, spec.component);
  const outputs = spec.body({ b, weights, fused: spec.options.fused, fusedAttention: spec.options.fused && spec.options.attention === 'fused' });
  weights.finish();
  const model = b.toModel({ name: spec.net, outputs });
  return {
    model,
    cacheKey: netCacheKey(spec.net, spec.config, spec.options, spec.catalog),
    inputs: b.inputs.map(port),
    outputs: outputs.map((o) => ({ ...port(o.value), name: o.name })),
    parameters: weights.requests,
    flops: countFlops(b.nodes),
  };
}

export function netCacheKey(net: string, config: unknown, options: unknown, catalog: WeightCatalog): string {
  return graphCacheKey({ net, config, options, weights: weightsLayout(catalog) });
}

function port(value: Value): GraphPort {
  return { name: value.name, type: value.type, shape: value.shape };
}
