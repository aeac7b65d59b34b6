/**
 * The two custom schemes of the window: `app://studio/` serves the built renderer (with the CSP as a
 * response header) and `studio-file://data/` serves images from the data folder, confined to it by
 * resolveDataFile. Neither can reach anything else on disk.
 */
import { protocol } from 'electron';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { FILE_PROTOCOL } from '../api/contract';
import { resolveDataFile } from '../files/data-files';
import { RENDERER_CSP } from '../security/csp';
import { APP_ORIGIN, APP_PROTOCOL, dataFileRequestPath, rendererFileForUrl } from './policy';

const RENDERER_CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

/** Must run before `app.whenReady()`: privileges can only be granted while the app starts. */
export function registerPrivilegedSchemes(): void {
  protocol.registerSchemesAsPrivileged([
    // standard: real origin and relative URLs; secure: treated like https (no mixed-content downgrade);
    // supportFetchAPI + corsEnabled: Vite's module scripts are fetched in CORS mode.
    { scheme: APP_PROTOCOL.scheme, privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: true, codeCache: true } },
    // corsEnabled so the UI can draw data images into a canvas and read the pixels back (masks, edges).
    { scheme: FILE_PROTOCOL.scheme, privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: true } },
  ]);
}

function isReadMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

function plainResponse(status: number, text: string): Response {
  return new Response(text, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' } });
}

function isMissingFileError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR';
}

async function fileResponse(method: string, path: string, headers: Record<string, string>): Promise<Response> {
  try {
    const body = await readFile(path);
    return new Response(method === 'HEAD' ? null : body, { status: 200, headers: { ...headers, 'Content-Length': String(body.byteLength) } });
  } catch (error) {
    return isMissingFileError(error) ? plainResponse(404, 'Not found') : plainResponse(500, 'Could not read the file');
  }
}

/** Serves the renderer folder under app://studio/; every response carries the renderer CSP. */
export function handleAppProtocol(rendererDir: string): void {
  protocol.handle(APP_PROTOCOL.scheme, (request) => {
    if (!isReadMethod(request.method)) return plainResponse(405, 'Method not allowed');
    const relativePath = rendererFileForUrl(request.url);
    if (relativePath === null) return plainResponse(404, 'Not found');
    return fileResponse(request.method, join(rendererDir, ...relativePath.split('/')), {
      'Content-Type': RENDERER_CONTENT_TYPES[extname(relativePath).toLowerCase()] ?? 'application/octet-stream',
      'Content-Security-Policy': RENDERER_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-cache',
    });
  });
}

/** Serves data-folder images under studio-file://data/<relative path>, readable only by our origin. */
export function handleDataFileProtocol(dataDir: string): void {
  protocol.handle(FILE_PROTOCOL.scheme, async (request) => {
    if (!isReadMethod(request.method)) return plainResponse(405, 'Method not allowed');
    const requestPath = dataFileRequestPath(request.url);
    if (requestPath === null) return plainResponse(404, 'Not found');
    const resolved = await resolveDataFile(dataDir, requestPath);
    if (!resolved.ok) return plainResponse(resolved.status, resolved.reason);
    return fileResponse(request.method, resolved.path, {
      'Content-Type': resolved.contentType,
      'Access-Control-Allow-Origin': APP_ORIGIN,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    });
  });
}
