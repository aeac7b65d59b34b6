/**
 * The fine-tune on a differently shaped model than the kit's (make-tiny-model's second configuration:
 * three UNet blocks, two layers each, linear projections, QuickGELU text encoder, a VAE factor of 4):
 * its adapter targets follow its config, the whole training graph's gradient agrees with a directional
 * derivative of the loss, and a default-initialised run trains and round-trips through the LoRA file.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { buildFinetuneStepGraph, FINETUNE_INPUTS, FINETUNE_OUTPUTS, loraGradientNames } from '../../main/engine/nets/finetune-step';
import { loraInputNames } from '../../main/engine/nets/lora-layers';
import { componentCatalog, type EngineContext } from '../../main/engine/pipelines/engine-context';
import { finetune } from '../../main/engine/pipelines/finetune';
import { prepareFinetuneInputs, type FinetuneInputs } from '../../main/engine/pipelines/finetune-inputs';
import { jointCatalogs } from '../../main/engine/pipelines/joint-catalogs';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { loraTargets, readLoraFile, writeDiffusersLora } from '../../main/engine/weights/lora-weights';
import { loadModelFolder, requireComponent, type ModelFolder } from '../../main/models/model-folder';
import { writeTinyModel } from '../../main/models/tiny-model';
import { REPO_ROOT } from '../helpers/built-app';
import { seededRandom } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { startTestRuntime } from '../helpers/worker-bundle';

const photos = ['00.jpg', '01.jpg'].map((name) => join(REPO_ROOT, 'test/fixtures/dreambench/dog', name));
const RESOLUTION = 32;

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let folder: ReturnType<typeof makeTempDir>;
let context: EngineContext;
let model: ModelFolder;
let inputs: FinetuneInputs;

beforeAll(async () => {
  testRuntime = await startTestRuntime();
  folder = makeTempDir('blip-finetune-second-');
  writeTinyModel(join(folder.path, 'model'));
  model = loadModelFolder(join(folder.path, 'model'));
  context = { runtime: testRuntime.runtime, device: 'cpu', cacheDir: join(folder.path, 'cache') };
  inputs = await prepareFinetuneInputs(context, { model, photos, category: 'dog', resolution: RESOLUTION });
});
afterAll(async () => {
  await testRuntime?.stop();
  folder?.remove();
});

describe('a fine-tune of another model layout', () => {
  it('adapts every attention projection its config has', () => {
    // Down blocks 0 and 1 (2 layers each), up blocks 1 and 2 (3 layers each), the mid block: 11
    // transformer blocks × (attn1, attn2) × (to_q, to_k, to_v, to_out.0).
    expect(inputs.targets).toHaveLength(88);
    expect(inputs.targets.filter((t) => t.module.startsWith('mid_block.'))).toHaveLength(8);
    const attn2Key = inputs.targets.find((t) => t.module.endsWith('attn2.to_k'))!;
    expect(attn2Key.inFeatures).toBe((requireComponent(model, 'unet').config['cross_attention_dim'] as number));
    expect(inputs.targetPixels.dims).toEqual([2, 3, RESOLUTION, RESOLUTION]);
  });

  for (const kernels of [
    { label: 'primitive ops', fused: false, attention: 'primitive' },
    { label: 'fused norms and attention', fused: true, attention: 'fused' },
  ] as const)
  it(`computes the gradient of the whole training graph (${kernels.label}): it agrees with a directional derivative of the loss`, async () => {
    const textEncoder = requireComponent(model, 'text_encoder');
    const unet = requireComponent(model, 'unet');
    const joint = jointCatalogs([await componentCatalog(context, textEncoder), await componentCatalog(context, unet)]);
    const rank = 3;
    const [batch, channels, latent] = [2, 4, RESOLUTION / 4];
    const graph = buildFinetuneStepGraph(
      { textEncoder: { config: textEncoder.config, catalog: joint.catalogs[0]!, folder: '' }, unet: { config: unet.config, catalog: joint.catalogs[1]!, folder: '' } },
      { batch, latentHeight: latent, latentWidth: latent, captionTokens: inputs.captionIds.length, queryTokenCount: inputs.initialEmbedding.dims[1], ctxBeginPos: inputs.ctxBeginPos, targets: inputs.targets, rank, fused: kernels.fused, attention: kernels.attention },
    );
    const session = await context.runtime.createSession({ model: encodeModel(graph.model), device: 'cpu', externalDataFolder: joint.folder, optimization: 'extended' });
    const random = seededRandom(5);
    const normal = (n: number, scale: number) => Float32Array.from({ length: n }, () => (random() + random() + random() - 1.5) * scale);
    const latentSize = batch * channels * latent * latent;
    const fixed: TensorMap = {
      [FINETUNE_INPUTS.noisyLatents]: { type: 'float32', dims: [batch, channels, latent, latent], data: normal(latentSize, 1) },
      [FINETUNE_INPUTS.noise]: { type: 'float32', dims: [batch, channels, latent, latent], data: normal(latentSize, 1) },
      [FINETUNE_INPUTS.timesteps]: { type: 'float32', dims: [batch], data: Float32Array.of(17, 640) },
      [FINETUNE_INPUTS.inputIds]: { type: 'int64', dims: [batch, inputs.captionIds.length], data: BigInt64Array.from([...inputs.captionIds, ...inputs.captionIds], BigInt) },
      [FINETUNE_INPUTS.loraScale]: { type: 'float32', dims: [], data: Float32Array.of(2 / rank) },
    };
    // Trained tensors θ and a random direction v over all of them.
    const trained = new Map<string, { dims: number[]; data: Float32Array; direction: Float32Array; gradient: string }>();
    trained.set(FINETUNE_INPUTS.subjectEmbedding, { dims: [...inputs.initialEmbedding.dims], data: inputs.initialEmbedding.data, direction: normal(inputs.initialEmbedding.data.length, 1), gradient: FINETUNE_OUTPUTS.subjectEmbeddingGradient });
    for (const target of inputs.targets) {
      const names = loraInputNames(target.module);
      const grads = loraGradientNames(target.module);
      trained.set(names.down, { dims: [rank, target.inFeatures], data: normal(rank * target.inFeatures, 0.3), direction: normal(rank * target.inFeatures, 1), gradient: grads.down });
      trained.set(names.up, { dims: [target.outFeatures, rank], data: normal(target.outFeatures * rank, 0.3), direction: normal(target.outFeatures * rank, 1), gradient: grads.up });
    }
    const run = async (step: number) => {
      const feeds: TensorMap = { ...fixed };
      for (const [name, t] of trained) feeds[name] = { type: 'float32', dims: t.dims, data: t.data.map((v, i) => Math.fround(v + step * t.direction[i]!)) };
      return context.runtime.run(session.id, feeds);
    };
    const at = await run(0);
    let directional = 0;
    for (const t of trained.values()) {
      const g = at[t.gradient]!.data as Float32Array;
      for (let i = 0; i < g.length; i++) directional += g[i]! * t.direction[i]!;
    }
    const h = 1e-2;
    const loss = async (step: number) => ((await run(step))[FINETUNE_OUTPUTS.loss]!.data as Float32Array)[0]!;
    const numeric = ((await loss(h)) - (await loss(-h))) / (2 * h);
    await context.runtime.releaseSession(session.id);
    expect(Math.abs(directional)).toBeGreaterThan(1e-3);
    // Measured 6e-5 (float32 central difference, h = 0.01); a wrong softmax rule gives 2.4e-2.
    expect(Math.abs(numeric - directional) / Math.abs(directional)).toBeLessThan(2e-3);
  });

  it('trains from the default initialisation, and its LoRA file reads back for this model', async () => {
    const result = await finetune(context, { model, ...inputs, rank: 2, alpha: 2, steps: 3, lrLora: 1e-2, lrEmbedding: 1e-3, weightDecay: 0.01, seed: 11 });
    expect(result.losses.every(Number.isFinite)).toBe(true);
    // diffusers' default starts every up at zero; one update moves them.
    expect([...result.lora.modules.values()].every((adapter) => adapter.up.some((v) => v !== 0))).toBe(true);
    expect(result.embedding.data.some((v, i) => v !== inputs.initialEmbedding.data[i])).toBe(true);
    const read = readLoraFile(writeDiffusersLora(result.lora), loraTargets(requireComponent(model, 'unet').config));
    expect(read.lora.modules.size).toBe(88);
    for (const [module, adapter] of result.lora.modules) expect(read.lora.modules.get(module)!.down).toEqual(adapter.down);
  });
});
