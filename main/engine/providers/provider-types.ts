/**
 * What the engine tells the layers above about execution providers: which ones this machine has, how a
 * self-test went, and where each net of a model runs on one of them. The API contract re-exports these
 * types, so the engine never imports from the layers above it.
 */

/** How a net computes attention: one fused kernel, or MatMul + Softmax + MatMul (graph/layers.ts). */
export type AttentionLowering = 'fused' | 'primitive';

/** The nets of a BLIP-Diffusion model, by their component names. */
export type NetName = 'qformer' | 'text_encoder' | 'unet' | 'controlnet' | 'vae';

/** Where one net runs on a provider, and what differs from its plain fused graph there. */
export interface NetPlacement {
  net: NetName;
  /** Human label, e.g. 'Vision tower + Q-Former'. */
  label: string;
  /** The provider the net's session runs on. */
  device: string;
  attention: AttentionLowering;
  /** One sentence on what deviates from the provider's plain fused graph and why; null when nothing does. */
  note: string | null;
}

/** An ONNX Runtime execution provider as this machine's onnxruntime-node build reports it. */
export interface BackendInfo {
  /** The name ORT uses: 'cpu', 'webgpu', 'cuda', 'dml', 'coreml', 'tensorrt'... */
  name: string;
  /** Human label for the UI. */
  label: string;
  /** True when the binaries ship inside onnxruntime-node (no add-on needed). */
  bundled: boolean;
  /** True when a session can be created with it on this machine right now. */
  available: boolean;
  /** One sentence for the user: what it is, or what is missing and how to get it. */
  note: string;
  /** Where each net runs when this provider is chosen (the CPU for every net when it is unavailable). */
  nets: NetPlacement[];
}

/** Outcome of running a tiny in-memory ONNX graph on one execution provider. */
export interface RuntimeCheckResult {
  backend: string;
  ok: boolean;
  /** Wall time of session creation + one run, in milliseconds. */
  millis: number;
  /** Largest |ORT − reference| over the outputs, or null when the run failed. */
  maxAbsError: number | null;
  message: string;
}
