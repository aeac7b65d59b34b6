/**
 * The one module in the project that imports onnxruntime-node. It runs inside the ORT worker (ORT
 * blocks the thread it runs on) and answers the protocol's questions: which execution providers this
 * build has and whether they work here, the ORT version, and self-test runs of the smoke graphs.
 */
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BackendInfo, RuntimeCheckResult } from '../../api/contract';
import { encodeModel } from '../graph/onnx-writer';
import { buildMatMulChainModel, buildSmokeCase, matMulChainInput, maxAbsDifference, type Float32TensorValue } from '../graph/smoke-graph';
import type { BenchmarkParams, BenchmarkResult, RuntimeWorkerOptions } from './runtime-protocol';

/** Largest |ORT − reference| that still counts as a pass for float32 on any provider. */
export const SMOKE_TOLERANCE = 1e-5;

interface BackendSpec {
  label: string;
  /**
   * For add-on providers: the shared-library base name ORT loads (e.g. `onnxruntime_providers_cuda`).
   * When it is not in onnxruntime-node's binary folder the add-on is not installed, and probing it would
   * only print ORT's load errors to the terminal.
   */
  addOnLibrary?: string;
  /** What goes into `SessionOptions.executionProviders`. */
  executionProvider: ort.InferenceSession.ExecutionProviderConfig;
  /** The note when it works. */
  about: string;
  /** The note when it does not: what is missing and how to get it. */
  remedy: string;
}

/** Device name → execution provider, with the words the UI shows. Names are ORT's backend names. */
export const EXECUTION_PROVIDERS: Readonly<Record<string, Readonly<BackendSpec>>> = Object.freeze({
  cpu: Object.freeze({
    label: 'CPU',
    executionProvider: 'cpu',
    about: 'Runs on every machine; bundled with ONNX Runtime.',
    remedy: 'The CPU provider should always work; reinstall onnxruntime-node.',
  }),
  webgpu: Object.freeze({
    label: 'WebGPU',
    executionProvider: 'webgpu',
    about: 'Runs on the GPU through Dawn; bundled with ONNX Runtime, no add-on needed.',
    remedy: 'WebGPU is bundled but needs a GPU driver with Vulkan (Linux), Direct3D 12 (Windows) or Metal (macOS).',
  }),
  cuda: Object.freeze({
    label: 'NVIDIA CUDA',
    executionProvider: 'cuda',
    addOnLibrary: 'onnxruntime_providers_cuda',
    about: 'Runs on an NVIDIA GPU through the CUDA 12 add-on.',
    remedy:
      'CUDA is an add-on: run `npm run setup:cuda` (onnxruntime-node installer with --onnxruntime-node-install=cuda12); it needs an NVIDIA driver, CUDA 12 and cuDNN 9.',
  }),
  tensorrt: Object.freeze({
    label: 'NVIDIA TensorRT',
    executionProvider: 'tensorrt',
    addOnLibrary: 'onnxruntime_providers_tensorrt',
    about: 'Runs on an NVIDIA GPU through TensorRT.',
    remedy: 'TensorRT is an add-on: install the CUDA add-on (`npm run setup:cuda`) and TensorRT 10 libraries.',
  }),
  dml: Object.freeze({
    label: 'DirectML',
    executionProvider: 'dml',
    about: 'Runs on any Direct3D 12 GPU on Windows.',
    remedy: 'DirectML needs Windows 10 or later with a Direct3D 12 GPU driver.',
  }),
  coreml: Object.freeze({
    label: 'Core ML',
    executionProvider: 'coreml',
    about: 'Runs on the Apple Neural Engine or GPU on macOS.',
    remedy: 'Core ML needs macOS.',
  }),
});

/** How a session-creation attempt on one backend went: null when it worked, else ORT's reason. */
type Availability = string | null;

export class OrtHost {
  readonly #threads: number;
  readonly #availability = new Map<string, Promise<Availability>>();
  #stopping = false;

  constructor(options: RuntimeWorkerOptions) {
    this.#threads = options.threads;
  }

  /** Ends long loops (benchmark) after their current run, so a shutdown never waits for all of them. */
  stop(): void {
    this.#stopping = true;
  }

  onnxruntimeVersion(): string {
    return ort.env.versions.node ?? ort.env.versions.common;
  }

  /** The backends this onnxruntime-node build knows, each tried once (cached) with the smoke graph. */
  async listBackends(): Promise<BackendInfo[]> {
    const infos: BackendInfo[] = [];
    for (const { name, bundled } of ort.listSupportedBackends()) {
      const spec = specFor(name);
      const failure = await this.#probe(name);
      infos.push({
        name,
        label: spec.label,
        bundled,
        available: failure === null,
        note: failure === null ? spec.about : `${spec.remedy} (ONNX Runtime: ${failure})`,
      });
    }
    return infos;
  }

  /** Session creation + one run of the smoke graph on `backend`, compared with the JS reference. */
  async checkBackend(backend: string): Promise<RuntimeCheckResult> {
    const unknown = unknownBackendMessage(backend);
    if (unknown) return { backend, ok: false, millis: 0, maxAbsError: null, message: unknown };
    const label = specFor(backend).label;
    const smoke = buildSmokeCase();
    const started = performance.now();
    try {
      const outputs = await this.#createAndRun(backend, encodeModel(smoke.model), smoke.inputs);
      const millis = performance.now() - started;
      let maxAbsError = 0;
      for (const expected of smoke.expected) {
        const actual = outputs[expected.name];
        if (!actual) throw new Error(`the graph produced no output '${expected.name}'`);
        if (!sameDims(actual.dims, expected.dims)) {
          throw new Error(`output '${expected.name}' has shape [${actual.dims.join(', ')}], expected [${expected.dims.join(', ')}]`);
        }
        maxAbsError = Math.max(maxAbsError, maxAbsDifference(float32Data(actual), expected.data));
      }
      const ok = maxAbsError <= SMOKE_TOLERANCE;
      const shapes = smoke.expected.map((e) => `${e.name} [${e.dims.join(', ')}]`).join(' and ');
      const verdict = ok ? 'match the reference' : `differ from the reference by more than ${SMOKE_TOLERANCE}`;
      return {
        backend,
        ok,
        millis,
        maxAbsError,
        message: `${label}: ${shapes} ${verdict} (max error ${maxAbsError.toExponential(1)}) in ${millis.toFixed(0)} ms.`,
      };
    } catch (error) {
      return { backend, ok: false, millis: performance.now() - started, maxAbsError: null, message: `${label} failed: ${conciseOrtError(error)}` };
    }
  }

  /** Runs a MatMul chain repeatedly until `minMillis` have passed; blocks this thread meanwhile. */
  async benchmark(params: BenchmarkParams): Promise<BenchmarkResult> {
    const unknown = unknownBackendMessage(params.backend);
    if (unknown) throw new Error(unknown);
    const input = matMulChainInput(params.size);
    const feeds = { [input.name]: toOrtTensor(input) };
    const started = performance.now();
    const session = await this.#createSession(params.backend, encodeModel(buildMatMulChainModel(params.size, params.layers)));
    const createMillis = performance.now() - started;
    try {
      const runsStarted = performance.now();
      let runs = 0;
      do {
        await session.run(feeds);
        runs += 1;
      } while (!this.#stopping && performance.now() - runsStarted < params.minMillis);
      const runMillis = performance.now() - runsStarted;
      return { backend: params.backend, runs, createMillis, meanRunMillis: runMillis / runs, totalMillis: performance.now() - started };
    } finally {
      await session.release();
    }
  }

  /** Whether a session of the smoke graph can be created with this provider alone. */
  #probe(backend: string): Promise<Availability> {
    let pending = this.#availability.get(backend);
    const addOn = specFor(backend).addOnLibrary;
    if (!pending && addOn !== undefined && !addOnInstalled(addOn)) {
      pending = Promise.resolve('the add-on is not installed');
      this.#availability.set(backend, pending);
    }
    if (!pending) {
      pending = this.#createSession(backend, encodeModel(buildSmokeCase().model)).then(
        async (session) => {
          await session.release();
          return null;
        },
        (error: unknown) => conciseOrtError(error),
      );
      this.#availability.set(backend, pending);
    }
    return pending;
  }

  async #createAndRun(backend: string, model: Uint8Array, inputs: readonly Float32TensorValue[]): Promise<ort.InferenceSession.ReturnType> {
    const session = await this.#createSession(backend, model);
    try {
      return await session.run(Object.fromEntries(inputs.map((input) => [input.name, toOrtTensor(input)])));
    } finally {
      await session.release();
    }
  }

  #createSession(backend: string, model: Uint8Array): Promise<ort.InferenceSession> {
    const options: ort.InferenceSession.SessionOptions = {
      // Only this provider: ORT would otherwise fall back to CPU and hide a broken GPU path.
      executionProviders: [specFor(backend).executionProvider],
      logSeverityLevel: 3,
    };
    if (this.#threads > 0) options.intraOpNumThreads = this.#threads;
    return ort.InferenceSession.create(model, options);
  }
}

/** onnxruntime-node's native folder, where add-on provider libraries are installed next to the binding. */
function ortBinaryFolder(): string {
  const packageRoot = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  return join(packageRoot, 'bin', 'napi-v6', process.platform, process.arch);
}

function addOnInstalled(libraryBaseName: string): boolean {
  const fileName = process.platform === 'win32' ? `${libraryBaseName}.dll` : process.platform === 'darwin' ? `lib${libraryBaseName}.dylib` : `lib${libraryBaseName}.so`;
  return existsSync(join(ortBinaryFolder(), fileName));
}

function specFor(backend: string): Readonly<BackendSpec> {
  return (
    EXECUTION_PROVIDERS[backend] ?? {
      label: backend,
      executionProvider: backend,
      about: `The '${backend}' execution provider of this ONNX Runtime build.`,
      remedy: `The '${backend}' execution provider could not start on this machine.`,
    }
  );
}

/** The error for a name this onnxruntime-node build does not offer, or null when it does. */
function unknownBackendMessage(backend: string): string | null {
  const supported = ort.listSupportedBackends().map((b) => b.name);
  if (supported.includes(backend)) return null;
  return `Unknown backend '${backend}': this ONNX Runtime build offers ${supported.join(', ')}.`;
}

function toOrtTensor(value: Float32TensorValue): ort.Tensor {
  return new ort.Tensor('float32', value.data, [...value.dims]);
}

function float32Data(tensor: ort.Tensor): Float32Array {
  if (!(tensor.data instanceof Float32Array)) throw new Error(`expected a float32 output, got ${tensor.type}`);
  return tensor.data;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** ORT messages start with a C++ source location and status prefix; keep the sentence a user can act on. */
export function conciseOrtError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const reason = /\[ONNXRuntimeError\] : \d+ : \w+ : ([\s\S]*)$/.exec(text)?.[1] ?? /\bwas false\.\s*([\s\S]+)$/.exec(text)?.[1] ?? text;
  return reason.replace(/\s+/g, ' ').trim();
}
