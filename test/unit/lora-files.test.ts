/**
 * LoRA files: the model's adapter targets, diffusers' format byte for byte against the kit's file, the
 * alpha fold/unfold rule, kohya/A1111 files, and every refusal naming its keys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TorchGenerator } from '../../main/engine/random/torch-randn';
import { kohyaName, LoraFileError, loraTargets, readLoraFile, writeDiffusersLora, type LoraWeights } from '../../main/engine/weights/lora-weights';
import { parseSafetensorsHeader } from '../../main/engine/weights/safetensors';
import { serializeSafetensors } from '../../main/engine/weights/safetensors-writer';
import { REPO_ROOT } from '../helpers/built-app';
import { FINETUNE_KIT, FINETUNE_KIT_MODEL, finetuneKitConfig } from '../helpers/finetune-kit';

const unetConfig = JSON.parse(readFileSync(join(FINETUNE_KIT_MODEL, 'unet/config.json'), 'utf8')) as Record<string, unknown>;
const targets = loraTargets(unetConfig);
const kitBytes = (name: string) => new Uint8Array(readFileSync(join(FINETUNE_KIT, name)));
const config = finetuneKitConfig() as ReturnType<typeof finetuneKitConfig> & { lora_file_keys: string[]; rank: number; alpha: number; lora_init_seed: number; up_init_std: number };
const f32 = (values: Float32Array) => new Uint8Array(Float32Array.from(values).buffer);

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('the adapter targets of a UNet', () => {
  it('are exactly the modules of the kit’s LoRA file, with their features', () => {
    const fromKit = [...new Set(config.lora_file_keys.map((key) => key.replace(/^unet\./, '').replace(/\.lora\.(down|up)\.weight$/, '')))];
    expect(targets.map((t) => t.module).sort()).toEqual(fromKit.sort());
    const { lora } = readLoraFile(kitBytes('pytorch_lora_weights.safetensors'), targets);
    for (const target of targets) {
      const adapter = lora.modules.get(target.module)!;
      expect(adapter.down.length).toBe(config.rank * target.inFeatures);
      expect(adapter.up.length).toBe(target.outFeatures * config.rank);
    }
  });

  it('are what the kit’s files hold: both have exactly config.json’s lora_file_keys', () => {
    for (const name of ['pytorch_lora_weights.safetensors', 'lora_init.safetensors']) {
      const bytes = kitBytes(name);
      const keys = parseSafetensorsHeader(bytes, bytes.length, name).tensors.map((t) => t.name);
      expect([...keys].sort(), name).toEqual([...config.lora_file_keys].sort());
      expect(readLoraFile(bytes, targets).lora.modules.size, name).toBe(targets.length);
    }
  });

  it('come in unet.named_modules() order: drawing in it reproduces the kit’s lora_init', () => {
    const { lora } = readLoraFile(kitBytes('lora_init.safetensors'), targets);
    const generator = new TorchGenerator(config.lora_init_seed);
    for (const target of targets) {
      const down = generator.randn([config.rank, target.inFeatures]).map((v) => Math.fround(v / config.rank));
      const up = generator.randn([target.outFeatures, config.rank]).map((v) => Math.fround(v * config.up_init_std));
      expect(maxAbsDifference(down, lora.modules.get(target.module)!.down), target.module).toBeLessThan(1e-7);
      expect(maxAbsDifference(up, lora.modules.get(target.module)!.up), target.module).toBeLessThan(1e-7);
    }
  });
});

describe('diffusers’ pytorch_lora_weights.safetensors', () => {
  it('reads the kit’s file and writes it back byte for byte', () => {
    const bytes = kitBytes('pytorch_lora_weights.safetensors');
    const read = readLoraFile(bytes, targets);
    expect(read.format).toBe('diffusers');
    expect(read.skipped).toEqual([]);
    expect(Buffer.from(writeDiffusersLora(read.lora)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('folds alpha / r into up on export and unfolds it for further training', () => {
    const { lora: effective } = readLoraFile(kitBytes('pytorch_lora_weights.safetensors'), targets);
    const raw: LoraWeights = { rank: effective.rank, alpha: 8, modules: effective.modules };
    const file = writeDiffusersLora(raw);
    const asFile = readLoraFile(file, targets).lora;
    const asRaw = readLoraFile(file, targets, { alpha: 8 }).lora;
    expect(asRaw.alpha).toBe(8);
    for (const target of targets) {
      const original = raw.modules.get(target.module)!.up;
      expect(maxAbsDifference(asFile.modules.get(target.module)!.up, original.map((v) => Math.fround(v * 2)))).toBe(0);
      expect(maxAbsDifference(asRaw.modules.get(target.module)!.up, original)).toBe(0);
    }
  });
});

describe('kohya / A1111 SD-1.5 LoRA files', () => {
  it('map back to the model’s modules, apply alpha / r, and skip the text encoder’s tensors', () => {
    const { lora } = readLoraFile(kitBytes('pytorch_lora_weights.safetensors'), targets);
    const alpha = 2;
    const tensors = [...lora.modules].flatMap(([module, adapter]) => [
      { name: `lora_unet_${kohyaName(module)}.lora_down.weight`, dtype: 'F32' as const, shape: [lora.rank, adapter.down.length / lora.rank], data: f32(adapter.down) },
      // Stored so that alpha/r · up equals the diffusers file's up.
      { name: `lora_unet_${kohyaName(module)}.lora_up.weight`, dtype: 'F32' as const, shape: [adapter.up.length / lora.rank, lora.rank], data: f32(adapter.up.map((v) => (v * lora.rank) / alpha)) },
      { name: `lora_unet_${kohyaName(module)}.alpha`, dtype: 'F32' as const, shape: [], data: f32(Float32Array.of(alpha)) },
    ]);
    tensors.push({ name: 'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight', dtype: 'F32', shape: [4, 32], data: f32(new Float32Array(128)) });
    const read = readLoraFile(serializeSafetensors(tensors), targets);
    expect(read.format).toBe('kohya');
    expect(read.skipped).toEqual(['lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight (text encoder: not applied)']);
    for (const target of targets) {
      const expected = lora.modules.get(target.module)!;
      expect(maxAbsDifference(read.lora.modules.get(target.module)!.down, expected.down)).toBe(0);
      expect(maxAbsDifference(read.lora.modules.get(target.module)!.up, expected.up)).toBeLessThan(1e-7);
    }
  });
});

describe('refusals name the offending keys', () => {
  const kit = readLoraFile(kitBytes('pytorch_lora_weights.safetensors'), targets).lora;
  const first = [...kit.modules.keys()][0]!;
  const fileWith = (edit: (tensors: { name: string; dtype: 'F32'; shape: number[]; data: Uint8Array }[]) => void) => {
    const tensors = [...kit.modules].flatMap(([module, adapter]) => [
      { name: `unet.${module}.lora.down.weight`, dtype: 'F32' as const, shape: [kit.rank, adapter.down.length / kit.rank], data: f32(adapter.down) },
      { name: `unet.${module}.lora.up.weight`, dtype: 'F32' as const, shape: [adapter.up.length / kit.rank, kit.rank], data: f32(adapter.up) },
    ]);
    edit(tensors);
    return serializeSafetensors(tensors);
  };
  const refusal = (bytes: Uint8Array) => {
    try {
      readLoraFile(bytes, targets, { file: 'x.safetensors' });
    } catch (error) {
      expect(error).toBeInstanceOf(LoraFileError);
      return (error as Error).message;
    }
    throw new Error('the file was accepted');
  };

  it('refuses shapes that do not fit, a missing up, conv adapters, unknown keys and NaN', () => {
    expect(refusal(fileWith((t) => (t[0] = { ...t[0]!, shape: [4, 8], data: f32(new Float32Array(32)) })))).toMatch(new RegExp(`'unet\\.${first.replace(/\./g, '\\.')}\\.lora\\.down\\.weight' is \\[4, 8\\], but .* reads 16 features`));
    expect(refusal(fileWith((t) => t.splice(1, 1)))).toMatch(new RegExp(`${first.replace(/\./g, '\\.')} has a down tensor but no up`));
    expect(refusal(fileWith((t) => (t[0] = { ...t[0]!, shape: [4, 16, 1, 1] })))).toMatch(/only 2-D \(linear\) adapters are supported, not conv LoRA/);
    expect(refusal(fileWith((t) => t.push({ name: 'unet.conv_in.lora.down.weight', dtype: 'F32', shape: [1], data: f32(new Float32Array(1)) })))).toMatch(/'unet\.conv_in\.lora\.down\.weight' is not a LoRA tensor of this UNet/);
    expect(refusal(fileWith((t) => (t[0] = { ...t[0]!, data: f32(new Float32Array(64).fill(Number.NaN)) })))).toMatch(/holds NaN or infinite values/);
    expect(refusal(serializeSafetensors([]))).toMatch(/holds no LoRA tensors for this UNet/);
  });

  it('refuses kohya conv and non-attention adapters, lone tensors, rank 0, a non-scalar alpha and integer data, naming the keys', () => {
    const t0 = targets[0]!;
    const k = `lora_unet_${kohyaName(t0.module)}`;
    const zeros = (n: number) => f32(new Float32Array(n));
    const adapter = (rank: number) => [
      { name: `${k}.lora_down.weight`, dtype: 'F32' as const, shape: [rank, t0.inFeatures], data: zeros(rank * t0.inFeatures) },
      { name: `${k}.lora_up.weight`, dtype: 'F32' as const, shape: [t0.outFeatures, rank], data: zeros(rank * t0.outFeatures) },
    ];
    const conv = 'lora_unet_down_blocks_0_resnets_0_conv1';
    const convFile = serializeSafetensors([
      ...adapter(4),
      { name: `${conv}.lora_down.weight`, dtype: 'F32', shape: [4, 16, 3, 3], data: zeros(4 * 16 * 9) },
      { name: `${conv}.lora_up.weight`, dtype: 'F32', shape: [16, 4, 1, 1], data: zeros(64) },
    ]);
    const convMessage = refusal(convFile);
    expect(convMessage).toContain(`'${conv}.lora_down.weight' is not a LoRA tensor of this UNet's attention projections`);
    expect(convMessage).toContain(`'${conv}.lora_up.weight' is not a LoRA tensor`);
    // A kohya conv adapter on a name that is an attention projection: refused for its 4-D shape.
    expect(refusal(serializeSafetensors([{ ...adapter(4)[0]!, shape: [4, t0.inFeatures, 1, 1] }, adapter(4)[1]!]))).toContain(`'${k}.lora_down.weight' has shape [4, ${t0.inFeatures}, 1, 1]: only 2-D (linear) adapters are supported, not conv LoRA`);
    expect(refusal(serializeSafetensors([{ name: `${k}.alpha`, dtype: 'F32', shape: [], data: zeros(1) }]))).toContain(`${t0.module} has an alpha tensor but no down or up`);
    expect(refusal(serializeSafetensors(adapter(0)))).toContain(`'${k}.lora_down.weight' has rank 0`);
    expect(refusal(serializeSafetensors([...adapter(4), { name: `${k}.alpha`, dtype: 'F32', shape: [3], data: zeros(3) }]))).toContain(`'${k}.alpha' is [3], not a scalar`);
    expect(refusal(serializeSafetensors([{ ...adapter(4)[0]!, dtype: 'I32' as never }, adapter(4)[1]!]))).toContain(`'${k}.lora_down.weight' is I32, not a float type`);
    expect(refusal(serializeSafetensors([...adapter(4), { name: `${k}.alpha`, dtype: 'F32', shape: [], data: f32(Float32Array.of(Number.POSITIVE_INFINITY)) }]))).toContain(`'${k}.alpha' holds NaN or infinite values`);
  });

  it('skips diffusers’ text-encoder tensors with a note, as kohya’s', () => {
    const bytes = fileWith((t) => t.push({ name: 'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight', dtype: 'F32', shape: [4, 32], data: f32(new Float32Array(128)) }));
    const read = readLoraFile(bytes, targets);
    expect(read.skipped).toEqual(['text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight (text encoder: not applied)']);
    expect(read.lora.modules.size).toBe(targets.length);
  });

  it('refuses truncated and corrupt files, and the kit’s bad weights', () => {
    const whole = kitBytes('pytorch_lora_weights.safetensors');
    expect(refusal(whole.subarray(0, whole.length - 100))).toMatch(/truncated or corrupt/);
    for (const name of ['huge-header.safetensors', 'offsets-past-end.safetensors']) {
      expect(refusal(new Uint8Array(readFileSync(join(REPO_ROOT, 'test/fixtures/parity/bad-weights', name))))).toMatch(/x\.safetensors/);
    }
  });
});
