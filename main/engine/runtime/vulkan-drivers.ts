/**
 * Which Vulkan drivers (ICDs) the Vulkan loader will offer Dawn on Linux, and whether they are all
 * software ones (SwiftShader, Mesa's lavapipe): WebGPU through a CPU-emulated GPU is correct but far
 * slower than ONNX Runtime's own CPU provider, so `auto` must not pick it. Follows the loader's rules:
 * VK_DRIVER_FILES / VK_ICD_FILENAMES (colon-separated manifests) replace the search of the standard
 * icd.d folders.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface VulkanDriverManifest {
  manifest: string;
  /** The driver library the manifest names ('' when unreadable). */
  library: string;
  software: boolean;
}

/** Library names of CPU implementations of Vulkan. */
const SOFTWARE_DRIVER = /swiftshader|lvp|lavapipe|llvmpipe/i;

export interface VulkanSearch {
  env: Readonly<Record<string, string | undefined>>;
  platform: string;
  /** The loader's SYSCONFDIR (default /etc). */
  systemConfigDir?: string;
}

export function vulkanDriverManifests(search: VulkanSearch = { env: process.env, platform: process.platform }): VulkanDriverManifest[] {
  if (search.platform !== 'linux') return [];
  const given = search.env['VK_DRIVER_FILES'] || search.env['VK_ICD_FILENAMES'];
  const manifests = given ? given.split(':').filter(Boolean) : standardFolders(search.env, search.systemConfigDir ?? '/etc').flatMap(jsonFilesIn);
  return manifests.map(describe);
}

/**
 * The reason `auto` should pass WebGPU by, or null: only when drivers were found and every one of them
 * is a software renderer.
 */
export function softwareOnlyVulkan(drivers: readonly VulkanDriverManifest[]): string | null {
  if (drivers.length === 0 || !drivers.every((d) => d.software)) return null;
  const names = [...new Set(drivers.map((d) => basename(d.library || d.manifest)))].join(', ');
  return `its only Vulkan driver here is a software renderer (${names}), slower than the CPU provider`;
}

function standardFolders(env: Readonly<Record<string, string | undefined>>, systemConfigDir: string): string[] {
  const dataHome = env['XDG_DATA_HOME'] || (env['HOME'] ? join(env['HOME'], '.local/share') : null);
  const dataDirs = (env['XDG_DATA_DIRS'] || '/usr/local/share:/usr/share').split(':').filter(Boolean);
  const configDirs = (env['XDG_CONFIG_DIRS'] || '/etc/xdg').split(':').filter(Boolean);
  return [...configDirs, systemConfigDir, ...(dataHome ? [dataHome] : []), ...dataDirs].map((dir) => join(dir, 'vulkan', 'icd.d'));
}

function jsonFilesIn(folder: string): string[] {
  if (!existsSync(folder)) return [];
  try {
    return readdirSync(folder)
      .filter((name) => name.endsWith('.json'))
      .map((name) => join(folder, name));
  } catch {
    return [];
  }
}

function describe(manifest: string): VulkanDriverManifest {
  let library = '';
  try {
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: unknown } };
    if (typeof parsed.ICD?.library_path === 'string') library = parsed.ICD.library_path;
  } catch {
    // An unreadable manifest is not a software driver we know of: it keeps `auto` trying WebGPU.
  }
  return { manifest, library, software: SOFTWARE_DRIVER.test(basename(library || manifest)) };
}
