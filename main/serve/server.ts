/**
 * Serve mode: the same main-process API as the desktop app, over HTTP (calls, images, the built
 * renderer) and a WebSocket (events), bound to 127.0.0.1 only and guarded by a per-run token.
 * Routes come from the contract's SERVE_ROUTES; every call goes through `dispatchCall`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { SERVE_ROUTES, type StudioCallOutcome } from '../api/contract';
import { dispatchCall } from '../api/dispatch';
import { MAX_UPLOAD_BASE64_CHARS } from '../api/schemas';
import type { Studio } from '../api/studio';
import { RENDERER_CSP } from '../security/csp';
import { resolveConfinedFile, resolveDataFile, type ContentTypeTable } from '../files/data-files';
import { isAllowedHost, isAllowedOrigin, isAuthorized, newToken, tokenCookie, tokenMatches } from './auth';

export const LOOPBACK_HOST = '127.0.0.1';

/** Largest accepted API request body: one uploaded photo in base64 plus room for the JSON around it. */
export const MAX_BODY_BYTES = MAX_UPLOAD_BASE64_CHARS + 1024 * 1024;

const RENDERER_CONTENT_TYPES: ContentTypeTable = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': RENDERER_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

export interface ServeOptions {
  studio: Studio;
  /** Folder with the built renderer (out/renderer). */
  rendererDir: string;
  /** 0 picks a free port. */
  port: number;
  /** Fixed token (tests); a random one by default. */
  token?: string;
}

export interface RunningServer {
  readonly port: number;
  readonly token: string;
  /** The URL the user opens once: it sets the session cookie and drops the token from the address. */
  readonly openUrl: string;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const token = options.token ?? newToken();
  const sockets = new Set<WebSocket>();
  const webSockets = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  let port = 0;

  const server: Server = createServer((request, response) => {
    handleRequest(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendText(response, 500, `Internal error: ${error instanceof Error ? error.message : String(error)}`);
      else response.destroy();
    });
  });

  async function handleRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!isAllowedHost(request.headers.host, port)) return sendText(response, 421, 'Unexpected Host header.');
    if (!isAllowedOrigin(request.headers.origin, port)) return sendText(response, 403, 'Cross-origin requests are refused.');
    const url = new URL(request.url ?? '/', `http://${LOOPBACK_HOST}:${port}`);
    // Route on the raw path: URL parsing would resolve `..` and `%2e%2e` before confinement can refuse them.
    const rawPath = (request.url ?? '/').split('?')[0] ?? '/';

    // Opening the printed URL: trade the token in the address for a cookie, then show the app.
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null && request.method === 'GET') {
      if (!tokenMatches(queryToken, token)) return sendUnauthorized(response);
      // Always back to the app's root: never echo a request path into Location (no open redirect).
      response.writeHead(303, { Location: '/', 'Set-Cookie': tokenCookie(token), ...SECURITY_HEADERS });
      response.end();
      return;
    }
    if (!isAuthorized(request, token)) return sendUnauthorized(response);

    if (rawPath.startsWith(SERVE_ROUTES.call)) return handleCall(request, response, rawPath.slice(SERVE_ROUTES.call.length));
    if (request.method !== 'GET' && request.method !== 'HEAD') return sendText(response, 405, 'Method not allowed.');
    if (rawPath.startsWith(SERVE_ROUTES.files)) {
      const resolved = await resolveDataFile(options.studio.dataDir, rawPath.slice(SERVE_ROUTES.files.length));
      return resolved.ok ? sendFile(request, response, resolved.path, resolved.contentType) : sendText(response, resolved.status, resolved.reason);
    }
    const staticPath = rawPath === '/' ? 'index.html' : rawPath.slice(1);
    const resolved = await resolveConfinedFile(options.rendererDir, staticPath, RENDERER_CONTENT_TYPES);
    return resolved.ok ? sendFile(request, response, resolved.path, resolved.contentType) : sendText(response, resolved.status, resolved.reason);
  }

  async function handleCall(request: IncomingMessage, response: ServerResponse, method: string): Promise<void> {
    if (request.method !== 'POST') return sendText(response, 405, 'API calls use POST.');
    if (!(request.headers['content-type'] ?? '').startsWith('application/json')) return sendText(response, 415, 'API calls send JSON.');
    const body = await readBody(request, MAX_BODY_BYTES);
    if (body === null) return sendText(response, 413, 'Request body too large.');
    let args: unknown;
    try {
      args = (JSON.parse(body.length > 0 ? body : '{}') as { args?: unknown }).args ?? [];
    } catch {
      return sendJson(response, { ok: false, error: { code: 'invalid-request', message: 'Request body is not valid JSON.' } });
    }
    sendJson(response, await dispatchCall(options.studio.api, method, args));
  }

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? '/', `http://${LOOPBACK_HOST}:${port}`);
    const allowed =
      url.pathname === SERVE_ROUTES.events &&
      isAllowedHost(request.headers.host, port) &&
      isAllowedOrigin(request.headers.origin, port) &&
      isAuthorized(request, token);
    if (!allowed) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    webSockets.handleUpgrade(request, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => sockets.delete(ws));
      // The event stream is one-way; anything the page sends is ignored.
    });
  });

  const stopEvents = options.studio.onEvent((event, payload) => {
    const message = JSON.stringify({ event, payload });
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(message);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, LOOPBACK_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('Serve mode could not determine its port.');
  port = address.port;

  return {
    port,
    token,
    openUrl: `http://${LOOPBACK_HOST}:${port}/?token=${token}`,
    close: async () => {
      stopEvents();
      for (const ws of sockets) ws.terminate();
      webSockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(request: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        resolve(null);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function sendJson(response: ServerResponse, outcome: StudioCallOutcome): void {
  const body = JSON.stringify(outcome);
  response.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...SECURITY_HEADERS });
  response.end(body);
}

function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
  response.end(text);
}

function sendUnauthorized(response: ServerResponse): void {
  sendText(response, 401, 'BLIP Studio serve mode: open the URL with the token that `npm run serve` printed.');
}

function sendFile(request: IncomingMessage, response: ServerResponse, path: string, contentType: string): void {
  response.writeHead(200, { 'Content-Type': contentType, ...SECURITY_HEADERS });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(path)
    .on('error', () => response.destroy())
    .pipe(response);
}
