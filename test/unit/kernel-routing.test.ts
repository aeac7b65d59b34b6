import { describe, expect, it } from 'vitest';
import { buildClipTextGraph, clipTextGraphKey } from '../../main/engine/nets/clip-text-encoder';
import { kernelChoices, NET_NAMES, netPlacements, placementNotes } from '../../main/engine/providers/kernel-routing';
import { deviceNotesField, parseRecipe, createRecipe, rerunRecipe, type Recipe } from '../../main/gallery/recipe';
import { readSafetensorsCatalog } from '../helpers/net-fixtures';
import { REPO_ROOT } from '../helpers/built-app';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const textEncoder = join(REPO_ROOT, 'test/fixtures/parity/models/tiny-blipdiffusion/text_encoder');

describe('kernel routing: one table says which lowering each provider gets', () => {
  it('WebGPU gets the primitive attention, every other provider the fused one', () => {
    expect(kernelChoices('webgpu')).toEqual({ attention: 'primitive' });
    for (const device of ['cpu', 'cuda', 'dml', 'coreml', 'some-new-provider']) expect(kernelChoices(device)).toEqual({ attention: 'fused' });
  });

  it('the choice reaches the graph: no MultiHeadAttention node with primitive attention, another cache key, the rest still fused', () => {
    const config = JSON.parse(readFileSync(join(textEncoder, 'config.json'), 'utf8')) as unknown;
    const catalog = readSafetensorsCatalog(join(textEncoder, 'model.safetensors'));
    const ops = (attention: 'fused' | 'primitive') => new Set(buildClipTextGraph(config, catalog, { attention }).model.graph.nodes.map((n) => n.opType));
    expect(ops('fused').has('MultiHeadAttention')).toBe(true);
    expect(ops('primitive').has('MultiHeadAttention')).toBe(false);
    expect(ops('primitive').has('Softmax')).toBe(true);
    expect(ops('primitive').has('LayerNormalization')).toBe(true); // only attention changes
    expect(clipTextGraphKey(config, catalog, { attention: 'primitive' })).not.toBe(clipTextGraphKey(config, catalog, { attention: 'fused' }));
    // The primitive op set (fused: false) has primitive attention whatever is asked.
    expect(clipTextGraphKey(config, catalog, { fused: false, attention: 'fused' })).toBe(clipTextGraphKey(config, catalog, { fused: false, attention: 'primitive' }));
  });

  it('placements: plain on CPU, the lowering note on WebGPU, a fallback note when a named provider is unavailable, none for auto', () => {
    const cpu = netPlacements('cpu', 'cpu');
    expect(cpu.map((p) => p.net)).toEqual(NET_NAMES);
    expect(cpu.every((p) => p.device === 'cpu' && p.attention === 'fused' && p.note === null)).toBe(true);
    expect(placementNotes(cpu)).toEqual([]);

    const webgpu = netPlacements('webgpu', 'webgpu');
    expect(webgpu.every((p) => p.device === 'webgpu' && p.attention === 'primitive' && /MatMul \+ Softmax \+ MatMul/.test(p.note ?? ''))).toBe(true);
    expect(placementNotes(webgpu)).toEqual([expect.stringMatching(/^all nets: attention runs as MatMul/)]);
    expect(placementNotes(webgpu.filter((p) => p.net !== 'controlnet'))).toEqual([expect.stringMatching(/^qformer, text_encoder, unet, vae: attention runs/)]);

    const fallback = netPlacements('cuda', 'cpu', 'NVIDIA CUDA is unavailable here');
    expect(fallback.every((p) => p.device === 'cpu' && p.note === 'runs on cpu instead of cuda (NVIDIA CUDA is unavailable here)')).toBe(true);
    expect(netPlacements('auto', 'cpu').every((p) => p.note === null)).toBe(true);
  });
});

describe('recipes record what ran differently on the device', () => {
  const base: Omit<Recipe, 'app' | 'recipeVersion'> = {
    appVersion: '0.1.0',
    model: { name: 'tiny', hash: 'a'.repeat(64) },
    subject: { category: 'dog', reference: { sha256: 'b'.repeat(64) } },
    targetSubject: 'dog',
    prompt: 'on the beach',
    negativePrompt: '',
    seed: '42',
    steps: 4,
    guidanceScale: 7.5,
    scheduler: 'pndm',
    width: 32,
    height: 48,
    promptStrength: 1,
    promptReps: 20,
    device: 'webgpu',
    durationMs: 10,
    createdAt: new Date(0).toISOString(),
  };

  it('a WebGPU run writes version 3 with its notes; a plain CPU run stays version 1 with none', () => {
    const onWebGpu = createRecipe({ ...base, ...deviceNotesField(netPlacements('webgpu', 'webgpu')) });
    expect(onWebGpu.recipeVersion).toBe(3);
    expect(onWebGpu.deviceNotes).toEqual([expect.stringMatching(/fused MultiHeadAttention on WebGPU is wrong/)]);
    const onCpu = createRecipe({ ...base, device: 'cpu', ...deviceNotesField(netPlacements('cpu', 'cpu')) });
    expect(onCpu.recipeVersion).toBe(1);
    expect('deviceNotes' in onCpu).toBe(false);
  });

  it('a rerun records its own device and notes, not the original’s', () => {
    const original = createRecipe({ ...base, ...deviceNotesField(netPlacements('webgpu', 'webgpu')) });
    const rerun = rerunRecipe(original, { appVersion: '0.2.0', device: 'cpu', placements: netPlacements('cpu', 'cpu'), durationMs: 5 });
    expect(rerun).toMatchObject({ device: 'cpu', appVersion: '0.2.0', recipeVersion: 1, prompt: 'on the beach', seed: '42' });
    expect(rerun.deviceNotes).toBeUndefined();
  });

  it('refuses notes in an older version, empty lists, empty or overlong notes', () => {
    const valid = JSON.parse(JSON.stringify(createRecipe({ ...base, ...deviceNotesField(netPlacements('webgpu', 'webgpu')) }))) as Record<string, unknown>;
    expect(() => parseRecipe(valid)).not.toThrow();
    expect(() => parseRecipe({ ...valid, recipeVersion: 2 })).toThrow(/deviceNotes: device notes need recipe version 3/);
    expect(() => parseRecipe({ ...valid, deviceNotes: [] })).toThrow(/deviceNotes/);
    expect(() => parseRecipe({ ...valid, deviceNotes: ['  '] })).toThrow(/deviceNotes/);
    expect(() => parseRecipe({ ...valid, deviceNotes: ['x'.repeat(501)] })).toThrow(/deviceNotes/);
  });
});
