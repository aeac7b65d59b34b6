/**
 * The CLI on WebGPU, as a user runs it: `info` says where each net runs there and why, and a generation
 * records its device and the attention lowering in the PNG's recipe (recipe version 3). Through
 * SwiftShader where there is no GPU (test/helpers/vulkan-driver.ts); slow, so one small run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BUILT_CLI, REPO_ROOT, requireBuild } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';
import { useVulkanDriver } from '../helpers/vulkan-driver';

const vulkan = useVulkanDriver();
const kit = join(REPO_ROOT, 'test/fixtures/parity');
let data: ReturnType<typeof makeTempDir>;

beforeAll(() => {
  if (vulkan.skipReason !== null) return;
  requireBuild();
  data = makeTempDir('blip-webgpu-cli-');
});
afterAll(() => data?.remove());

/** The built CLI; SwiftShader is slow, so a longer limit than the E2E helper's (the environment carries VK_ICD_FILENAMES). */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BUILT_CLI, '--data-dir', data.path, ...args], { encoding: 'utf8', timeout: 170_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(vulkan.skipReason !== null)(`CLI on WebGPU (${vulkan.skipReason ?? vulkan.driver?.icd})`, () => {
  it('info: WebGPU is available, and every net runs there with the attention lowering and its reason', () => {
    const result = cli('info', '--json');
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { backends: { name: string; available: boolean; note: string | null; nets: { net: string; device: string; attention: string; note: string | null }[] }[] };
    const webgpu = report.backends.find((b) => b.name === 'webgpu');
    expect(webgpu?.available).toBe(true);
    // Through SwiftShader WebGPU is a CPU emulating a GPU: 'auto' must not choose it over the CPU provider.
    if (vulkan.driver?.kind === 'swiftshader') expect(webgpu?.note).toMatch(/software renderer \(libvk_swiftshader\.so\).*'auto' uses the CPU/);
    expect(webgpu?.nets.map((n) => n.net)).toEqual(['qformer', 'text_encoder', 'unet', 'controlnet', 'vae']);
    for (const net of webgpu?.nets ?? []) expect(net).toMatchObject({ device: 'webgpu', attention: 'primitive', note: expect.stringMatching(/fused MultiHeadAttention on WebGPU is wrong/) });
    const cpu = report.backends.find((b) => b.name === 'cpu');
    expect(cpu?.nets.every((n) => n.device === 'cpu' && n.attention === 'fused' && n.note === null)).toBe(true);
    expect(cli('info').stdout).toMatch(/webgpu[\s\S]*all nets: attention runs as MatMul \+ Softmax \+ MatMul/);
  });

  it('generate --device webgpu: the PNG’s recipe names webgpu and the lowering (version 3)', () => {
    const out = join(data.path, 'webgpu.png');
    const generated = cli(
      'generate', '--model', join(kit, 'models/tiny-blipdiffusion'), '--reference', join(kit, 'inputs/reference_image.png'), '--subject', 'dog',
      '--prompt', 'on a sofa', '--steps', '1', '--height', '16', '--width', '16', '--seed', '1', '--device', 'webgpu', '--out', out,
    );
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stderr).toMatch(/on webgpu in/);
    const recipe = JSON.parse(cli('recipe', out, '--json').stdout) as { recipeVersion: number; device: string; deviceNotes?: string[] };
    expect(recipe).toMatchObject({ recipeVersion: 3, device: 'webgpu' });
    expect(recipe.deviceNotes).toEqual([expect.stringMatching(/^qformer, text_encoder, unet, vae: attention runs as MatMul \+ Softmax \+ MatMul/)]);
  });
});
