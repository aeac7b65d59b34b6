/**
 * "Propose mask from word" on the WebGPU execution provider against test/fixtures/edit-attention
 * (scripts/reference-attention-mask.py): the UNet probe graph as the pipeline builds it for WebGPU
 * (kernelChoices('webgpu')) fed the reference's step inputs, then the whole flow through
 * `proposeMaskFromWord` on an engine context asking for webgpu. Bound: the CPU test's tolerance
 * (manifest.tolerance_rule) or the kit's bound 1e-4·max|ref| + 1e-6 that every WebGPU parity test uses,
 * whichever is larger (WebGPU's kernels round differently: the UNet's noise differs by ~3e-5 on
 * SwiftShader, 4× the float32-vs-float64 gap); masks may flip only the reference pixels that lie within
 * that bound of the threshold. Runs through SwiftShader where there is no GPU (test/helpers/vulkan-driver.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { attentionProbeOutputName } from '../../main/engine/nets/attention-probe';
import { buildUnetGraph, unetAttentionProbeLayers } from '../../main/engine/nets/unet';
import { proposeMaskFromWord } from '../../main/engine/pipelines/attention-mask';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import { wordAttentionMap } from '../../main/engine/pipelines/local-blend';
import { kernelChoices } from '../../main/engine/providers/kernel-routing';
import type { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { catalogOf } from '../../main/engine/weights/catalog';
import { openComponentWeights } from '../../main/engine/weights/component-weights';
import { loadModelFolder } from '../../main/models/model-folder';
import { REPO_ROOT } from '../helpers/built-app';
import { maxAbsDiff, parityBound } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { useVulkanDriver } from '../helpers/vulkan-driver';
import { startTestRuntime } from '../helpers/worker-bundle';

const DEVICE = 'webgpu';
const vulkan = useVulkanDriver();
const temp = makeTempDir('blip-attention-webgpu-');
const fixtures = join(REPO_ROOT, 'test/fixtures/edit-attention');
const kit = join(REPO_ROOT, 'test/fixtures/parity');
const modelDir = join(kit, 'models/tiny-blipdiffusion');
interface Manifest {
  run: { source_prompt: string; steps: number; thresholds: number[]; image_size: [number, number]; latent_size: [number, number]; layer_sets: Record<string, string[]> };
  gaps_f32_vs_f64: Record<string, number>;
  masks: Record<string, { token_indices: number[]; near_threshold_pixels_all_steps: number }>;
}
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as Manifest;
const floats = (name: string) => readNpyFile(join(fixtures, `${name}.npy`)).data as Float32Array;
const tolerance = (name: string, reference: ArrayLike<number> = floats(name)) => Math.max(4 * (manifest.gaps_f32_vs_f64[`${name}.npy`] as number) + 1e-6, parityBound(reference));
const [latentHeight, latentWidth] = manifest.run.latent_size;
const textEmbedding = readNpyFile(join(fixtures, 'text_embedding.npy'));
const [, textLength, hidden] = textEmbedding.shape as [number, number, number];

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>> | undefined;
let runtime: RuntimeClient;

beforeAll(async () => {
  if (vulkan.skipReason !== null) return;
  testRuntime = await startTestRuntime();
  runtime = testRuntime.runtime;
  const webgpu = (await runtime.listBackends()).find((backend) => backend.name === DEVICE);
  if (!webgpu?.available) throw new Error(`WebGPU does not start on the Vulkan driver ${vulkan.driver?.icd}: ${webgpu?.note ?? 'this ONNX Runtime build has no WebGPU provider'}`);
});
afterAll(async () => {
  await testRuntime?.stop();
  temp.remove();
});

describe.skipIf(vulkan.skipReason !== null)(`attention mask on WebGPU (${vulkan.driver?.kind ?? 'skipped'}: ${vulkan.skipReason ?? vulkan.driver?.icd})`, () => {
  const kernels = kernelChoices(DEVICE);
  const unetConfig = JSON.parse(readFileSync(join(modelDir, 'unet/config.json'), 'utf8')) as unknown;

  it('the probe graph, step 0 of the reference: noise, head-mean maps and the word maps of every layer', async ({ annotate }) => {
    const bound = catalogOf(await openComponentWeights(join(modelDir, 'unet'), { cacheDir: join(temp.path, 'weights') }));
    const options = { height: latentHeight, width: latentWidth, textLength, attentionProbe: { layers: 'cross' as const }, ...kernels };
    const layers = unetAttentionProbeLayers(unetConfig, options);
    const graph = buildUnetGraph(unetConfig, bound.catalog, options);
    const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder: bound.externalDataFolder, device: DEVICE });
    expect(session.device, 'the session runs on WebGPU, not a fallback').toBe(DEVICE);
    let out: TensorMap;
    const latents = floats('step_latents');
    const size = latents.length / manifest.run.steps;
    const timestep = Number((readNpyFile(join(fixtures, 'timesteps.npy')).data as BigInt64Array)[0]);
    try {
      out = await runtime.run(session.id, {
        sample: { type: 'float32', dims: [1, 4, latentHeight, latentWidth], data: latents.slice(0, size) },
        timestep: { type: 'float32', dims: [1], data: Float32Array.of(timestep) },
        encoder_hidden_states: { type: 'float32', dims: [1, textLength, hidden], data: textEmbedding.data as Float32Array },
      });
    } finally {
      await runtime.releaseSession(session.id);
    }
    const report: string[] = [];
    const check = (actual: ArrayLike<number>, name: string, reference: ArrayLike<number>, what: string) => {
      const error = maxAbsDiff(actual, reference);
      report.push(`${what} ${error.toExponential(1)} ≤ ${tolerance(name, reference).toExponential(1)}`);
      expect(error, what).toBeLessThanOrEqual(tolerance(name, reference));
    };
    check(out.noise_pred!.data as Float32Array, 'step_noise_pred', floats('step_noise_pred').subarray(0, size), 'noise');
    layers.forEach((layer, k) => check(out[attentionProbeOutputName(k)]!.data as Float32Array, `probs_step0_headmean-${layer.name}`, floats(`probs_step0_headmean-${layer.name}`), layer.name));
    const tokens = manifest.masks['underwater-local-blend@0.3']?.token_indices as number[];
    const names = manifest.run.layer_sets['local-blend'] as string[];
    const reference = floats('underwater-local-blend-word_maps_per_step_layer');
    const queries = latentHeight * latentWidth;
    names.forEach((name, j) => {
      const k = layers.findIndex((l) => l.name === name);
      const map = wordAttentionMap([{ ...layers[k]!, keys: textLength, probabilities: out[attentionProbeOutputName(k)]!.data as Float32Array }], tokens).map;
      check(map, 'underwater-local-blend-word_maps_per_step_layer', reference.subarray(j * queries, (j + 1) * queries), `underwater ${name}`);
    });
    await annotate(report.join('; '));
  });

  it('proposeMaskFromWord on a webgpu context: the final map and the masks at both thresholds', async () => {
    const context: EngineContext = { runtime, device: DEVICE, cacheDir: join(temp.path, 'cache') };
    const model = loadModelFolder(modelDir);
    const [height, width] = manifest.run.image_size;
    const latents = readNpyFile(join(kit, 'inputs/initial_latents.npy')).data as Float32Array;
    const latentSize = latentHeight * latentWidth;
    const T = manifest.run.thresholds.length;
    const masks = readNpyFile(join(fixtures, 'dog-local-blend-mask_per_step.npy')).data as Uint8Array;
    for (const [j, threshold] of manifest.run.thresholds.entries()) {
      const result = await proposeMaskFromWord(context, { model, prompt: manifest.run.source_prompt, word: 'dog', height, width, latents, textEmbedding: { dims: [1, textLength, hidden], data: textEmbedding.data as Float32Array }, steps: manifest.run.steps, threshold });
      const name = 'dog-local-blend-normalized_per_step';
      const finalMap = floats(name).subarray((manifest.run.steps - 1) * latentSize);
      const bound = tolerance(name, finalMap);
      expect(maxAbsDiff(result.map, finalMap), `final map, bound ${bound}`).toBeLessThanOrEqual(bound);
      const reference = masks.subarray(((manifest.run.steps - 1) * T + j) * latentSize, ((manifest.run.steps - 1) * T + j + 1) * latentSize);
      const flips = Array.from(result.latentMask).filter((v, i) => v !== reference[i]).length;
      const nearThreshold = Array.from(finalMap).filter((v) => Math.abs(v - threshold) < bound).length;
      expect(flips, `mask at ${threshold}: ${flips} flips, ${nearThreshold} reference pixels within ${bound} of it`).toBeLessThanOrEqual(nearThreshold);
    }
  });
});
