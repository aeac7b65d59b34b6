import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from '../../main/engine/graph/builder';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { ConfigError } from '../../main/engine/nets/configs';
import { impliedComponentParameters } from '../../main/engine/nets/component-checks';
import { checkParameters, impliedParameters, WeightMismatchError } from '../../main/engine/nets/implied-parameters';
import type { NetGraph } from '../../main/engine/nets/net-graph';
import {
  buildVaeDecoderGraph,
  buildVaeEncoderGraph,
  vaeDecoderGraphKey,
  vaeEncoderGraphKey,
  VAE_DECODER_OUTPUTS,
  VAE_ENCODER_OUTPUTS,
  VAE_LOGVAR_MAX,
  VAE_LOGVAR_MIN,
  type VaeDecoderGraphOptions,
  type VaeEncoderGraphOptions,
} from '../../main/engine/nets/vae';
import { clamp } from '../../main/engine/nets/vae-blocks';
import { parseAutoencoderKLConfig } from '../../main/engine/nets/vae-config';
import { catalogListing, type WeightCatalog, type WeightEntry } from '../../main/engine/nets/weight-catalog';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { catalogOf } from '../../main/engine/weights/catalog';
import { openComponentWeights, readTensorAsFloat32 } from '../../main/engine/weights/component-weights';
import { writeSafetensorsFile, type TensorData } from '../../main/engine/weights/safetensors-writer';
import { maxAbs, maxAbsDiff, parityBound, randomNormalish, seededRandom } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';

const kit = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/parity');
const kitVaeDir = join(kit, 'models/tiny-blipdiffusion/vae');
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const npy = (name: string) => readNpyFile(join(kit, 'blip', name));
const kitConfig = readJson(join(kitVaeDir, 'config.json')) as ReferenceConfig;

/** Fused and primitive graphs compute the same function; this is how closely they must agree. */
const SAME_FUNCTION = (values: ArrayLike<number>) => 1e-5 * maxAbs(values) + 1e-6;

const temp = makeTempDir('blip-vae-');
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let runtime: RuntimeClient;
beforeAll(async () => {
  bundle = await bundleWorkerForTest();
  runtime = RuntimeClient.start({ workerFile: bundle.file });
});
afterAll(async () => {
  await runtime?.close();
  bundle?.remove();
  temp.remove();
});

/** A component folder opened with the app's own weights reader: the catalog for the graph and every tensor in float64 for the reference. */
interface LoadedVae {
  catalog: WeightCatalog;
  folder: string;
  weights: Map<string, Float64Array>;
}

async function loadVae(dir: string): Promise<LoadedVae> {
  const opened = await openComponentWeights(dir, { cacheDir: join(temp.path, 'cache') });
  const { catalog, externalDataFolder } = catalogOf(opened);
  const weights = new Map<string, Float64Array>();
  for (const [name, entry] of opened.tensors) weights.set(name, Float64Array.from(await readTensorAsFloat32(entry)));
  return { catalog, folder: externalDataFolder, weights };
}

async function runGraph(graph: NetGraph, folder: string, feeds: TensorMap): Promise<TensorMap> {
  const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder: folder, device: 'cpu' });
  try {
    return await runtime.run(session.id, feeds);
  } finally {
    await runtime.releaseSession(session.id);
  }
}

function float32Output(outputs: TensorMap, name: string): Float32Array {
  const tensor = outputs[name];
  if (!tensor || !(tensor.data instanceof Float32Array)) throw new Error(`output '${name}' is missing or not float32`);
  return tensor.data;
}

const float32Feed = (dims: number[], data: Float32Array) => ({ type: 'float32' as const, dims, data });

/** Max abs errors for the test report. */
const formatErrors = (errors: Record<string, { error: number; bound: number }>) =>
  Object.entries(errors)
    .map(([what, { error, bound }]) => `${what}: ${error.toExponential(2)} (bound ${bound.toExponential(2)})`)
    .join('; ');

/** Uniform values in [−1, 1], as images fed to the encoder are. */
function randomImage(seed: number, count: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: count }, () => 2 * random() - 1);
}

// ---------------------------------------------------------------------------------------------
// Item 12 of the kit: decode = decoder(post_quant_conv(latents / scaling_factor)); output_type="np".
// ---------------------------------------------------------------------------------------------

describe('VAE decoder: kit parity (blip/vae_decoded.npy raw, blip/output_image.npy as the pipeline returns it)', () => {
  // blip/vae_decoder_input.npy is already divided by scaling_factor (manifest: "latents / vae.config.scaling_factor");
  // the graph takes UNet-space latents and divides itself, so it is fed the scheduler's last sample.
  const steps = npy('latents_after_each_step.npy');
  const [stepCount, ...latentShape] = steps.shape as [number, ...number[]];
  const latentSize = latentShape.reduce((a, b) => a * b, 1);
  const latents = (steps.data as Float32Array).slice((stepCount - 1) * latentSize);

  it('the kit’s decoder input is the last scheduler sample divided by scaling_factor (so feeding that sample is right)', () => {
    const decoderInput = npy('vae_decoder_input.npy');
    expect(decoderInput.shape).toEqual(latentShape);
    const divided = latents.map((v) => v / kitConfig.scaling_factor);
    expect(maxAbsDiff(divided, decoderInput.data as Float32Array)).toBeLessThanOrEqual(1e-6 * maxAbs(decoderInput.data as Float32Array));
  });

  for (const fused of [true, false]) {
    it(`${fused ? 'fused' : 'primitive'} ops: sample and image within 1e-4·max|ref| + 1e-6`, async ({ annotate }) => {
      const vae = await loadVae(kitVaeDir);
      const [, , latentHeight, latentWidth] = latentShape as [number, number, number, number];
      const graph = buildVaeDecoderGraph(kitConfig, vae.catalog, { latentHeight, latentWidth, fused, outputs: ['sample', 'image'] });
      const outputs = await runGraph(graph, vae.folder, { latents: float32Feed(latentShape, latents) });
      for (const [output, file] of [
        [VAE_DECODER_OUTPUTS.sample, 'vae_decoded.npy'],
        [VAE_DECODER_OUTPUTS.image, 'output_image.npy'],
      ] as const) {
        const reference = npy(file);
        const expected = reference.data as Float32Array;
        expect(outputs[output]?.dims, output).toEqual(reference.shape);
        const error = maxAbsDiff(float32Output(outputs, output), expected);
        await annotate(`${output} vs blip/${file}: max |a − b| = ${error.toExponential(2)}, bound ${parityBound(expected).toExponential(2)}`);
        expect(error, `${output} vs blip/${file}`).toBeLessThanOrEqual(parityBound(expected));
      }
      // The clamp is exercised: the raw sample leaves [−1, 1] on both sides, the image stays in [0, 1].
      const image = float32Output(outputs, VAE_DECODER_OUTPUTS.image);
      expect(Math.min(...image)).toBe(0);
      expect(Math.max(...image)).toBe(1);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A float64 reference of AutoencoderKL written here from the formulas (conv, group norm, SiLU,
// single-head attention, nearest ×2), one image at a time, C × H × W row-major.
// ---------------------------------------------------------------------------------------------

/** The AutoencoderKL keys the reference reads; absent ones take diffusers' defaults. */
interface ReferenceConfig {
  block_out_channels: number[];
  layers_per_block: number;
  norm_num_groups: number;
  latent_channels: number;
  scaling_factor: number;
  shift_factor?: number;
  act_fn?: string;
  mid_block_add_attention?: boolean;
  use_quant_conv?: boolean;
  use_post_quant_conv?: boolean;
  in_channels?: number;
  out_channels?: number;
}

interface Planes {
  channels: number;
  height: number;
  width: number;
  data: Float64Array;
}

interface Reference {
  weights: ReadonlyMap<string, Float64Array>;
  groups: number;
}

const EPS = 1e-6;

function tensor(ref: Reference, name: string): Float64Array {
  const values = ref.weights.get(name);
  if (!values) throw new Error(`reference: no weight '${name}'`);
  return values;
}

function conv(ref: Reference, x: Planes, name: string, kernel: number, stride: number, pads: [top: number, left: number, bottom: number, right: number]): Planes {
  const w = tensor(ref, `${name}.weight`);
  const bias = tensor(ref, `${name}.bias`);
  const out = bias.length;
  const { channels, height, width } = x;
  const oh = Math.floor((height + pads[0] + pads[2] - kernel) / stride) + 1;
  const ow = Math.floor((width + pads[1] + pads[3] - kernel) / stride) + 1;
  const y = new Float64Array(out * oh * ow);
  for (let o = 0; o < out; o++) {
    y.fill(bias[o]!, o * oh * ow, (o + 1) * oh * ow);
    for (let i = 0; i < channels; i++) {
      for (let ky = 0; ky < kernel; ky++) {
        for (let kx = 0; kx < kernel; kx++) {
          const wv = w[((o * channels + i) * kernel + ky) * kernel + kx]!;
          for (let oy = 0; oy < oh; oy++) {
            const iy = oy * stride - pads[0] + ky;
            if (iy < 0 || iy >= height) continue;
            for (let ox = 0; ox < ow; ox++) {
              const ix = ox * stride - pads[1] + kx;
              if (ix < 0 || ix >= width) continue;
              y[(o * oh + oy) * ow + ox]! += wv * x.data[(i * height + iy) * width + ix]!;
            }
          }
        }
      }
    }
  }
  return { channels: out, height: oh, width: ow, data: y };
}

const conv3 = (ref: Reference, x: Planes, name: string) => conv(ref, x, name, 3, 1, [1, 1, 1, 1]);

function groupNorm(ref: Reference, x: Planes, name: string): Planes {
  const gamma = tensor(ref, `${name}.weight`);
  const beta = tensor(ref, `${name}.bias`);
  const plane = x.height * x.width;
  const perGroup = (x.channels / ref.groups) * plane;
  const y = new Float64Array(x.data.length);
  for (let g = 0; g < ref.groups; g++) {
    const part = x.data.subarray(g * perGroup, (g + 1) * perGroup);
    const mean = part.reduce((a, v) => a + v, 0) / perGroup;
    const variance = part.reduce((a, v) => a + (v - mean) ** 2, 0) / perGroup;
    const inverseStd = 1 / Math.sqrt(variance + EPS);
    for (let j = 0; j < perGroup; j++) {
      const channel = Math.floor((g * perGroup + j) / plane);
      y[g * perGroup + j] = (part[j]! - mean) * inverseStd * gamma[channel]! + beta[channel]!;
    }
  }
  return { ...x, data: y };
}

const silu = (x: Planes): Planes => ({ ...x, data: x.data.map((v) => v / (1 + Math.exp(-v))) });
const add = (a: Planes, b: Planes): Planes => ({ ...a, data: a.data.map((v, i) => v + b.data[i]!) });

function resnet(ref: Reference, x: Planes, prefix: string): Planes {
  const h = conv3(ref, silu(groupNorm(ref, x, `${prefix}.norm1`)), `${prefix}.conv1`);
  const h2 = conv3(ref, silu(groupNorm(ref, h, `${prefix}.norm2`)), `${prefix}.conv2`);
  const shortcut = ref.weights.has(`${prefix}.conv_shortcut.weight`) ? conv(ref, x, `${prefix}.conv_shortcut`, 1, 1, [0, 0, 0, 0]) : x;
  return add(shortcut, h2);
}

/** One head over the H·W positions: softmax(q·kᵀ/√C)·v, output projection, plus the input. */
function attention(ref: Reference, x: Planes, prefix: string): Planes {
  const c = x.channels;
  const n = x.height * x.width;
  const normalized = groupNorm(ref, x, `${prefix}.group_norm`);
  const tokens = new Float64Array(n * c);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < n; p++) tokens[p * c + ch] = normalized.data[ch * n + p]!;
  const project = (name: string, input: Float64Array) => {
    const w = tensor(ref, `${prefix}.${name}.weight`);
    const b = tensor(ref, `${prefix}.${name}.bias`);
    const out = new Float64Array(n * c);
    for (let p = 0; p < n; p++) for (let o = 0; o < c; o++) out[p * c + o] = b[o]! + w.subarray(o * c, (o + 1) * c).reduce((a, wv, i) => a + wv * input[p * c + i]!, 0);
    return out;
  };
  const [q, k, v] = [project('to_q', tokens), project('to_k', tokens), project('to_v', tokens)];
  const context = new Float64Array(n * c);
  for (let p = 0; p < n; p++) {
    const scores = Array.from({ length: n }, (_, m) => q.subarray(p * c, (p + 1) * c).reduce((a, qv, i) => a + qv * k[m * c + i]!, 0) / Math.sqrt(c));
    const top = Math.max(...scores);
    const exps = scores.map((s) => Math.exp(s - top));
    const total = exps.reduce((a, e) => a + e, 0);
    for (let m = 0; m < n; m++) for (let i = 0; i < c; i++) context[p * c + i]! += (exps[m]! / total) * v[m * c + i]!;
  }
  const projected = project('to_out.0', context);
  const y = new Float64Array(c * n);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < n; p++) y[ch * n + p] = projected[p * c + ch]! + x.data[ch * n + p]!;
  return { ...x, data: y };
}

function mid(ref: Reference, config: ReferenceConfig, x: Planes, prefix: string): Planes {
  let h = resnet(ref, x, `${prefix}.resnets.0`);
  if (config.mid_block_add_attention ?? true) h = attention(ref, h, `${prefix}.attentions.0`);
  return resnet(ref, h, `${prefix}.resnets.1`);
}

function nearestDouble(x: Planes): Planes {
  const [h, w] = [x.height * 2, x.width * 2];
  const y = new Float64Array(x.channels * h * w);
  for (let c = 0; c < x.channels; c++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) y[(c * h + i) * w + j] = x.data[(c * x.height + (i >> 1)) * x.width + (j >> 1)]!;
  return { channels: x.channels, height: h, width: w, data: y };
}

function referenceEncode(ref: Reference, config: ReferenceConfig, image: Planes): { mean: Planes; logvar: Planes } {
  const blocks = config.block_out_channels.length;
  let h = conv3(ref, image, 'encoder.conv_in');
  for (let i = 0; i < blocks; i++) {
    for (let j = 0; j < config.layers_per_block; j++) h = resnet(ref, h, `encoder.down_blocks.${i}.resnets.${j}`);
    if (i < blocks - 1) h = conv(ref, h, `encoder.down_blocks.${i}.downsamplers.0.conv`, 3, 2, [0, 0, 1, 1]);
  }
  h = mid(ref, config, h, 'encoder.mid_block');
  h = conv3(ref, silu(groupNorm(ref, h, 'encoder.conv_norm_out')), 'encoder.conv_out');
  if (config.use_quant_conv ?? true) h = conv(ref, h, 'quant_conv', 1, 1, [0, 0, 0, 0]);
  const half = config.latent_channels * h.height * h.width;
  const part = (data: Float64Array): Planes => ({ channels: config.latent_channels, height: h.height, width: h.width, data });
  return { mean: part(h.data.slice(0, half)), logvar: part(h.data.slice(half).map((v) => Math.min(Math.max(v, -30), 20))) };
}

function referenceDecode(ref: Reference, config: ReferenceConfig, latents: Planes): Planes {
  const blocks = config.block_out_channels.length;
  let h: Planes = { ...latents, data: latents.data.map((v) => v / config.scaling_factor + (config.shift_factor ?? 0)) };
  if (config.use_post_quant_conv ?? true) h = conv(ref, h, 'post_quant_conv', 1, 1, [0, 0, 0, 0]);
  h = conv3(ref, h, 'decoder.conv_in');
  h = mid(ref, config, h, 'decoder.mid_block');
  for (let i = 0; i < blocks; i++) {
    for (let j = 0; j < config.layers_per_block + 1; j++) h = resnet(ref, h, `decoder.up_blocks.${i}.resnets.${j}`);
    if (i < blocks - 1) h = conv3(ref, nearestDouble(h), `decoder.up_blocks.${i}.upsamplers.0.conv`);
  }
  return conv3(ref, silu(groupNorm(ref, h, 'decoder.conv_norm_out')), 'decoder.conv_out');
}

/** Runs `one` on each image of an NCHW batch and concatenates the results. */
function perImage(batch: Float32Array, dims: number[], one: (x: Planes) => Planes): Float64Array {
  const [n, channels, height, width] = dims as [number, number, number, number];
  const size = channels * height * width;
  const parts = Array.from({ length: n }, (_, i) => one({ channels, height, width, data: Float64Array.from(batch.subarray(i * size, (i + 1) * size)) }).data);
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}

/** Encoder and decoder outputs against the float64 reference; fused ≡ primitive; a repeated run is bit-identical. */
async function checkAgainstReference(vae: LoadedVae, config: ReferenceConfig, encoder: VaeEncoderGraphOptions & { batch: number }, decoder: VaeDecoderGraphOptions & { batch: number }) {
  const ref: Reference = { weights: vae.weights, groups: config.norm_num_groups };
  const inChannels = config.in_channels ?? 3;
  const imageDims = [encoder.batch, inChannels, encoder.height, encoder.width];
  const pixels = randomImage(5, imageDims.reduce((a, b) => a * b, 1));
  const encoderFeeds = { image: float32Feed(imageDims, pixels) };
  const encoded = await runGraph(buildVaeEncoderGraph(config, vae.catalog, { ...encoder, fused: true }), vae.folder, encoderFeeds);
  const encodedAgain = await runGraph(buildVaeEncoderGraph(config, vae.catalog, { ...encoder, fused: true }), vae.folder, encoderFeeds);
  const encodedPrimitive = await runGraph(buildVaeEncoderGraph(config, vae.catalog, { ...encoder, fused: false }), vae.folder, encoderFeeds);
  const posteriors = Array.from({ length: encoder.batch }, (_, i) => {
    const size = inChannels * encoder.height * encoder.width;
    return referenceEncode(ref, config, { channels: inChannels, height: encoder.height, width: encoder.width, data: Float64Array.from(pixels.subarray(i * size, (i + 1) * size)) });
  });
  const references = {
    mean: Float64Array.from(posteriors.flatMap((p) => Array.from(p.mean.data))),
    logvar: Float64Array.from(posteriors.flatMap((p) => Array.from(p.logvar.data))),
  };
  const errors: Record<string, { error: number; bound: number }> = {};
  const compare = (what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, bound: number) => {
    errors[what] = { error: maxAbsDiff(actual, expected), bound };
    expect(errors[what].error, what).toBeLessThanOrEqual(bound);
  };
  for (const name of [VAE_ENCODER_OUTPUTS.mean, VAE_ENCODER_OUTPUTS.logvar]) {
    const values = float32Output(encoded, name);
    expect(values.every(Number.isFinite), name).toBe(true);
    expect(float32Output(encodedAgain, name), `${name} deterministic`).toEqual(values);
    compare(`encoder ${name} vs float64`, values, references[name], parityBound(references[name]));
    compare(`encoder ${name} primitive vs fused`, float32Output(encodedPrimitive, name), values, SAME_FUNCTION(values));
  }

  const latentDims = [decoder.batch, config.latent_channels, decoder.latentHeight, decoder.latentWidth];
  const latents = Float32Array.from(randomNormalish(seededRandom(6), latentDims.reduce((a, b) => a * b, 1), 1), (v) => v * config.scaling_factor);
  const decoderFeeds = { latents: float32Feed(latentDims, latents) };
  const options = { ...decoder, outputs: ['sample', 'image'] as const };
  const decoded = await runGraph(buildVaeDecoderGraph(config, vae.catalog, { ...options, fused: true }), vae.folder, decoderFeeds);
  const decodedAgain = await runGraph(buildVaeDecoderGraph(config, vae.catalog, { ...options, fused: true }), vae.folder, decoderFeeds);
  const decodedPrimitive = await runGraph(buildVaeDecoderGraph(config, vae.catalog, { ...options, fused: false }), vae.folder, decoderFeeds);
  const sampleReference = perImage(latents, latentDims, (x) => referenceDecode(ref, config, x));
  const sample = float32Output(decoded, VAE_DECODER_OUTPUTS.sample);
  expect(float32Output(decodedAgain, VAE_DECODER_OUTPUTS.sample), 'sample deterministic').toEqual(sample);
  compare('decoder sample vs float64', sample, sampleReference, parityBound(sampleReference));
  compare('decoder sample primitive vs fused', float32Output(decodedPrimitive, VAE_DECODER_OUTPUTS.sample), sample, SAME_FUNCTION(sample));

  // image = clamp(sample / 2 + 0.5, 0, 1) in NHWC, computed from the graph's own sample.
  const [batch, channels, height, width] = decoded[VAE_DECODER_OUTPUTS.sample]?.dims as [number, number, number, number];
  expect(decoded[VAE_DECODER_OUTPUTS.image]?.dims).toEqual([batch, height, width, channels]);
  const image = float32Output(decoded, VAE_DECODER_OUTPUTS.image);
  const expectedImage = new Float32Array(image.length);
  for (let n = 0; n < batch; n++)
    for (let c = 0; c < channels; c++)
      for (let p = 0; p < height * width; p++) expectedImage[(n * height * width + p) * channels + c] = Math.min(Math.max(Math.fround(sample[(n * channels + c) * height * width + p]! / 2) + 0.5, 0), 1);
  expect(maxAbsDiff(image, expectedImage)).toBeLessThanOrEqual(1e-7);
  return { encoded, errors };
}

// ---------------------------------------------------------------------------------------------
// Key lists written out from the PyTorch module structure, independently of the builders.
// ---------------------------------------------------------------------------------------------

type KeyShape = [name: string, shape: number[]];

function vaeKeys(config: ReferenceConfig): KeyShape[] {
  const keys: KeyShape[] = [];
  const convKeys = (name: string, out: number, inChannels: number, kernel: number) => keys.push([`${name}.weight`, [out, inChannels, kernel, kernel]], [`${name}.bias`, [out]]);
  const normKeys = (name: string, channels: number) => keys.push([`${name}.weight`, [channels]], [`${name}.bias`, [channels]]);
  const resnetKeys = (prefix: string, inChannels: number, out: number) => {
    normKeys(`${prefix}.norm1`, inChannels);
    convKeys(`${prefix}.conv1`, out, inChannels, 3);
    normKeys(`${prefix}.norm2`, out);
    convKeys(`${prefix}.conv2`, out, out, 3);
    if (inChannels !== out) convKeys(`${prefix}.conv_shortcut`, out, inChannels, 1);
  };
  const midKeys = (prefix: string, channels: number) => {
    resnetKeys(`${prefix}.resnets.0`, channels, channels);
    if (config.mid_block_add_attention ?? true) {
      normKeys(`${prefix}.attentions.0.group_norm`, channels);
      for (const name of ['to_q', 'to_k', 'to_v', 'to_out.0']) keys.push([`${prefix}.attentions.0.${name}.weight`, [channels, channels]], [`${prefix}.attentions.0.${name}.bias`, [channels]]);
    }
    resnetKeys(`${prefix}.resnets.1`, channels, channels);
  };
  const widths = config.block_out_channels;
  const latent = config.latent_channels;
  const last = widths[widths.length - 1]!;

  convKeys('encoder.conv_in', widths[0]!, config.in_channels ?? 3, 3);
  widths.forEach((out, i) => {
    for (let j = 0; j < config.layers_per_block; j++) resnetKeys(`encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? (widths[i - 1] ?? widths[0]!) : out, out);
    if (i < widths.length - 1) convKeys(`encoder.down_blocks.${i}.downsamplers.0.conv`, out, out, 3);
  });
  midKeys('encoder.mid_block', last);
  normKeys('encoder.conv_norm_out', last);
  convKeys('encoder.conv_out', 2 * latent, last, 3);
  if (config.use_quant_conv ?? true) convKeys('quant_conv', 2 * latent, 2 * latent, 1);

  if (config.use_post_quant_conv ?? true) convKeys('post_quant_conv', latent, latent, 1);
  const reversed = [...widths].reverse();
  convKeys('decoder.conv_in', last, latent, 3);
  midKeys('decoder.mid_block', last);
  reversed.forEach((out, i) => {
    for (let j = 0; j < config.layers_per_block + 1; j++) resnetKeys(`decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? (reversed[i - 1] ?? last) : out, out);
    if (i < reversed.length - 1) convKeys(`decoder.up_blocks.${i}.upsamplers.0.conv`, out, out, 3);
  });
  normKeys('decoder.conv_norm_out', widths[0]!);
  convKeys('decoder.conv_out', config.out_channels ?? 3, widths[0]!, 3);
  return keys;
}

/** Bias given to the first two log-variance channels so that the clamp to [−30, 20] is exercised. */
const LOGVAR_ABOVE = 40;
const LOGVAR_BELOW = -45;

/** Random weights as the kit draws them (norm weight 1 + 0.1N, norm bias 0.1N, other bias 0.05N, weights N/√fan_in). */
function generatedWeights(config: ReferenceConfig, seed: number): TensorData[] {
  const random = seededRandom(seed);
  const latent = config.latent_channels;
  const logvarConv = (config.use_quant_conv ?? true) ? 'quant_conv.bias' : 'encoder.conv_out.bias';
  return vaeKeys(config).map(([name, shape]) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const isNorm = /norm(1|2|_out)?\.(weight|bias)$/.test(name);
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    const scale = isNorm ? 0.1 : name.endsWith('.bias') ? 0.05 : 1 / Math.sqrt(fanIn);
    const values = randomNormalish(random, count, scale);
    if (isNorm && name.endsWith('.weight')) values.forEach((v, i) => (values[i] = 1 + v));
    if (name === logvarConv) {
      values[latent] = LOGVAR_ABOVE;
      values[latent + 1] = LOGVAR_BELOW;
    }
    return { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer) };
  });
}

function impliedVaeParameters(config: unknown, size: { latent: number; factor: number }) {
  return impliedParameters((catalog) => [
    buildVaeEncoderGraph(config, catalog, { height: size.latent * size.factor, width: size.latent * size.factor }),
    buildVaeDecoderGraph(config, catalog, { latentHeight: size.latent, latentWidth: size.latent }),
  ]);
}

// ---------------------------------------------------------------------------------------------

describe('VAE encoder on the kit’s tiny VAE (the kit has no encoder outputs)', () => {
  const encoderOptions = { batch: 2, height: 16, width: 16 };

  it('declares image [B, 3, H, W] in and mean/logvar [B, 4, H/2, W/2] out (and 48×32 → 24×16, the kit’s latent size)', async () => {
    const vae = await loadVae(kitVaeDir);
    const graph = buildVaeEncoderGraph(kitConfig, vae.catalog, encoderOptions);
    expect(graph.inputs).toEqual([{ name: 'image', type: 'float32', shape: [2, 3, 16, 16] }]);
    expect(graph.outputs).toEqual([
      { name: 'mean', type: 'float32', shape: [2, 4, 8, 8] },
      { name: 'logvar', type: 'float32', shape: [2, 4, 8, 8] },
    ]);
    const kitSize = buildVaeEncoderGraph(kitConfig, vae.catalog, { height: 48, width: 32 });
    expect(kitSize.outputs.map((o) => o.shape)).toEqual([
      [1, 4, 24, 16],
      [1, 4, 24, 16],
    ]);
  });

  it('matches a float64 reference at 16×16 (both graphs, decoder too), fused ≡ primitive, runs are deterministic', async ({ annotate }) => {
    const vae = await loadVae(kitVaeDir);
    const { errors } = await checkAgainstReference(vae, kitConfig, encoderOptions, { batch: 1, latentHeight: 6, latentWidth: 4 });
    await annotate(formatErrors(errors));
  });
});

describe('VAE: generated configurations (other block counts, widths, groups, layers, latent/in/out channels, flags)', () => {
  /** Three blocks (f = 4), two resnets per block, 4 groups, 3 latent channels, RGBA-like input, 2 outputs, swish, SD3-style shift. */
  const SECOND: ReferenceConfig & Record<string, unknown> = {
    _class_name: 'AutoencoderKL',
    in_channels: 4,
    out_channels: 2,
    latent_channels: 3,
    block_out_channels: [8, 12, 16],
    down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
    up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
    layers_per_block: 2,
    norm_num_groups: 4,
    act_fn: 'swish',
    scaling_factor: 0.5,
    shift_factor: 0.25,
  };
  /** No mid-block attention, no quant convs (later diffusers keys), equal widths (no shortcut convs). */
  const THIRD: ReferenceConfig & Record<string, unknown> = {
    latent_channels: 2,
    block_out_channels: [6, 6],
    down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D'],
    up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D'],
    layers_per_block: 1,
    norm_num_groups: 3,
    scaling_factor: 0.3,
    mid_block_add_attention: false,
    use_quant_conv: false,
    use_post_quant_conv: false,
  };
  const dirs = { second: join(temp.path, 'second'), third: join(temp.path, 'third') };

  beforeAll(() => {
    for (const [dir, config, seed] of [
      [dirs.second, SECOND, 21],
      [dirs.third, THIRD, 22],
    ] as const) {
      mkdirSync(dir);
      writeSafetensorsFile(join(dir, 'diffusion_pytorch_model.safetensors'), generatedWeights(config, seed));
    }
  });

  it('the builders request exactly the independently written key lists (kit, second, third: 0 missing, 0 unused, 0 mis-shaped)', async () => {
    for (const [dir, config, factor] of [
      [kitVaeDir, kitConfig, 2],
      [dirs.second, SECOND, 4],
      [dirs.third, THIRD, 2],
    ] as const) {
      const vae = await loadVae(dir);
      const listing = catalogListing(vae.catalog);
      expect(listing.map((t) => t.name).sort()).toEqual(vaeKeys(config).map(([name]) => name).sort());
      expect(checkParameters(impliedVaeParameters(config, { latent: 1, factor }), listing)).toEqual({ missing: [], unused: [], misshaped: [] });
    }
  });

  it('declares the shapes the config implies', async () => {
    const vae = await loadVae(dirs.second);
    const encoder = buildVaeEncoderGraph(SECOND, vae.catalog, { batch: 2, height: 12, width: 8 });
    expect(encoder.inputs.map((p) => [p.name, p.shape])).toEqual([['image', [2, 4, 12, 8]]]);
    expect(encoder.outputs.map((p) => [p.name, p.shape])).toEqual([
      ['mean', [2, 3, 3, 2]],
      ['logvar', [2, 3, 3, 2]],
    ]);
    const decoder = buildVaeDecoderGraph(SECOND, vae.catalog, { batch: 2, latentHeight: 3, latentWidth: 2, outputs: ['image', 'sample'] });
    expect(decoder.inputs.map((p) => [p.name, p.shape])).toEqual([['latents', [2, 3, 3, 2]]]);
    expect(decoder.outputs.map((p) => [p.name, p.shape])).toEqual([
      ['image', [2, 12, 8, 2]],
      ['sample', [2, 2, 12, 8]],
    ]);
    expect(buildVaeDecoderGraph(SECOND, vae.catalog, { latentHeight: 3, latentWidth: 2 }).outputs.map((p) => p.name)).toEqual(['sample']);
  });

  it('builds byte-identical models with identical cache keys; the key follows config and options', async () => {
    const vae = await loadVae(dirs.second);
    const options: VaeDecoderGraphOptions = { latentHeight: 3, latentWidth: 2 };
    const first = buildVaeDecoderGraph(SECOND, vae.catalog, options);
    const second = buildVaeDecoderGraph(SECOND, vae.catalog, options);
    expect(encodeModel(second.model)).toEqual(encodeModel(first.model));
    expect(second.cacheKey).toBe(first.cacheKey);
    expect(vaeDecoderGraphKey(SECOND, vae.catalog, options)).toBe(first.cacheKey);
    for (const other of [{ ...options, fused: false }, { ...options, outputs: ['image'] as const }, { ...options, latentWidth: 3 }, { ...options, batch: 2 }]) {
      expect(vaeDecoderGraphKey(SECOND, vae.catalog, other)).not.toBe(first.cacheKey);
    }
    expect(vaeDecoderGraphKey({ ...SECOND, scaling_factor: 0.6 }, vae.catalog, options)).not.toBe(first.cacheKey);
    const encoder = buildVaeEncoderGraph(SECOND, vae.catalog, { height: 8, width: 8 });
    expect(vaeEncoderGraphKey(SECOND, vae.catalog, { height: 8, width: 8 })).toBe(encoder.cacheKey);
    expect(encoder.cacheKey).not.toBe(first.cacheKey);
  });

  it('second: float64 reference, fused ≡ primitive, deterministic; the log-variance is clamped to [−30, 20]', async ({ annotate }) => {
    const vae = await loadVae(dirs.second);
    const { encoded, errors } = await checkAgainstReference(vae, SECOND, { batch: 2, height: 12, width: 8 }, { batch: 2, latentHeight: 3, latentWidth: 2 });
    await annotate(formatErrors(errors));
    const logvar = float32Output(encoded, VAE_ENCODER_OUTPUTS.logvar);
    const plane = 3 * 2;
    const channel = (n: number, c: number) => Array.from(logvar.subarray((n * SECOND.latent_channels + c) * plane, (n * SECOND.latent_channels + c + 1) * plane));
    for (const n of [0, 1]) {
      expect(channel(n, 0)).toEqual(Array.from({ length: plane }, () => VAE_LOGVAR_MAX));
      expect(channel(n, 1)).toEqual(Array.from({ length: plane }, () => VAE_LOGVAR_MIN));
      expect(channel(n, 2).every((v) => v > VAE_LOGVAR_MIN && v < VAE_LOGVAR_MAX)).toBe(true);
    }
  });

  it('third (no attention, no quant convs): float64 reference, fused ≡ primitive, deterministic', async ({ annotate }) => {
    const vae = await loadVae(dirs.third);
    const { errors } = await checkAgainstReference(vae, THIRD, { batch: 1, height: 8, width: 6 }, { batch: 1, latentHeight: 2, latentWidth: 3 });
    await annotate(formatErrors(errors));
  });
});

describe('clamp (built from Where, the builder has no Clip)', () => {
  it('passes values inside the range bit for bit and gives the bound itself outside, at any magnitude', async () => {
    const f = Math.fround;
    const values = Float32Array.from([
      0, -0, 0.5, 1, -1, 1e-30, -1e-30, f(1 + 2 ** -23), f(1 - 2 ** -24), f(-(2 ** -149)), 3.4e38, -3.4e38, 1e20, -1e20, 19.999998, 20.000002, -29.999998, -30.000002, 20, -30, 0.1, -7.25,
    ]);
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [values.length]);
    const model = b.toModel({ name: 'clamp', outputs: [{ name: 'unit', value: clamp(b, x, 0, 1) }, { name: 'logvar', value: clamp(b, x, VAE_LOGVAR_MIN, VAE_LOGVAR_MAX) }] });
    const session = await runtime.createSession({ model: encodeModel(model), device: 'cpu' });
    try {
      const out = await runtime.run(session.id, { x: float32Feed([values.length], values) });
      const expected = (low: number, high: number) => Array.from(values, (v) => Math.min(Math.max(v, low), high));
      // Compare as numbers (−0 and 0 alike): torch.clamp keeps −0, which nothing downstream can tell apart.
      expect(Array.from(float32Output(out, 'unit'), (v) => v + 0)).toEqual(expected(0, 1).map((v) => v + 0));
      expect(Array.from(float32Output(out, 'logvar'), (v) => v + 0)).toEqual(expected(VAE_LOGVAR_MIN, VAE_LOGVAR_MAX).map((v) => v + 0));
    } finally {
      await runtime.releaseSession(session.id);
    }
  });
});

describe('VAE weights that disagree with the config', () => {
  it('a graph names what its own half lacks or does not use; the model check (both graphs) also names tensors outside both halves', async () => {
    const vae = await loadVae(kitVaeDir);
    const dropped = 'decoder.up_blocks.1.resnets.0.conv1.bias';
    const extraEntry: WeightEntry = { dtype: 'F32', shape: [4], file: 'diffusion_pytorch_model.safetensors', offset: 0, byteLength: 16 };
    const extras = ['decoder.mid_block.attentions.0.proj_attn.weight', 'stray.weight'];
    const damaged: WeightCatalog = {
      names: () => [...vae.catalog.names().filter((n) => n !== dropped), ...extras],
      lookup: (name) => (name === dropped ? undefined : extras.includes(name) ? extraEntry : vae.catalog.lookup(name)),
    };
    let error: unknown;
    try {
      buildVaeDecoderGraph(kitConfig, damaged, { latentHeight: 2, latentWidth: 2 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WeightMismatchError);
    expect((error as WeightMismatchError).report).toEqual({ missing: [dropped], unused: [extras[0]], misshaped: [] });
    expect((error as Error).message).toMatch(/^vae: the weights do not match the config \(1 missing, 1 unused, 0 mis-shaped\)/);
    // The encoder reads none of these, so it builds.
    expect(() => buildVaeEncoderGraph(kitConfig, damaged, { height: 4, width: 4 })).not.toThrow();

    const implied = impliedComponentParameters('vae', kitConfig, { ctxBeginPos: 2, queryTokenCount: 16 });
    expect(implied).not.toBeNull();
    expect(checkParameters(implied ?? [], catalogListing(damaged))).toEqual({ missing: [dropped], unused: extras, misshaped: [] });
    expect(checkParameters(implied ?? [], catalogListing(vae.catalog))).toEqual({ missing: [], unused: [], misshaped: [] });
  });
});

describe('VAE config and options', () => {
  it('reads diffusers 0.25.1 defaults for absent keys', () => {
    expect(parseAutoencoderKLConfig({})).toEqual({
      inChannels: 3,
      outChannels: 3,
      latentChannels: 4,
      blockOutChannels: [64],
      layersPerBlock: 1,
      normNumGroups: 32,
      activation: 'silu',
      scalingFactor: 0.18215,
      shiftFactor: 0,
      midBlockAddAttention: true,
      useQuantConv: true,
      usePostQuantConv: true,
    });
    expect(parseAutoencoderKLConfig({ ...kitConfig, shift_factor: null }).shiftFactor).toBe(0);
  });

  it('refuses what it cannot build, naming the key', () => {
    const base = kitConfig as unknown as Record<string, unknown>;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, down_block_types: ['DownEncoderBlock2D', 'AttnDownEncoderBlock2D'] }, /down_block_types entry "AttnDownEncoderBlock2D" is not supported/],
      [{ ...base, up_block_types: ['UpDecoderBlock2D'] }, /up_block_types must be a list of 2 block types/],
      [{ ...base, norm_num_groups: 5 }, /block_out_channels entry 16 must be divisible by norm_num_groups \(5\)/],
      [{ ...base, act_fn: 'mish' }, /act_fn must be one of silu, swish, gelu/],
      [{ ...base, block_out_channels: [] }, /block_out_channels must be a non-empty list/],
      [{ ...base, scaling_factor: 0 }, /scaling_factor must be a positive number/],
    ];
    for (const [config, message] of cases) expect(() => parseAutoencoderKLConfig(config)).toThrow(message);
    expect(() => parseAutoencoderKLConfig({ ...base, act_fn: 'relu' })).toThrow(ConfigError);
  });

  it('refuses bad sizes and outputs', () => {
    const catalog: WeightCatalog = { names: () => [], lookup: () => undefined };
    expect(() => buildVaeEncoderGraph(kitConfig, catalog, { height: 15, width: 16 })).toThrow(/height \(15\) must be a multiple of 2/);
    expect(() => buildVaeDecoderGraph(kitConfig, catalog, { latentHeight: 0, latentWidth: 4 })).toThrow(/latentHeight must be a positive integer/);
    expect(() => buildVaeDecoderGraph(kitConfig, catalog, { latentHeight: 2, latentWidth: 2, outputs: ['sample', 'sample'] })).toThrow(/outputs must list/);
  });
});
