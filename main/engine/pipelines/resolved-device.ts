/**
 * Which execution provider `--device` (possibly `auto`) resolves to on this machine, found by opening
 * one tiny session: a recipe records the device that actually ran, and running every stage on that one
 * name keeps a generation on a single provider.
 */
import { resolveDevice, type EngineContext } from './engine-context';
import { generate, type GenerateRequest, type GenerateResult } from './generate';

export { resolveDevice };

/** Runs the request on the device --device resolves to, so the recipe names the one that ran. */
export async function generateOnResolvedDevice(
  context: EngineContext,
  request: GenerateRequest,
  onProgress: (step: number, total: number, etaMs: number | null, elapsedMs: number) => void,
): Promise<{ result: GenerateResult; device: string }> {
  return generateOnDevice({ ...context, device: await resolveDevice(context) }, request, onProgress);
}

/** The same on a device already resolved (a caller that needed it earlier, e.g. to embed photos on it). */
export async function generateOnDevice(
  resolved: EngineContext,
  request: GenerateRequest,
  onProgress: (step: number, total: number, etaMs: number | null, elapsedMs: number) => void,
): Promise<{ result: GenerateResult; device: string }> {
  const result = await generate(resolved, request, { previewEvery: 0, onProgress: (p) => onProgress(p.step, p.totalSteps, p.etaMs, p.elapsedMs) });
  return { result, device: resolved.device };
}
