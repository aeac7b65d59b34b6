/**
 * Subject-driven editing on the WebGPU execution provider against the reference (test/fixtures/edit,
 * scripts/reference-edit.py): the same stages as test/unit/edit-parity.test.ts (inversion, reconstruction,
 * masked edit, paste-back) through `invertImage` / `editImage` on an engine context asking for webgpu, with
 * the manifest tolerances (max(4 × the f32-vs-f64 gap, 1e-5)) widened to 64 × the f32-vs-f64 gap for
 * WebGPU's coarser kernels (measured and justified in helpers/edit-fixtures.ts, RELAXED_GAP_FACTOR). Runs through SwiftShader where there is
 * no GPU (test/helpers/vulkan-driver.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import { editBytes, editMask, expectEditStagesMatch, runEditStages } from '../helpers/edit-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { useVulkanDriver } from '../helpers/vulkan-driver';
import { startTestRuntime } from '../helpers/worker-bundle';

const DEVICE = 'webgpu';
const vulkan = useVulkanDriver();
const temp = makeTempDir('blip-edit-webgpu-');

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>> | undefined;
let context: EngineContext;

beforeAll(async () => {
  if (vulkan.skipReason !== null) return;
  testRuntime = await startTestRuntime();
  const webgpu = (await testRuntime.runtime.listBackends()).find((backend) => backend.name === DEVICE);
  if (!webgpu?.available) throw new Error(`WebGPU does not start on the Vulkan driver ${vulkan.driver?.icd}: ${webgpu?.note ?? 'this ONNX Runtime build has no WebGPU provider'}`);
  context = { runtime: testRuntime.runtime, device: DEVICE, cacheDir: temp.path };
});
afterAll(async () => {
  await testRuntime?.stop();
  temp.remove();
});

describe.skipIf(vulkan.skipReason !== null)(`edit on WebGPU (${vulkan.driver?.kind ?? 'skipped'}: ${vulkan.skipReason ?? vulkan.driver?.icd})`, () => {
  it('every stage within the manifest’s tolerances, on WebGPU; untouched pixels are the source’s bytes', async ({ annotate }) => {
    const stages = await runEditStages(context);
    expect(stages.edit.device, 'the edit ran on WebGPU, not a fallback').toBe(DEVICE);
    expect(stages.inversion.device).toBe(DEVICE);
    const checks = expectEditStagesMatch(stages, true);
    await annotate(Object.entries(checks).map(([k, c]) => `${k}: ${c.gap.toExponential(2)} ≤ ${c.bound.toExponential(2)}`).join('; '));
    const mask = await editMask();
    const source = editBytes('source_u8');
    for (let p = 0; p < mask.length; p++) if (mask[p] === 0) for (let c = 0; c < 3; c++) expect(stages.edit.pasted.data[3 * p + c]).toBe(source[3 * p + c]);
  }, 600_000);
});
