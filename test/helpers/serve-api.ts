/**
 * The studio's API as a test (or any other client) reaches a running `serve` process: typed calls over
 * HTTP with the bearer token, and the WebSocket event stream.
 */
import WebSocket from 'ws';
import { SERVE_ROUTES, type StudioApi, type StudioCallOutcome, type StudioEvent, type StudioEvents } from '../../main/api/contract';
import type { ServeProcess } from './built-app';

export type ServeApi = { [M in keyof StudioApi]: (...args: Parameters<StudioApi[M]>) => ReturnType<StudioApi[M]> };

/** Calls a serve process's API; a refused call rejects with the studio's error message and code. */
export function serveApi(serve: ServeProcess): ServeApi {
  const token = new URL(serve.openUrl).searchParams.get('token') ?? '';
  return new Proxy({} as ServeApi, {
    get: (_target, method: string) => async (...args: unknown[]) => {
      const response = await fetch(`${serve.origin}${SERVE_ROUTES.call}${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ args }),
      });
      if (!response.ok) throw new Error(`${method}: HTTP ${response.status} ${await response.text()}`);
      const outcome = (await response.json()) as StudioCallOutcome;
      if (!outcome.ok) throw new Error(`${method}: ${outcome.error.code}: ${outcome.error.message}`);
      return outcome.value;
    },
  });
}

export interface ServeEvents {
  /** Resolves with the first event of this kind whose payload passes `match` (events already seen count). */
  next<E extends StudioEvent>(event: E, match: (payload: StudioEvents[E]) => boolean, timeoutMs?: number): Promise<StudioEvents[E]>;
  close(): void;
}

/** Subscribes to a serve process's events; resolves once the socket is open. */
export async function serveEvents(serve: ServeProcess): Promise<ServeEvents> {
  const token = new URL(serve.openUrl).searchParams.get('token') ?? '';
  const ws = new WebSocket(`ws://127.0.0.1:${serve.port}${SERVE_ROUTES.events}`, { headers: { authorization: `Bearer ${token}` } });
  const seen: { event: string; payload: unknown }[] = [];
  const waiters = new Set<(message: { event: string; payload: unknown }) => void>();
  ws.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as { event: string; payload: unknown };
    seen.push(message);
    for (const waiter of waiters) waiter(message);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    next: (event, match, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const test = (message: { event: string; payload: unknown }) => message.event === event && match(message.payload as never);
        const earlier = seen.find(test);
        if (earlier) return resolve(earlier.payload as never);
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no ${event} event matched within ${timeoutMs} ms; last: ${JSON.stringify(seen.at(-1)?.payload)?.slice(0, 300)}`));
        }, timeoutMs);
        const waiter = (message: { event: string; payload: unknown }) => {
          if (!test(message)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(message.payload as never);
        };
        waiters.add(waiter);
      }),
    close: () => ws.terminate(),
  };
}
