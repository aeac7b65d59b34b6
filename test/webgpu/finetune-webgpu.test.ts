/**
 * The fine-tune's training graph on the WebGPU execution provider (through SwiftShader where there is
 * no GPU): the kit's first step, its loss and every trained tensor after the update against the
 * reference. One step only: SwiftShader runs the training graph at about 30 s a step.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import { finetune } from '../../main/engine/pipelines/finetune';
import { kitSafetensors, kitTrainingSetup, relativeL2 } from '../helpers/finetune-kit';
import { makeTempDir } from '../helpers/temp-dir';
import { useVulkanDriver } from '../helpers/vulkan-driver';
import { startTestRuntime } from '../helpers/worker-bundle';

const vulkan = useVulkanDriver();
let testRuntime: Awaited<ReturnType<typeof startTestRuntime>> | undefined;
let cache: ReturnType<typeof makeTempDir> | undefined;
let context: EngineContext;

beforeAll(async () => {
  if (vulkan.skipReason !== null) return;
  testRuntime = await startTestRuntime();
  cache = makeTempDir('blip-finetune-webgpu-');
  context = { runtime: testRuntime.runtime, device: 'webgpu', cacheDir: cache.path };
});
afterAll(async () => {
  await testRuntime?.stop();
  cache?.remove();
});

describe.skipIf(vulkan.skipReason !== null)(`the fine-tune on WebGPU (${vulkan.skipReason ?? vulkan.driver?.icd})`, () => {
  it('trains the kit’s first step as the reference does', async () => {
    const setup = await kitTrainingSetup();
    const notes: string[] = [];
    const result = await finetune({ ...context, onDeviceNote: (note) => notes.push(note) }, setup.request({ steps: 1 }));
    // It ran on WebGPU itself, not a silent CPU fallback.
    expect(notes.filter((note) => /fall|cpu/i.test(note))).toEqual([]);
    const { tolerances, losses } = setup.config;
    expect(Math.abs(result.losses[0]! - losses[0]!) / losses[0]!).toBeLessThan(tolerances.loss_rel);
    const expected = await kitSafetensors('params_after_step_1.safetensors');
    expect(relativeL2(result.embedding.data, expected.get('subject_embedding')!.data)).toBeLessThan(tolerances.embedding_rel_l2);
    for (const target of setup.targets) {
      const adapter = result.lora.modules.get(target.module)!;
      expect(relativeL2(adapter.down, expected.get(`${target.module}.lora.down.weight`)!.data), target.module).toBeLessThan(tolerances.lora_rel_l2);
      expect(relativeL2(adapter.up, expected.get(`${target.module}.lora.up.weight`)!.data), target.module).toBeLessThan(tolerances.lora_rel_l2);
    }
  });
});
