/**
 * Session- and contents-level hardening of the window: permissions refused, the page's network
 * requests cancelled, navigation pinned to the renderer bundle, new windows and <webview> refused.
 * The decisions themselves live in ./policy (pure, unit-tested); this module wires them to Electron.
 */
import { shell, type Session, type WebContents } from 'electron';
import { decideNavigation, decideWindowOpen, isPermissionGranted, isRequestAllowed } from './policy';

function openInBrowser(url: string | null): void {
  // The OS may have no browser or refuse the URL; a link that does not open is not worth an error.
  if (url !== null) shell.openExternal(url).catch(() => undefined);
}

export function hardenSession(session: Session): void {
  session.setPermissionRequestHandler((_contents, permission, callback, details) => {
    callback(isPermissionGranted(permission, details.requestingUrl));
  });
  session.setPermissionCheckHandler((_contents, permission, requestingOrigin) => isPermissionGranted(permission, requestingOrigin));
  session.setDevicePermissionHandler(() => false);
  // The CSP already forbids remote loads from the page; this also stops anything that slips past it.
  session.webRequest.onBeforeRequest((details, callback) => {
    callback({ cancel: !isRequestAllowed(details.url, details.webContentsId !== undefined) });
  });
}

export function guardContents(contents: WebContents): void {
  // will-frame-navigate covers the main frame (what will-navigate reports) and every subframe.
  contents.on('will-frame-navigate', (event) => {
    const decision = decideNavigation(event.url);
    if (decision.allow) return;
    event.preventDefault();
    if (event.isMainFrame) openInBrowser(decision.openExternally);
  });
  contents.on('will-redirect', (event) => {
    if (!decideNavigation(event.url).allow) event.preventDefault();
  });
  contents.setWindowOpenHandler(({ url }) => {
    openInBrowser(decideWindowOpen(url).openExternally);
    return { action: 'deny' };
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}
