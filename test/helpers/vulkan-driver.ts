/**
 * Finds a Vulkan driver for the WebGPU tests. A machine's own GPU driver is used when VK_ICD_FILENAMES
 * names one; otherwise the SwiftShader Vulkan driver that Debian's `chromium` package ships, a CPU
 * implementation of Vulkan: the WebGPU provider runs the same kernels through it as through a real
 * GPU's driver, only slowly. Tests that need it skip, with this reason, where neither exists.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
/** Where Debian's libvulkan1 (the Vulkan loader Dawn opens) installs libvulkan.so.1. */
const VULKAN_LOADER_PATHS = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib/libvulkan.so.1', '/usr/lib64/libvulkan.so.1'];

export interface VulkanDriver {
  /** The ICD manifest in use. */
  icd: string;
  /** 'swiftshader' when it is Chromium's software driver. */
  kind: 'swiftshader' | 'system';
}

/**
 * Points this process's Vulkan loader at a driver (before any WebGPU session starts) and says which;
 * or returns the reason there is none (the tests then skip with it).
 */
export function useVulkanDriver(): { driver: VulkanDriver; skipReason: null } | { driver: null; skipReason: string } {
  if (process.platform !== 'linux') return { driver: null, skipReason: 'the WebGPU parity suite drives Vulkan through SwiftShader, which this project sets up on Linux only' };
  if (!VULKAN_LOADER_PATHS.some((path) => existsSync(path))) {
    return { driver: null, skipReason: 'no Vulkan loader (libvulkan.so.1): `apt-get install libvulkan1` (.ci/run installs it)' };
  }
  const given = process.env['VK_ICD_FILENAMES'];
  if (given !== undefined && given !== '' && given !== SWIFTSHADER_ICD) return { driver: { icd: given, kind: 'system' }, skipReason: null };
  if (!existsSync(SWIFTSHADER_ICD)) {
    return { driver: null, skipReason: `no Vulkan driver: SwiftShader's ${SWIFTSHADER_ICD} comes with Debian's chromium package (.ci/run installs it)` };
  }
  process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
  // Dawn warns without a runtime directory; a private one keeps the run self-contained.
  process.env['XDG_RUNTIME_DIR'] ??= mkdtempSync(join(tmpdir(), 'blip-xdg-'));
  return { driver: { icd: SWIFTSHADER_ICD, kind: 'swiftshader' }, skipReason: null };
}
