/**
 * The random numbers of one fine-tune step, drawn from the run's ONE generator in the reference's order
 * (fine-tune kit README, step 3): the VAE's posterior noise ε, the diffusion noise, then one training
 * timestep per batch item. Keeping this order is what makes a seed reproduce a whole fine-tune:
 *
 *   eps = randn(latent shape), noise = randn(latent shape), t = randint(0, num_train_timesteps, (B,))
 *
 * Pure: no Node, no I/O.
 */
import type { TorchGenerator } from '../random/torch-randn';

export interface FinetuneDraws {
  /** ε of `latent_dist.sample()`, [B, L, h, w] flattened. */
  eps: Float32Array;
  /** The noise the UNet learns to predict, [B, L, h, w] flattened. */
  noise: Float32Array;
  /** One training timestep per batch item, in [0, numTrainTimesteps). */
  timesteps: number[];
}

/** Draws step k's numbers, continuing `generator` (seeded once per run with the user's seed). */
export function drawFinetuneStep(generator: TorchGenerator, latentShape: readonly number[], batch: number, numTrainTimesteps: number): FinetuneDraws {
  if (latentShape[0] !== batch) throw new RangeError(`drawFinetuneStep: the latent shape [${latentShape.join(', ')}] does not start with the batch size ${batch}`);
  if (!Number.isSafeInteger(numTrainTimesteps) || numTrainTimesteps < 1) throw new RangeError(`drawFinetuneStep: numTrainTimesteps must be a positive integer, got ${numTrainTimesteps}`);
  const eps = generator.randn(latentShape);
  const noise = generator.randn(latentShape);
  // The timesteps are below num_train_timesteps, so they are exact as numbers.
  const timesteps = Array.from(generator.randint(0, numTrainTimesteps, [batch]), Number);
  return { eps, noise, timesteps };
}
