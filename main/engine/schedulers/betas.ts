/**
 * The training noise schedule shared by every scheduler: β_t, ᾱ_t = ∏(1 − β_s) and σ_t = √((1 − ᾱ_t)/ᾱ_t),
 * as float32 arrays computed the way the reference computes them (torch float32 tensors, torch's CPU
 * `linspace` and `cumprod`), so that σ and ᾱ agree with diffusers to the last bit.
 */
import { fmaFloat32 } from '../random/float32-fma';
import { type BetaScheduleConfig, unsupported } from './scheduler-config';

const f32 = Math.fround;

/** Lanes of torch's AVX2 `Vectorized<float>`; its `linspace` kernel fills 2 vectors per iteration. */
const VECTOR_LANES = 8;

/**
 * `torch.linspace(start, end, steps, dtype=torch.float32)` on an x86 CPU (torch 1.13, AVX2 kernel):
 * the first half counts up from `start`, the second half down from `end`; whole vectors of 8 take
 * base + k·step from the vector's first index, and GCC fuses each multiply-add (see float32-fma.ts).
 */
export function torchLinspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const first = f32(start);
  const last = f32(end);
  if (steps === 1) out[0] = first;
  if (steps <= 1) return out;
  const step = f32(f32(last - first) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const scalarAt = (index: number): number => (index < halfway ? fmaFloat32(step, index, first) : fmaFloat32(-step, steps - index - 1, last));
  const fillVector = (index: number): void => {
    const base = scalarAt(index);
    out[index] = base;
    for (let lane = 1; lane < VECTOR_LANES; lane++) out[index + lane] = fmaFloat32(lane, step, base);
  };
  let index = 0;
  for (; index + 2 * VECTOR_LANES <= steps; index += 2 * VECTOR_LANES) {
    fillVector(index);
    fillVector(index + VECTOR_LANES);
  }
  for (; index < steps; index++) out[index] = scalarAt(index);
  return out;
}

/** Glide's cosine schedule (Nichol & Dhariwal 2021, eq. 17): β_t = min(1 − ᾱ(t+1)/ᾱ(t), 0.999), in float64. */
function squaredCosineBetas(count: number): Float32Array {
  const MAX_BETA = 0.999;
  const OFFSET = 0.008; // s in the paper: keeps β near t = 0 from being too small
  const alphaBar = (t: number): number => Math.cos(((t + OFFSET) / (1 + OFFSET)) * (Math.PI / 2)) ** 2;
  return Float32Array.from({ length: count }, (_, i) => Math.min(1 - alphaBar((i + 1) / count) / alphaBar(i / count), MAX_BETA));
}

/** β_1 … β_T from a scheduler config (`trained_betas` wins over the named schedule, as in the reference). */
export function betaSchedule(config: BetaScheduleConfig): Float32Array {
  if (config.trainedBetas) return Float32Array.from(config.trainedBetas);
  const count = config.numTrainTimesteps;
  switch (config.betaSchedule) {
    case 'linear':
      return torchLinspaceFloat32(config.betaStart, config.betaEnd, count);
    case 'scaled_linear': {
      // Latent diffusion's schedule: linear in √β.
      const roots = torchLinspaceFloat32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), count);
      return roots.map((root) => f32(root * root));
    }
    case 'squaredcos_cap_v2':
      return squaredCosineBetas(count);
    default:
      return unsupported('beta schedule', 'beta_schedule', config.betaSchedule);
  }
}

/** ᾱ_t = ∏_{s≤t} (1 − β_s): torch's CPU cumprod multiplies in float64 and stores float32. */
export function alphasCumprodOf(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let product = 1;
  for (let t = 0; t < betas.length; t++) {
    product *= f32(1 - betas[t]!);
    out[t] = product;
  }
  return out;
}

/**
 * Zero terminal SNR (Lin et al. 2023, Algorithm 1): shift and scale √ᾱ so that √ᾱ_T = 0 while √ᾱ_1 is
 * kept, then recover β; float32 throughout, like the reference.
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const roots = alphasCumprodOf(betas).map((alphaBar) => f32(Math.sqrt(alphaBar)));
  const first = roots[0]!;
  const lastRoot = roots[roots.length - 1]!;
  const scale = f32(first / f32(first - lastRoot));
  const alphaBars = roots.map((root) => {
    const rescaled = f32(f32(root - lastRoot) * scale);
    return f32(rescaled * rescaled);
  });
  return alphaBars.map((alphaBar, t) => f32(1 - (t === 0 ? alphaBar : f32(alphaBar / alphaBars[t - 1]!))));
}

/** σ_t = √((1 − ᾱ_t)/ᾱ_t), the noise level in the variance-exploding view (Karras et al. 2022), float32. */
export function sigmasOf(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((alphaBar) => f32(Math.sqrt(f32(f32(1 - alphaBar) / alphaBar))));
}
