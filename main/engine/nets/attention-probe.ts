/**
 * Which cross-attention layers of a UNet2DConditionModel a graph exposes, and where they sit: the
 * layout a "propose mask from word" run needs (LAVIS's AttentionStore + LocalBlend, pipelines/attention-mask.ts).
 *
 * Layers are named by diffusers' module path of the attention, e.g.
 * `down_blocks.2.attentions.0.transformer_blocks.0.attn2`, and listed in the order the forward runs
 * them (down blocks, mid block, up blocks): that is also the order of the probe outputs.
 *
 * 'local-blend' selects what LAVIS's LocalBlend reads, generalised from its hard-coded SD-1.5 / 512×512
 * case (`down_cross[2:4] + up_cross[:3]`, the five 16×16 layers): the cross-attention layers of the
 * down block at the coarsest down-path level that has cross-attention, and of the up block at that
 * same level; never the mid block. For SD-1.5 at a 64×64 latent that is exactly down_blocks.2 (2
 * layers) + up_blocks.1 (3 layers).
 */
import type { AttentionProbeRecorder } from './unet-blocks';
import type { AttentionSpec, UnetConfig } from './unet-config';
import type { Value } from '../graph/builder';

/** 'local-blend' (LAVIS's layers), 'cross' (every cross-attention layer), or module paths. */
export type AttentionProbeLayers = 'local-blend' | 'cross' | readonly string[];

export interface AttentionProbeOptions {
  layers: AttentionProbeLayers;
}

export interface CrossAttentionLayer {
  /** diffusers module path of the attention (`….attn2`). */
  name: string;
  place: 'down' | 'mid' | 'up';
  /** Index of the down/up block (0 for mid). */
  block: number;
  heads: number;
  /** The query grid: the feature map the layer attends from. */
  height: number;
  width: number;
}

/** The name of the k-th probe output: attention_probe_00, _01, … */
export function attentionProbeOutputName(index: number): string {
  return `attention_probe_${String(index).padStart(2, '0')}`;
}

/** Every cross-attention layer of the UNet for a latent of height × width, in forward order. */
export function crossAttentionLayers(config: UnetConfig, height: number, width: number): CrossAttentionLayer[] {
  const grids: [number, number][] = [];
  let [h, w] = [height, width];
  for (const spec of config.down) {
    grids.push([h, w]);
    if (spec.addDownsample) [h, w] = [downsampled(h, config.downsamplePadding), downsampled(w, config.downsamplePadding)];
  }
  const layers: CrossAttentionLayer[] = [];
  const add = (prefix: string, place: CrossAttentionLayer['place'], block: number, attention: AttentionSpec, layerCount: number, grid: [number, number]) => {
    for (let j = 0; j < layerCount; j++) {
      const depth = attention.transformerLayers[j] as number;
      for (let k = 0; k < depth; k++) layers.push({ name: `${prefix}.attentions.${j}.transformer_blocks.${k}.attn2`, place, block, heads: attention.heads, height: grid[0], width: grid[1] });
    }
  };
  config.down.forEach((spec, i) => {
    if (spec.attention) add(`down_blocks.${i}`, 'down', i, spec.attention, spec.layers, grids[i] as [number, number]);
  });
  if (config.mid) add('mid_block', 'mid', 0, config.mid.attention, config.mid.attention.transformerLayers.length, [h, w]);
  config.up.forEach((spec, u) => {
    // Up block u consumes the skips of down block (n − 1 − u): it works at that block's resolution.
    const grid = grids[config.down.length - 1 - u];
    if (spec.attention && grid) add(`up_blocks.${u}`, 'up', u, spec.attention, spec.layers, grid);
  });
  return layers;
}

/** The layers `selection` names, in forward order; an unknown name is an error listing the valid ones. */
export function selectAttentionLayers(config: UnetConfig, height: number, width: number, selection: AttentionProbeLayers): CrossAttentionLayer[] {
  const all = crossAttentionLayers(config, height, width);
  if (all.length === 0) throw new Error('UNet attention probe: the config has no cross-attention layer');
  if (selection === 'cross') return all;
  if (selection === 'local-blend') {
    const level = config.down.reduce((found, spec, i) => (spec.attention ? i : found), -1);
    if (level < 0) throw new Error('UNet attention probe: no down block has cross-attention, so LocalBlend has no layers');
    const upBlock = config.down.length - 1 - level;
    return all.filter((layer) => (layer.place === 'down' && layer.block === level) || (layer.place === 'up' && layer.block === upBlock));
  }
  if (selection.length === 0) throw new Error('UNet attention probe: no layers named');
  const known = new Set(all.map((layer) => layer.name));
  const unknown = selection.filter((name) => !known.has(name));
  if (unknown.length > 0) throw new Error(`UNet attention probe: no cross-attention layer ${unknown.join(', ')}; the UNet has ${[...known].join(', ')}`);
  const wanted = new Set(selection);
  return all.filter((layer) => wanted.has(layer.name));
}

/** Collects the probabilities of the selected layers while the UNet body builds (unet-blocks.ts). */
export class AttentionProbeCollector implements AttentionProbeRecorder {
  private readonly wanted: Set<string>;
  private readonly recorded = new Map<string, Value>();

  constructor(
    readonly layers: readonly CrossAttentionLayer[],
    private readonly prefix = '',
  ) {
    this.wanted = new Set(layers.map((layer) => this.fullName(layer.name)));
  }

  wants(name: string): boolean {
    return this.wanted.has(name);
  }

  record(name: string, probabilities: Value): void {
    if (this.recorded.has(name)) throw new Error(`UNet attention probe: layer ${name} recorded twice`);
    this.recorded.set(name, probabilities);
  }

  /** The graph outputs, in layer order; every selected layer must have been built. */
  outputs(): { name: string; value: Value }[] {
    return this.layers.map((layer, k) => {
      const value = this.recorded.get(this.fullName(layer.name));
      if (!value) throw new Error(`UNet attention probe: layer ${layer.name} was not built`);
      return { name: attentionProbeOutputName(k), value };
    });
  }

  private fullName(name: string): string {
    return this.prefix === '' ? name : `${this.prefix}.${name}`;
  }
}

function downsampled(size: number, padding: number): number {
  // Downsample2D: conv k3 s2 with padding p, or diffusers' (0, 1) pad when p is 0.
  const padded = padding === 0 ? size + 1 : size + 2 * padding;
  return Math.floor((padded - 3) / 2) + 1;
}
