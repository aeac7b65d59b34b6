/**
 * The one module in the project that imports onnxruntime-node. It runs inside the ORT worker (ORT
 * blocks the thread it runs on) and answers the protocol's questions: which execution providers this
 * build has and whether they work here, the ORT version, and self-test runs of the smoke graphs.
 */
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BackendInfo, RuntimeCheckResult } from '../providers/provider-types';
import { encodeModel } from '../graph/onnx-writer';
import { netPlacements } from '../providers/kernel-routing';
import { softwareOnlyVulkan, vulkanDriverManifests } from './vulkan-drivers';
import { buildMatMulChainModel, buildSmokeCase, matMulChainInput, maxAbsDifference, type Float32TensorValue } from '../graph/smoke-graph';
import type {
  BenchmarkParams,
  BenchmarkResult,
  CreateSessionParams,
  RunParams,
  RuntimeWorkerOptions,
  SessionInfo,
  SessionValueInfo,
  TensorMap,
  TensorValue,
} from './runtime-protocol';
import { defaultIntraOpThreads } from './cpu-cores';

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

/** `--device auto` tries these in order and takes the first that works here; CPU always does. */
export const AUTO_DEVICE_ORDER: readonly string[] = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

/** How a session-creation attempt on one backend went: null when it worked, else ORT's reason. */
type Availability = string | null;

export class OrtHost {
  readonly #threads: number;
  readonly #availability = new Map<string, Promise<Availability>>();
  readonly #sessions = new Map<string, ort.InferenceSession>();
  #nextSessionId = 1;
  #stopping = false;

  constructor(options: RuntimeWorkerOptions) {
    this.#threads = options.threads > 0 ? options.threads : defaultIntraOpThreads();
  }

  /** Ends long loops (benchmark) after their current run, so a shutdown never waits for all of them. */
  stop(): void {
    this.#stopping = true;
  }

  onnxruntimeVersion(): string {
    return ort.env.versions.node ?? ort.env.versions.common;
  }

  /** The backends this onnxruntime-node build knows, each tried once (cached) with the smoke graph, with where each net runs on it. */
  async listBackends(): Promise<BackendInfo[]> {
    const infos: BackendInfo[] = [];
    for (const { name, bundled } of ort.listSupportedBackends()) {
      const spec = specFor(name);
      const failure = await this.#probe(name);
      const software = name === 'webgpu' && failure === null ? softwareOnlyVulkan(vulkanDriverManifests()) : null;
      infos.push({
        name,
        label: spec.label,
        bundled,
        available: failure === null,
        note: failure !== null ? `${spec.remedy} (ONNX Runtime: ${failure})` : software !== null ? `${spec.about} Here ${software}: 'auto' uses the CPU.` : spec.about,
        nets: failure === null ? netPlacements(name, name) : netPlacements(name, 'cpu', `${spec.label} is unavailable here`),
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

  /**
   * Creates a session for a model held in memory. Weights stored as external data are resolved
   * against `externalDataFolder` (ORT refuses locations that leave it) and stay memory-mapped:
   * prepacking is off, so MatMul weights are not copied into anonymous memory (ort-probe §b).
   */
  async createSession(params: CreateSessionParams): Promise<SessionInfo> {
    const { device, note } = await this.#resolveDevice(params.device);
    const started = performance.now();
    const session = await ort.InferenceSession.create(params.model, {
      executionProviders: [specFor(device).executionProvider],
      graphOptimizationLevel: params.optimization,
      enableMemPattern: params.memoryPattern ?? true,
      logSeverityLevel: 3,
      ...(this.#threads > 0 ? { intraOpNumThreads: this.#threads } : {}),
      extra: {
        session: {
          disable_prepacking: '1',
          ...(params.externalDataFolder !== null ? { model_external_initializers_file_folder_path: params.externalDataFolder } : {}),
        },
      },
    });
    const id = `s${this.#nextSessionId++}`;
    this.#sessions.set(id, session);
    return {
      id,
      device,
      deviceNote: note,
      inputs: session.inputMetadata.map(describeValue),
      outputs: session.outputMetadata.map(describeValue),
      createMillis: performance.now() - started,
    };
  }

  /** Runs a session after checking every feed against its inputs; one error lists every mismatch. */
  async run(params: RunParams): Promise<TensorMap> {
    const session = this.#sessions.get(params.sessionId);
    if (!session) throw new Error(`No session '${params.sessionId}' (released, or created by another worker).`);
    const problems = feedProblems(session, params.feeds);
    if (problems.length > 0) throw new Error(`The inputs do not fit the model:\n  - ${problems.join('\n  - ')}`);
    const feeds = Object.fromEntries(Object.entries(params.feeds).map(([name, value]) => [name, toOrtTensorValue(value)]));
    const unknownOutputs = (params.outputs ?? []).filter((name) => !session.outputNames.includes(name));
    if (unknownOutputs.length > 0) throw new Error(`The model has no output ${unknownOutputs.map((n) => `'${n}'`).join(', ')}; it has ${session.outputNames.join(', ')}.`);
    const results = params.outputs ? await session.run(feeds, params.outputs) : await session.run(feeds);
    return Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, fromOrtTensor(name, tensor)]));
  }

  async releaseSession(sessionId: string): Promise<boolean> {
    const session = this.#sessions.get(sessionId);
    if (!session) return false;
    this.#sessions.delete(sessionId);
    await session.release();
    return true;
  }

  async releaseAll(): Promise<void> {
    for (const id of [...this.#sessions.keys()]) await this.releaseSession(id);
  }

  /** The provider to use for a requested device, with a note for the user when it differs. */
  async #resolveDevice(requested: string): Promise<{ device: string; note: string }> {
    const supported = ort.listSupportedBackends().map((b) => b.name);
    if (requested === 'auto') {
      const reasons: string[] = [];
      for (const candidate of AUTO_DEVICE_ORDER.filter((d) => supported.includes(d))) {
        const software = candidate === 'webgpu' ? softwareOnlyVulkan(vulkanDriverManifests()) : null;
        if (software !== null) {
          reasons.push(`${specFor(candidate).label} passed over (${software}; choose it by name to use it anyway)`);
          continue;
        }
        const failure = await this.#probe(candidate);
        if (failure === null) return { device: candidate, note: reasons.length > 0 ? `auto: ${reasons.join('; ')}; using ${specFor(candidate).label}.` : '' };
        reasons.push(`${specFor(candidate).label} unavailable (${failure})`);
      }
      throw new Error(`No execution provider works on this machine: ${reasons.join('; ')}.`);
    }
    const unknown = unknownBackendMessage(requested);
    if (unknown) throw new Error(unknown);
    const failure = await this.#probe(requested);
    if (failure === null) return { device: requested, note: '' };
    if (requested === 'cpu') throw new Error(`The CPU execution provider does not work: ${failure}`);
    return { device: 'cpu', note: `${specFor(requested).label} is not available (${failure}); running on the CPU instead. ${specFor(requested).remedy}` };
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

function describeValue(value: ort.InferenceSession.ValueMetadata): SessionValueInfo {
  return value.isTensor ? { name: value.name, type: value.type, dims: [...value.shape] } : { name: value.name, type: 'non-tensor', dims: [] };
}

/** Every way the feeds fail to fit the session's inputs: missing, unexpected, wrong type, wrong dims. */
function feedProblems(session: ort.InferenceSession, feeds: TensorMap): string[] {
  const problems: string[] = [];
  const expected = new Map(session.inputMetadata.map((m) => [m.name, m]));
  for (const [name, meta] of expected) {
    const feed = feeds[name];
    if (!feed) {
      problems.push(`missing input '${name}'${meta.isTensor ? ` (${meta.type} [${meta.shape.join(', ')}])` : ''}`);
      continue;
    }
    if (!meta.isTensor) continue;
    if (feed.type !== meta.type) problems.push(`input '${name}' is ${feed.type}, the model expects ${meta.type}`);
    const dimsFit = meta.shape.length === 0 || (meta.shape.length === feed.dims.length && meta.shape.every((d, i) => typeof d === 'string' || d === feed.dims[i]));
    if (!dimsFit) problems.push(`input '${name}' has shape [${feed.dims.join(', ')}], the model expects [${meta.shape.join(', ')}]`);
  }
  for (const name of Object.keys(feeds)) if (!expected.has(name)) problems.push(`unexpected input '${name}' (the model takes ${[...expected.keys()].join(', ')})`);
  return problems;
}

function toOrtTensorValue(value: TensorValue): ort.Tensor {
  return new ort.Tensor(value.type, value.data, value.dims);
}

function fromOrtTensor(name: string, tensor: ort.Tensor): TensorValue {
  const dims = [...tensor.dims];
  switch (tensor.type) {
    case 'float32':
    case 'float16':
    case 'int64':
    case 'int32':
    case 'uint8':
    case 'bool':
      return { type: tensor.type, dims, data: tensor.data as TensorValue['data'] };
    default:
      throw new Error(`output '${name}' has element type ${tensor.type}, which BLIP Studio does not read`);
  }
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
