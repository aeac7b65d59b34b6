/**
 * Main-thread side of the ORT worker: starts the worker, turns method calls into protocol requests and
 * matches the responses by id. If the worker dies, every pending call is rejected with the reason and
 * later calls fail fast with it. The worker is unref'd while idle so it never keeps a process alive
 * (terminating an idle ORT worker is safe; one inside an ORT call is not, hence the ref while busy).
 * Start one client per process: two ORT workers would only compete for the same cores.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendInfo, RuntimeCheckResult } from '../providers/provider-types';
import type {
  BenchmarkParams,
  BenchmarkResult,
  CreateSessionParams,
  SessionInfo,
  TensorMap,
  RuntimeMethod,
  RuntimeParams,
  RuntimeRequest,
  RuntimeResponse,
  RuntimeResult,
  RuntimeSuccess,
  RuntimeWorkerOptions,
} from './runtime-protocol';

export interface RuntimeClientOptions {
  /** The bundled worker script; found next to the running bundle (or in out/main) when absent. */
  workerFile?: string;
  /** ORT intra-op threads; 0 or absent: one per physical core (cpu-cores.ts). */
  threads?: number;
}

interface PendingCall {
  method: RuntimeMethod;
  resolve: (response: RuntimeSuccess) => void;
  reject: (error: Error) => void;
}

export class RuntimeClient {
  readonly #worker: Worker;
  readonly #pending = new Map<number, PendingCall>();
  readonly #exited: Promise<void>;
  #nextId = 1;
  /** Set once the worker is gone or closing: the reason later calls are refused. */
  #stopped: string | null = null;

  static start(options: RuntimeClientOptions = {}): RuntimeClient {
    const workerFile = options.workerFile ?? locateWorkerFile(import.meta.url);
    const workerData: RuntimeWorkerOptions = { threads: options.threads ?? 0 };
    return new RuntimeClient(new Worker(workerFile, { workerData }));
  }

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (message: RuntimeResponse) => this.#settle(message));
    worker.on('error', (error: Error) => this.#stop(`The ORT worker failed: ${error.message}`));
    worker.on('messageerror', (error: Error) => this.#stop(`The ORT worker sent an unreadable message: ${error.message}`));
    worker.on('exit', (code: number) => this.#stop(`The ORT worker exited (code ${code}).`));
    worker.unref();
  }

  listBackends(): Promise<BackendInfo[]> {
    return this.#call('listBackends', {});
  }

  checkBackend(backend: string): Promise<RuntimeCheckResult> {
    return this.#call('checkBackend', { backend });
  }

  async onnxruntimeVersion(): Promise<string> {
    return (await this.#call('version', {})).onnxruntime;
  }

  async ping(): Promise<void> {
    await this.#call('ping', {});
  }

  /** A heavy MatMul chain on `backend` for timing; the worker is busy for at least `minMillis`. */
  benchmark(params: BenchmarkParams): Promise<BenchmarkResult> {
    return this.#call('benchmark', params);
  }

  /** Creates an ORT session in the worker from model bytes (see CreateSessionParams). */
  createSession(params: Omit<CreateSessionParams, 'optimization' | 'externalDataFolder'> & Partial<Pick<CreateSessionParams, 'optimization' | 'externalDataFolder'>>): Promise<SessionInfo> {
    return this.#call('createSession', { externalDataFolder: null, optimization: 'all', ...params });
  }

  /**
   * Runs a session. With `transferInputs` the feeds' buffers are moved to the worker instead of copied
   * (they become unusable here): worth it for big inputs the caller no longer needs.
   */
  run(sessionId: string, feeds: TensorMap, options: { outputs?: string[]; transferInputs?: boolean } = {}): Promise<TensorMap> {
    const transfer = options.transferInputs ? [...new Set(Object.values(feeds).map((t) => t.data.buffer))].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer) : [];
    return this.#call('run', { sessionId, feeds, ...(options.outputs ? { outputs: options.outputs } : {}) }, transfer);
  }

  async releaseSession(sessionId: string): Promise<void> {
    await this.#call('releaseSession', { sessionId });
  }

  /**
   * Rejects pending calls at once, then waits for the worker to exit by itself: it finishes the ORT
   * call in progress first, because terminating a thread inside a native ORT call aborts the process.
   * The worker stays ref'd meanwhile so the process cannot exit (and abort) under it either.
   */
  async close(): Promise<void> {
    if (this.#stopped === null) {
      this.#stop('The ORT runtime client is closed.');
      this.#worker.ref();
      this.#worker.postMessage({ id: 0, method: 'shutdown', params: {} } satisfies RuntimeRequest);
    }
    await this.#exited;
  }

  #call<M extends RuntimeMethod>(method: M, params: RuntimeParams<M>, transfer: ArrayBuffer[] = []): Promise<RuntimeResult<M>> {
    if (this.#stopped !== null) return Promise.reject(new Error(`${this.#stopped} Cannot run '${method}'.`));
    const id = this.#nextId++;
    return new Promise<RuntimeResult<M>>((resolve, reject) => {
      // The protocol table ties `result` to `method`; TypeScript cannot follow a generic through the
      // union, so the two casts below restate what the table already guarantees.
      this.#pending.set(id, { method, resolve: (response) => resolve(response.result as RuntimeResult<M>), reject });
      this.#worker.ref();
      this.#worker.postMessage({ id, method, params } as RuntimeRequest, transfer);
    });
  }

  #settle(response: RuntimeResponse): void {
    // A reply without an id answers a message this client never sends; nothing waits for it.
    if (response.id === null) return;
    const pending = this.#pending.get(response.id);
    if (!pending) return;
    this.#pending.delete(response.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (!response.ok) pending.reject(new Error(response.error.message));
    else if (response.method !== pending.method) pending.reject(new Error(`The ORT worker answered '${pending.method}' with '${response.method}'.`));
    else pending.resolve(response);
  }

  #stop(reason: string): void {
    const error = new Error((this.#stopped ??= reason));
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}

/**
 * The worker bundle: next to the running module when it is itself a bundle in out/main, otherwise
 * (running from TypeScript sources, as in tests) in `<package root>/out/main/`.
 */
export function locateWorkerFile(moduleUrl: string, fileExists: (path: string) => boolean = existsSync): string {
  const sibling = fileURLToPath(new URL('./ort-worker.js', moduleUrl));
  // In a packaged app the worker is unpacked from the asar archive (electron-builder.yml asarUnpack):
  // worker_threads load real files, and ORT's native binding must sit on disk beside it.
  const unpacked = sibling.replace(/([\\/])app\.asar([\\/])/, '$1app.asar.unpacked$2');
  if (unpacked !== sibling && fileExists(unpacked)) return unpacked;
  if (fileExists(sibling)) return sibling;
  let dir = dirname(fileURLToPath(moduleUrl));
  while (!fileExists(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`The ORT worker bundle is missing (looked for ${sibling}): run \`npm run build\`.`);
    dir = parent;
  }
  const built = join(dir, 'out', 'main', 'ort-worker.js');
  if (fileExists(built)) return built;
  throw new Error(`The ORT worker bundle is missing (looked for ${sibling} and ${built}): run \`npm run build\`.`);
}
