/**
 * AdamW exactly as torch 1.13's `torch.optim.AdamW` (single-tensor path) computes it in float32:
 *   p ← p·(1 − lr·wd)
 *   m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
 *   p ← p − (lr / (1 − β₁ᵏ)) · m / (√v / √(1 − β₂ᵏ) + ε)
 * with the bias corrections computed in double (Python floats) and every tensor operation rounded to
 * float32. Parameter groups carry their own learning rate.
 *
 * It runs in TypeScript rather than inside the training graph: gradients are accumulated over
 * micro-batches before one update, and the trained tensors (LoRA, the subject embedding) are small.
 */

export interface AdamWHyperparameters {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

/** torch's AdamW defaults, except weight decay, which the fine-tune sets explicitly. */
export const ADAMW_DEFAULTS: AdamWHyperparameters = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 };

/** One trained tensor and its optimiser state. */
export interface AdamWSlot {
  readonly param: Float32Array;
  readonly expAvg: Float32Array;
  readonly expAvgSq: Float32Array;
}

export interface AdamWGroup {
  lr: number;
  slots: readonly AdamWSlot[];
}

export function adamWSlot(param: Float32Array): AdamWSlot {
  return { param, expAvg: new Float32Array(param.length), expAvgSq: new Float32Array(param.length) };
}

const f = Math.fround;

/**
 * Applies update number `step` (1-based) in place; `gradients[g][s]` is the gradient of group g's slot s.
 */
export function adamWStep(groups: readonly AdamWGroup[], gradients: readonly (readonly Float32Array[])[], step: number, hyper: AdamWHyperparameters = ADAMW_DEFAULTS): void {
  if (!Number.isInteger(step) || step < 1) throw new Error(`AdamW step must be a positive integer, got ${step}`);
  const [beta1, beta2] = hyper.betas;
  const correction1 = 1 - beta1 ** step;
  const correction2Sqrt = Math.sqrt(1 - beta2 ** step);
  const b1 = f(beta1);
  const b2 = f(beta2);
  const oneMinusB1 = f(1 - beta1);
  const oneMinusB2 = f(1 - beta2);
  const eps = f(hyper.eps);
  groups.forEach((group, g) => {
    const decay = f(1 - group.lr * hyper.weightDecay);
    const stepSize = f(group.lr / correction1);
    const c2 = f(correction2Sqrt);
    group.slots.forEach((slot, s) => {
      const grad = gradients[g]?.[s];
      if (!grad || grad.length !== slot.param.length) throw new Error(`AdamW: group ${g} slot ${s} has ${grad?.length ?? 'no'} gradient values for ${slot.param.length} parameters`);
      const { param, expAvg, expAvgSq } = slot;
      for (let i = 0; i < param.length; i++) {
        const gi = grad[i] as number;
        param[i] = f((param[i] as number) * decay);
        expAvg[i] = f(f((expAvg[i] as number) * b1) + f(gi * oneMinusB1));
        expAvgSq[i] = f(f((expAvgSq[i] as number) * b2) + f(f(gi * gi) * oneMinusB2));
        const denom = f(f(f(Math.sqrt(expAvgSq[i] as number)) / c2) + eps);
        param[i] = f((param[i] as number) - f(stepSize * f((expAvg[i] as number) / denom)));
      }
    });
  });
}
