import { availableParallelism } from 'node:os';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultIntraOpThreads } from '../../main/engine/runtime/cpu-cores';

describe('intra-op threads for "one per core"', () => {
  it.runIf(process.platform === 'linux')('counts physical cores on Linux: at least one, never more than the CPUs this process may use or the CPUs sysfs lists', () => {
    const threads = defaultIntraOpThreads();
    const listed = readdirSync('/sys/devices/system/cpu').filter((name) => /^cpu\d+$/.test(name)).length;
    expect(Number.isInteger(threads)).toBe(true);
    expect(threads).toBeGreaterThanOrEqual(1);
    expect(threads).toBeLessThanOrEqual(Math.min(availableParallelism(), listed));
  });
  it.runIf(process.platform !== 'linux')("leaves the count to ORT elsewhere", () => {
    expect(defaultIntraOpThreads()).toBe(0);
  });
});
