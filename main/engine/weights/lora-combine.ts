/**
 * Several LoRAs applied at once, each at its own strength, as one LoRA: per module
 *   Σᵢ sᵢ·(αᵢ/rᵢ)·upᵢ·downᵢ = [s₁(α₁/r₁)up₁ … sₙ(αₙ/rₙ)upₙ] · [down₁; …; downₙ],
 * i.e. the ranks concatenated, each up scaled by its strength (and alpha/r) and the result applied at
 * scale 1 with alpha = rank. A module that one LoRA lacks gets zeros in that LoRA's rows. One LoRA alone
 * is returned as it is (with its own scale), so a single adapter runs exactly as `generate --lora` does.
 */
import type { LoraWeights } from './lora-weights';

export interface ScaledLora {
  weights: LoraWeights;
  scale: number;
}

export function combineLoras(loras: readonly ScaledLora[]): ScaledLora | null {
  const active = loras.filter((l) => l.scale !== 0);
  if (active.length === 0) return null;
  if (active.length === 1) return active[0] as ScaledLora;
  const rank = active.reduce((sum, l) => sum + l.weights.rank, 0);
  const shapes = new Map<string, { inFeatures: number; outFeatures: number }>();
  for (const { weights } of active) {
    for (const [module, { down, up }] of weights.modules) {
      const shape = { inFeatures: down.length / weights.rank, outFeatures: up.length / weights.rank };
      const known = shapes.get(module);
      if (known && (known.inFeatures !== shape.inFeatures || known.outFeatures !== shape.outFeatures)) {
        throw new Error(`the LoRAs disagree on the shape of ${module}: [${known.outFeatures}, ${known.inFeatures}] and [${shape.outFeatures}, ${shape.inFeatures}]`);
      }
      shapes.set(module, shape);
    }
  }
  const modules = new Map<string, { down: Float32Array; up: Float32Array }>();
  for (const [module, { inFeatures, outFeatures }] of shapes) {
    const down = new Float32Array(rank * inFeatures);
    const up = new Float32Array(outFeatures * rank);
    let offset = 0;
    for (const { weights, scale } of active) {
      const r = weights.rank;
      const part = weights.modules.get(module);
      if (part) {
        down.set(part.down, offset * inFeatures);
        const factor = (scale * weights.alpha) / r;
        for (let o = 0; o < outFeatures; o++) {
          for (let k = 0; k < r; k++) up[o * rank + offset + k] = Math.fround(factor * (part.up[o * r + k] as number));
        }
      }
      offset += r;
    }
    modules.set(module, { down, up });
  }
  return { weights: { rank, alpha: rank, modules }, scale: 1 };
}
