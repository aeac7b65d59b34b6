import { StudioError, toStudioError } from '../transport/studio-error';

export type ResourceStatus = 'idle' | 'loading' | 'ready' | 'error';

/**
 * One value fetched from the API: its last good value, whether a fetch is in flight, and the last
 * error. A failed reload keeps the previous value so the screen never goes blank; only the newest
 * request may write (an older answer arriving late is dropped).
 */
export class Resource<T> {
  readonly #fetch: () => Promise<T>;
  #value = $state.raw<T | undefined>(undefined);
  #loaded = $state(false);
  #loading = $state(false);
  #error = $state.raw<StudioError | null>(null);
  #request = 0;

  constructor(fetch: () => Promise<T>) {
    this.#fetch = fetch;
  }

  /** The last good value, or undefined before the first successful load. */
  get value(): T | undefined {
    return this.#value;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  get loading(): boolean {
    return this.#loading;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  get status(): ResourceStatus {
    if (this.#loaded) return 'ready';
    if (this.#error !== null) return 'error';
    return this.#loading ? 'loading' : 'idle';
  }

  async load(): Promise<void> {
    const request = ++this.#request;
    this.#loading = true;
    try {
      const value = await this.#fetch();
      if (request !== this.#request) return;
      this.#value = value;
      this.#loaded = true;
      this.#error = null;
    } catch (error) {
      if (request !== this.#request) return;
      this.#error = toStudioError(error);
    } finally {
      if (request === this.#request) this.#loading = false;
    }
  }

  /** Replaces the value with one the API pushed (an event), cancelling any fetch in flight. */
  set(value: T): void {
    this.#request += 1;
    this.#value = value;
    this.#loaded = true;
    this.#loading = false;
    this.#error = null;
  }
}
