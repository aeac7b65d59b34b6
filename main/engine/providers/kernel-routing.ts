/**
 * Which kernels each execution provider gets, in one table: where a provider's kernel is wrong, the
 * nets are built with another lowering of the same function there, and the reason travels with every
 * placement (info, Models & Settings, the recipe), so nothing falls back silently.
 *
 * Found by the WebGPU parity suite (test/webgpu/), which bisects each net by its graph outputs.
 */
import type { AttentionLowering, NetName, NetPlacement } from './provider-types';

/** The kernel choices a net build takes (spread into the net's options). */
export interface KernelChoices {
  attention: AttentionLowering;
}

interface ProviderRoute extends KernelChoices {
  /** Why this provider deviates from the fused kernels; null when it does not. */
  reason: string | null;
}

const FUSED: ProviderRoute = Object.freeze({ attention: 'fused', reason: null });

/**
 * Deviations per provider; providers not listed use every fused kernel.
 *
 * webgpu — onnxruntime-node 1.30's com.microsoft MultiHeadAttention on WebGPU returns wrong values
 * from 32 query tokens on, whatever the heads, head size, key count or mask (measured through
 * SwiftShader on unit-normal inputs: 1e-7 up to 31 queries, then 0.04-0.48 max abs at 32-384; the
 * text encoder's 77 tokens, the vision tower's 257 and every UNet/VAE self-attention are past it; the
 * Q-Former's 16 queries are not). The primitive lowering (MatMul, Softmax, MatMul) matches the
 * reference there to 1e-6.
 */
const PROVIDER_ROUTES: Readonly<Record<string, ProviderRoute>> = Object.freeze({
  webgpu: Object.freeze({
    attention: 'primitive',
    reason: "attention runs as MatMul + Softmax + MatMul: ONNX Runtime 1.30's fused MultiHeadAttention on WebGPU is wrong from 32 query tokens on",
  }),
});

export function kernelChoices(device: string): KernelChoices {
  const { attention } = PROVIDER_ROUTES[device] ?? FUSED;
  return { attention };
}

const NET_LABELS: Readonly<Record<NetName, string>> = Object.freeze({
  qformer: 'Vision tower + Q-Former',
  text_encoder: 'Text encoder',
  unet: 'UNet',
  controlnet: 'ControlNet',
  vae: 'VAE decoder',
});

/** Every net uses attention (the VAE in its mid block), so every net takes the provider's route. */
export const NET_NAMES: readonly NetName[] = Object.freeze(Object.keys(NET_LABELS) as NetName[]);

/**
 * Where each net runs when `requested` ('auto' or a provider) is chosen and `actual` is the provider the
 * sessions get (a named provider that is unavailable falls back: `unavailableReason` says why).
 */
export function netPlacements(requested: string, actual: string, unavailableReason: string | null = null): NetPlacement[] {
  const route = PROVIDER_ROUTES[actual] ?? FUSED;
  const fellBack = requested !== 'auto' && requested !== actual;
  const fallback = fellBack ? `runs on ${actual} instead of ${requested}${unavailableReason ? ` (${unavailableReason})` : ''}` : null;
  const note = [fallback, route.reason].filter((part): part is string => part !== null).join('; ');
  return NET_NAMES.map((net) => ({ net, label: NET_LABELS[net], device: actual, attention: route.attention, note: note === '' ? null : note }));
}

/** The notes a result records about where it ran: one line per distinct deviation, none when there is none. */
export function placementNotes(placements: readonly NetPlacement[]): string[] {
  const notes = new Map<string, NetName[]>();
  for (const placement of placements) if (placement.note !== null) notes.set(placement.note, [...(notes.get(placement.note) ?? []), placement.net]);
  return [...notes].map(([note, nets]) => (nets.length === NET_NAMES.length ? `all nets: ${note}` : `${nets.join(', ')}: ${note}`));
}
