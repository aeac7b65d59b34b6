/**
 * Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based Generative Models") noise levels,
 * and the map from a noise level back to a (fractional) training timestep, as diffusers v0.25.1 does
 * both (`_convert_to_karras`, `_sigma_to_t`), in float64.
 */
import { numpyLinspace } from './numpy-compat';

/** ρ = 7, the paper's choice: steps crowd towards low noise. */
const RHO = 7;

/** Eq. 5: σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, from σ_max down to σ_min. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, count: number): number[] {
  const minInvRho = sigmaMin ** (1 / RHO);
  const maxInvRho = sigmaMax ** (1 / RHO);
  return numpyLinspace(0, 1, count).map((ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** RHO);
}

/**
 * The timestep whose σ is `sigma`: log σ is interpolated linearly between the two neighbouring training
 * timesteps. `logSigmas` ascends with t (float32 log σ_t of the training schedule).
 */
export function sigmaToTimestep(sigma: number, logSigmas: ArrayLike<number>): number {
  const MIN_SIGMA = 1e-10; // keeps log finite at σ = 0
  const logSigma = Math.log(Math.max(sigma, MIN_SIGMA));
  // The reference takes argmax of cumsum(log σ − log σ_t ≥ 0): the last t with log σ_t ≤ log σ (0 if none),
  // clipped so that t + 1 exists.
  let low = 0;
  for (let t = 0; t < logSigmas.length; t++) if (logSigma - logSigmas[t]! >= 0) low = t;
  low = Math.min(low, logSigmas.length - 2);
  const lowLog = logSigmas[low]!;
  const highLog = logSigmas[low + 1]!;
  const weight = Math.min(Math.max((lowLog - logSigma) / (lowLog - highLog), 0), 1);
  return (1 - weight) * low + weight * (low + 1);
}
