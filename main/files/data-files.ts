/**
 * Confinement of file access to the app's data folder. Both Electron's `studio-file:` protocol and
 * serve mode's `/files/` route resolve every request through `resolveDataFile`, so the renderer can
 * never read outside the data folder: no absolute paths, no `..`, no NUL, no symlink that leads out.
 */
import { realpath, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, sep } from 'node:path';

export type DataFileResolution =
  | { ok: true; path: string; contentType: string }
  | { ok: false; status: 400 | 403 | 404; reason: string };

export type ContentTypeTable = Readonly<Record<string, string>>;

/** Data-folder files the UI displays; anything else (the database, model weights) is never served. */
export const DATA_CONTENT_TYPES: ContentTypeTable = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.avif': 'image/avif',
  '.json': 'application/json',
};

export function contentTypeFor(path: string, table: ContentTypeTable = DATA_CONTENT_TYPES): string | null {
  return table[extname(path).toLowerCase()] ?? null;
}

/** Resolves a data-folder-relative request path to a servable file inside `dataDir`, or says why not. */
export function resolveDataFile(dataDir: string, requestPath: string): Promise<DataFileResolution> {
  return resolveConfinedFile(dataDir, requestPath, DATA_CONTENT_TYPES);
}

/**
 * Resolves a request path (URL-encoded, relative to `rootDir`, '/'-separated) to a real file inside
 * `rootDir` whose extension is in `contentTypes`, or says why not.
 */
export async function resolveConfinedFile(rootDir: string, requestPath: string, contentTypes: ContentTypeTable): Promise<DataFileResolution> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(requestPath);
  } catch {
    return { ok: false, status: 400, reason: 'malformed URL encoding' };
  }
  if (decoded.length === 0) return { ok: false, status: 400, reason: 'empty path' };
  if (decoded.includes('\0')) return { ok: false, status: 400, reason: 'NUL in path' };
  if (decoded.includes('\\')) return { ok: false, status: 400, reason: 'backslash in path' };
  if (decoded.startsWith('/') || isAbsolute(decoded) || /^[a-zA-Z]:/.test(decoded)) {
    return { ok: false, status: 403, reason: 'absolute paths are not allowed' };
  }
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.' || s === '')) {
    return { ok: false, status: 403, reason: 'path traversal is not allowed' };
  }
  const contentType = contentTypeFor(decoded, contentTypes);
  if (contentType === null) return { ok: false, status: 403, reason: 'file type not served' };

  let root: string;
  let target: string;
  try {
    root = await realpath(rootDir);
    target = await realpath(join(root, ...segments));
  } catch {
    return { ok: false, status: 404, reason: 'no such file' };
  }
  // realpath resolved every symlink: the target must still be inside the (real) data folder.
  if (!target.startsWith(root + sep)) return { ok: false, status: 403, reason: 'path leads outside the served folder' };
  const info = await stat(target);
  if (!info.isFile()) return { ok: false, status: 404, reason: 'not a file' };
  return { ok: true, path: target, contentType };
}
