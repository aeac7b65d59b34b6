/**
 * The fine-tune's training step as ONE graph (forward and backward, so no activation crosses into JS):
 * caption ids + the subject embedding → the context text encoder (16 query embeddings spliced in at
 * ctx_begin_pos) → the UNet with LoRA on every attention projection → mean((pred − noise)²) → the
 * gradients of the loss with respect to every LoRA tensor and the subject embedding (autodiff.ts).
 *
 * The base weights stay frozen external initializers (memory-mapped, never copied, never written);
 * only the trained tensors and their gradients cross the boundary. Every op has a rule (vjp-rules.ts),
 * fused norms and attention included; fused kernels save memory (see the options). The optimiser runs outside (training/adamw.ts), so several
 * runs of this graph (micro-batches) can accumulate gradients before one update.
 *
 * Shapes: B rows, C latent channels, h×w latents, n caption tokens, Q query tokens, D text width,
 * r the LoRA rank.
 */
import { appendBackward } from '../graph/autodiff';
import type { Value } from '../graph/builder';
import type { AttentionLowering } from '../providers/provider-types';
import { catalogUnion } from './catalog-union';
import { contextClipTextBody } from './clip-text-encoder';
import { declareLoraInputs, LORA_SCALE_INPUT, loraInputNames, type LoraTargetShape } from './lora-layers';
import { buildNetGraph, netCacheKey, type NetGraph } from './net-graph';
import { crossAttentionWidth, resolveUnetOptions, UNET_OUTPUTS, unetBody } from './unet';
import { parseUnetConfig } from './unet-config';
import type { WeightCatalog } from './weight-catalog';

export const FINETUNE_STEP_NET = 'finetune-step';

export const FINETUNE_INPUTS = {
  /** [B, C, h, w] */
  noisyLatents: 'noisy_latents',
  /** [B] float32: each row's training timestep. */
  timesteps: 'timesteps',
  /** [B, C, h, w]: the noise the UNet should predict. */
  noise: 'noise',
  /** [B, n] int64: the caption, unpadded. */
  inputIds: 'input_ids',
  /** [1, Q, D]: broadcast to every row. */
  subjectEmbedding: 'subject_embedding',
  /** [] float32: multiplies every LoRA update (alpha / r while training raw up tensors). */
  loraScale: LORA_SCALE_INPUT,
} as const;

export const FINETUNE_OUTPUTS = {
  /** [] float32 */
  loss: 'loss',
  subjectEmbeddingGradient: 'grad.subject_embedding',
  /** Only with `exposeActivations` (for parity checks). */
  noisePred: UNET_OUTPUTS.noisePred,
  encoderHiddenStates: 'encoder_hidden_states',
} as const;

/** The gradient outputs of one adapter. */
export function loraGradientNames(module: string): { down: string; up: string } {
  const inputs = loraInputNames(module);
  return { down: `grad.${inputs.down}`, up: `grad.${inputs.up}` };
}

export type { LoraTargetShape };

/** Where the combined graph finds each component's weights, relative to its external-data folder. */
export interface FinetuneComponents {
  textEncoder: { config: unknown; catalog: WeightCatalog; folder: string };
  unet: { config: unknown; catalog: WeightCatalog; folder: string };
}

export interface FinetuneStepOptions {
  /** Rows per run (a micro-batch). */
  batch: number;
  latentHeight: number;
  latentWidth: number;
  /** Caption ids per row. */
  captionTokens: number;
  queryTokenCount: number;
  ctxBeginPos: number;
  targets: readonly LoraTargetShape[];
  rank: number;
  /** Also output the UNet's prediction and the text encoder's states (costs their copies). */
  exposeActivations?: boolean;
  /**
   * One-kernel norms and activations in the forward pass (their rules recompute the statistics, so
   * only the input is kept for the backward pass); default false, the primitive ops.
   */
  fused?: boolean;
  /**
   * 'fused': the forward pass runs com.microsoft MultiHeadAttention and its rule recomputes the
   * probabilities in the backward pass, so no [B, H, S, L] tensor lives from the forward pass to the
   * backward one (5 × 537 MB at 512² on SD-1.5); 'primitive' (default) keeps them. Take the provider's
   * route (kernel-routing.ts): WebGPU's fused kernel is wrong.
   */
  attention?: AttentionLowering;
}

/** The text encoder's tensors carry this prefix in the combined catalog (the UNet keeps its names). */
const TEXT_ENCODER_NAME_PREFIX = 'text_encoder.';

export function buildFinetuneStepGraph(components: FinetuneComponents, options: FinetuneStepOptions): NetGraph {
  const unet = parseUnetConfig(components.unet.config);
  const resolved = resolveFinetuneOptions(components, options);
  return buildNetGraph({
    net: FINETUNE_STEP_NET,
    component: 'text_encoder + unet',
    config: { textEncoder: components.textEncoder.config, unet: components.unet.config },
    options: resolved,
    catalog: finetuneCatalog(components),
    body: (context) => {
      const { b } = context;
      const { batch, latentHeight, latentWidth } = resolved;
      const width = crossAttentionWidth(unet);
      const latentShape = [batch, unet.inChannels, latentHeight, latentWidth];
      const noisyLatents = b.input(FINETUNE_INPUTS.noisyLatents, 'float32', latentShape);
      const timesteps = b.input(FINETUNE_INPUTS.timesteps, 'float32', [batch]);
      const noise = b.input(FINETUNE_INPUTS.noise, 'float32', latentShape);
      const inputIds = b.input(FINETUNE_INPUTS.inputIds, 'int64', [batch, resolved.captionTokens]);
      const embedding = b.input(FINETUNE_INPUTS.subjectEmbedding, 'float32', [1, resolved.queryTokenCount, width]);
      const lora = declareLoraInputs(b, resolved.targets, resolved.rank, { merged: false });

      const ctxEmbeddings = b.expand(embedding, [batch, resolved.queryTokenCount, width]);
      const states = b.scope('text_encoder', () => contextClipTextBody(context, components.textEncoder.config, { inputIds, ctxEmbeddings }, resolved.ctxBeginPos, TEXT_ENCODER_NAME_PREFIX));
      const prediction = b.scope('unet', () => unetBody(context, unet, { sample: noisyLatents, timestep: timesteps, encoderHiddenStates: states, lora }));
      const error = b.sub(prediction, noise);
      const loss = b.reduceMean(b.mul(error, error), latentShape.map((_, i) => i), false);

      const trained: Value[] = [embedding, ...lora.inputs.flatMap((input) => [input.down, input.up])];
      const gradients = appendBackward(b, loss, trained);
      const names = [FINETUNE_OUTPUTS.subjectEmbeddingGradient, ...lora.inputs.flatMap((input) => Object.values(loraGradientNames(input.module)))];
      return [
        { name: FINETUNE_OUTPUTS.loss, value: loss },
        ...gradients.map((value, i) => ({ name: names[i] as string, value })),
        ...(resolved.exposeActivations
          ? [
              { name: FINETUNE_OUTPUTS.noisePred, value: prediction },
              { name: FINETUNE_OUTPUTS.encoderHiddenStates, value: states },
            ]
          : []),
      ];
    },
  });
}

export function finetuneStepGraphKey(components: FinetuneComponents, options: FinetuneStepOptions): string {
  return netCacheKey(FINETUNE_STEP_NET, { textEncoder: components.textEncoder.config, unet: components.unet.config }, resolveFinetuneOptions(components, options), finetuneCatalog(components));
}

function resolveFinetuneOptions(components: FinetuneComponents, options: FinetuneStepOptions) {
  const unet = parseUnetConfig(components.unet.config);
  // Validates batch and latent size as the UNet graphs do (the text length is the caption's + Q).
  resolveUnetOptions(unet, { batch: options.batch, height: options.latentHeight, width: options.latentWidth, textLength: options.captionTokens + options.queryTokenCount });
  for (const name of ['captionTokens', 'queryTokenCount', 'rank'] as const) {
    const value = options[name];
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`fine-tune step graph: ${name} must be a positive integer (got ${value})`);
  }
  if (options.targets.length === 0) throw new Error('fine-tune step graph: no LoRA targets (the UNet has no attention projections?)');
  return {
    batch: options.batch,
    latentHeight: options.latentHeight,
    latentWidth: options.latentWidth,
    captionTokens: options.captionTokens,
    queryTokenCount: options.queryTokenCount,
    ctxBeginPos: options.ctxBeginPos,
    rank: options.rank,
    targets: options.targets.map((t) => ({ module: t.module, inFeatures: t.inFeatures, outFeatures: t.outFeatures })),
    exposeActivations: options.exposeActivations ?? false,
    fused: options.fused ?? false,
    attention: options.attention ?? ('primitive' as const),
  };
}

function finetuneCatalog(components: FinetuneComponents): WeightCatalog {
  return catalogUnion([
    { catalog: components.unet.catalog, namePrefix: '', folder: components.unet.folder },
    { catalog: components.textEncoder.catalog, namePrefix: TEXT_ENCODER_NAME_PREFIX, folder: components.textEncoder.folder },
  ]);
}
