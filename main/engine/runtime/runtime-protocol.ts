/**
 * The typed message protocol between the main thread (`RuntimeClient`) and the ORT worker.
 *
 * One table, `RuntimeMethods`, names every call with its params and result; the request and response
 * unions are derived from it, so adding a call is one entry here plus one handler in the worker.
 * Messages are plain structured-clone data. The worker validates every request with
 * `parseRuntimeRequest` because a message port carries `unknown`.
 */
import type { BackendInfo, RuntimeCheckResult } from '../../api/contract';

/** A heavy run for timing and responsiveness checks: a chain of `layers` [size, size] MatMuls. */
export interface BenchmarkParams {
  backend: string;
  size: number;
  layers: number;
  /** Keep running the graph until this much time has passed (at least one run). */
  minMillis: number;
}

export interface BenchmarkResult {
  backend: string;
  runs: number;
  createMillis: number;
  meanRunMillis: number;
  totalMillis: number;
}

type NoParams = Record<string, never>;

export interface RuntimeMethods {
  ping: { params: NoParams; result: { pong: true } };
  version: { params: NoParams; result: { onnxruntime: string } };
  listBackends: { params: NoParams; result: BackendInfo[] };
  checkBackend: { params: { backend: string }; result: RuntimeCheckResult };
  benchmark: { params: BenchmarkParams; result: BenchmarkResult };
  /** Release sessions and close the port; the worker exits after replying. */
  shutdown: { params: NoParams; result: { closed: true } };
}

export type RuntimeMethod = keyof RuntimeMethods;
export type RuntimeParams<M extends RuntimeMethod> = RuntimeMethods[M]['params'];
export type RuntimeResult<M extends RuntimeMethod> = RuntimeMethods[M]['result'];

export type RuntimeRequest = { [M in RuntimeMethod]: { id: number; method: M; params: RuntimeParams<M> } }[RuntimeMethod];

export interface RuntimeError {
  message: string;
}

export type RuntimeSuccess = { [M in RuntimeMethod]: { id: number; ok: true; method: M; result: RuntimeResult<M> } }[RuntimeMethod];

/** `id` is null only when a message was too malformed to carry one. */
export type RuntimeFailure = { id: number | null; ok: false; error: RuntimeError };

export type RuntimeResponse = RuntimeSuccess | RuntimeFailure;

/** What the worker receives at start (`workerData`). */
export interface RuntimeWorkerOptions {
  /** ORT intra-op threads; 0 lets ORT pick one per core. */
  threads: number;
}

export const BENCHMARK_LIMITS = { maxSize: 4096, maxLayers: 256, maxMillis: 60_000 } as const;

/** Checks an incoming message; on failure returns the reason and whatever id could be read. */
export function parseRuntimeRequest(value: unknown): { ok: true; request: RuntimeRequest } | { ok: false; id: number | null; message: string } {
  if (!isRecord(value)) return { ok: false, id: null, message: 'A runtime request must be an object.' };
  const id = typeof value.id === 'number' && Number.isSafeInteger(value.id) ? value.id : null;
  if (id === null) return { ok: false, id, message: 'A runtime request needs an integer id.' };
  const fail = (message: string) => ({ ok: false as const, id, message });
  const params = value.params === undefined ? {} : value.params;
  if (!isRecord(params)) return fail('Request params must be an object.');
  switch (value.method) {
    case 'ping':
    case 'version':
    case 'listBackends':
    case 'shutdown':
      return { ok: true, request: { id, method: value.method, params: {} } };
    case 'checkBackend': {
      if (typeof params.backend !== 'string' || params.backend === '') return fail('checkBackend needs a backend name.');
      return { ok: true, request: { id, method: 'checkBackend', params: { backend: params.backend } } };
    }
    case 'benchmark': {
      const { backend, size, layers, minMillis } = params;
      if (typeof backend !== 'string' || backend === '') return fail('benchmark needs a backend name.');
      if (!isIntegerIn(size, 1, BENCHMARK_LIMITS.maxSize)) return fail(`benchmark size must be an integer from 1 to ${BENCHMARK_LIMITS.maxSize}.`);
      if (!isIntegerIn(layers, 1, BENCHMARK_LIMITS.maxLayers)) return fail(`benchmark layers must be an integer from 1 to ${BENCHMARK_LIMITS.maxLayers}.`);
      if (!isIntegerIn(minMillis, 0, BENCHMARK_LIMITS.maxMillis)) return fail(`benchmark minMillis must be an integer from 0 to ${BENCHMARK_LIMITS.maxMillis}.`);
      return { ok: true, request: { id, method: 'benchmark', params: { backend, size, layers, minMillis } } };
    }
    default:
      return fail(`Unknown runtime method: ${describe(value.method)}.`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : typeof value;
}
