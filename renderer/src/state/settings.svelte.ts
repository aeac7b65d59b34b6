import {
  DEVICE_CHOICES,
  SCHEDULER_NAMES,
  type DeviceChoice,
  type SchedulerName,
  type Settings,
  type SettingsPatch,
  type StudioBridge,
} from '../contract';
import { StudioError, toStudioError } from '../transport/studio-error';
import { Resource } from './resource.svelte';

/** The ranges the form accepts; main validates again. */
export const SETTING_LIMITS = {
  threads: { min: 0, max: 256 },
  steps: { min: 1, max: 150 },
  guidance: { min: 1, max: 20 },
} as const;

export const DEVICE_LABELS: Record<DeviceChoice, string> = {
  auto: 'Automatic (best available)',
  cpu: 'CPU',
  webgpu: 'WebGPU',
  cuda: 'CUDA (NVIDIA)',
  dml: 'DirectML (Windows)',
  coreml: 'Core ML (macOS)',
};

export const SCHEDULER_LABELS: Record<SchedulerName, string> = {
  pndm: 'PNDM (reference)',
  ddim: 'DDIM',
  euler: 'Euler',
  dpmpp2m: 'DPM++ 2M',
  'dpmpp2m-karras': 'DPM++ 2M Karras',
};

export const DEVICE_OPTIONS: readonly DeviceChoice[] = DEVICE_CHOICES;
export const SCHEDULER_OPTIONS: readonly SchedulerName[] = SCHEDULER_NAMES;

type NumericField = keyof typeof SETTING_LIMITS;
export type SettingsFormErrors = Partial<Record<NumericField, string>>;

function parseNumber(text: string, field: NumericField, integer: boolean): number | string {
  const { min, max } = SETTING_LIMITS[field];
  const trimmed = text.trim();
  const expected = integer ? `a whole number from ${min} to ${max}` : `a number from ${min} to ${max}`;
  if (trimmed === '') return `Enter ${expected}.`;
  const value = Number(trimmed);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) return `Enter ${expected}.`;
  if (value < min || value > max) return `Enter ${expected}.`;
  return value;
}

/**
 * The editable copy of the runtime and generation defaults. Numbers are kept as typed text so the
 * form can say exactly what is wrong; `patch` holds only what changed.
 */
export class SettingsForm {
  device = $state<DeviceChoice>('auto');
  threads = $state('0');
  steps = $state('50');
  guidance = $state('7.5');
  scheduler = $state<SchedulerName>('pndm');

  #base = $state.raw<Settings | null>(null);
  #saving = $state(false);
  #saveError = $state.raw<StudioError | null>(null);
  #savedAt = $state<number | null>(null);
  readonly #save: (patch: SettingsPatch) => Promise<Settings>;

  constructor(save: (patch: SettingsPatch) => Promise<Settings>) {
    this.#save = save;
  }

  readonly #parsed = $derived({
    threads: parseNumber(this.threads, 'threads', true),
    steps: parseNumber(this.steps, 'steps', true),
    defaultGuidance: parseNumber(this.guidance, 'guidance', false),
  });

  readonly errors: SettingsFormErrors = $derived.by(() => {
    const errors: SettingsFormErrors = {};
    if (typeof this.#parsed.threads === 'string') errors.threads = this.#parsed.threads;
    if (typeof this.#parsed.steps === 'string') errors.steps = this.#parsed.steps;
    if (typeof this.#parsed.defaultGuidance === 'string') errors.guidance = this.#parsed.defaultGuidance;
    return errors;
  });

  readonly valid = $derived(Object.keys(this.errors).length === 0);

  /** The changed fields, valid or not yet. */
  readonly patch: SettingsPatch = $derived.by(() => {
    const base = this.#base;
    if (base === null) return {};
    const patch: SettingsPatch = {};
    const { threads, steps, defaultGuidance } = this.#parsed;
    if (this.device !== base.device) patch.device = this.device;
    if (this.scheduler !== base.defaultScheduler) patch.defaultScheduler = this.scheduler;
    if (typeof threads === 'number' && threads !== base.threads) patch.threads = threads;
    if (typeof steps === 'number' && steps !== base.defaultSteps) patch.defaultSteps = steps;
    if (typeof defaultGuidance === 'number' && defaultGuidance !== base.defaultGuidance) {
      patch.defaultGuidance = defaultGuidance;
    }
    return patch;
  });

  /** True when saving would change something, or when a field holds text that is not valid. */
  readonly dirty = $derived(this.#base !== null && (Object.keys(this.patch).length > 0 || !this.valid));

  get ready(): boolean {
    return this.#base !== null;
  }

  get saving(): boolean {
    return this.#saving;
  }

  get saveError(): StudioError | null {
    return this.#saveError;
  }

  /** When the last save succeeded (epoch ms), until the form is edited again. */
  get savedAt(): number | null {
    return this.dirty ? null : this.#savedAt;
  }

  /** Takes new saved values; fields the user is editing are left alone. */
  adopt(settings: Settings): void {
    const wasDirty = this.dirty;
    this.#base = settings;
    if (!wasDirty) this.reset();
  }

  /** Back to the saved values. */
  reset(): void {
    const base = this.#base;
    if (base === null) return;
    this.device = base.device;
    this.threads = String(base.threads);
    this.steps = String(base.defaultSteps);
    this.guidance = String(base.defaultGuidance);
    this.scheduler = base.defaultScheduler;
    this.#saveError = null;
  }

  async submit(): Promise<void> {
    if (!this.valid || this.#saving) return;
    this.#saving = true;
    this.#saveError = null;
    try {
      const saved = await this.#save(this.patch);
      this.#base = saved;
      this.reset();
      this.#savedAt = Date.now();
    } catch (error) {
      this.#saveError = toStudioError(error);
    } finally {
      this.#saving = false;
    }
  }
}

/** The user's settings as main stores them, kept current by `settingsChanged`. */
export class SettingsState {
  readonly resource: Resource<Settings>;
  readonly form: SettingsForm;
  readonly #bridge: StudioBridge;

  constructor(bridge: StudioBridge) {
    this.#bridge = bridge;
    this.resource = new Resource(() => bridge.getSettings());
    this.form = new SettingsForm((patch) => this.update(patch));
  }

  get current(): Settings | undefined {
    return this.resource.value;
  }

  async load(): Promise<void> {
    await this.resource.load();
    const settings = this.resource.value;
    if (settings !== undefined) this.form.adopt(settings);
  }

  /** Saves a patch; the change shows at once and is rolled back if main refuses it. */
  async update(patch: SettingsPatch): Promise<Settings> {
    const before = this.resource.value;
    if (before !== undefined) this.resource.set({ ...before, ...patch });
    try {
      const saved = await this.#bridge.updateSettings(patch);
      this.#adopt(saved);
      return saved;
    } catch (error) {
      if (before !== undefined) this.resource.set(before);
      throw toStudioError(error);
    }
  }

  connect(): () => void {
    return this.#bridge.on('settingsChanged', (settings) => this.#adopt(settings));
  }

  #adopt(settings: Settings): void {
    this.resource.set(settings);
    this.form.adopt(settings);
  }
}
