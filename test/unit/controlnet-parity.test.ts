import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { ConfigError } from '../../main/engine/nets/configs';
import { buildControlNetGraph, controlImageScale } from '../../main/engine/nets/controlnet';
import { buildUnetGraph, downResidualName } from '../../main/engine/nets/unet';
import { parseControlNetConfig, parseUnetConfig } from '../../main/engine/nets/unet-config';
import { buildControlledUnetGuidedStepGraph, buildUnetGuidedStepGraph, CONTROLNET_FOLDER, UNET_FOLDER } from '../../main/engine/nets/unet-step';
import type { WeightCatalog } from '../../main/engine/nets/weight-catalog';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap, TensorValue } from '../../main/engine/runtime/runtime-protocol';
import { maxAbs, maxAbsDiff, expectWithinParityBound, readSafetensorsCatalog } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { float32Of, float32Tensor, npyFeed, randomTensor, rows, runNetGraph, scalarTensor, stackRows, WEIGHTS_FILE, writeRandomWeights } from '../helpers/unet-fixtures';
import { startTestRuntime } from '../helpers/worker-bundle';

const kit = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/parity');
const modelDir = join(kit, 'models/tiny-blipdiffusion-controlnet');
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const componentCatalog = (root: string, component: string): WeightCatalog => readSafetensorsCatalog(join(root, component, WEIGHTS_FILE));

let runtime: RuntimeClient;
let stopRuntime: () => Promise<void> = async () => undefined;
beforeAll(async () => {
  ({ runtime, stop: stopRuntime } = await startTestRuntime());
});
afterAll(() => stopRuntime());

describe('kit parity: tiny-blipdiffusion-controlnet at step 0, each stage fed the kit’s saved inputs', () => {
  const controlnetConfig = readJson(join(modelDir, 'controlnet/config.json'));
  const unetConfig = readJson(join(modelDir, 'unet/config.json'));
  const timestep = scalarTensor(Number((readNpyFile(join(kit, 'blip/timesteps.npy')).data as BigInt64Array)[0]));
  // The ControlNet pipeline shares the plain pipeline's weights, prompt and latents: the same text
  // embeddings ([uncond, cond], README item 4) and the same duplicated initial latents.
  const text = stackRows([npyFeed(join(kit, 'blip/uncond_text_embeddings.npy')), npyFeed(join(kit, 'blip/cond_text_embeddings.npy'))]);
  const textLength = text.dims[1] as number;
  const latentPair = npyFeed(join(kit, 'blip/unet_step0_latent_model_input.npy'));
  const [, , height, width] = latentPair.dims as [number, number, number, number];
  const controlPair = npyFeed(join(kit, 'controlnet/controlnet_step0_cond_input.npy'));
  const conditioningScale = scalarTensor(1); // README item 8: not exposed by the reference, 1.0
  const guidanceScale = (readJson(join(kit, 'manifest.json')) as { run: { guidance_scale: number } }).run.guidance_scale;
  const residualNames = [...[0, 1, 2, 3].map(downResidualName), 'mid_residual'];
  const kitResidual = (name: string) => npyFeed(join(kit, `controlnet/controlnet_step0_${name}.npy`));
  const uncondRef = readNpyFile(join(kit, 'controlnet/unet_step0_noise_pred_uncond.npy')).data as Float32Array;
  const textRef = readNpyFile(join(kit, 'controlnet/unet_step0_noise_pred_text.npy')).data as Float32Array;

  it('the control image pair is the preprocessed control image twice', () => {
    const image = npyFeed(join(kit, 'controlnet/control_pixel_values.npy'));
    expect(controlPair.data).toEqual(stackRows([image, image]).data);
    expect(controlPair.dims.slice(2)).toEqual([height * controlImageScale(parseControlNetConfig(controlnetConfig)), width * controlImageScale(parseControlNetConfig(controlnetConfig))]);
  });

  for (const fused of [true, false]) {
    describe(fused ? 'fused ops' : 'primitive ops', () => {
      it('ControlNet: controlnet_step0_down_residual_00…03 and controlnet_step0_mid_residual', async () => {
        const graph = buildControlNetGraph(controlnetConfig, componentCatalog(modelDir, 'controlnet'), { batch: 2, height, width, textLength, fused });
        expect(graph.outputs.map((p) => p.name)).toEqual(residualNames);
        const out = await runNetGraph(runtime, graph, join(modelDir, 'controlnet'), {
          sample: latentPair,
          timestep,
          encoder_hidden_states: text,
          controlnet_cond: controlPair,
          conditioning_scale: conditioningScale,
        });
        for (const name of residualNames) {
          const reference = kitResidual(name);
          expect(out[name]?.dims, name).toEqual(reference.dims);
          expectWithinParityBound(float32Of(out, name), reference.data as Float32Array, name);
        }
      });

      it('UNet with the kit’s residuals: controlnet/unet_step0_noise_pred_uncond / _text', async () => {
        const graph = buildUnetGraph(unetConfig, componentCatalog(modelDir, 'unet'), { batch: 2, height, width, textLength, fused, withResiduals: true });
        const residuals = Object.fromEntries(residualNames.map((name) => [name, kitResidual(name)]));
        const out = await runNetGraph(runtime, graph, join(modelDir, 'unet'), { sample: latentPair, timestep, encoder_hidden_states: text, ...residuals });
        const prediction = float32Of(out, 'noise_pred');
        expectWithinParityBound(prediction.subarray(0, uncondRef.length), uncondRef, 'uncond');
        expectWithinParityBound(prediction.subarray(uncondRef.length), textRef, 'text');
      });

      it('the whole step in one graph (ControlNet → UNet → guidance) from one latent and one control image', async () => {
        const graph = buildControlledUnetGuidedStepGraph(
          { unet: { config: unetConfig, catalog: componentCatalog(modelDir, 'unet') }, controlnet: { config: controlnetConfig, catalog: componentCatalog(modelDir, 'controlnet') } },
          { height, width, textLength, fused, exposeBatchPrediction: true },
        );
        expect(graph.inputs.map((p) => [p.name, p.shape])).toEqual([
          ['sample', [1, 4, height, width]],
          ['timestep', [1]],
          ['encoder_hidden_states', [2, textLength, 32]],
          ['controlnet_cond', [1, 3, controlPair.dims[2], controlPair.dims[3]]],
          ['conditioning_scale', [1]],
          ['guidance_scale', [1]],
        ]);
        const out = await runNetGraph(runtime, graph, modelDir, {
          sample: rows(latentPair, 0, 1),
          timestep,
          encoder_hidden_states: text,
          controlnet_cond: rows(controlPair, 0, 1),
          conditioning_scale: conditioningScale,
          guidance_scale: scalarTensor(guidanceScale),
        });
        const batch = float32Of(out, 'noise_pred_batch');
        expectWithinParityBound(batch.subarray(0, uncondRef.length), uncondRef, 'uncond');
        expectWithinParityBound(batch.subarray(uncondRef.length), textRef, 'text');
        // The kit saves no guided prediction for the ControlNet run: the pipeline's formula on its two halves.
        const guided = uncondRef.map((u, i) => u + guidanceScale * (textRef[i]! - u));
        expect(out.noise_pred?.dims).toEqual([1, 4, height, width]);
        expectWithinParityBound(float32Of(out, 'noise_pred'), guided, 'guided');
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A second, generated pair (ControlNet + UNet) with random weights written here: shapes, fused ≡
// primitive, conditioning_scale, bgr order, and the one-graph step ≡ the two graphs chained.
// ---------------------------------------------------------------------------------------------

const SHARED_TRUNK = {
  in_channels: 3,
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D', 'CrossAttnDownBlock2D'],
  block_out_channels: [9, 12, 15],
  layers_per_block: 2,
  cross_attention_dim: 10,
  norm_num_groups: 3,
  use_linear_projection: true,
  transformer_layers_per_block: [2, 1, 1],
  only_cross_attention: [false, false, true],
  downsample_padding: 0,
  flip_sin_to_cos: false,
  freq_shift: 1,
};
const SECOND_CONTROLNET_CONFIG = {
  _class_name: 'ControlNetModel',
  ...SHARED_TRUNK,
  // ControlNetModel accepts num_attention_heads (then attention_head_dim is ignored).
  attention_head_dim: 8,
  num_attention_heads: [2, 3, 5],
  mid_block_scale_factor: 0.5,
  conditioning_channels: 3,
  conditioning_embedding_out_channels: [4, 6, 8],
  controlnet_conditioning_channel_order: 'rgb',
};
const SECOND_UNET_CONFIG = {
  _class_name: 'UNet2DConditionModel',
  ...SHARED_TRUNK,
  out_channels: 3,
  up_block_types: ['CrossAttnUpBlock2D', 'UpBlock2D', 'CrossAttnUpBlock2D'],
  attention_head_dim: [2, 3, 5],
  time_embedding_dim: 20,
};
const [HEIGHT, WIDTH] = [6, 10];
const TEXT_LENGTH = 5;

describe('a second, generated ControlNet + UNet (other blocks, heads, widths, conditioning steps, odd latents)', () => {
  const temp = makeTempDir('blip-controlnet-second-');
  const root = temp.path;
  const controlnet = parseControlNetConfig(SECOND_CONTROLNET_CONFIG);
  const scale = controlImageScale(controlnet);
  const latent = randomTensor(51, [1, 3, HEIGHT, WIDTH]);
  const control = randomTensor(52, [1, 3, HEIGHT * scale, WIDTH * scale], 0.5);
  const text = randomTensor(53, [2, TEXT_LENGTH, 10]);
  const timestep = scalarTensor(781);
  const controlOptions = { height: HEIGHT, width: WIDTH, textLength: TEXT_LENGTH };
  const controlnetGraph = (config: unknown, options: { batch?: number; fused?: boolean } = {}) => buildControlNetGraph(config, componentCatalog(root, CONTROLNET_FOLDER), { ...controlOptions, ...options });
  const controlFeeds = (conditioningScale: number, image: TensorValue = control): TensorMap => ({
    sample: latent,
    timestep,
    encoder_hidden_states: rows(text, 1, 2),
    controlnet_cond: image,
    conditioning_scale: scalarTensor(conditioningScale),
  });

  beforeAll(() => {
    writeRandomWeights(join(root, CONTROLNET_FOLDER), (c) => buildControlNetGraph(SECOND_CONTROLNET_CONFIG, c, controlOptions), 61);
    writeRandomWeights(join(root, UNET_FOLDER), (c) => buildUnetGraph(SECOND_UNET_CONFIG, c, controlOptions), 62);
  });
  afterAll(() => temp.remove());

  it('outputs exactly the UNet’s residual inputs; fused and primitive agree; conditioning_scale scales every residual', async () => {
    expect(controlnet.down.map((d) => d.attention?.heads ?? null)).toEqual([2, null, 5]);
    expect(scale).toBe(4);
    const fused = controlnetGraph(SECOND_CONTROLNET_CONFIG);
    const unet = buildUnetGraph(SECOND_UNET_CONFIG, componentCatalog(root, UNET_FOLDER), { ...controlOptions, withResiduals: true });
    expect(fused.outputs.map((p) => [p.name, p.shape])).toEqual(unet.inputs.slice(3).map((p) => [p.name, p.shape]));
    expect(fused.inputs.find((p) => p.name === 'controlnet_cond')?.shape).toEqual([1, 3, HEIGHT * scale, WIDTH * scale]);

    const folder = join(root, CONTROLNET_FOLDER);
    const one = await runNetGraph(runtime, fused, folder, controlFeeds(1));
    const viaPrimitive = await runNetGraph(runtime, controlnetGraph(SECOND_CONTROLNET_CONFIG, { fused: false }), folder, controlFeeds(1));
    const doubled = await runNetGraph(runtime, fused, folder, controlFeeds(2));
    const off = await runNetGraph(runtime, fused, folder, controlFeeds(0));
    for (const { name } of fused.outputs) {
      const residual = float32Of(one, name);
      expect(maxAbs(residual), name).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(float32Of(viaPrimitive, name), residual), `${name} fused vs primitive`).toBeLessThanOrEqual(1e-5 * maxAbs(residual) + 1e-6);
      expect(maxAbsDiff(float32Of(doubled, name), residual.map((v) => 2 * v)), `${name} × 2`).toBeLessThanOrEqual(1e-6 * maxAbs(residual));
      expect(maxAbs(float32Of(off, name)), `${name} × 0`).toBe(0);
    }
  });

  it('bgr channel order = rgb on the channel-flipped image', async () => {
    const folder = join(root, CONTROLNET_FOLDER);
    const rgb = await runNetGraph(runtime, controlnetGraph(SECOND_CONTROLNET_CONFIG), folder, controlFeeds(1));
    const plane = (control.data as Float32Array).length / 3;
    const flipped = float32Tensor(control.dims, new Float32Array(control.data.length));
    for (let c = 0; c < 3; c++) (flipped.data as Float32Array).set((control.data as Float32Array).subarray((2 - c) * plane, (3 - c) * plane), c * plane);
    const bgrConfig = { ...SECOND_CONTROLNET_CONFIG, controlnet_conditioning_channel_order: 'bgr' };
    const bgr = await runNetGraph(runtime, controlnetGraph(bgrConfig), folder, controlFeeds(1, flipped));
    for (const name of Object.keys(rgb)) expect(maxAbsDiff(float32Of(bgr, name), float32Of(rgb, name)), name).toBeLessThanOrEqual(1e-6 * maxAbs(float32Of(rgb, name)));
  });

  it('the one-graph step = ControlNet graph → guided UNet step graph with residuals (fused and primitive)', async () => {
    const guidance = 5.5;
    const conditioningScale = 0.75;
    const components = {
      unet: { config: SECOND_UNET_CONFIG, catalog: componentCatalog(root, UNET_FOLDER) },
      controlnet: { config: SECOND_CONTROLNET_CONFIG, catalog: componentCatalog(root, CONTROLNET_FOLDER) },
    };
    const pairFeeds: TensorMap = {
      sample: stackRows([latent, latent]),
      timestep,
      encoder_hidden_states: text,
      controlnet_cond: stackRows([control, control]),
      conditioning_scale: scalarTensor(conditioningScale),
    };
    const residuals = await runNetGraph(runtime, controlnetGraph(SECOND_CONTROLNET_CONFIG, { batch: 2 }), join(root, CONTROLNET_FOLDER), pairFeeds);
    const chained = await runNetGraph(
      runtime,
      buildUnetGuidedStepGraph(SECOND_UNET_CONFIG, components.unet.catalog, { ...controlOptions, withResiduals: true, exposeBatchPrediction: true }),
      join(root, UNET_FOLDER),
      { sample: latent, timestep, encoder_hidden_states: text, guidance_scale: scalarTensor(guidance), ...residuals },
    );
    const expected = float32Of(chained, 'noise_pred');
    expect(maxAbs(expected)).toBeGreaterThan(1e-3);
    for (const fused of [true, false]) {
      const graph = buildControlledUnetGuidedStepGraph(components, { ...controlOptions, fused });
      expect(graph.parameters.some((p) => p.name === 'controlnet.controlnet_mid_block.weight')).toBe(true);
      const out = await runNetGraph(runtime, graph, root, {
        sample: latent,
        timestep,
        encoder_hidden_states: text,
        controlnet_cond: control,
        conditioning_scale: scalarTensor(conditioningScale),
        guidance_scale: scalarTensor(guidance),
      });
      expect(out.noise_pred?.dims).toEqual([1, 3, HEIGHT, WIDTH]);
      expect(maxAbsDiff(float32Of(out, 'noise_pred'), expected), `fused ${fused}`).toBeLessThanOrEqual(1e-5 * maxAbs(expected) + 1e-6);
    }
  });

  it('the combined graph names both components’ problems in one error', () => {
    const unetCatalog = componentCatalog(root, UNET_FOLDER);
    const controlnetCatalog = componentCatalog(root, CONTROLNET_FOLDER);
    expect(() => buildControlledUnetGuidedStepGraph({ unet: { config: SECOND_UNET_CONFIG, catalog: unetCatalog }, controlnet: { config: SECOND_CONTROLNET_CONFIG, catalog: controlnetCatalog } }, controlOptions)).not.toThrow();
    const withoutConvIn: WeightCatalog = { names: () => unetCatalog.names().filter((n) => n !== 'conv_in.weight'), lookup: (n) => (n === 'conv_in.weight' ? undefined : unetCatalog.lookup(n)) };
    const narrowerConditioning = { ...SECOND_CONTROLNET_CONFIG, conditioning_embedding_out_channels: [4, 6, 7] };
    expect(() => buildControlledUnetGuidedStepGraph({ unet: { config: SECOND_UNET_CONFIG, catalog: withoutConvIn }, controlnet: { config: narrowerConditioning, catalog: controlnetCatalog } }, controlOptions)).toThrow(
      /unet \+ controlnet: .*\(1 missing, 0 unused, 3 mis-shaped\)[\s\S]*Missing: conv_in\.weight[\s\S]*Mis-shaped: .*controlnet\.controlnet_cond_embedding\.blocks\.3\.weight/,
    );
  });
});

describe('ControlNet configs the builder refuses, naming the key', () => {
  const kitConfig = readJson(join(modelDir, 'controlnet/config.json')) as Record<string, unknown>;
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ global_pool_conditions: true }, /global_pool_conditions must be false/],
    [{ controlnet_conditioning_channel_order: 'rgba' }, /controlnet_conditioning_channel_order must be 'rgb' or 'bgr'/],
    [{ layers_per_block: [1, 1] }, /layers_per_block must be a positive integer/],
    [{ mid_block_type: null }, /mid_block_type must be 'UNetMidBlock2DCrossAttn'/],
    [{ class_embed_type: 'projection' }, /class_embed_type must be null/],
    [{ resnet_time_scale_shift: 'scale_shift' }, /resnet_time_scale_shift must be "default"/],
  ];
  for (const [change, message] of refused) {
    it(`${JSON.stringify(change)}`, () => {
      expect(() => parseControlNetConfig({ ...kitConfig, ...change })).toThrow(ConfigError);
      expect(() => parseControlNetConfig({ ...kitConfig, ...change })).toThrow(message);
    });
  }

  it('a UNet config is not a ControlNet config and vice versa (the parsers read their own keys)', () => {
    expect(parseUnetConfig(readJson(join(modelDir, 'unet/config.json'))).up).toHaveLength(2);
    expect(parseControlNetConfig(kitConfig).conditioningEmbeddingOutChannels).toEqual([8, 16]);
  });
});
