/**
 * `finetune` as a user runs it (the built CLI): the kit's fine-tune end to end from its photos, seed
 * and initial LoRA, against the reference's LoRA file and embedding; --json lines; Ctrl+C and bad
 * input write nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { loraTargets, readLoraFile } from '../../main/engine/weights/lora-weights';
import { BUILT_CLI, requireBuild, runCli } from '../helpers/built-app';
import { FINETUNE_KIT, FINETUNE_KIT_MODEL, finetuneKitConfig, relativeL2 } from '../helpers/finetune-kit';
import { makeTempDir } from '../helpers/temp-dir';

const config = finetuneKitConfig() as ReturnType<typeof finetuneKitConfig> & { rank: number; alpha: number; lr_lora: number; lr_embedding: number; weight_decay: number; losses: number[] };
let data: ReturnType<typeof makeTempDir>;

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-finetune-cli-');
});
afterAll(() => data?.remove());

const photos = config.photos.map((photo) => join(FINETUNE_KIT, photo));
const kitArgs = (out: string) => [
  '--data-dir', data.path, 'finetune', '--model', FINETUNE_KIT_MODEL, '--photo', ...photos, '--category', config.category, '--out', out,
  '--steps', String(config.steps), '--seed', String(config.seed), '--init-lora', join(FINETUNE_KIT, 'lora_init.safetensors'), '--rank', String(config.rank), '--alpha', String(config.alpha),
  '--lr-lora', String(config.lr_lora), '--lr-embedding', String(config.lr_embedding), '--weight-decay', String(config.weight_decay), '--resolution', String(config.resolution), '--device', 'cpu',
];

describe('finetune', () => {
  it('fine-tunes the kit’s subject from its photos as the reference does, and writes the diffusers LoRA file and the embedding', () => {
    const out = join(data.path, 'kit-run');
    const result = runCli([...kitArgs(out), '--json']);
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { step: number; loss: number; ms: number });
    expect(lines.map((line) => line.step)).toEqual([1, 2, 3]);
    lines.forEach((line, i) => {
      expect(Math.abs(line.loss - config.losses[i]!) / config.losses[i]!).toBeLessThan(config.tolerances.loss_rel);
      expect(line.ms).toBeGreaterThanOrEqual(0);
    });

    const targets = loraTargets(JSON.parse(readFileSync(join(FINETUNE_KIT_MODEL, 'unet/config.json'), 'utf8')));
    const ours = readLoraFile(new Uint8Array(readFileSync(join(out, 'pytorch_lora_weights.safetensors'))), targets).lora;
    const reference = readLoraFile(new Uint8Array(readFileSync(join(FINETUNE_KIT, 'pytorch_lora_weights.safetensors'))), targets).lora;
    for (const target of targets) {
      expect(relativeL2(ours.modules.get(target.module)!.down, reference.modules.get(target.module)!.down), target.module).toBeLessThan(config.tolerances.lora_rel_l2);
      expect(relativeL2(ours.modules.get(target.module)!.up, reference.modules.get(target.module)!.up), target.module).toBeLessThan(config.tolerances.lora_rel_l2);
    }
    const embedding = readNpyFile(join(out, 'subject_embedding.npy'));
    const expected = readNpyFile(join(FINETUNE_KIT, 'subject_embedding.npy'));
    expect(embedding.shape).toEqual(expected.shape);
    expect(relativeL2(embedding.data as Float32Array, expected.data as Float32Array)).toBeLessThan(config.tolerances.embedding_rel_l2);
  });

  it('stops within a step on Ctrl+C and writes nothing', async () => {
    const out = join(data.path, 'interrupted');
    const child = spawn(process.execPath, [BUILT_CLI, ...kitArgs(out).map((arg) => (arg === String(config.steps) ? '500' : arg)), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let interrupted = false;
    child.stdout.on('data', () => {
      if (interrupted) return;
      interrupted = true;
      child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(interrupted).toBe(true);
    expect(code).toBe(130);
    expect(existsSync(join(out, 'pytorch_lora_weights.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'subject_embedding.npy'))).toBe(false);
  });

  it('refuses bad input with the reason and writes nothing', () => {
    const out = join(data.path, 'refused');
    const base = ['--data-dir', data.path, 'finetune', '--model', FINETUNE_KIT_MODEL, '--category', 'dog', '--out', out, '--device', 'cpu'];
    const unreadable = runCli([...base, '--photo', join(FINETUNE_KIT, 'config.json')]);
    expect(unreadable.status).not.toBe(0);
    expect(unreadable.stderr).toMatch(/config\.json.*image/i);
    const odd = runCli([...base, '--photo', photos[0]!, '--resolution', '33']);
    expect(odd.stderr).toMatch(/resolution must be a positive multiple of 2 \(the VAE's downscaling factor\), got 33/);
    expect(runCli([...base, '--photo', photos[0]!, '--steps', '0']).stderr).toMatch(/--steps must be a positive integer/);
    expect(runCli([...base, '--photo', photos[0]!, '--init-lora', join(FINETUNE_KIT, 'target_pixels.npy')]).stderr).toMatch(/target_pixels\.npy|not a LoRA/);
    expect(existsSync(out)).toBe(false);
  });
});
