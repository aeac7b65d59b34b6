import type { StudioBridge } from '../contract';

/**
 * How the renderer reaches main. `pickTransport` chooses one at start-up; everything after that sees
 * only this interface.
 */
export interface Transport {
  /** The typed API plus events, identical in every transport. */
  readonly bridge: StudioBridge;
  /** Whether live events are flowing. Always 'online' where the link cannot drop (Electron IPC). */
  readonly link: TransportLink;
  /** The URL an `<img>` loads for a path relative to the data folder. */
  fileUrl(relativePath: string): string;
  /** Stops sockets and timers. */
  close(): void;
}

export type LinkState = 'connecting' | 'online' | 'offline';

export interface TransportLink {
  readonly state: LinkState;
  /** Epoch milliseconds of the next automatic reconnect, or null when none is scheduled. */
  readonly nextRetryAt: number | null;
  subscribe(listener: (state: LinkState) => void): () => void;
  /** Reconnects now instead of waiting for the back-off. */
  retryNow(): void;
}

/** A link that never drops (in-process IPC). */
export const ALWAYS_ONLINE: TransportLink = Object.freeze({
  state: 'online',
  nextRetryAt: null,
  subscribe: () => () => {},
  retryNow: () => {},
});
