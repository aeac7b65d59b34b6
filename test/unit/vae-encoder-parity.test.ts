import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import type { NetGraph } from '../../main/engine/nets/net-graph';
import { buildVaeEncoderGraph, buildVaeDecoderGraph } from '../../main/engine/nets/vae';
import { buildVaeEncoderSampleGraph, vaeEncoderSampleGraphKey, VAE_ENCODER_SAMPLE_OUTPUTS } from '../../main/engine/nets/vae-encoder';
import { parseAutoencoderKLConfig } from '../../main/engine/nets/vae-config';
import type { WeightCatalog } from '../../main/engine/nets/weight-catalog';
import { torchRandn } from '../../main/engine/random/torch-randn';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { catalogOf } from '../../main/engine/weights/catalog';
import { openComponentWeights } from '../../main/engine/weights/component-weights';
import { writeTinyModel } from '../../main/models/tiny-model';
import { FINETUNE_KIT_MODEL, finetuneKitConfig, kitFloat32, kitNpy, KIT_REL_L2_FLOOR, relativeL2 } from '../helpers/finetune-kit';
import { maxAbsDiff } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';

const STEPS = [1, 2, 3];
/** Fused and primitive graphs compute the same function; this is how closely they must agree (relative L2). */
const SAME_FUNCTION = 1e-6;

const temp = makeTempDir('blip-vae-encoder-');
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

async function openVae(dir: string): Promise<{ catalog: WeightCatalog; folder: string; config: unknown }> {
  const { catalog, externalDataFolder } = catalogOf(await openComponentWeights(dir, { cacheDir: join(temp.path, 'cache') }));
  return { catalog, folder: externalDataFolder, config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as unknown };
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

const float32Feed = (dims: readonly number[], data: Float32Array) => ({ type: 'float32' as const, dims: [...dims], data });

describe('VAE encoder with sampling (fine-tune kit, step 2: latent_dist mean/std, latents = (mean + std·ε)·scaling_factor)', () => {
  const config = finetuneKitConfig();
  const pixels = kitNpy('target_pixels');

  for (const fused of [true, false]) {
    it(`${fused ? 'fused' : 'primitive'} ops: latent_mean, latent_std and latents of steps 1-3 within 1e-4 relative L2`, async ({ annotate }) => {
      const vae = await openVae(join(FINETUNE_KIT_MODEL, 'vae'));
      const [batch, , height, width] = pixels.shape as [number, number, number, number];
      expect(batch).toBe(config.batch);
      const graph = buildVaeEncoderSampleGraph(vae.config, vae.catalog, { batch, height, width, fused });
      const report: string[] = [];
      for (const step of STEPS) {
        const eps = kitNpy('vae_eps', step);
        expect(graph.inputs.map((p) => [p.name, p.shape])).toEqual([
          ['image', pixels.shape],
          ['eps', eps.shape],
        ]);
        const outputs = await runGraph(graph, vae.folder, { image: float32Feed(pixels.shape, pixels.data as Float32Array), eps: float32Feed(eps.shape, eps.data as Float32Array) });
        for (const [output, file] of [
          [VAE_ENCODER_SAMPLE_OUTPUTS.mean, 'latent_mean'],
          [VAE_ENCODER_SAMPLE_OUTPUTS.std, 'latent_std'],
          [VAE_ENCODER_SAMPLE_OUTPUTS.latents, 'latents'],
        ] as const) {
          const expected = kitFloat32(file, step);
          expect(outputs[output]?.dims, output).toEqual(kitNpy(file, step).shape);
          const actual = float32Output(outputs, output);
          const error = relativeL2(actual, expected);
          report.push(`step ${step} ${file}: rel L2 ${error.toExponential(2)}, max |a − b| ${maxAbsDiff(actual, expected).toExponential(2)}`);
          expect(error, `step ${step} ${output} vs step_${step}/${file}.npy`).toBeLessThanOrEqual(KIT_REL_L2_FLOOR);
        }
      }
      await annotate(report.join('; '));
    });
  }

  it('the kit scales by the config’s scaling_factor (0.18215 here), which the graph reads from the VAE config', async () => {
    const vae = await openVae(join(FINETUNE_KIT_MODEL, 'vae'));
    expect(parseAutoencoderKLConfig(vae.config).scalingFactor).toBe(config.scaling_factor);
    // The kit's own latents are (mean + std·ε)·scaling_factor of its own mean and std (float32 rounding).
    const [mean, std, eps, latents] = [kitFloat32('latent_mean', 1), kitFloat32('latent_std', 1), kitFloat32('vae_eps', 1), kitFloat32('latents', 1)];
    const recomputed = mean.map((m, i) => Math.fround(Math.fround(m + Math.fround(std[i]! * eps[i]!)) * Math.fround(config.scaling_factor)));
    expect(maxAbsDiff(recomputed, latents)).toBeLessThanOrEqual(1e-7);
  });
});

describe('VAE encoder with sampling: another configuration (make-tiny-model’s VAE: 3 blocks, f = 4, scaling 0.13)', () => {
  const dir = join(temp.path, 'tiny-model');
  beforeAll(() => writeTinyModel(dir, 3));

  it('builds and runs at batch 2, 24×16, with the right shapes; mean/std follow the posterior graph, latents the formula', async () => {
    const vae = await openVae(join(dir, 'vae'));
    const parsed = parseAutoencoderKLConfig(vae.config);
    expect(parsed.blockOutChannels).toHaveLength(3);
    const options = { batch: 2, height: 24, width: 16 };
    const graph = buildVaeEncoderSampleGraph(vae.config, vae.catalog, options);
    const latentShape = [2, parsed.latentChannels, 6, 4];
    expect(graph.inputs.map((p) => [p.name, p.shape])).toEqual([
      ['image', [2, 3, 24, 16]],
      ['eps', latentShape],
    ]);
    expect(graph.outputs.map((p) => [p.name, p.shape])).toEqual([
      ['mean', latentShape],
      ['std', latentShape],
      ['latents', latentShape],
    ]);
    expect(vaeEncoderSampleGraphKey(vae.config, vae.catalog, options)).toBe(graph.cacheKey);
    expect(vaeEncoderSampleGraphKey(vae.config, vae.catalog, { ...options, batch: 1 })).not.toBe(graph.cacheKey);
    expect(graph.cacheKey).not.toBe(buildVaeEncoderGraph(vae.config, vae.catalog, options).cacheKey);

    const image = Float32Array.from(torchRandn(7, [2, 3, 24, 16]), (v) => Math.tanh(v));
    const eps = torchRandn(8, latentShape);
    const outputs = await runGraph(graph, vae.folder, { image: float32Feed([2, 3, 24, 16], image), eps: float32Feed(latentShape, eps) });
    const posterior = await runGraph(buildVaeEncoderGraph(vae.config, vae.catalog, options), vae.folder, { image: float32Feed([2, 3, 24, 16], image) });
    const mean = float32Output(outputs, 'mean');
    const std = float32Output(outputs, 'std');
    expect(relativeL2(mean, float32Output(posterior, 'mean'))).toBeLessThanOrEqual(SAME_FUNCTION);
    const logvar = float32Output(posterior, 'logvar');
    expect(relativeL2(std, logvar.map((v) => Math.exp(0.5 * v)))).toBeLessThanOrEqual(SAME_FUNCTION);
    const expectedLatents = mean.map((m, i) => (m + std[i]! * eps[i]!) * parsed.scalingFactor);
    expect(relativeL2(float32Output(outputs, 'latents'), expectedLatents)).toBeLessThanOrEqual(SAME_FUNCTION);
  });

  it('reads only encoder.* and quant_conv.*, every one of them once, so the decoder still builds against the same folder', async () => {
    const vae = await openVae(join(dir, 'vae'));
    const graph = buildVaeEncoderSampleGraph(vae.config, vae.catalog, { height: 4, width: 4 });
    const names = graph.parameters.map((p) => p.name);
    expect(names.every((n) => n.startsWith('encoder.') || n.startsWith('quant_conv.'))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    expect(names.sort()).toEqual(
      vae.catalog
        .names()
        .filter((n) => n.startsWith('encoder.') || n.startsWith('quant_conv.'))
        .sort(),
    );
    expect(() => buildVaeDecoderGraph(vae.config, vae.catalog, { latentHeight: 1, latentWidth: 1 })).not.toThrow();
  });

  it('refuses an image size that is not a multiple of f', async () => {
    const vae = await openVae(join(dir, 'vae'));
    expect(() => buildVaeEncoderSampleGraph(vae.config, vae.catalog, { height: 24, width: 18 })).toThrow(/width \(18\) must be a multiple of 4/);
  });
});
