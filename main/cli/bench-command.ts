/**
 * `npm run bench` (`cli bench`): speed and memory figures of this machine as JSON with machine info,
 * written to bench/results/. Ratios are measured in the same run so they compare like with like.
 * The engine section (engine-bench.ts) times UNet/ControlNet/VAE and whole generations at the real
 * SD-1.5 shapes; the fine-tune section (finetune-bench.ts) times training steps at 256² and 512² with 1 and
 * 3 photos; the first-flow sections time creating a subject (3 photos → embeddings cached, real-size
 * Q-Former) and the gallery's first paint with 1,000 generations in Chromium; the control section
 * (control-bench.ts) times the Canny edge map of a 512² photo; the depth section (depth-bench.ts) times
 * Depth Anything V2-Small (real shapes, random weights) at 518² and a photo's whole depth map.
 */
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, totalmem, freemem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import packageJson from '../../package.json' with { type: 'json' };
import { RuntimeClient } from '../engine/runtime/runtime-client';
import { defaultIntraOpThreads } from '../engine/runtime/cpu-cores';
import { openStudio } from '../api/studio';
import { dispatchCall } from '../api/dispatch';
import { benchEmbedding, type EmbeddingBenchResult } from './bench/embedding-bench';
import { benchEngine } from './bench/engine-bench';
import { benchFinetune, formatFinetune, type FinetuneBenchResult } from './bench/finetune-bench';
import { defaultTokenizerDir, ensureRealModelFolders } from './bench/real-model-folder';
import { formatEngine } from './bench/engine-summary';
import { benchSubjectCreation, type SubjectBenchResult } from './bench/subject-bench';
import { benchGallery, DEFAULT_CHROMIUM } from './bench/gallery-bench';
import { formatGallery, formatSubjectCreation, galleryFigures, type GalleryBenchResult } from './bench/flow-summary';
import { benchCanny, formatControl, type CannyBenchResult } from './bench/control-bench';
import { benchDepth, formatDepth, type DepthBenchResult } from './bench/depth-bench';

interface BenchOptions {
  out: string;
  quick?: boolean;
  json?: boolean;
  embedding: boolean;
  engine: boolean;
  finetune: boolean;
  optimizationCompare: boolean;
  device: string;
  realShapes: string;
  cache: string;
  subjectCreation: boolean;
  subjectPhotos: string;
  gallery: boolean;
  chromium: string;
  control: boolean;
  depth: boolean;
}

/** A section that fails is reported as failed; the other figures still get written. */
async function section<T>(run: () => Promise<T>): Promise<T | { failed: string }> {
  try {
    return await run();
  } catch (error) {
    return { failed: error instanceof Error ? error.message : String(error) };
  }
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('Measure the runtime on this machine and write JSON results (with machine info) to bench/results/.')
    .option('--out <dir>', 'folder for the JSON results', 'bench/results')
    .option('--quick', 'shorter runs (for a smoke check of the benchmark itself)')
    .option('--json', 'print the results as JSON instead of a summary')
    .option('--no-embedding', 'skip the real-size subject-embedding benchmark (it writes ~1.9 GB of random weights once)')
    .option('--no-engine', 'skip the engine benchmark (UNet, ControlNet, VAE, whole generations at real SD-1.5 shapes: ~4 min on 2 idle cores, ~5.7 GB more random weights written once)')
    .option('--no-finetune', 'skip the fine-tune step benchmark (real SD-1.5 shapes, 256² and 512², 1 and 3 photos: ~10 min on 2 idle cores; shares the engine benchmark’s weights)')
    .option('--no-optimization-compare', "skip the engine's 512² UNet step at graph optimisation 'extended'")
    .option('--device <ep>', 'execution provider for the engine benchmark (cpu, webgpu, cuda, …)', 'cpu')
    .option('--real-shapes <dir>', 'the real checkpoints’ key/shape lists', 'test/fixtures/parity/real-shapes')
    .option('--cache <dir>', 'where generated random-weight models are kept', 'bench/cache')
    .option('--no-subject-creation', 'skip "create a subject from 3 photos → embeddings cached" on the real-size Q-Former (shares the embedding benchmark’s weights)')
    .option('--subject-photos <dir>', 'the photos (the first 3) for the subject-creation benchmark', 'test/fixtures/dreambench/dog')
    .option('--no-gallery', 'skip the gallery first-paint benchmark (1,000 generations, Chromium via playwright-core; --quick uses 50)')
    .option('--chromium <path>', 'the Chromium the gallery benchmark drives', DEFAULT_CHROMIUM)
    .option('--no-control', 'skip the control-map benchmark (Canny edges of a 512² photo, under a second)')
    .option('--no-depth', 'skip the depth-estimator benchmark (Depth Anything V2-Small shapes at 518² on --device, and a photo’s depth map: ~1 min; ~95 MB of random weights written once)')
    .action(async (options: BenchOptions, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const results = await runBench(dataDir, options);
      mkdirSync(resolve(options.out), { recursive: true });
      const file = join(resolve(options.out), `${results.startedAt.replace(/[:.]/g, '-')}-${hostname()}.json`);
      writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
      process.stdout.write(options.json ? `${JSON.stringify(results, null, 2)}\n` : `${formatSummary(results)}\nwritten to ${file}\n`);
    });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Largest delay of a 10 ms interval timer while `work` runs: how blocked the main thread was. */
async function measureEventLoopLag<T>(work: () => Promise<T>): Promise<{ value: T; maxLagMs: number; ticks: number }> {
  let last = performance.now();
  let maxLagMs = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - 10);
    last = now;
    ticks += 1;
  }, 10);
  try {
    const value = await work();
    return { value, maxLagMs, ticks };
  } finally {
    clearInterval(timer);
  }
}

async function runBench(dataDir: string, options: BenchOptions) {
  const quick = options.quick === true;
  const startedAt = new Date().toISOString();
  const rssBefore = process.memoryUsage().rss;

  const startBegin = performance.now();
  const runtime = RuntimeClient.start();
  await runtime.ping();
  const workerStartMs = performance.now() - startBegin;

  try {
    const smokeMs: number[] = [];
    let smokeMaxError = 0;
    for (let i = 0; i < (quick ? 5 : 30); i++) {
      const result = await runtime.checkBackend('cpu');
      if (!result.ok) throw new Error(result.message);
      smokeMs.push(result.millis);
      smokeMaxError = Math.max(smokeMaxError, result.maxAbsError ?? Infinity);
    }

    const size = quick ? 256 : 1024;
    const layers = quick ? 4 : 32;
    const idle = await measureEventLoopLag(() => new Promise((r) => setTimeout(r, quick ? 200 : 1000)));
    const loaded = await measureEventLoopLag(() => runtime.benchmark({ backend: 'cpu', size, layers, minMillis: quick ? 200 : 2000 }));
    const flopsPerRun = 2 * size * size * size * layers;

    const studio = await openStudio({ dataDir, mode: 'cli' });
    const callMs: number[] = [];
    try {
      for (let i = 0; i < (quick ? 50 : 500); i++) {
        const begin = performance.now();
        const outcome = await dispatchCall(studio.api, 'getLibraryCounts', []);
        callMs.push(performance.now() - begin);
        if (!outcome.ok) throw new Error(outcome.error.message);
      }
    } finally {
      await studio.close();
    }

    // The real-size model needs ~2 GB of weights and seconds per run: not in --quick.
    const embeddingRealSize =
      options.embedding && !quick ? await benchEmbedding(runtime, { realShapesDir: resolve(options.realShapes), cacheDir: resolve(options.cache), warmRuns: 3 }) : null;

    // The engine section writes ~7.6 GB of weights once and runs for minutes: not in --quick.
    const engine =
      options.engine && !quick
        ? await benchEngine(runtime, {
            realShapesDir: resolve(options.realShapes),
            cacheDir: resolve(options.cache),
            device: options.device,
            compareOptimization: options.optimizationCompare,
            progress: (message) => process.stderr.write(`[bench] ${message}\n`),
          })
        : null;

    // Real size, minutes per figure: not in --quick.
    const finetuneSteps: FinetuneBenchResult | { failed: string } | null =
      options.finetune && !quick
        ? await section(async () => {
            const progress = (message: string) => process.stderr.write(`[bench] ${message}\n`);
            const realShapesDir = resolve(options.realShapes);
            const folders = await ensureRealModelFolders({ realShapesDir, cacheDir: resolve(options.cache), tokenizerDir: defaultTokenizerDir(realShapesDir), onProgress: progress });
            return benchFinetune(runtime, { modelDir: folders.base, photosDir: resolve(options.subjectPhotos), device: options.device, progress });
          })
        : null;

    // Real size (the Q-Former's ~1.9 GB of weights): not in --quick.
    const subjectCreation: SubjectBenchResult | { failed: string } | null =
      options.subjectCreation && !quick
        ? await section(() =>
            benchSubjectCreation(runtime, {
              realShapesDir: resolve(options.realShapes),
              cacheDir: resolve(options.cache),
              photosDir: resolve(options.subjectPhotos),
              onProgress: (message) => process.stderr.write(`[bench] ${message}\n`),
            }),
          )
        : null;
    // --quick checks the section works on a small library; the figure that counts is the 1,000-generation one.
    const gallery: GalleryBenchResult | { failed: string } | null = options.gallery
      ? await section(() =>
          benchGallery({
            generations: quick ? 50 : 1000,
            loads: quick ? 1 : 7,
            chromium: options.chromium,
            onProgress: (message) => process.stderr.write(`[bench] ${message}\n`),
          }),
        )
      : null;
    // Milliseconds per map: the same in --quick.
    const control: CannyBenchResult | { failed: string } | null = options.control ? await section(() => benchCanny()) : null;
    // Real size (95 MB of weights, seconds per run): not in --quick.
    const depth: DepthBenchResult | { failed: string } | null =
      options.depth && !quick
        ? await section(() =>
            benchDepth(runtime, {
              cacheDir: resolve(options.cache),
              engineCacheDir: join(dataDir, 'cache'),
              device: options.device,
              progress: (message) => process.stderr.write(`[bench] ${message}\n`),
            }),
          )
        : null;

    return {
      benchmark: 'blip-studio',
      startedAt,
      quick,
      machine: {
        hostname: hostname(),
        platform: process.platform,
        arch: process.arch,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        cpuCount: cpus().length,
        intraOpThreads: defaultIntraOpThreads() || 'ORT default',
        totalMemoryBytes: totalmem(),
        freeMemoryBytes: freemem(),
        node: process.versions.node,
        onnxruntime: await runtime.onnxruntimeVersion(),
        app: packageJson.version,
      },
      results: {
        workerStartMs,
        smokeGraphCpu: { runs: smokeMs.length, medianMs: median(smokeMs), maxAbsError: smokeMaxError },
        matMulChainCpu: {
          size,
          layers,
          runs: loaded.value.runs,
          sessionCreateMs: loaded.value.createMillis,
          meanRunMs: loaded.value.meanRunMillis,
          gflopsPerSecond: flopsPerRun / (loaded.value.meanRunMillis / 1000) / 1e9,
        },
        mainThreadLag: {
          idleMaxLagMs: idle.maxLagMs,
          duringWorkerRunMaxLagMs: loaded.maxLagMs,
          ticksDuringWorkerRun: loaded.ticks,
          ratioLoadedToIdle: loaded.maxLagMs / Math.max(idle.maxLagMs, 0.1),
        },
        apiDispatch: { calls: callMs.length, medianMs: median(callMs), p95Ms: [...callMs].sort((a, b) => a - b)[Math.floor(callMs.length * 0.95)] ?? 0 },
        memory: { rssBeforeBytes: rssBefore, rssAfterBytes: process.memoryUsage().rss },
        embeddingRealSize,
        engine,
        finetune: finetuneSteps,
        subjectCreation,
        gallery: gallery === null || 'failed' in gallery ? gallery : { ...gallery, summary: galleryFigures(gallery) },
        control,
        depth,
      },
    };
  } finally {
    await runtime.close();
  }
}

function formatSummary(bench: Awaited<ReturnType<typeof runBench>>): string {
  const r = bench.results;
  return [
    `BLIP Studio bench on ${bench.machine.cpuModel} (${bench.machine.cpuCount} cores), ONNX Runtime ${bench.machine.onnxruntime}`,
    `  ORT worker start          ${r.workerStartMs.toFixed(0)} ms`,
    `  smoke graph (cpu)         ${r.smokeGraphCpu.medianMs.toFixed(2)} ms median, max error ${r.smokeGraphCpu.maxAbsError.toExponential(1)}`,
    `  MatMul chain ${r.matMulChainCpu.size}²×${r.matMulChainCpu.layers}     ${r.matMulChainCpu.meanRunMs.toFixed(0)} ms/run, ${r.matMulChainCpu.gflopsPerSecond.toFixed(1)} GFLOP/s`,
    `  main-thread lag           idle ${r.mainThreadLag.idleMaxLagMs.toFixed(1)} ms, during worker run ${r.mainThreadLag.duringWorkerRunMaxLagMs.toFixed(1)} ms (${r.mainThreadLag.ticksDuringWorkerRun} ticks)`,
    `  API dispatch              ${r.apiDispatch.medianMs.toFixed(3)} ms median, p95 ${r.apiDispatch.p95Ms.toFixed(3)} ms`,
    ...(r.embeddingRealSize ? formatEmbedding(r.embeddingRealSize) : []),
    ...(r.engine ? formatEngine(r.engine) : []),
    ...(r.finetune === null ? [] : 'failed' in r.finetune ? [`  fine-tune step            FAILED: ${r.finetune.failed}`] : formatFinetune(r.finetune)),
    ...(r.subjectCreation ? formatSubjectCreation(r.subjectCreation) : []),
    ...(r.gallery ? formatGallery(r.gallery) : []),
    ...(r.control ? formatControl(r.control) : []),
    ...(r.depth ? formatDepth(r.depth) : []),
  ].join('\n');
}

function formatEmbedding(e: EmbeddingBenchResult): string[] {
  const mib = (bytes: number | null) => (bytes === null ? 'n/a' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);
  const m = e.memory;
  return [
    `  subject embedding, real size (${(e.weightsBytes / 2 ** 30).toFixed(2)} GiB weights, ${e.graphGflop.toFixed(1)} GFLOP)`,
    `    session create          ${e.sessionCreateMs.toFixed(0)} ms`,
    `    first / warm run        ${e.firstRunMs.toFixed(0)} ms / ${e.warmRunMedianMs.toFixed(0)} ms median`,
    `    throughput              ${e.achievedGflopsPerSecond.toFixed(1)} GFLOP/s = ${(100 * e.fractionOfMatMulPeak).toFixed(0)} % of the MatMul peak (${e.matMulPeakGflopsPerSecond.toFixed(1)} GFLOP/s)`,
    `    memory after create     anon ${mib(m.afterCreate.anonBytes)}, file-backed ${mib(m.afterCreate.fileBytes)}`,
    `    memory after runs       anon ${mib(m.afterRuns.anonBytes)}, file-backed ${mib(m.afterRuns.fileBytes)}, peak RSS ${mib(m.afterRuns.peakRssBytes)}`,
  ];
}
