import { FILE_PROTOCOL, SERVE_ROUTES } from '../contract';

/** Percent-encodes each segment of a data-folder-relative path; separators stay '/'. */
export function encodeRelativePath(relativePath: string): string {
  return relativePath
    .replaceAll('\\', '/')
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

/** Electron: `studio-file://data/<encoded path>`, served by main's custom protocol handler. */
export function electronFileUrl(relativePath: string): string {
  return `${FILE_PROTOCOL.scheme}://${FILE_PROTOCOL.host}/${encodeRelativePath(relativePath)}`;
}

/** Serve mode: `/files/<encoded path>` on the page's own origin (the session cookie goes along). */
export function serveFileUrl(relativePath: string): string {
  return `${SERVE_ROUTES.files}${encodeRelativePath(relativePath)}`;
}
