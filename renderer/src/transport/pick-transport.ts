import { createElectronTransport } from './electron-transport';
import { browserServeEnvironment, createServeTransport } from './serve-transport';
import type { Transport } from './transport';

/**
 * Chooses the transport once, at start-up: the Electron preload bridge when `window.studio` exists,
 * otherwise serve mode on the page's own origin. Nothing else in the renderer knows which it got.
 */
export function pickTransport(scope: Window & typeof globalThis): Transport {
  if (scope.studio !== undefined) return createElectronTransport(scope.studio);
  forgetTokenInAddressBar(scope);
  return createServeTransport(browserServeEnvironment(scope));
}

/**
 * Serve mode is opened with `?token=…`; by the time this runs the server has answered with its session
 * cookie, so the token is dropped from the address bar (and from bookmarks and screenshots).
 */
function forgetTokenInAddressBar(scope: Window & typeof globalThis): void {
  const url = new URL(scope.location.href);
  if (!url.searchParams.has('token')) return;
  url.searchParams.delete('token');
  scope.history.replaceState(scope.history.state, '', url);
}
