/**
 * Which execution provider `--device` (possibly `auto`) resolves to on this machine, found by opening
 * one tiny session: a recipe records the device that actually ran, and running every stage on that one
 * name keeps a generation on a single provider.
 */
import { buildSmokeCase } from '../graph/smoke-graph';
import { encodeModel } from '../graph/onnx-writer';
import type { EngineContext } from './engine-context';
import { generate, type GenerateRequest, type GenerateResult } from './generate';

export async function resolveDevice(context: EngineContext): Promise<string> {
  const session = await context.runtime.createSession({ model: encodeModel(buildSmokeCase().model), device: context.device });
  if (session.deviceNote) context.onDeviceNote?.(session.deviceNote);
  await context.runtime.releaseSession(session.id);
  return session.device;
}

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
