import {
  SERVE_ROUTES,
  STUDIO_EVENTS,
  STUDIO_METHODS,
  type StudioApi,
  type StudioBridge,
  type StudioCallOutcome,
  type StudioEvent,
  type StudioEventListener,
  type StudioEvents,
  type StudioMethod,
} from '../contract';
import { serveFileUrl } from './file-urls';
import { isErrorPayload, StudioError, StudioUnreachableError } from './studio-error';
import type { LinkState, Transport, TransportLink } from './transport';

/** What the serve transport needs from the browser; injectable so tests can drive it without one. */
export interface ServeEnvironment {
  /** The page's location: `http(s)://host:port`, used for the WebSocket address. */
  readonly location: { readonly protocol: string; readonly host: string };
  readonly fetch: typeof globalThis.fetch;
  readonly openSocket: (url: string) => WebSocket;
  readonly setTimeout: (callback: () => void, ms: number) => number;
  readonly clearTimeout: (handle: number) => void;
  readonly now: () => number;
  readonly random: () => number;
}

/** Reconnect back-off: doubles from the first delay up to the cap, with ±20 % jitter. */
export const RECONNECT_DELAYS = { firstMs: 500, maxMs: 15_000, jitter: 0.2 } as const;

const UNREACHABLE_MESSAGE = "Can't reach the BLIP Studio server. Check that it is still running.";
const SIGNED_OUT_MESSAGE =
  'This page is not signed in to the BLIP Studio server. Open the address the server printed (it ends in ?token=…).';

export function browserServeEnvironment(scope: Window & typeof globalThis): ServeEnvironment {
  return {
    location: scope.location,
    fetch: scope.fetch.bind(scope),
    openSocket: (url) => new scope.WebSocket(url),
    setTimeout: (callback, ms) => scope.setTimeout(callback, ms),
    clearTimeout: (handle) => scope.clearTimeout(handle),
    now: () => scope.Date.now(),
    random: () => scope.Math.random(),
  };
}

/** The address of the events socket on the page's own origin. */
export function eventsSocketUrl(location: ServeEnvironment['location']): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${SERVE_ROUTES.events}`;
}

function isCallOutcome(value: unknown): value is StudioCallOutcome {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  if (record.ok === true) return 'value' in record;
  return record.ok === false && isErrorPayload(record.error);
}

async function readOutcome(response: Response): Promise<StudioCallOutcome> {
  let body: unknown = undefined;
  try {
    body = await response.json();
  } catch {
    // Not JSON: judged by the status below.
  }
  if (isCallOutcome(body)) return body;
  if (response.status === 401 || response.status === 403) throw new StudioUnreachableError(SIGNED_OUT_MESSAGE);
  if (response.status === 502 || response.status === 503 || response.status === 504) {
    throw new StudioUnreachableError(UNREACHABLE_MESSAGE);
  }
  throw new StudioError('internal', `The server gave an answer the app does not understand (HTTP ${response.status}).`);
}

function isStudioEvent(name: unknown): name is StudioEvent {
  return typeof name === 'string' && (STUDIO_EVENTS as readonly string[]).includes(name);
}

type AnyListener = (payload: unknown) => void;

/**
 * The events WebSocket: one connection, reconnected with back-off, fanning messages out to listeners.
 * Messages are `{"event": name, "payload": ...}`; unknown names and malformed messages are ignored.
 */
class EventSocket implements TransportLink {
  readonly #env: ServeEnvironment;
  readonly #url: string;
  readonly #listeners = new Map<StudioEvent, Set<AnyListener>>();
  readonly #linkListeners = new Set<(state: LinkState) => void>();
  #socket: WebSocket | null = null;
  #state: LinkState = 'connecting';
  #failures = 0;
  #timer: number | null = null;
  #nextRetryAt: number | null = null;
  #closed = false;

  constructor(env: ServeEnvironment) {
    this.#env = env;
    this.#url = eventsSocketUrl(env.location);
    this.#connect();
  }

  get state(): LinkState {
    return this.#state;
  }

  get nextRetryAt(): number | null {
    return this.#nextRetryAt;
  }

  subscribe(listener: (state: LinkState) => void): () => void {
    this.#linkListeners.add(listener);
    return () => this.#linkListeners.delete(listener);
  }

  retryNow(): void {
    if (this.#closed || this.#state === 'online') return;
    this.#cancelTimer();
    this.#dropSocket();
    this.#connect();
  }

  on(event: StudioEvent, listener: AnyListener): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  close(): void {
    this.#closed = true;
    this.#cancelTimer();
    this.#dropSocket();
    this.#listeners.clear();
    this.#linkListeners.clear();
  }

  #connect(): void {
    this.#setState('connecting');
    let socket: WebSocket;
    try {
      socket = this.#env.openSocket(this.#url);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      this.#failures = 0;
      this.#setState('online');
    };
    socket.onmessage = (message: MessageEvent) => this.#dispatch(message.data);
    socket.onclose = () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#scheduleReconnect();
    };
    // An error is always followed by a close, which does the work.
    socket.onerror = () => {};
  }

  #dispatch(data: unknown): void {
    if (typeof data !== 'string') return;
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    const { event, payload } = message as Record<string, unknown>;
    if (!isStudioEvent(event)) return;
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        listener(payload);
      } catch (error) {
        // One broken listener must not starve the others; surface it without swallowing it.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  #scheduleReconnect(): void {
    if (this.#closed) return;
    const base = Math.min(RECONNECT_DELAYS.maxMs, RECONNECT_DELAYS.firstMs * 2 ** this.#failures);
    const jitter = 1 + RECONNECT_DELAYS.jitter * (2 * this.#env.random() - 1);
    const delay = Math.round(base * jitter);
    this.#failures += 1;
    this.#nextRetryAt = this.#env.now() + delay;
    this.#timer = this.#env.setTimeout(() => {
      this.#timer = null;
      this.#nextRetryAt = null;
      this.#connect();
    }, delay);
    this.#setState('offline');
  }

  #cancelTimer(): void {
    if (this.#timer !== null) this.#env.clearTimeout(this.#timer);
    this.#timer = null;
    this.#nextRetryAt = null;
  }

  #dropSocket(): void {
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    socket.close();
  }

  #setState(state: LinkState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of [...this.#linkListeners]) listener(state);
  }
}

/**
 * `StudioBridge` over HTTP + WebSocket (serve mode). Each method is `POST /api/call/<method>` with
 * `{"args": [...]}`; the answer is a `StudioCallOutcome`. Authentication is the session cookie the server
 * set when the page was opened with `?token=…`, so requests only need `credentials: 'same-origin'`.
 */
export function createServeTransport(env: ServeEnvironment): Transport {
  const socket = new EventSocket(env);

  async function call(method: StudioMethod, args: readonly unknown[]): Promise<unknown> {
    let response: Response;
    try {
      response = await env.fetch(`${SERVE_ROUTES.call}${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ args }),
        credentials: 'same-origin',
      });
    } catch (cause) {
      throw new StudioUnreachableError(UNREACHABLE_MESSAGE, { cause });
    }
    const outcome = await readOutcome(response);
    if (outcome.ok) return outcome.value;
    throw StudioError.fromPayload(outcome.error);
  }

  const methods = Object.fromEntries(
    STUDIO_METHODS.map((method) => [method, (...args: unknown[]) => call(method, args)]),
  ) as Record<StudioMethod, (...args: unknown[]) => Promise<unknown>>;

  const bridge: StudioBridge = {
    ...(methods as unknown as StudioApi),
    on<E extends StudioEvent>(event: E, listener: StudioEventListener<E>): () => void {
      return socket.on(event, (payload) => listener(payload as StudioEvents[E]));
    },
  };

  return {
    bridge,
    link: socket,
    fileUrl: serveFileUrl,
    close: () => socket.close(),
  };
}
