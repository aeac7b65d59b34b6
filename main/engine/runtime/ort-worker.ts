/**
 * Entry point of the ORT worker thread (bundled to out/main/ort-worker.js). ONNX Runtime blocks the
 * thread it runs on, so it lives here and the main thread stays responsive. Requests are handled one at
 * a time in arrival order; a bad message or a failing call is answered with an error, never a crash.
 *
 * Shutdown is cooperative: `worker.terminate()` during a native ORT call aborts the whole process
 * (measured with onnxruntime-node 1.30), so on `shutdown` the worker finishes the call in progress,
 * refuses what is still queued, replies and closes its port, and then exits by itself.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { OrtHost } from './ort-host';
import { parseRuntimeRequest, type RuntimeRequest, type RuntimeResponse, type RuntimeSuccess, type RuntimeWorkerOptions } from './runtime-protocol';

/** Everything but `shutdown`, which the message handler takes care of itself. */
type WorkRequest = Exclude<RuntimeRequest, { method: 'shutdown' }>;

const port = requireParentPort();
const host = new OrtHost(readOptions(workerData));
let queue: Promise<void> = Promise.resolve();
let shuttingDown = false;

port.on('message', (message: unknown) => {
  const parsed = parseRuntimeRequest(message);
  if (!parsed.ok) {
    post({ id: parsed.id, ok: false, error: { message: parsed.message } });
    return;
  }
  const request = parsed.request;
  if (request.method === 'shutdown') {
    shuttingDown = true;
    host.stop();
    enqueue(async () => {
      await host.releaseAll();
      post({ id: request.id, ok: true, method: 'shutdown', result: { closed: true } });
      port.close();
    });
    return;
  }
  const work: WorkRequest = request;
  enqueue(() => answer(work));
});

/** Chains a task after the previous one; a task that throws must not stall the ones behind it. */
function enqueue(task: () => Promise<void> | void): void {
  queue = queue.then(task).catch((error: unknown) => post({ id: null, ok: false, error: { message: `ORT worker: ${errorMessage(error)}` } }));
}

async function answer(request: WorkRequest): Promise<void> {
  if (shuttingDown) {
    post({ id: request.id, ok: false, error: { message: `The ORT worker is shutting down; '${request.method}' was not run.` } });
    return;
  }
  try {
    post(await handle(request));
  } catch (error) {
    post({ id: request.id, ok: false, error: { message: `${request.method} failed: ${errorMessage(error)}` } });
  }
}

async function handle(request: WorkRequest): Promise<RuntimeSuccess> {
  const { id } = request;
  switch (request.method) {
    case 'ping':
      return { id, ok: true, method: 'ping', result: { pong: true } };
    case 'version':
      return { id, ok: true, method: 'version', result: { onnxruntime: host.onnxruntimeVersion() } };
    case 'listBackends':
      return { id, ok: true, method: 'listBackends', result: await host.listBackends() };
    case 'checkBackend':
      return { id, ok: true, method: 'checkBackend', result: await host.checkBackend(request.params.backend) };
    case 'benchmark':
      return { id, ok: true, method: 'benchmark', result: await host.benchmark(request.params) };
    case 'createSession':
      return { id, ok: true, method: 'createSession', result: await host.createSession(request.params) };
    case 'run':
      return { id, ok: true, method: 'run', result: await host.run(request.params) };
    case 'releaseSession':
      return { id, ok: true, method: 'releaseSession', result: { released: await host.releaseSession(request.params.sessionId) } };
  }
}

function post(response: RuntimeResponse): void {
  // Outputs of a run are moved, not copied, to the main thread: ORT already made them fresh buffers.
  const transfer = response.ok && response.method === 'run' ? uniqueBuffers(Object.values(response.result).map((t) => t.data)) : [];
  port.postMessage(response, transfer);
}

/** Each ArrayBuffer once (transferring one twice throws). */
function uniqueBuffers(views: readonly ArrayBufferView[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const view of views) if (view.buffer instanceof ArrayBuffer) buffers.add(view.buffer);
  return [...buffers];
}

function requireParentPort(): MessagePort {
  if (!parentPort) throw new Error('ort-worker must be started as a worker_thread (see RuntimeClient).');
  return parentPort;
}

function readOptions(data: unknown): RuntimeWorkerOptions {
  const threads = typeof data === 'object' && data !== null && 'threads' in data ? data.threads : 0;
  return { threads: typeof threads === 'number' && Number.isInteger(threads) && threads >= 0 ? threads : 0 };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
