/**
 * The subject-embedding benchmark: BLIP-Diffusion's real-size vision tower (ViT-L) + Q-Former with
 * random weights at the real shapes, on one photo. Reports session creation, first and warm run,
 * memory (anonymous vs file-backed: the weights must stay memory-mapped, not copied) and the achieved
 * GFLOP/s next to a MatMul peak measured in the same run.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeModel } from '../../engine/graph/onnx-writer';
import { buildQFormerGraph, QFORMER_INPUTS, QFORMER_OUTPUTS } from '../../engine/nets/qformer';
import { parseBlipQFormerModelConfig } from '../../engine/nets/configs';
import { openComponentWeights } from '../../engine/weights/component-weights';
import { catalogOf } from '../../engine/weights/catalog';
import { loadQformerTokenizer } from '../../engine/pipelines/qformer-vocab';
import { assertFinite } from '../../engine/pipelines/engine-context';
import type { RuntimeClient } from '../../engine/runtime/runtime-client';
import { ensureRandomComponent } from './random-weights';
import { resetPeakMemory, sampleMemory, type MemorySample } from './process-memory';

export interface EmbeddingBenchResult {
  model: string;
  weightsBytes: number;
  graphGflop: number;
  sessionCreateMs: number;
  firstRunMs: number;
  warmRunMs: number[];
  warmRunMedianMs: number;
  achievedGflopsPerSecond: number;
  matMulPeakGflopsPerSecond: number;
  fractionOfMatMulPeak: number;
  memory: { beforeCreate: MemorySample; afterCreate: MemorySample; afterRuns: MemorySample; peakReset: boolean };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export async function benchEmbedding(runtime: RuntimeClient, options: { realShapesDir: string; cacheDir: string; warmRuns: number }): Promise<EmbeddingBenchResult> {
  const componentDir = await ensureRandomComponent(options.realShapesDir, options.cacheDir, { id: 'blipdiffusion-qformer', folder: 'qformer' });
  const config: unknown = JSON.parse(readFileSync(join(componentDir, 'config.json'), 'utf8'));
  const parsed = parseBlipQFormerModelConfig(config);
  const { tokenizer } = loadQformerTokenizer({ modelDir: join(componentDir, '..'), qformerConfig: config as Parameters<typeof loadQformerTokenizer>[0]['qformerConfig'] });
  const { inputIds, attentionMask } = tokenizer.encode('dog');

  const weights = await openComponentWeights(componentDir, { cacheDir: join(options.cacheDir, 'converted') });
  const bound = catalogOf(weights);
  const graph = buildQFormerGraph(config, bound.catalog, { textLength: inputIds.length });
  const size = parsed.vision.imageSize;
  const pixels = new Float32Array(3 * size * size).map((_, i) => Math.sin(i * 0.001));
  const feeds = {
    [QFORMER_INPUTS.pixelValues]: { type: 'float32' as const, dims: [1, 3, size, size], data: pixels },
    [QFORMER_INPUTS.inputIds]: { type: 'int64' as const, dims: [1, inputIds.length], data: BigInt64Array.from(inputIds, BigInt) },
    [QFORMER_INPUTS.attentionMask]: { type: 'int64' as const, dims: [1, attentionMask.length], data: BigInt64Array.from(attentionMask, BigInt) },
  };

  const peakReset = resetPeakMemory();
  const beforeCreate = sampleMemory();
  let started = performance.now();
  const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder: bound.externalDataFolder, device: 'cpu' });
  const sessionCreateMs = performance.now() - started;
  const afterCreate = sampleMemory();
  try {
    started = performance.now();
    const first = await runtime.run(session.id, feeds);
    const firstRunMs = performance.now() - started;
    assertFinite('The real-size subject embedding', first);
    if (!first[QFORMER_OUTPUTS.queryEmbeds]) throw new Error('no query embeddings');
    const warmRunMs: number[] = [];
    for (let i = 0; i < options.warmRuns; i++) {
      started = performance.now();
      await runtime.run(session.id, feeds);
      warmRunMs.push(performance.now() - started);
    }
    const afterRuns = sampleMemory();
    const peak = await runtime.benchmark({ backend: 'cpu', size: 1024, layers: 32, minMillis: 2000 });
    const matMulPeakGflopsPerSecond = (2 * 1024 ** 3 * 32) / (peak.meanRunMillis / 1000) / 1e9;
    const warmRunMedianMs = median(warmRunMs);
    const achievedGflopsPerSecond = graph.flops / (warmRunMedianMs / 1000) / 1e9;
    return {
      model: 'BLIP-Diffusion vision tower + Q-Former + projection at real shapes, random weights, batch 1',
      weightsBytes: weights.files.reduce((sum, file) => sum + statSync(file).size, 0),
      graphGflop: graph.flops / 1e9,
      sessionCreateMs,
      firstRunMs,
      warmRunMs,
      warmRunMedianMs,
      achievedGflopsPerSecond,
      matMulPeakGflopsPerSecond,
      fractionOfMatMulPeak: achievedGflopsPerSecond / matMulPeakGflopsPerSecond,
      memory: { beforeCreate, afterCreate, afterRuns, peakReset },
    };
  } finally {
    await runtime.releaseSession(session.id);
  }
}
