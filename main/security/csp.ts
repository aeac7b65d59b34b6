/**
 * The renderer's Content-Security-Policy, sent as a header by Electron's app protocol and by serve mode
 * (and repeated in renderer/index.html's meta tag for defence in depth). Nothing inline, nothing remote:
 * scripts and styles come from the app bundle only; images from the bundle, the data-folder routes
 * (`studio-file:` in Electron, same origin in serve mode) and blob/data URLs made by the UI itself.
 */
export const RENDERER_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob: studio-file:",
  "connect-src 'self' ws: wss:",
  "font-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
