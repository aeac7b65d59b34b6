/**
 * Writes a complete tiny BLIP-Diffusion model folder (diffusers layout, random weights) in a
 * configuration unlike the reference kit's: other block counts, layers per block, head counts, widths,
 * query-token count, text length, patch and image sizes, linear projections. Tests and the CLI use it
 * to prove that the engine follows the configs rather than the kit's numbers. Which tensors to write
 * comes from the nets' own parameter requests (component-checks.ts); the test of that list against
 * independent key lists lives in the net tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { impliedComponentParameters } from '../engine/nets/component-checks';
import { writeSafetensorsFile, type TensorData } from '../engine/weights/safetensors-writer';
import { torchRandn } from '../engine/random/torch-randn';

/** ctx_begin_pos, as BLIP-Diffusion's model_index.json. */
const CTX_BEGIN_POS = 2;
const QUERY_TOKENS = 6;
const TEXT_WIDTH = 24;
const TEXT_POSITIONS = 50;

/** A byte-level CLIP vocabulary without merges: every word splits into characters (valid, tiny). */
function clipTokenizerFiles(): { vocab: Record<string, number>; merges: string } {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const byteToChar = new Map<number, string>(printable.map((b) => [b, String.fromCodePoint(b)]));
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!byteToChar.has(b)) byteToChar.set(b, String.fromCodePoint(256 + extra++));
  const order = [...printable, ...[...byteToChar.keys()].filter((b) => !printable.includes(b))].map((b) => byteToChar.get(b)!);
  const vocab: Record<string, number> = {};
  for (const c of order) vocab[c] = Object.keys(vocab).length;
  for (const c of order) vocab[`${c}</w>`] = Object.keys(vocab).length;
  vocab['<|startoftext|>'] = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = Object.keys(vocab).length;
  return { vocab, merges: '#version: 0.2\n' };
}

/** A small uncased WordPiece vocabulary: specials, letters, digits, and their ## continuations. */
function bertVocab(): string[] {
  const pieces = [...'abcdefghijklmnopqrstuvwxyz0123456789'];
  return ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...pieces, ...pieces.map((p) => `##${p}`), '.', ','];
}

export interface TinyModelConfigs {
  modelIndex: Record<string, unknown>;
  textEncoder: Record<string, unknown>;
  qformer: Record<string, unknown>;
  unet: Record<string, unknown>;
  controlnet: Record<string, unknown>;
  vae: Record<string, unknown>;
  scheduler: Record<string, unknown>;
  imageProcessor: Record<string, unknown>;
}

export function secondTinyConfigs(clipVocabSize: number, bertVocabSize: number): TinyModelConfigs {
  const trunk = {
    block_out_channels: [8, 16, 24],
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    layers_per_block: 2,
    attention_head_dim: [2, 2, 4],
    cross_attention_dim: TEXT_WIDTH,
    norm_num_groups: 4,
    in_channels: 4,
    use_linear_projection: true,
    only_cross_attention: false,
    mid_block_type: 'UNetMidBlock2DCrossAttn',
  };
  return {
    modelIndex: {
      _class_name: 'BlipDiffusionControlNetPipeline',
      ctx_begin_pos: CTX_BEGIN_POS,
      text_encoder: ['blip_diffusion', 'ContextCLIPTextModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      qformer: ['blip_diffusion', 'Blip2QFormerModel'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
      controlnet: ['diffusers', 'ControlNetModel'],
      scheduler: ['diffusers', 'PNDMScheduler'],
      image_processor: ['blip_diffusion', 'BlipImageProcessor'],
      mean: null,
      std: null,
    },
    textEncoder: {
      architectures: ['ContextCLIPTextModel'],
      vocab_size: clipVocabSize,
      hidden_size: TEXT_WIDTH,
      intermediate_size: 40,
      num_hidden_layers: 3,
      num_attention_heads: 3,
      max_position_embeddings: TEXT_POSITIONS,
      hidden_act: 'quick_gelu',
      layer_norm_eps: 1e-5,
    },
    qformer: {
      architectures: ['Blip2QFormerModel'],
      num_query_tokens: QUERY_TOKENS,
      tokenizer: 'bert-vocab',
      qformer_config: {
        hidden_size: TEXT_WIDTH,
        num_attention_heads: 4,
        num_hidden_layers: 3,
        intermediate_size: 36,
        cross_attention_frequency: 2,
        encoder_hidden_size: 20,
        vocab_size: bertVocabSize + 1,
      },
      vision_config: { hidden_size: 20, num_attention_heads: 2, num_hidden_layers: 2, intermediate_size: 36, image_size: 28, patch_size: 7, hidden_act: 'quick_gelu' },
    },
    unet: {
      _class_name: 'UNet2DConditionModel',
      ...trunk,
      up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
      out_channels: 4,
      sample_size: 8,
    },
    controlnet: { _class_name: 'ControlNetModel', ...trunk, conditioning_embedding_out_channels: [4, 8, 8], conditioning_channels: 3 },
    vae: {
      _class_name: 'AutoencoderKL',
      block_out_channels: [8, 12, 16],
      down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
      up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
      layers_per_block: 1,
      latent_channels: 4,
      norm_num_groups: 4,
      in_channels: 3,
      out_channels: 3,
      scaling_factor: 0.13,
    },
    scheduler: {
      _class_name: 'PNDMScheduler',
      num_train_timesteps: 1000,
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      skip_prk_steps: true,
      set_alpha_to_one: false,
      steps_offset: 0,
      timestep_spacing: 'leading',
    },
    imageProcessor: { do_resize: true, size: { height: 28, width: 28 }, resample: 3, do_normalize: true, do_rescale: true, rescale_factor: 1 / 255 },
  };
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Random tensors for every parameter the nets request (norm scales around 1, everything else small). */
function randomTensors(component: string, config: unknown, seed: number): TensorData[] {
  const requests = impliedComponentParameters(component, config, { ctxBeginPos: CTX_BEGIN_POS, queryTokenCount: QUERY_TOKENS });
  if (!requests) throw new Error(`no network reads '${component}'`);
  return requests
    .filter((r) => r.kind === 'parameter')
    .map((request, index) => {
      const shape = [...request.shape];
      const noise = torchRandn(seed * 1000 + index, shape);
      const isNormScale = /norm[^.]*\.weight$|layer_?norm\d*\.weight$|\.ln_?\w*\.weight$/i.test(request.name) && shape.length === 1;
      for (let i = 0; i < noise.length; i++) noise[i] = isNormScale ? 1 + 0.1 * noise[i]! : 0.1 * noise[i]!;
      return { name: request.name, dtype: 'F32' as const, shape, data: new Uint8Array(noise.buffer) };
    });
}

/** Writes the second tiny configuration into `dir` (created); deterministic for a seed. */
export function writeTinyModel(dir: string, seed = 1): void {
  const { vocab, merges } = clipTokenizerFiles();
  const bert = bertVocab();
  const configs = secondTinyConfigs(Object.keys(vocab).length, bert.length);
  const folders: Record<string, [string, Record<string, unknown>] | null> = {
    text_encoder: ['config.json', configs.textEncoder],
    qformer: ['config.json', configs.qformer],
    unet: ['config.json', configs.unet],
    controlnet: ['config.json', configs.controlnet],
    vae: ['config.json', configs.vae],
    scheduler: ['scheduler_config.json', configs.scheduler],
    image_processor: ['preprocessor_config.json', configs.imageProcessor],
    tokenizer: null,
  };
  mkdirSync(dir, { recursive: true });
  writeJson(join(dir, 'model_index.json'), configs.modelIndex);
  for (const [name, file] of Object.entries(folders)) {
    mkdirSync(join(dir, name), { recursive: true });
    if (file) writeJson(join(dir, name, file[0]), file[1]);
  }
  writeJson(join(dir, 'tokenizer/vocab.json'), vocab);
  writeFileSync(join(dir, 'tokenizer/merges.txt'), merges);
  writeJson(join(dir, 'tokenizer/tokenizer_config.json'), { model_max_length: TEXT_POSITIONS, do_lower_case: true });
  mkdirSync(join(dir, 'bert-vocab'), { recursive: true });
  writeFileSync(join(dir, 'bert-vocab/vocab.txt'), `${bert.join('\n')}\n`);
  const weightFiles: [string, string, Record<string, unknown>][] = [
    ['text_encoder', 'model.safetensors', configs.textEncoder],
    ['qformer', 'model.safetensors', configs.qformer],
    ['unet', 'diffusion_pytorch_model.safetensors', configs.unet],
    ['controlnet', 'diffusion_pytorch_model.safetensors', configs.controlnet],
    ['vae', 'diffusion_pytorch_model.safetensors', configs.vae],
  ];
  weightFiles.forEach(([component, file, config], index) => writeSafetensorsFile(join(dir, component, file), randomTensors(component, config, seed * 10 + index), { format: 'pt' }));
}
