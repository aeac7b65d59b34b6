/**
 * How many intra-op threads "one per core" means. ORT 1.30's own default picked ONE thread on this
 * 2-core Linux VM (a 3×3-conv chain: 160 ms/run at the default, 79 ms with 2 threads, CPU share 0.5 → 1.0),
 * so on Linux we count physical cores ourselves: distinct thread-sibling sets in sysfs (hyper-threads share
 * a core and do not speed GEMM up), capped by the CPUs this process may use. Elsewhere ORT's default stands.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** 0 means "leave it to ORT". */
export function defaultIntraOpThreads(): number {
  if (process.platform !== 'linux') return 0;
  try {
    const root = '/sys/devices/system/cpu';
    const cores = new Set<string>();
    for (const name of readdirSync(root)) {
      if (!/^cpu\d+$/.test(name)) continue;
      try {
        cores.add(readFileSync(`${root}/${name}/topology/thread_siblings_list`, 'utf8').trim());
      } catch {
        // An offline CPU has no topology: it does not count.
      }
    }
    return cores.size > 0 ? Math.min(cores.size, availableParallelism()) : availableParallelism();
  } catch {
    return availableParallelism();
  }
}
