import type { AppInfo, BackendInfo, DataFolderInfo, JobSummary, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { isActive, type JobsState } from './jobs.svelte';
import { Resource } from './resource.svelte';

/** How long "Copied" shows after copying the data folder path. */
const COPIED_FEEDBACK_MS = 1600;

/** Where a backend's device check stands: starting it, or the job that runs it. */
export interface BackendCheck {
  /** True from the click until the job's first event. */
  readonly starting: boolean;
  readonly job: JobSummary | undefined;
  readonly error: StudioError | null;
  /** Starting, queued or running: another check would only queue behind it. */
  readonly busy: boolean;
  /** A check for this backend has ended (passed, failed or cancelled). */
  readonly finished: boolean;
}

interface CheckRecord {
  starting: boolean;
  jobId: string | null;
  error: StudioError | null;
}

/**
 * This machine as main reports it: app and runtime versions, the data folder, the ONNX Runtime
 * execution providers, and the device checks started from here.
 */
export class SystemState {
  readonly info: Resource<AppInfo>;
  readonly dataFolder: Resource<DataFolderInfo>;
  readonly backends: Resource<BackendInfo[]>;
  readonly #bridge: StudioBridge;
  readonly #jobs: JobsState;
  readonly #copyText: (text: string) => Promise<void>;
  #checks = $state<Record<string, CheckRecord>>({});
  #copied = $state(false);
  #copiedTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(bridge: StudioBridge, jobs: JobsState, copyText: (text: string) => Promise<void>) {
    this.#bridge = bridge;
    this.#jobs = jobs;
    this.#copyText = copyText;
    this.info = new Resource(() => bridge.getAppInfo());
    this.dataFolder = new Resource(() => bridge.getDataFolder());
    this.backends = new Resource(() => bridge.listBackends());
  }

  async load(): Promise<void> {
    await Promise.all([this.info.load(), this.dataFolder.load(), this.backends.load()]);
  }

  /** True for a moment after the data folder path was copied. */
  get copied(): boolean {
    return this.#copied;
  }

  /** Whether main reports the execution provider behind a device choice as usable; 'auto' always is. */
  deviceAvailable(device: string): boolean {
    if (device === 'auto') return true;
    return this.backends.value?.find((backend) => backend.name === device)?.available ?? false;
  }

  async copyDataFolderPath(): Promise<void> {
    const path = this.dataFolder.value?.path ?? this.info.value?.dataDir;
    if (path === undefined) return;
    try {
      await this.#copyText(path);
    } catch {
      return; // The clipboard can be unavailable (unfocused window, insecure origin): the path stays selectable.
    }
    this.#copied = true;
    if (this.#copiedTimer !== null) clearTimeout(this.#copiedTimer);
    this.#copiedTimer = setTimeout(() => {
      this.#copied = false;
      this.#copiedTimer = null;
    }, COPIED_FEEDBACK_MS);
  }

  checkOf(backend: string): BackendCheck {
    const record = this.#checks[backend];
    if (record === undefined) return { starting: false, job: undefined, error: null, busy: false, finished: false };
    const job = record.jobId === null ? undefined : this.#jobs.byId(record.jobId);
    const starting = record.starting || (record.jobId !== null && job === undefined);
    const active = job !== undefined && isActive(job);
    return { starting, job, error: record.error, busy: starting || active, finished: job !== undefined && !active };
  }

  /** Starts a device check; its progress and result arrive as job events. */
  async check(backend: string): Promise<void> {
    if (this.#checks[backend]?.starting) return;
    this.#checks[backend] = { starting: true, jobId: this.#checks[backend]?.jobId ?? null, error: null };
    try {
      const ref = await this.#bridge.checkRuntime({ backend });
      this.#checks[backend] = { starting: false, jobId: ref.id, error: null };
    } catch (error) {
      this.#checks[backend] = { starting: false, jobId: null, error: toStudioError(error) };
    }
  }
}
