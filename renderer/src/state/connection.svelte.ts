import type { CallObserver } from '../transport/observe-bridge';
import { StudioUnreachableError } from '../transport/studio-error';
import type { LinkState, TransportLink } from '../transport/transport';

export interface ConnectionBanner {
  readonly title: string;
  readonly detail: string;
}

/**
 * Whether the API can be reached: the transport's event link plus the fate of the last calls.
 * Drives the non-blocking banner; after an outage it asks the app to reload what it shows.
 */
export class ConnectionState implements CallObserver {
  readonly #link: TransportLink;
  #linkState = $state<LinkState>('connecting');
  #linkDown = $state(false);
  #callFailure = $state<string | null>(null);
  #retrying = $state(false);
  #resync: () => Promise<void> = async () => {};

  constructor(link: TransportLink) {
    this.#link = link;
    this.#linkState = link.state;
  }

  get linkState(): LinkState {
    return this.#linkState;
  }

  get retrying(): boolean {
    return this.#retrying;
  }

  readonly banner: ConnectionBanner | null = $derived.by(() => {
    if (this.#callFailure !== null) {
      return { title: 'BLIP Studio is not responding', detail: this.#callFailure };
    }
    if (this.#linkDown) {
      return {
        title: 'Reconnecting to BLIP Studio…',
        detail: 'Live progress is paused. Your work is safe; the app keeps trying to reconnect on its own.',
      };
    }
    return null;
  });

  succeeded(): void {
    this.#callFailure = null;
  }

  failed(error: unknown): void {
    if (error instanceof StudioUnreachableError) this.#callFailure = error.message;
  }

  /** Reconnects now and reloads everything. */
  async retry(): Promise<void> {
    if (this.#retrying) return;
    this.#retrying = true;
    this.#link.retryNow();
    try {
      await this.#resync();
    } finally {
      this.#retrying = false;
    }
  }

  /** Follows the link; `resync` reloads what may have changed while events were not arriving. */
  connect(resync: () => Promise<void>): () => void {
    this.#resync = resync;
    this.#linkState = this.#link.state;
    return this.#link.subscribe((state) => {
      this.#linkState = state;
      if (state === 'offline') this.#linkDown = true;
      if (state === 'online' && this.#linkDown) {
        this.#linkDown = false;
        void resync();
      }
    });
  }
}
