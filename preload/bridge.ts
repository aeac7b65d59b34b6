/**
 * `window.studio` as the preload builds it: one function per API method, each a single invoke on the
 * call channel whose `StudioCallOutcome` is unwrapped, plus `on(event, listener)` for studio events.
 * It imports no Electron (index.ts hands it the two IPC operations), so it is unit-testable.
 *
 * A failed call rejects with a plain `StudioErrorPayload` ({ code, message }), not an Error: the
 * contextBridge copies an Error into the page as a bare `Error(message)` and drops `code`
 * (electron/electron#25596), while a plain object arrives whole. The renderer's toStudioError turns it
 * back into an Error on its side of the bridge.
 */
import {
  STUDIO_EVENTS,
  STUDIO_METHODS,
  type StudioApi,
  type StudioBridge,
  type StudioCallOutcome,
  type StudioErrorPayload,
  type StudioEvent,
  type StudioEventListener,
  type StudioMethod,
} from '../main/api/contract';

/** What the bridge needs from ipcRenderer; the raw IPC event never reaches the bridge, let alone the page. */
export interface BridgeTransport {
  invoke(method: StudioMethod, args: unknown[]): Promise<unknown>;
  /** Registers the one handler for every studio event main sends. */
  subscribe(handler: (name: unknown, payload: unknown) => void): void;
}

const KNOWN_EVENTS: ReadonlySet<string> = new Set(STUDIO_EVENTS);

function isStudioEvent(name: unknown): name is StudioEvent {
  return typeof name === 'string' && KNOWN_EVENTS.has(name);
}

function isCallOutcome(value: unknown): value is StudioCallOutcome {
  if (typeof value !== 'object' || value === null || !('ok' in value)) return false;
  if (value.ok === true) return 'value' in value;
  if (value.ok !== false || !('error' in value)) return false;
  const error = value.error;
  return typeof error === 'object' && error !== null && 'code' in error && 'message' in error && typeof error.code === 'string' && typeof error.message === 'string';
}

function unwrap(method: StudioMethod, outcome: unknown): unknown {
  if (!isCallOutcome(outcome)) {
    const malformed: StudioErrorPayload = { code: 'internal', message: `The app sent a malformed reply to ${method}.` };
    throw malformed;
  }
  if (outcome.ok) return outcome.value;
  // A fresh object with exactly the two fields, so nothing else main attached crosses the bridge.
  const failure: StudioErrorPayload = { code: outcome.error.code, message: outcome.error.message };
  throw failure;
}

function buildApi(transport: BridgeTransport): StudioApi {
  const entries = STUDIO_METHODS.map((method) => {
    const call = async (...args: unknown[]): Promise<unknown> => unwrap(method, await transport.invoke(method, args));
    return [method, call] as const;
  });
  // Each entry forwards its arguments unchanged and main validates them, so the table has StudioApi's shape.
  return Object.fromEntries(entries) as unknown as StudioApi;
}

export function createStudioBridge(transport: BridgeTransport): StudioBridge {
  const listeners = new Map<StudioEvent, Set<(payload: unknown) => void>>();

  transport.subscribe((name, payload) => {
    if (!isStudioEvent(name)) return;
    for (const listener of [...(listeners.get(name) ?? [])]) {
      try {
        listener(payload);
      } catch (error) {
        // One failing listener must not starve the others; rethrow it where the page will see it.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  });

  const on = <E extends StudioEvent>(event: E, listener: StudioEventListener<E>): (() => void) => {
    if (!isStudioEvent(event)) throw new TypeError(`Unknown studio event ${JSON.stringify(String(event)).slice(0, 80)}.`);
    if (typeof listener !== 'function') throw new TypeError('The event listener must be a function.');
    const subscribed = (payload: unknown): void => listener(payload as Parameters<StudioEventListener<E>>[0]);
    let set = listeners.get(event);
    if (set === undefined) {
      set = new Set();
      listeners.set(event, set);
    }
    set.add(subscribed);
    return () => {
      set.delete(subscribed);
    };
  };

  return { ...buildApi(transport), on };
}
