import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { softwareOnlyVulkan, vulkanDriverManifests } from '../../main/engine/runtime/vulkan-drivers';
import { makeTempDir } from '../helpers/temp-dir';

const dir = makeTempDir('blip-vulkan-');
afterAll(() => dir.remove());

function manifest(folder: string, name: string, library: string): string {
  mkdirSync(folder, { recursive: true });
  const path = join(folder, name);
  writeFileSync(path, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.3.0' } }));
  return path;
}

describe('Vulkan drivers: auto passes WebGPU by when only a software renderer would run it', () => {
  const icd = join(dir.path, 'share/vulkan/icd.d');
  const swiftshader = manifest(join(dir.path, 'chromium'), 'vk_swiftshader_icd.json', './libvk_swiftshader.so');
  const lavapipe = manifest(icd, 'lvp_icd.x86_64.json', '/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so');
  const env = (extra: Record<string, string>) => ({ env: { HOME: join(dir.path, 'home'), XDG_DATA_DIRS: join(dir.path, 'share'), XDG_CONFIG_DIRS: join(dir.path, 'none'), ...extra }, platform: 'linux', systemConfigDir: join(dir.path, 'etc') });

  it('VK_ICD_FILENAMES naming SwiftShader: software only, with the driver named', () => {
    const drivers = vulkanDriverManifests(env({ VK_ICD_FILENAMES: swiftshader }));
    expect(drivers).toEqual([{ manifest: swiftshader, library: './libvk_swiftshader.so', software: true }]);
    expect(softwareOnlyVulkan(drivers)).toMatch(/software renderer \(libvk_swiftshader\.so\), slower than the CPU provider/);
  });

  it('the icd.d search finds lavapipe alone: software only; beside a hardware driver: not', () => {
    expect(softwareOnlyVulkan(vulkanDriverManifests(env({})))).toMatch(/libvulkan_lvp\.so/);
    const nvidia = manifest(icd, 'nvidia_icd.json', 'libGLX_nvidia.so.0');
    try {
      const drivers = vulkanDriverManifests(env({}));
      expect(drivers.map((d) => d.manifest).sort()).toEqual([lavapipe, nvidia].sort());
      expect(softwareOnlyVulkan(drivers)).toBeNull();
    } finally {
      writeFileSync(nvidia, 'not json'); // an unreadable manifest counts as a possible hardware driver
      expect(softwareOnlyVulkan(vulkanDriverManifests(env({})))).toBeNull();
    }
  });

  it('no drivers found, or not Linux: nothing to say (WebGPU is tried as usual)', () => {
    expect(vulkanDriverManifests({ env: { XDG_DATA_DIRS: join(dir.path, 'nothing'), XDG_CONFIG_DIRS: join(dir.path, 'none') }, platform: 'linux', systemConfigDir: join(dir.path, 'etc') })).toEqual([]);
    expect(softwareOnlyVulkan([])).toBeNull();
    expect(vulkanDriverManifests({ env: { VK_ICD_FILENAMES: swiftshader }, platform: 'win32' })).toEqual([]);
  });
});
