/**
 * "Propose mask from word" (issue 14): the region of a prompt word, from the UNet's cross-attention,
 * by LAVIS's rules (AttentionStore + LocalBlend; local-blend.ts has them, nets/attention-probe.ts the
 * layers). LAVIS's edit() takes the mask from the SOURCE branch: the source prompt
 * `a {src_subject} {prompt}` through the plain text encoder (no query tokens, 77 tokens), the
 * unguided conditional prediction (guidance 1), DDIM (SD-1.5's config) from the DDIM-inverted latents
 * of the photo; the cross-attention maps of the word's tokens in the LocalBlend layers are summed
 * over the steps, averaged over heads × layers, max-pooled 3×3, resized (nearest) to the latent,
 * divided by their max and thresholded (> 0.3). LocalBlend re-evaluates the mask after every step
 * from the running sum; `stepMasks` returns those, the result is the mask after the last step.
 *
 * Beyond LAVIS: the map and mask are also given at image size (nearest ×8 for SD), the mask as 0/255
 * for the brush canvas; another conditioning (e.g. the BLIP-Diffusion target prompt with the subject's
 * query tokens spliced in) can be passed with its splice position, which shifts the word's indices.
 */
import { parseClipTextConfig } from '../nets/configs';
import { buildClipTextGraph, CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS, clipTextGraphKey } from '../nets/clip-text-encoder';
import { attentionProbeOutputName, type AttentionProbeLayers } from '../nets/attention-probe';
import { buildUnetGraph, UNET_INPUTS, UNET_OUTPUTS, unetAttentionProbeLayers, unetGraphKey } from '../nets/unet';
import { torchRandn } from '../random/torch-randn';
import { DdimScheduler } from '../schedulers/ddim';
import type { Scheduler } from '../schedulers/scheduler';
import type { SchedulerConfigFile } from '../schedulers/scheduler-config';
import { ClipTokenizer } from '../tokenizers/clip-bpe';
import { componentCatalog, openStage, runNetOnce, throwIfAborted, type EngineContext } from './engine-context';
import { generationGeometry } from './generate';
import { AttentionAccumulator, localBlend, LOCAL_BLEND_THRESHOLD, resizeNearest, wordTokenIndices, type SplicedTokens } from './local-blend';
import { requireComponent, type ModelFolder } from './model-folder';
import { readClipTokenizerFiles } from './subject-embedding';
import type { TextEmbedding } from './text-embeddings';

/** LAVIS's ddim_scheduler: DDIMScheduler.from_config("runwayml/stable-diffusion-v1-5", subfolder="scheduler"). */
export const LAVIS_EDIT_DDIM: SchedulerConfigFile = Object.freeze({ betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'scaled_linear', clipSample: false, setAlphaToOne: false, stepsOffset: 1 });
/** edit()'s num_inference_steps. */
export const LAVIS_EDIT_STEPS = 50;

export interface ProposeMaskRequest {
  model: ModelFolder;
  /** The prompt the word is looked up in, as encoded (LAVIS: the source prompt `a {src_subject} {prompt}`). */
  prompt: string;
  /** A word of `prompt`, exactly as it appears between spaces. */
  word: string;
  /** Image size in pixels (default: the UNet's sample size × its latent factor). */
  height?: number;
  width?: number;
  /** Start latents [1, C, h, w] (LAVIS: the DDIM-inverted latents of the photo), or a seed for torch.randn (default 0). */
  latents?: Float32Array;
  seed?: number;
  /** The conditioning [1, L, D]; default: the plain text encoder on `prompt` (padded/truncated to L), as LAVIS's source branch. */
  textEmbedding?: TextEmbedding;
  /** Where query tokens were spliced into `textEmbedding` (BLIP-Diffusion: { begin: ctx_begin_pos, count: 16 }). */
  splice?: SplicedTokens;
  /** Denoising steps (default 50, DDIM with SD-1.5's config as LAVIS's edit()). */
  steps?: number;
  /** LocalBlend's threshold on the normalised map (default 0.3). */
  threshold?: number;
  /** UNet layers (default 'local-blend': LAVIS's). */
  layers?: AttentionProbeLayers;
  /** Also return LocalBlend's mask after every step (latent size, 0/1). */
  stepMasks?: boolean;
}

export interface ProposedMask {
  /** The conditioning positions of the word's tokens. */
  tokenIndices: number[];
  latentHeight: number;
  latentWidth: number;
  height: number;
  width: number;
  /** The normalised map (max 1) at latent size and at image size (nearest). */
  map: Float32Array;
  imageMap: Float32Array;
  /** map > threshold at latent size (0/1). */
  latentMask: Uint8Array;
  /** The mask at image size, 0/255. */
  mask: Uint8Array;
  /** With `stepMasks`: LocalBlend's mask after each step (latent size, 0/1). */
  stepMasks?: Uint8Array[];
  /** The latents after the last step. */
  finalLatents: Float32Array;
}

export async function proposeMaskFromWord(context: EngineContext, request: ProposeMaskRequest): Promise<ProposedMask> {
  const { model } = request;
  const geometry = generationGeometry(model, request.height, request.width);
  const { latentChannels: channels, latentHeight, latentWidth } = geometry;
  const textConfig = parseClipTextConfig(requireComponent(model, 'text_encoder').config);
  const clip = ClipTokenizer.fromFiles(readClipTokenizerFiles(model));
  const embedding = request.textEmbedding ?? (await encodePlainPrompt(context, model, clip, request.prompt, textConfig.maxPositionEmbeddings));
  const [, textLength] = embedding.dims;
  const tokenIndices = wordTokenIndices(clip, request.prompt, request.word, { length: textLength, ...(request.splice ? { splice: request.splice } : {}) });
  const steps = request.steps ?? LAVIS_EDIT_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer (got ${steps})`);
  const threshold = request.threshold ?? LOCAL_BLEND_THRESHOLD;
  if (!(threshold >= 0 && threshold < 1)) throw new Error(`threshold must be in [0, 1) (got ${threshold})`);

  const count = channels * latentHeight * latentWidth;
  let latents: Float32Array;
  if (request.latents) {
    if (request.latents.length !== count) throw new Error(`given latents have ${request.latents.length} values; [1, ${channels}, ${latentHeight}, ${latentWidth}] needs ${count}`);
    latents = Float32Array.from(request.latents);
  } else {
    latents = torchRandn(request.seed ?? 0, [1, channels, latentHeight, latentWidth]);
  }

  const unet = requireComponent(model, 'unet');
  const weights = await componentCatalog(context, unet);
  const graphOptions = { height: latentHeight, width: latentWidth, textLength, attentionProbe: { layers: request.layers ?? 'local-blend' } };
  const layers = unetAttentionProbeLayers(unet.config, graphOptions);
  const session = await openStage(context, 'The UNet (attention probe)', weights.externalDataFolder, {
    forKernels: (kernels) => ({
      cacheKey: unetGraphKey(unet.config, weights.catalog, { ...graphOptions, ...kernels }),
      build: () => buildUnetGraph(unet.config, weights.catalog, { ...graphOptions, ...kernels }),
    }),
    optimization: 'extended',
  });
  const scheduler: Scheduler = new DdimScheduler(LAVIS_EDIT_DDIM);
  scheduler.setTimesteps(steps);
  const store = new AttentionAccumulator();
  const stepMasks: Uint8Array[] = [];
  try {
    for (const t of scheduler.timesteps) {
      throwIfAborted(context.signal);
      const outputs = await session.run({
        [UNET_INPUTS.sample]: { type: 'float32', dims: [1, channels, latentHeight, latentWidth], data: scheduler.scaleModelInput(latents, t) },
        [UNET_INPUTS.timestep]: { type: 'float32', dims: [1], data: Float32Array.of(t) },
        [UNET_INPUTS.encoderHiddenStates]: { type: 'float32', dims: embedding.dims, data: embedding.data },
      });
      store.add(
        layers.map((layer, k) => {
          const probe = outputs[attentionProbeOutputName(k)];
          if (!probe) throw new Error(`the UNet probe graph returned no ${attentionProbeOutputName(k)}`);
          return { heads: layer.heads, height: layer.height, width: layer.width, keys: textLength, probabilities: probe.data as Float32Array };
        }),
      );
      if (request.stepMasks) stepMasks.push(localBlend(store.layers, tokenIndices, latentHeight, latentWidth, { threshold }).mask);
      const noise = outputs[UNET_OUTPUTS.noisePred];
      if (!noise) throw new Error('the UNet probe graph returned no noise_pred');
      latents = scheduler.step(noise.data as Float32Array, t, latents).prevSample;
    }
  } finally {
    await session.release();
  }

  const blend = localBlend(store.layers, tokenIndices, latentHeight, latentWidth, { threshold });
  const imageMap = resizeNearest(blend.normalized, latentHeight, latentWidth, geometry.height, geometry.width);
  return {
    tokenIndices,
    latentHeight,
    latentWidth,
    height: geometry.height,
    width: geometry.width,
    map: Float32Array.from(blend.normalized),
    imageMap: Float32Array.from(imageMap),
    latentMask: blend.mask,
    mask: Uint8Array.from(imageMap, (v) => (v > threshold ? 255 : 0)),
    ...(request.stepMasks ? { stepMasks } : {}),
    finalLatents: latents,
  };
}

/** LAVIS's source-prompt conditioning: `_tokenize_text(with_query=False)` (padded/truncated to L) through the plain text encoder. */
export async function encodePlainPrompt(context: EngineContext, model: ModelFolder, clip: ClipTokenizer, prompt: string, length: number): Promise<TextEmbedding> {
  const textEncoder = requireComponent(model, 'text_encoder');
  const ids = clip.encode(prompt, { maxLength: length, padding: 'max_length', truncation: true });
  const bound = await componentCatalog(context, textEncoder);
  const outputs = await runNetOnce(
    context,
    'The text encoder (source prompt)',
    bound,
    {
      forKernels: (kernels) => ({
        cacheKey: clipTextGraphKey(textEncoder.config, bound.catalog, kernels),
        build: () => buildClipTextGraph(textEncoder.config, bound.catalog, kernels),
      }),
    },
    { [CLIP_TEXT_INPUTS.inputIds]: { type: 'int64', dims: [1, ids.length], data: BigInt64Array.from(ids, BigInt) } },
  );
  const state = outputs[CLIP_TEXT_OUTPUTS.lastHiddenState];
  if (!state) throw new Error('the text encoder graph returned no last_hidden_state');
  return { dims: state.dims as [1, number, number], data: state.data as Float32Array };
}
