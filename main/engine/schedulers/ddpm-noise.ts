/**
 * The DDPM forward process q(x_t | x_0) = N(√ᾱ_t·x_0, (1 − ᾱ_t)·I) (Ho et al. 2020, eq. 4), sampled
 * with given noise as diffusers' `DDPMScheduler.add_noise` does (float32):
 *
 *   x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε
 *
 * Fine-tuning noises latents with it (the UNet learns to predict ε); editing and img2img start from it.
 */

const f32 = Math.fround;

/**
 * `original` and `noise` hold a batch of equal-sized items, flattened. `timesteps` is one training
 * timestep for the whole batch, or one per item (its length is then the batch size).
 */
export function addNoise(original: Float32Array, noise: Float32Array, timesteps: number | readonly number[], alphasCumprod: Float32Array): Float32Array {
  if (noise.length !== original.length) throw new RangeError(`addNoise: ${noise.length} noise values for ${original.length} sample values`);
  const perItem = typeof timesteps === 'number' ? [timesteps] : timesteps;
  if (perItem.length === 0 || original.length % perItem.length !== 0) {
    throw new RangeError(`addNoise: ${perItem.length} timesteps do not divide a batch of ${original.length} values`);
  }
  const itemSize = original.length / perItem.length;
  const out = new Float32Array(original.length);
  perItem.forEach((timestep, item) => {
    if (!Number.isInteger(timestep) || timestep < 0 || timestep >= alphasCumprod.length) {
      throw new RangeError(`addNoise: timestep ${timestep} is not an integer in [0, ${alphasCumprod.length})`);
    }
    const alphaBar = alphasCumprod[timestep]!;
    const signalScale = f32(Math.sqrt(alphaBar));
    const noiseScale = f32(Math.sqrt(f32(1 - alphaBar)));
    for (let i = item * itemSize; i < (item + 1) * itemSize; i++) out[i] = f32(f32(signalScale * original[i]!) + f32(noiseScale * noise[i]!));
  });
  return out;
}
