/**
 * The typed message protocol between the main thread (`RuntimeClient`) and the ORT worker.
 *
 * One table, `RuntimeMethods`, names every call with its params and result; the request and response
 * unions are derived from it, so adding a call is one entry here plus one handler in the worker.
 * Messages are plain structured-clone data. The worker validates every request with
 * `parseRuntimeRequest` because a message port carries `unknown`.
 */
import type { BackendInfo, RuntimeCheckResult } from '../providers/provider-types';

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

/** Element types that cross the worker boundary (float16 travels as its raw bits in a Uint16Array). */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';
export const TENSOR_TYPES: readonly TensorType[] = ['float32', 'float16', 'int64', 'int32', 'uint8', 'bool'];

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

/** A dense, C-ordered tensor as it crosses the worker boundary. */
export interface TensorValue {
  type: TensorType;
  dims: number[];
  data: TensorData;
}

export type TensorMap = Record<string, TensorValue>;

/** ORT graph optimisation level: `extended` keeps Conv weights memory-mapped (ort-probe §b). */
export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
export const OPTIMIZATION_LEVELS: readonly OptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

export interface CreateSessionParams {
  /** The serialised ONNX ModelProto. */
  model: Uint8Array;
  /**
   * Folder that external-data locations in the model are relative to (the model is loaded from
   * memory, so ORT needs it; locations must stay inside it). Null for self-contained models.
   */
  externalDataFolder: string | null;
  /** 'auto' or an execution-provider name ('cpu', 'webgpu', 'cuda', 'dml', 'coreml'...). */
  device: string;
  optimization: OptimizationLevel;
  /**
   * ORT's memory pattern (plan every intermediate into one block after the first run); default true.
   * The fine-tune step turns it off: its planned block at 512² was 3.5 GB above the dynamic peak and
   * the step 2× slower (ort-host.ts).
   */
  memoryPattern?: boolean;
}

export interface SessionValueInfo {
  name: string;
  /** ORT's element type name, e.g. 'float32'. */
  type: string;
  /** Static dims as numbers, symbolic ones as strings. */
  dims: (number | string)[];
}

export interface SessionInfo {
  id: string;
  /** The provider the session actually runs on. */
  device: string;
  /** Why `auto` or a fallback chose this device, for the user; empty when the request was honoured. */
  deviceNote: string;
  inputs: SessionValueInfo[];
  outputs: SessionValueInfo[];
  createMillis: number;
}

export interface RunParams {
  sessionId: string;
  feeds: TensorMap;
  /** Output names to fetch; all outputs when absent. */
  outputs?: string[];
}

export interface RuntimeMethods {
  ping: { params: NoParams; result: { pong: true } };
  version: { params: NoParams; result: { onnxruntime: string } };
  listBackends: { params: NoParams; result: BackendInfo[] };
  checkBackend: { params: { backend: string }; result: RuntimeCheckResult };
  benchmark: { params: BenchmarkParams; result: BenchmarkResult };
  createSession: { params: CreateSessionParams; result: SessionInfo };
  run: { params: RunParams; result: TensorMap };
  releaseSession: { params: { sessionId: string }; result: { released: boolean } };
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
    case 'createSession': {
      const { model, externalDataFolder, device, optimization, memoryPattern } = params;
      if (!(model instanceof Uint8Array) || model.length === 0) return fail('createSession needs the model bytes.');
      if (externalDataFolder !== null && typeof externalDataFolder !== 'string') return fail('createSession externalDataFolder must be a path or null.');
      if (typeof device !== 'string' || device === '') return fail('createSession needs a device.');
      if (!OPTIMIZATION_LEVELS.includes(optimization as OptimizationLevel)) return fail(`createSession optimization must be one of ${OPTIMIZATION_LEVELS.join(', ')}.`);
      if (memoryPattern !== undefined && typeof memoryPattern !== 'boolean') return fail('createSession memoryPattern must be true or false.');
      return {
        ok: true,
        request: { id, method: 'createSession', params: { model, externalDataFolder, device, optimization: optimization as OptimizationLevel, ...(memoryPattern === undefined ? {} : { memoryPattern }) } },
      };
    }
    case 'run': {
      const { sessionId, feeds, outputs } = params;
      if (typeof sessionId !== 'string') return fail('run needs a session id.');
      if (!isRecord(feeds)) return fail('run needs feeds as an object of tensors.');
      for (const [name, tensor] of Object.entries(feeds)) {
        const problem = tensorProblem(tensor);
        if (problem) return fail(`run feed '${name}': ${problem}`);
      }
      if (outputs !== undefined && !(Array.isArray(outputs) && outputs.every((o) => typeof o === 'string'))) return fail('run outputs must be a list of names.');
      return { ok: true, request: { id, method: 'run', params: { sessionId, feeds: feeds as TensorMap, ...(outputs ? { outputs: outputs as string[] } : {}) } } };
    }
    case 'releaseSession': {
      if (typeof params.sessionId !== 'string') return fail('releaseSession needs a session id.');
      return { ok: true, request: { id, method: 'releaseSession', params: { sessionId: params.sessionId } } };
    }
    default:
      return fail(`Unknown runtime method: ${describe(value.method)}.`);
  }
}

const ARRAY_OF_TYPE: Readonly<Record<TensorType, new (length: number) => TensorData>> = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

/** The typed array that carries `type`. */
export function arrayConstructorFor(type: TensorType): new (length: number) => TensorData {
  return ARRAY_OF_TYPE[type];
}

/** Why `value` is not a well-formed TensorValue, or null when it is. */
export function tensorProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'not a tensor object';
  const { type, dims, data } = value;
  if (!TENSOR_TYPES.includes(type as TensorType)) return `unknown element type ${describe(type)}`;
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) return 'dims must be non-negative integers';
  const count = (dims as number[]).reduce((a, b) => a * b, 1);
  if (!(data instanceof ARRAY_OF_TYPE[type as TensorType])) return `data must be a ${ARRAY_OF_TYPE[type as TensorType].name} for ${String(type)}`;
  if ((data as TensorData).length !== count) return `dims [${(dims as number[]).join(', ')}] need ${count} elements, data has ${(data as TensorData).length}`;
  return null;
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
