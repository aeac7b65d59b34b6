import { getContext, hasContext } from 'svelte';
import { observeBridge } from '../transport/observe-bridge';
import type { Transport } from '../transport/transport';
import { AppState } from './app.svelte';
import { ConnectionState } from './connection.svelte';
import { FinetunesState } from './finetunes.svelte';
import { ControlState } from './control.svelte';
import { EditState } from './edit.svelte';
import { GalleryState } from './gallery.svelte';
import { GenerateState } from './generate.svelte';
import { JobsState } from './jobs.svelte';
import { LibraryState } from './library.svelte';
import { ModelsState } from './models.svelte';
import { SettingsState } from './settings.svelte';
import { SubjectsState } from './subjects.svelte';
import { SystemState } from './system.svelte';
import { ThemeState } from './theme.svelte';
import type { ViewId } from './views';

/** Where an empty screen should send the user next, given what exists so far. */
export interface NextStep {
  readonly view: ViewId;
  readonly label: string;
}

/**
 * The renderer's state, built once from the transport picked at start-up. Components get it from
 * context (`getStudio()`), send intents to its parts and render what they hold.
 */
export class Studio {
  readonly connection: ConnectionState;
  readonly app: AppState;
  readonly settings: SettingsState;
  readonly theme: ThemeState;
  readonly jobs: JobsState;
  readonly library: LibraryState;
  readonly models: ModelsState;
  readonly system: SystemState;
  readonly subjects: SubjectsState;
  readonly generate: GenerateState;
  readonly gallery: GalleryState;
  readonly finetunes: FinetunesState;
  readonly control: ControlState;
  readonly edit: EditState;
  readonly #transport: Transport;
  #refreshing = $state(false);

  constructor(transport: Transport, scope: Window & typeof globalThis) {
    this.#transport = transport;
    this.connection = new ConnectionState(transport.link);
    const bridge = observeBridge(transport.bridge, this.connection);
    this.app = new AppState({
      location: scope.location,
      history: scope.history,
      addEventListener: (type, listener) => scope.addEventListener(type, listener),
      removeEventListener: (type, listener) => scope.removeEventListener(type, listener),
      userAgent: scope.navigator.userAgent,
    });
    this.settings = new SettingsState(bridge);
    this.theme = new ThemeState(this.settings, {
      matchMedia: (query) => scope.matchMedia(query),
      root: scope.document.documentElement,
      storage: safeLocalStorage(scope),
    });
    this.jobs = new JobsState(bridge);
    this.library = new LibraryState(bridge);
    this.models = new ModelsState(bridge, this.jobs);
    this.system = new SystemState(bridge, this.jobs, (text) => scope.navigator.clipboard.writeText(text));
    this.subjects = new SubjectsState(bridge, this.library, this.jobs);
    this.generate = new GenerateState(bridge, this.jobs, this.library, this.settings);
    this.gallery = new GalleryState(bridge, this.library);
    this.finetunes = new FinetunesState(bridge, this.jobs);
    this.control = new ControlState(bridge, () => this.generate.outputSize);
    this.generate.control = this.control;
    this.edit = new EditState(bridge);
  }

  readonly nextStep: NextStep = $derived.by(() => {
    if (!this.library.hasReadyModel) return { view: 'settings', label: 'Open Models & Settings' };
    if (this.library.subjectCount === 0) return { view: 'subjects', label: 'Go to Subjects' };
    return { view: 'generate', label: 'Go to Generate' };
  });

  /** "Reuse settings": fills the Generate form from a recipe (and the library subjects it names), then opens Generate. */
  reuseRecipe(recipe: Record<string, unknown>, subjects: { subjectId: number | null; mixSubjectId: number | null }): void {
    this.generate.applyRecipe(this.gallery.formValues(recipe, subjects));
    this.app.navigate('generate');
  }

  /** The URL an `<img>` uses for a path relative to the data folder. */
  fileUrl = (relativePath: string): string => this.#transport.fileUrl(relativePath);

  /** Subscribes to events, loads everything, and returns the cleanup. */
  start(): () => void {
    const stops = [
      this.app.connect(),
      this.theme.connect(),
      this.connection.connect(() => this.refresh()),
      this.settings.connect(),
      this.jobs.connect(),
      this.library.connect(),
      this.models.connect(),
      this.subjects.connect(),
      this.generate.connect(),
      this.gallery.connect(),
      this.finetunes.connect(),
    ];
    void this.refresh();
    return () => {
      for (const stop of stops.reverse()) stop();
      this.#transport.close();
    };
  }

  /** True while `refresh` runs. */
  get refreshing(): boolean {
    return this.#refreshing;
  }

  /** Reloads everything the app shows. Failures land in each part's `error`, never here. */
  async refresh(): Promise<void> {
    this.#refreshing = true;
    try {
      await Promise.all([this.settings.load(), this.jobs.load(), this.library.load(), this.models.load(), this.system.load()]);
    } finally {
      this.#refreshing = false;
    }
  }
}

function safeLocalStorage(scope: Window & typeof globalThis): Storage | null {
  try {
    return scope.localStorage;
  } catch {
    return null;
  }
}

const STUDIO_KEY: unique symbol = Symbol('blip-studio');

/** The context map to `mount` the app with, so every component can call `getStudio()`. */
export function studioContext(studio: Studio): Map<typeof STUDIO_KEY, Studio> {
  return new Map([[STUDIO_KEY, studio]]);
}

/** The app's Studio; call during component initialisation. */
export function getStudio(): Studio {
  if (!hasContext(STUDIO_KEY)) throw new Error('getStudio() was called outside the app (mount it with studioContext).');
  return getContext<Studio>(STUDIO_KEY);
}
