/**
 * This process's memory from /proc (Linux): resident set split into anonymous memory (copies the
 * process made) and file-backed memory (memory-mapped weights, shared and evictable), plus the peak.
 * The ORT worker is a thread of this process, so its allocations count here too.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface MemorySample {
  rssBytes: number;
  anonBytes: number | null;
  fileBytes: number | null;
  peakRssBytes: number | null;
}

function field(status: string, name: string): number | null {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : null;
}

export function sampleMemory(): MemorySample {
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    // Not Linux: only the RSS Node reports.
  }
  return {
    rssBytes: process.memoryUsage.rss(),
    anonBytes: field(status, 'RssAnon'),
    fileBytes: field(status, 'RssFile'),
    peakRssBytes: field(status, 'VmHWM'),
  };
}

/** Resets the peak (VmHWM) so a later sample's peak covers only what follows; false where unsupported. */
export function resetPeakMemory(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export interface MemoryMaxima {
  samples: number;
  rssBytes: number;
  anonBytes: number | null;
  fileBytes: number | null;
}

/**
 * Samples memory every `intervalMs` on the main thread (free while the ORT worker computes) and keeps
 * the maxima: /proc has a peak for RSS only, and the anonymous peak is the figure that says whether
 * weights were copied.
 */
export function watchMemory(intervalMs = 100): { stop: () => MemoryMaxima } {
  const maxima: MemoryMaxima = { samples: 0, rssBytes: 0, anonBytes: null, fileBytes: null };
  const take = () => {
    const sample = sampleMemory();
    maxima.samples += 1;
    maxima.rssBytes = Math.max(maxima.rssBytes, sample.rssBytes);
    if (sample.anonBytes !== null) maxima.anonBytes = Math.max(maxima.anonBytes ?? 0, sample.anonBytes);
    if (sample.fileBytes !== null) maxima.fileBytes = Math.max(maxima.fileBytes ?? 0, sample.fileBytes);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return maxima;
    },
  };
}
