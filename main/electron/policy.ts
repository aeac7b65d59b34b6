/**
 * The security decisions of the Electron shell, as pure functions over plain values, so they can be
 * unit-tested without Electron: which URLs are ours, which navigations, senders and permissions are
 * allowed, which links may open in the OS browser, and how app:// request paths map to files.
 * Nothing here imports `electron`; main/electron/*.ts feed these functions with what Electron reports.
 */
import { FILE_PROTOCOL } from '../api/contract';

/**
 * The renderer is served from a privileged `app://studio/` scheme rather than `file://`: it gives the
 * page a real, unique origin, so `'self'` in the CSP means "our bundle" (under file:// it would mean any
 * local file), the CSP can be sent as a response header, and fetch/CORS behave as on the web.
 */
export const APP_PROTOCOL = { scheme: 'app', host: 'studio' } as const;
export const APP_ORIGIN = `${APP_PROTOCOL.scheme}://${APP_PROTOCOL.host}`;
export const RENDERER_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/** Schemes the renderer may load anything from; every other request (http, ws, file...) is cancelled. */
const RENDERER_REACHABLE_SCHEMES: ReadonlySet<string> = new Set([
  `${APP_PROTOCOL.scheme}:`,
  `${FILE_PROTOCOL.scheme}:`,
  'data:',
  'blob:',
  'devtools:',
]);

/**
 * The only permission the UI needs: writing text/images to the clipboard (copy a prompt or a seed).
 * Camera, microphone, geolocation, notifications, HID, serial, USB... are all refused.
 */
const GRANTED_PERMISSIONS: ReadonlySet<string> = new Set(['clipboard-sanitized-write']);

function parseUrl(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** True for any URL in the renderer bundle's origin. Node's URL gives custom schemes a "null" origin, so compare parts. */
export function isRendererUrl(url: string): boolean {
  const parsed = parseUrl(url);
  return parsed !== null && parsed.protocol === `${APP_PROTOCOL.scheme}:` && parsed.host === APP_PROTOCOL.host && parsed.username === '' && parsed.password === '' && parsed.port === '';
}

/**
 * A link the user may open in the OS browser: plain https with a host and no credentials.
 * Returns the normalized URL to hand to the OS, or null to ignore the request.
 */
export function externalLinkToOpen(url: string): string | null {
  const parsed = parseUrl(url);
  if (parsed === null || parsed.protocol !== 'https:' || parsed.hostname === '') return null;
  if (parsed.username !== '' || parsed.password !== '') return null;
  return parsed.href;
}

export type NavigationDecision = { allow: true } | { allow: false; openExternally: string | null };

/** Frames may only move within the renderer bundle; a https link goes to the OS browser instead. */
export function decideNavigation(url: string): NavigationDecision {
  if (isRendererUrl(url)) return { allow: true };
  return { allow: false, openExternally: externalLinkToOpen(url) };
}

/** `window.open` and `target=_blank` never create a window; a https link goes to the OS browser. */
export function decideWindowOpen(url: string): { openExternally: string | null } {
  return { openExternally: externalLinkToOpen(url) };
}

export interface IpcSenderFacts {
  /** The IPC came from the WebContents of our window (not a devtools or stray contents). */
  fromOurWindow: boolean;
  /** The sending frame is that window's main frame (not an iframe); false when the frame is gone. */
  fromMainFrame: boolean;
  /** URL of the sending frame, or null when Electron no longer knows it. */
  frameUrl: string | null;
}

/** API calls are answered only for our window's main frame showing our renderer. */
export function isTrustedSender(facts: IpcSenderFacts): boolean {
  return facts.fromOurWindow && facts.fromMainFrame && facts.frameUrl !== null && isRendererUrl(facts.frameUrl);
}

/**
 * Permission requests and checks: granted only for the few permissions in the table and only to our
 * renderer. `requester` is the requesting URL or origin ('' or undefined when Electron has none).
 */
export function isPermissionGranted(permission: string, requester: string | undefined): boolean {
  return GRANTED_PERMISSIONS.has(permission) && requester !== undefined && isRendererUrl(requester);
}

/**
 * Whether a request in the default session may proceed. Pages (`fromPage`) reach only the bundle, data
 * files, inline data and devtools; requests main makes itself (Electron's `net`) are not the page's
 * and pass (model downloads, for instance).
 */
export function isRequestAllowed(url: string, fromPage: boolean): boolean {
  if (!fromPage) return true;
  const parsed = parseUrl(url);
  return parsed !== null && RENDERER_REACHABLE_SCHEMES.has(parsed.protocol);
}

/**
 * Maps an app:// URL to a path relative to the renderer folder ('/'-joined, decoded), or null when it is
 * not ours or tries to leave the folder. The URL parser has already folded `..`; this also refuses
 * encoded separators, NUL, dot segments and empty segments that survive decoding.
 */
export function rendererFileForUrl(url: string): string | null {
  const parsed = parseUrl(url);
  if (parsed === null || !isRendererUrl(url)) return null;
  const rawPath = parsed.pathname === '/' || parsed.pathname === '' ? '/index.html' : parsed.pathname;
  const segments: string[] = [];
  for (const raw of rawPath.slice(1).split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (segment === '' || segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) return null;
    segments.push(segment);
  }
  return segments.join('/');
}

/**
 * The data-file path of a `studio-file://data/<path>` URL, still URL-encoded (resolveDataFile decodes
 * and confines it), or null when the URL is not of that form.
 */
export function dataFileRequestPath(url: string): string | null {
  const parsed = parseUrl(url);
  if (parsed === null || parsed.protocol !== `${FILE_PROTOCOL.scheme}:` || parsed.host !== FILE_PROTOCOL.host) return null;
  if (parsed.username !== '' || parsed.password !== '' || parsed.port !== '') return null;
  return parsed.pathname.slice(1);
}

/** The `--data-dir D` or `--data-dir=D` command-line override, or null when absent or empty. */
export function dataDirFromArgs(argv: readonly string[]): string | null {
  const flag = '--data-dir';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === flag) {
      const value = argv[i + 1];
      return value !== undefined && value !== '' && !value.startsWith('--') ? value : null;
    }
    if (arg?.startsWith(`${flag}=`)) {
      const value = arg.slice(flag.length + 1);
      return value === '' ? null : value;
    }
  }
  return null;
}

/** Window background before the first paint, so a dark desktop does not flash white (and vice versa). */
export function windowBackgroundColor(prefersDark: boolean): string {
  return prefersDark ? '#16171b' : '#f6f6f7';
}
