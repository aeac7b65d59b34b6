/**
 * `generate --lora --lora-scale --embedding` against the fine-tune kit's inference with the trained
 * LoRA (README "Files": a fresh pipeline, the LoRA loaded from the file, the trained embedding in place
 * of get_query_embeddings, 4 PNDM steps at scales 1.0 and 0.5), scale 0 = no LoRA bit for bit, a kohya
 * twin of the file gives the same image, refusals, and the recipe: the LoRA and embedding files by hash,
 * reproduced only when given again.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpyFile, writeNpyFile } from '../../main/engine/io/npy-file';
import { kohyaName, loraTargets, readLoraFile } from '../../main/engine/weights/lora-weights';
import { writeSafetensorsFile } from '../../main/engine/weights/safetensors-writer';
import { requireBuild, runCli } from '../helpers/built-app';
import { FINETUNE_KIT, FINETUNE_KIT_MODEL, finetuneKitConfig } from '../helpers/finetune-kit';
import { sha256OfFile } from '../../main/gallery/recipe-files';
import { makeTempDir } from '../helpers/temp-dir';

const config = finetuneKitConfig() as ReturnType<typeof finetuneKitConfig> & { inference_prompt: string; inference_steps: number; guidance_scale: number };
const kitLora = join(FINETUNE_KIT, 'pytorch_lora_weights.safetensors');
let data: ReturnType<typeof makeTempDir>;

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-lora-generate-');
});
afterAll(() => data?.remove());

function generate(name: string, extra: string[]): { status: number | null; stderr: string; image: Float32Array | null } {
  const out = join(data.path, `${name}.npy`);
  const result = runCli([
    '--data-dir', data.path, 'generate', '--model', FINETUNE_KIT_MODEL, '--embedding', join(FINETUNE_KIT, 'subject_embedding.npy'), '--subject', config.category,
    '--prompt', config.inference_prompt, '--latents', join(FINETUNE_KIT, 'inference_latents.npy'), '--steps', String(config.inference_steps), '--guidance', String(config.guidance_scale),
    '--height', String(config.resolution), '--width', String(config.resolution), '--device', 'cpu', '--out', join(data.path, `${name}.png`), '--out-npy', out, '--no-library', ...extra,
  ]);
  return { status: result.status, stderr: result.stderr, image: result.status === 0 ? (readNpyFile(out).data as Float32Array) : null };
}

const maxAbsDifference = (a: Float32Array, b: Float32Array) => a.reduce((max, v, i) => Math.max(max, Math.abs(v - b[i]!)), 0);

describe('generate with a LoRA and a given subject embedding', () => {
  it('matches the reference at LoRA scales 1.0 and 0.5', () => {
    for (const scale of ['1.0', '0.5']) {
      const run = generate(`scale-${scale}`, ['--lora', kitLora, '--lora-scale', scale]);
      expect(run.status, run.stderr).toBe(0);
      const expected = readNpyFile(join(FINETUNE_KIT, `inference_scale_${scale}.npy`)).data as Float32Array;
      expect(maxAbsDifference(run.image!, expected), `scale ${scale}`).toBeLessThan(config.tolerances.image_max_abs);
    }
  });

  it('at scale 0 equals no LoRA exactly, and a kohya file of the same LoRA gives the same image', () => {
    const none = generate('none', []);
    const zero = generate('zero', ['--lora', kitLora, '--lora-scale', '0']);
    expect(maxAbsDifference(zero.image!, none.image!)).toBe(0);
    const targets = loraTargets(JSON.parse(readFileSync(join(FINETUNE_KIT_MODEL, 'unet/config.json'), 'utf8')));
    const { lora } = readLoraFile(new Uint8Array(readFileSync(kitLora)), targets);
    const alpha = 8;
    const bytes = (values: Float32Array) => new Uint8Array(Float32Array.from(values).buffer);
    const kohya = join(data.path, 'kohya.safetensors');
    writeSafetensorsFile(
      kohya,
      [...lora.modules].flatMap(([module, adapter]) => [
        { name: `lora_unet_${kohyaName(module)}.lora_down.weight`, dtype: 'F32' as const, shape: [lora.rank, adapter.down.length / lora.rank], data: bytes(adapter.down) },
        { name: `lora_unet_${kohyaName(module)}.lora_up.weight`, dtype: 'F32' as const, shape: [adapter.up.length / lora.rank, lora.rank], data: bytes(adapter.up.map((v) => (v * lora.rank) / alpha)) },
        { name: `lora_unet_${kohyaName(module)}.alpha`, dtype: 'F32' as const, shape: [], data: bytes(Float32Array.of(alpha)) },
      ]),
    );
    const diffusers = generate('diffusers', ['--lora', kitLora]);
    const fromKohya = generate('kohya', ['--lora', kohya]);
    expect(fromKohya.status, fromKohya.stderr).toBe(0);
    expect(maxAbsDifference(fromKohya.image!, diffusers.image!)).toBeLessThan(1e-5);
    expect(maxAbsDifference(diffusers.image!, none.image!)).toBeGreaterThan(1e-2);
  });

  it('refuses a LoRA for another model and a wrong embedding, saying why', () => {
    const wrong = join(data.path, 'wrong.safetensors');
    const module = 'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q';
    writeSafetensorsFile(wrong, [
      { name: `${module}.lora.down.weight`, dtype: 'F32', shape: [4, 320], data: new Uint8Array(4 * 320 * 4) },
      { name: `${module}.lora.up.weight`, dtype: 'F32', shape: [320, 4], data: new Uint8Array(320 * 4 * 4) },
    ]);
    const misfit = generate('misfit', ['--lora', wrong]);
    expect(misfit.status).not.toBe(0);
    expect(misfit.stderr).toMatch(/wrong\.safetensors is not a LoRA for this model: .*attn1\.to_q\.lora\.down\.weight' is \[4, 320\], but .* reads 16 features/);
    const embedding = join(data.path, 'embedding.npy');
    writeNpyFile(embedding, { dtype: 'float32', shape: [1, 8, 32], data: new Float32Array(256) });
    const bad = runCli(['--data-dir', data.path, 'generate', '--model', FINETUNE_KIT_MODEL, '--embedding', embedding, '--subject', 'dog', '--prompt', 'x', '--steps', '1', '--out', join(data.path, 'bad.png'), '--device', 'cpu']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/a subject embedding for this model is float32 \[1, 16, 32\], this is float32 \[1, 8, 32\]/);
  });

  it('records the LoRA and the embedding file in the recipe; reproduce needs them given again, checked by hash', () => {
    const embeddingFile = join(FINETUNE_KIT, 'subject_embedding.npy');
    const png = join(data.path, 'with-recipe.png');
    const common = ['--model', FINETUNE_KIT_MODEL, '--subject', config.category, '--prompt', config.inference_prompt, '--steps', '2', '--height', '64', '--width', '64', '--device', 'cpu'];
    const made = runCli(['--data-dir', data.path, 'generate', ...common, '--seed', '7', '--embedding', embeddingFile, '--lora', kitLora, '--lora-scale', '0.5', '--out', png, '--no-library']);
    expect(made.status, made.stderr).toBe(0);
    const recipe = JSON.parse(runCli(['recipe', png, '--json']).stdout) as Record<string, unknown>;
    expect(recipe).toMatchObject({ recipeVersion: 4, seed: '7', lora: { sha256: sha256OfFile(kitLora), scale: 0.5 }, subject: { category: config.category, embedding: { sha256: sha256OfFile(embeddingFile) } } });

    const again = join(data.path, 'again.png');
    const refused = runCli(['--data-dir', data.path, 'reproduce', png, '--out', again]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/this recipe used a LoRA file \(sha256 [0-9a-f]{64}\), which the library does not keep: give the file with --lora/);
    const wrongLora = join(data.path, 'other-lora.safetensors');
    copyFileSync(join(FINETUNE_KIT, 'lora_init.safetensors'), wrongLora);
    const mismatch = runCli(['--data-dir', data.path, 'reproduce', png, '--out', again, '--lora', wrongLora, '--embedding', embeddingFile]);
    expect(mismatch.status).not.toBe(0);
    expect(mismatch.stderr).toMatch(/other-lora\.safetensors is not a LoRA file this recipe used \(its sha256 is [0-9a-f]{64}, the recipe's is [0-9a-f]{64}\)/);
    const noEmbedding = runCli(['--data-dir', data.path, 'reproduce', png, '--out', again, '--lora', kitLora]);
    expect(noEmbedding.stderr).toMatch(/this recipe used a subject embedding file .* give the file with --embedding/);
    const reproduced = runCli(['--data-dir', data.path, 'reproduce', png, '--out', again, '--lora', kitLora, '--embedding', embeddingFile, '--json']);
    expect(reproduced.status, reproduced.stderr).toBe(0);
    expect(JSON.parse(reproduced.stdout)).toMatchObject({ identical: true, sameDevice: true, modelMatches: true });
  });

  it('refuses --lora with a library subject and --lora-scale without --lora, instead of ignoring them', () => {
    const base = ['--data-dir', data.path, 'generate', '--model', FINETUNE_KIT_MODEL, '--subject', 'Rex', '--prompt', 'x', '--steps', '1', '--out', join(data.path, 'x.png'), '--device', 'cpu'];
    const library = runCli([...base, '--lora', kitLora]);
    expect(library.status).not.toBe(0);
    expect(library.stderr).toMatch(/with a library subject \(no --reference\), --lora cannot be used yet/);
    const scaleOnly = runCli([...base, '--embedding', join(FINETUNE_KIT, 'subject_embedding.npy'), '--lora-scale', '0.5']);
    expect(scaleOnly.status).not.toBe(0);
    expect(scaleOnly.stderr).toMatch(/--lora-scale needs a --lora file/);
  });
});
