/**
 * How much of the machine a timed window really had: this process's CPU time (all threads, the ORT
 * worker included) next to the busy time of every other process and the hypervisor's steal, from
 * /proc/stat. On a shared 2-core VM another build or test run can halve a figure; this says when.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';

export interface CpuWindow {
  wallSeconds: number;
  /** CPU seconds of this process (user + system, every thread). */
  ownCpuSeconds: number;
  /** CPU seconds the rest of the machine was busy with (null where /proc/stat is unreadable). */
  otherCpuSeconds: number | null;
  /** CPU seconds the hypervisor took away (steal). */
  stealSeconds: number | null;
  /** ownCpuSeconds / (wall × cores): 1 means the whole machine worked for this process. */
  ownShare: number;
}

/** Linux reports /proc/stat in USER_HZ, 100 per second on every mainstream kernel configuration. */
const USER_HZ = 100;

function machineTicks(): { busy: number; steal: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    if ([user, nice, system, irq, softirq, steal].some((v) => v === undefined || Number.isNaN(v))) return null;
    return { busy: user! + nice! + system! + irq! + softirq!, steal: steal! };
  } catch {
    return null;
  }
}

export function startCpuWindow(): { stop: () => CpuWindow } {
  const started = performance.now();
  const ownStart = process.cpuUsage();
  const machineStart = machineTicks();
  return {
    stop: () => {
      const wallSeconds = (performance.now() - started) / 1000;
      const own = process.cpuUsage(ownStart);
      const ownCpuSeconds = (own.user + own.system) / 1e6;
      const machineEnd = machineTicks();
      const delta = machineStart && machineEnd ? { busy: (machineEnd.busy - machineStart.busy) / USER_HZ, steal: (machineEnd.steal - machineStart.steal) / USER_HZ } : null;
      return {
        wallSeconds,
        ownCpuSeconds,
        otherCpuSeconds: delta ? Math.max(0, delta.busy - ownCpuSeconds) : null,
        stealSeconds: delta ? delta.steal : null,
        ownShare: ownCpuSeconds / (wallSeconds * Math.max(cpus().length, 1)),
      };
    },
  };
}
