import { THEME_PREFERENCES, type ThemePreference } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import type { SettingsState } from './settings.svelte';

export type ResolvedTheme = 'light' | 'dark';

export const THEME_LABELS: Record<ThemePreference, string> = {
  system: 'Match system',
  light: 'Light',
  dark: 'Dark',
};

export const THEME_OPTIONS: readonly ThemePreference[] = THEME_PREFERENCES;

/** Remembers the last preference locally so the first paint uses it before Settings arrive. */
const STORAGE_KEY = 'blip-studio.theme';
const DARK_QUERY = '(prefers-color-scheme: dark)';

export interface ThemeHost {
  matchMedia(query: string): MediaQueryList;
  readonly root: HTMLElement;
  readonly storage: Pick<Storage, 'getItem' | 'setItem'> | null;
}

function isThemePreference(value: string | null): value is ThemePreference {
  return value !== null && (THEME_PREFERENCES as readonly string[]).includes(value);
}

/**
 * Light or dark: the user's preference (stored in Settings) resolved against the OS's
 * `prefers-color-scheme`, applied as `data-theme` on `<html>`.
 */
export class ThemeState {
  readonly #settings: SettingsState;
  readonly #host: ThemeHost;
  readonly #query: MediaQueryList;
  #systemDark = $state(false);
  #local = $state<ThemePreference>('system');
  #error = $state.raw<StudioError | null>(null);

  constructor(settings: SettingsState, host: ThemeHost) {
    this.#settings = settings;
    this.#host = host;
    this.#query = host.matchMedia(DARK_QUERY);
    this.#systemDark = this.#query.matches;
    const stored = this.#readStored();
    if (stored !== null) this.#local = stored;
  }

  get preference(): ThemePreference {
    return this.#settings.current?.theme ?? this.#local;
  }

  get resolved(): ResolvedTheme {
    const preference = this.preference;
    if (preference === 'system') return this.#systemDark ? 'dark' : 'light';
    return preference;
  }

  /** Why the last change could not be saved, if it could not. */
  get error(): StudioError | null {
    return this.#error;
  }

  async choose(preference: ThemePreference): Promise<void> {
    this.#local = preference;
    this.#error = null;
    try {
      await this.#settings.update({ theme: preference });
    } catch (error) {
      this.#error = toStudioError(error);
    }
  }

  /** `choose` for a raw `<select>` value; anything that is not a preference is ignored. */
  chooseByName(value: string): void {
    if (isThemePreference(value)) void this.choose(value);
  }

  /** Applies the theme now and whenever it changes; follows the OS. Returns the cleanup. */
  connect(): () => void {
    const onChange = (event: MediaQueryListEvent) => {
      this.#systemDark = event.matches;
    };
    this.#query.addEventListener('change', onChange);
    const stopEffects = $effect.root(() => {
      $effect(() => {
        this.#host.root.dataset.theme = this.resolved;
        this.#remember(this.preference);
      });
    });
    return () => {
      this.#query.removeEventListener('change', onChange);
      stopEffects();
    };
  }

  #remember(preference: ThemePreference): void {
    try {
      this.#host.storage?.setItem(STORAGE_KEY, preference);
    } catch {
      // Storage may be disabled or full; the preference still lives in Settings.
    }
  }

  #readStored(): ThemePreference | null {
    try {
      const value = this.#host.storage?.getItem(STORAGE_KEY) ?? null;
      return isThemePreference(value) ? value : null;
    } catch {
      return null;
    }
  }
}
