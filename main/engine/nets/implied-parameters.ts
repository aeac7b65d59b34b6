/**
 * "Which tensors does a config imply?" answered by the network builders themselves: they request every
 * parameter by name and expected shape from a catalog, so running a build against the recording catalog
 * lists exactly what the real build would read. `checkParameters` compares such a list with what a
 * weights file (or a real-shapes listing) holds.
 */
import { elementCount } from '../graph/shapes';
import { WEIGHT_DTYPE_BYTES, tensorMismatch, type TensorListing, type TensorRequest, type WeightCatalog, type WeightEntry } from './weight-catalog';

/** Where the recording catalog pretends the weights are; a graph built against it is for listing, not running. */
const RECORDED_FILE = 'recorded.safetensors';

/** Answers every request with an entry of exactly the requested shape and remembers the requests. */
export class RecordingCatalog implements WeightCatalog {
  readonly #entries = new Map<string, WeightEntry>();
  readonly #requests: TensorRequest[] = [];

  get requests(): readonly TensorRequest[] {
    return this.#requests;
  }

  names(): readonly string[] {
    return [...this.#entries.keys()];
  }

  lookup(name: string, request?: TensorRequest): WeightEntry | undefined {
    if (!request) return this.#entries.get(name);
    this.#requests.push(request);
    const dtype = request.kind === 'parameter' ? 'F32' : 'I64';
    const entry: WeightEntry = { dtype, shape: request.shape, file: RECORDED_FILE, offset: 0, byteLength: elementCount(request.shape) * WEIGHT_DTYPE_BYTES[dtype] };
    this.#entries.set(name, entry);
    return entry;
  }
}

/** The tensors `build` requests, in request order. */
export function impliedParameters(build: (catalog: WeightCatalog) => unknown): TensorRequest[] {
  const catalog = new RecordingCatalog();
  build(catalog);
  return [...catalog.requests];
}

export interface MisshapedTensor {
  name: string;
  problem: string;
}

export interface ParameterReport {
  /** Required tensors the files lack. */
  missing: string[];
  /** Tensors in the files that nothing requested. */
  unused: string[];
  /** Tensors present with the wrong dtype, shape or byte length. */
  misshaped: MisshapedTensor[];
}

export function checkParameters(implied: readonly TensorRequest[], actual: readonly TensorListing[]): ParameterReport {
  const byName = new Map(actual.map((t) => [t.name, t]));
  const requested = new Set(implied.map((r) => r.name));
  const report: ParameterReport = { missing: [], unused: [], misshaped: [] };
  for (const request of implied) {
    const listing = byName.get(request.name);
    if (!listing) {
      if (!request.optional) report.missing.push(request.name);
      continue;
    }
    const problem = tensorMismatch(request, listing);
    if (problem) report.misshaped.push({ name: request.name, problem });
  }
  report.unused = actual.filter((t) => !requested.has(t.name)).map((t) => t.name);
  return report;
}

export function isCleanReport(report: ParameterReport): boolean {
  return report.missing.length === 0 && report.unused.length === 0 && report.misshaped.length === 0;
}

/** One message with every problem, each list in full. */
export function formatParameterReport(component: string, report: ParameterReport): string {
  const lines = [`${component}: the weights do not match the config (${report.missing.length} missing, ${report.unused.length} unused, ${report.misshaped.length} mis-shaped).`];
  if (report.missing.length > 0) lines.push(`Missing: ${report.missing.join(', ')}`);
  if (report.unused.length > 0) lines.push(`Unused: ${report.unused.join(', ')}`);
  if (report.misshaped.length > 0) lines.push(`Mis-shaped: ${report.misshaped.map((m) => `${m.name} (${m.problem})`).join(', ')}`);
  return lines.join('\n');
}

export class WeightMismatchError extends Error {
  readonly report: ParameterReport;

  constructor(component: string, report: ParameterReport) {
    super(formatParameterReport(component, report));
    this.name = 'WeightMismatchError';
    this.report = report;
  }
}
