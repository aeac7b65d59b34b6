/**
 * The fine-tune against the reference kit (test/fixtures/parity/finetune, README "One step"): the
 * training graph's stages and gradients at step 1, the whole loop's losses and parameters after every
 * step (with micro-batches too), and the named refusals. Real ORT sessions on the kit's tiny model.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { buildFinetuneStepGraph, FINETUNE_INPUTS, FINETUNE_OUTPUTS, loraGradientNames, type LoraTargetShape } from '../../main/engine/nets/finetune-step';
import { loraInputNames } from '../../main/engine/nets/lora-layers';
import { componentCatalog, CancelledError, type EngineContext } from '../../main/engine/pipelines/engine-context';
import { finetune, FinetuneDivergedError, type FinetuneRequest, type TrainedLora } from '../../main/engine/pipelines/finetune';
import { jointCatalogs } from '../../main/engine/pipelines/joint-catalogs';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { loadModelFolder, requireComponent } from '../../main/models/model-folder';
import { FINETUNE_KIT, FINETUNE_KIT_MODEL, finetuneKitConfig, kitFloat32, kitNpy, kitSafetensors, kitTrainingSetup, relativeL2, type KitTrainingSetup } from '../helpers/finetune-kit';
import { makeTempDir } from '../helpers/temp-dir';
import { startTestRuntime } from '../helpers/worker-bundle';

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let cache: ReturnType<typeof makeTempDir>;
let context: EngineContext;
let setup: KitTrainingSetup;
let targets: LoraTargetShape[];
let initialLora: TrainedLora;
const config = finetuneKitConfig() as KitTrainingSetup['config'];
const tolerances = config.tolerances;
const safetensors = (file: string) => kitSafetensors(file.slice(FINETUNE_KIT.length + 1));
const kitRequest = (overrides: Partial<FinetuneRequest> = {}) => setup.request(overrides);

beforeAll(async () => {
  testRuntime = await startTestRuntime();
  cache = makeTempDir('blip-finetune-');
  context = { runtime: testRuntime.runtime, device: 'cpu', cacheDir: cache.path };
  setup = await kitTrainingSetup();
  ({ targets, initialLora } = setup);
});
afterAll(async () => {
  await testRuntime?.stop();
  cache?.remove();
});

// The primitive op set (WebGPU's route) and the fused kernels whose rules recompute (the CPU's).
const KERNEL_SETS = [
  { label: 'primitive ops', fused: false, attention: 'primitive' },
  { label: 'fused norms and attention', fused: true, attention: 'fused' },
] as const;

for (const kernels of KERNEL_SETS) describe(`the training graph at step 1 (${kernels.label})`, () => {
  let outputs: TensorMap;
  beforeAll(async () => {
    const model = loadModelFolder(FINETUNE_KIT_MODEL);
    const textEncoder = requireComponent(model, 'text_encoder');
    const unet = requireComponent(model, 'unet');
    const joint = jointCatalogs([await componentCatalog(context, textEncoder), await componentCatalog(context, unet)]);
    const noisy = kitNpy('noisy_latents', 1);
    const [batch, , height, width] = noisy.shape as [number, number, number, number];
    const graph = buildFinetuneStepGraph(
      { textEncoder: { config: textEncoder.config, catalog: joint.catalogs[0]!, folder: '' }, unet: { config: unet.config, catalog: joint.catalogs[1]!, folder: '' } },
      { batch, latentHeight: height, latentWidth: width, captionTokens: config.caption_input_ids.length, queryTokenCount: 16, ctxBeginPos: config.ctx_begin_pos, targets, rank: config.rank, exposeActivations: true, fused: kernels.fused, attention: kernels.attention },
    );
    // The base weights are external initializers into the model's files: nothing is copied into the graph.
    const inlineBytes = (graph.model.graph.initializers ?? []).reduce((total, t) => total + (t.data.location === 'inline' ? t.data.bytes.length : 0), 0);
    expect(inlineBytes).toBeLessThan(64 * 1024);
    const session = await context.runtime.createSession({ model: encodeModel(graph.model), device: 'cpu', externalDataFolder: joint.folder, optimization: 'extended' });
    const embedding = kitNpy('initial_embedding');
    const feeds: TensorMap = {
      [FINETUNE_INPUTS.noisyLatents]: { type: 'float32', dims: noisy.shape, data: noisy.data as Float32Array },
      [FINETUNE_INPUTS.noise]: { type: 'float32', dims: noisy.shape, data: kitFloat32('noise', 1) },
      [FINETUNE_INPUTS.timesteps]: { type: 'float32', dims: [batch], data: Float32Array.from(kitNpy('timesteps', 1).data as BigInt64Array, Number) },
      [FINETUNE_INPUTS.inputIds]: { type: 'int64', dims: [batch, config.caption_input_ids.length], data: BigInt64Array.from(Array.from({ length: batch }, () => config.caption_input_ids).flat(), BigInt) },
      [FINETUNE_INPUTS.subjectEmbedding]: { type: 'float32', dims: embedding.shape, data: embedding.data as Float32Array },
      [FINETUNE_INPUTS.loraScale]: { type: 'float32', dims: [], data: Float32Array.of(config.alpha / config.rank) },
    };
    for (const target of targets) {
      const adapter = initialLora.modules.get(target.module)!;
      const names = loraInputNames(target.module);
      feeds[names.down] = { type: 'float32', dims: [config.rank, target.inFeatures], data: adapter.down };
      feeds[names.up] = { type: 'float32', dims: [target.outFeatures, config.rank], data: adapter.up };
    }
    outputs = await context.runtime.run(session.id, feeds);
    await context.runtime.releaseSession(session.id);
  });

  it('computes the encoder states, the noise prediction and the loss of the reference', () => {
    expect(relativeL2(outputs[FINETUNE_OUTPUTS.encoderHiddenStates]!.data as Float32Array, kitFloat32('encoder_hidden_states', 1))).toBeLessThan(1e-4);
    expect(relativeL2(outputs[FINETUNE_OUTPUTS.noisePred]!.data as Float32Array, kitFloat32('noise_pred', 1))).toBeLessThan(1e-4);
    const loss = (outputs[FINETUNE_OUTPUTS.loss]!.data as Float32Array)[0]!;
    expect(Math.abs(loss - config.losses[0]!) / config.losses[0]!).toBeLessThan(tolerances.loss_rel);
  });

  it('gives the gradient of every LoRA tensor and of the subject embedding (grads_step_1)', async () => {
    const expected = await safetensors(join(FINETUNE_KIT, 'grads_step_1.safetensors'));
    expect(expected.size).toBe(2 * targets.length + 1);
    expect(relativeL2(outputs[FINETUNE_OUTPUTS.subjectEmbeddingGradient]!.data as Float32Array, expected.get('subject_embedding')!.data)).toBeLessThan(tolerances.grads_rel_l2);
    for (const target of targets) {
      const names = loraGradientNames(target.module);
      expect(relativeL2(outputs[names.down]!.data as Float32Array, expected.get(`${target.module}.lora.down.weight`)!.data), names.down).toBeLessThan(tolerances.grads_rel_l2);
      expect(relativeL2(outputs[names.up]!.data as Float32Array, expected.get(`${target.module}.lora.up.weight`)!.data), names.up).toBeLessThan(tolerances.grads_rel_l2);
    }
  });
});

describe('the fine-tune loop', () => {
  async function expectParamsAfter(step: number, lora: TrainedLora, embedding: Float32Array): Promise<void> {
    const expected = await safetensors(join(FINETUNE_KIT, `params_after_step_${step}.safetensors`));
    expect(relativeL2(embedding, expected.get('subject_embedding')!.data)).toBeLessThan(tolerances.embedding_rel_l2);
    for (const target of targets) {
      const adapter = lora.modules.get(target.module)!;
      expect(relativeL2(adapter.down, expected.get(`${target.module}.lora.down.weight`)!.data), `${target.module} down after step ${step}`).toBeLessThan(tolerances.lora_rel_l2);
      expect(relativeL2(adapter.up, expected.get(`${target.module}.lora.up.weight`)!.data), `${target.module} up after step ${step}`).toBeLessThan(tolerances.lora_rel_l2);
    }
  }

  it('reproduces every step: the losses and the parameters after steps 1 and 3', async () => {
    const reports: number[] = [];
    const three = await finetune(context, kitRequest(), { onStep: (r) => reports.push(r.step) });
    expect(reports).toEqual([1, 2, 3]);
    three.losses.forEach((loss, i) => expect(Math.abs(loss - config.losses[i]!) / config.losses[i]!).toBeLessThan(tolerances.loss_rel));
    await expectParamsAfter(3, three.lora, three.embedding.data);
    const one = await finetune(context, kitRequest({ steps: 1 }));
    await expectParamsAfter(1, one.lora, one.embedding.data);
    // The caller's initial tensors are not trained in place.
    expect(relativeL2(initialLora.modules.get(targets[0]!.module)!.down, one.lora.modules.get(targets[0]!.module)!.down)).toBeGreaterThan(0);
  });

  it('gives the same step with micro-batches of one photo (gradients averaged over the runs)', async () => {
    const result = await finetune(context, kitRequest({ steps: 2, microBatch: 1 }));
    await expectParamsAfter(2, result.lora, result.embedding.data);
  });

  it('stops at the step whose loss is not finite, and when cancelled', async () => {
    const huge = finetune(context, kitRequest({ steps: 3, lrLora: 1e30 }));
    await expect(huge).rejects.toBeInstanceOf(FinetuneDivergedError);
    await expect(huge).rejects.toThrow(/diverged at step 2/);
    const controller = new AbortController();
    const cancelled = finetune({ ...context, signal: controller.signal }, kitRequest({ steps: 3 }), { onStep: () => controller.abort() });
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
  });

  it('refuses bad requests with the reason', async () => {
    await expect(finetune(context, kitRequest({ steps: 0 }))).rejects.toThrow(/steps must be a positive integer, got 0/);
    await expect(finetune(context, kitRequest({ lrLora: Number.NaN }))).rejects.toThrow(/lr-lora must be a non-negative number/);
    await expect(finetune(context, kitRequest({ targetPixels: { dims: [0, 3, 64, 64], data: new Float32Array(0) } }))).rejects.toThrow(/at least one photo/);
  });
});
