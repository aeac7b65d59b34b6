// The Electron glue (protocols, IPC, session hardening) run against a stand-in `electron` module: the
// real binary is not needed to check what each handler answers.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StudioApi } from '../../main/api/contract';
import type { Studio } from '../../main/api/studio';
import { makeTempDir } from '../helpers/temp-dir';

type Handler = (...args: never[]) => unknown;
const electron = vi.hoisted(() => ({
  protocolHandlers: new Map<string, (request: Request) => Response | Promise<Response>>(),
  ipcHandlers: new Map<string, Handler>(),
  openExternal: vi.fn(async () => undefined),
  showOpenDialog: vi.fn(async (..._args: unknown[]): Promise<{ canceled: boolean; filePaths: string[] }> => ({ canceled: true, filePaths: [] })),
}));

vi.mock('electron', () => ({
  protocol: {
    handle: (scheme: string, handler: (request: Request) => Response | Promise<Response>) => electron.protocolHandlers.set(scheme, handler),
    registerSchemesAsPrivileged: vi.fn(),
  },
  ipcMain: {
    handle: (channel: string, handler: Handler) => electron.ipcHandlers.set(channel, handler),
    removeHandler: (channel: string) => electron.ipcHandlers.delete(channel),
  },
  shell: { openExternal: electron.openExternal },
  dialog: { showOpenDialog: electron.showOpenDialog },
}));

const { handleAppProtocol, handleDataFileProtocol } = await import('../../main/electron/protocols');
const { serveStudioOverIpc } = await import('../../main/electron/ipc');
const { guardContents, hardenSession } = await import('../../main/electron/hardening');
const { RENDERER_CSP } = await import('../../main/security/csp');
const { folderChooser } = await import('../../main/electron/folder-dialog');

async function fetchFrom(scheme: string, url: string, method = 'GET'): Promise<Response> {
  const handler = electron.protocolHandlers.get(scheme);
  if (!handler) throw new Error(`no handler for ${scheme}`);
  return handler(new Request(url, { method }));
}

describe('protocols', () => {
  const renderer = makeTempDir('blip-renderer-');
  const data = makeTempDir('blip-data-');
  const outside = makeTempDir('blip-outside-');

  beforeAll(() => {
    mkdirSync(join(renderer.path, 'assets'));
    writeFileSync(join(renderer.path, 'index.html'), '<!doctype html><title>BLIP Studio</title>');
    writeFileSync(join(renderer.path, 'assets/app.js'), 'export {};');
    mkdirSync(join(data.path, 'photos'));
    writeFileSync(join(data.path, 'photos/dog 1.png'), 'png-bytes');
    writeFileSync(join(data.path, 'library.sqlite'), 'db');
    writeFileSync(join(outside.path, 'secret.png'), 'secret');
    symlinkSync(join(outside.path, 'secret.png'), join(data.path, 'photos/link.png'));
    handleAppProtocol(renderer.path);
    handleDataFileProtocol(data.path);
  });
  afterAll(() => {
    renderer.remove();
    data.remove();
    outside.remove();
  });

  it('serves the renderer with the CSP header', async () => {
    const page = await fetchFrom('app', 'app://studio/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toBe(RENDERER_CSP);
    expect(await page.text()).toContain('BLIP Studio');
    const script = await fetchFrom('app', 'app://studio/assets/app.js');
    expect(script.headers.get('content-type')).toContain('text/javascript');
  });

  it('answers 404 for missing files and foreign hosts, 405 for writes', async () => {
    expect((await fetchFrom('app', 'app://studio/missing.js')).status).toBe(404);
    expect((await fetchFrom('app', 'app://studio/assets')).status).toBe(404);
    expect((await fetchFrom('app', 'app://elsewhere/index.html')).status).toBe(404);
    expect((await fetchFrom('app', 'app://studio/a%2F..%2F..%2Fetc%2Fpasswd')).status).toBe(404);
    expect((await fetchFrom('app', 'app://studio/index.html', 'POST')).status).toBe(405);
  });

  it('serves data images to our origin only, and nothing else in the data folder', async () => {
    const image = await fetchFrom('studio-file', 'studio-file://data/photos/dog%201.png');
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(image.headers.get('access-control-allow-origin')).toBe('app://studio');
    expect(await image.text()).toBe('png-bytes');
    expect((await fetchFrom('studio-file', 'studio-file://data/library.sqlite')).status).toBe(403);
    expect((await fetchFrom('studio-file', 'studio-file://data/photos/link.png')).status).toBe(403);
    expect((await fetchFrom('studio-file', 'studio-file://data/photos/none.png')).status).toBe(404);
    expect((await fetchFrom('studio-file', 'studio-file://other/photos/dog%201.png')).status).toBe(404);
  });

  it('answers HEAD without a body', async () => {
    const head = await fetchFrom('studio-file', 'studio-file://data/photos/dog%201.png', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String('png-bytes'.length));
    expect(await head.text()).toBe('');
  });
});

describe('IPC', () => {
  const listJobs = vi.fn(async () => []);
  let emit: (event: string, payload: unknown) => void = () => undefined;
  const studio = {
    api: { listJobs } as unknown as StudioApi,
    dataDir: '/tmp',
    onEvent: (listener: (event: string, payload: unknown) => void) => {
      emit = listener;
      return () => undefined;
    },
    close: async () => undefined,
  } as unknown as Studio;
  const send = vi.fn();
  const mainFrame = { frameToken: 'main-token', detached: false, url: 'app://studio/index.html' };
  const window = { isDestroyed: () => false, webContents: { mainFrame, send } };
  let stop: () => void = () => undefined;

  beforeAll(() => {
    stop = serveStudioOverIpc(studio, () => window as never);
  });
  afterAll(() => stop());

  function call(event: object, method: unknown, args: unknown): Promise<unknown> {
    const handler = electron.ipcHandlers.get('studio:call') as unknown as (e: object, m: unknown, a: unknown) => Promise<unknown>;
    return Promise.resolve(handler(event, method, args));
  }

  it('dispatches calls from our main frame', async () => {
    await expect(call({ sender: window.webContents, senderFrame: mainFrame }, 'listJobs', [])).resolves.toEqual({ ok: true, value: [] });
    expect(listJobs).toHaveBeenCalledTimes(1);
  });

  it('refuses other senders and frames without calling the API', async () => {
    const refused = { ok: false, error: { code: 'invalid-request', message: expect.stringContaining('BLIP Studio window') } };
    const otherContents = { mainFrame, send };
    await expect(call({ sender: otherContents, senderFrame: mainFrame }, 'listJobs', [])).resolves.toEqual(refused);
    await expect(call({ sender: window.webContents, senderFrame: { ...mainFrame, frameToken: 'iframe' } }, 'listJobs', [])).resolves.toEqual(refused);
    await expect(call({ sender: window.webContents, senderFrame: null }, 'listJobs', [])).resolves.toEqual(refused);
    await expect(call({ sender: window.webContents, senderFrame: { ...mainFrame, url: 'https://evil.example/' } }, 'listJobs', [])).resolves.toEqual(refused);
    expect(listJobs).toHaveBeenCalledTimes(1);
  });

  it('validates the method name through dispatchCall', async () => {
    const outcome = await call({ sender: window.webContents, senderFrame: mainFrame }, 'constructor', []);
    expect(outcome).toMatchObject({ ok: false, error: { code: 'unknown-method' } });
  });

  it('forwards studio events to the window', () => {
    emit('libraryChanged', { what: 'subjects' });
    expect(send).toHaveBeenCalledWith('studio:event', 'libraryChanged', { what: 'subjects' });
  });
});

describe('session and contents hardening', () => {
  it('denies permissions, devices and network egress', () => {
    const handlers: Record<string, Handler> = {};
    const session = {
      setPermissionRequestHandler: (h: Handler) => (handlers.request = h),
      setPermissionCheckHandler: (h: Handler) => (handlers.check = h),
      setDevicePermissionHandler: (h: Handler) => (handlers.device = h),
      webRequest: { onBeforeRequest: (h: Handler) => (handlers.beforeRequest = h) },
    };
    hardenSession(session as never);
    const granted: boolean[] = [];
    const request = handlers.request as unknown as (c: null, p: string, cb: (g: boolean) => void, d: { requestingUrl: string }) => void;
    request(null, 'media', (g) => granted.push(g), { requestingUrl: 'app://studio/index.html' });
    request(null, 'clipboard-sanitized-write', (g) => granted.push(g), { requestingUrl: 'app://studio/index.html' });
    expect(granted).toEqual([false, true]);
    expect((handlers.check as unknown as (c: null, p: string, o: string) => boolean)(null, 'geolocation', 'app://studio')).toBe(false);
    expect((handlers.device as unknown as () => boolean)()).toBe(false);
    const decisions: unknown[] = [];
    const beforeRequest = handlers.beforeRequest as unknown as (d: { url: string; webContentsId?: number }, cb: (r: unknown) => void) => void;
    beforeRequest({ url: 'https://tracker.example/pixel.gif', webContentsId: 1 }, (r) => decisions.push(r));
    beforeRequest({ url: 'app://studio/index.html', webContentsId: 1 }, (r) => decisions.push(r));
    beforeRequest({ url: 'https://huggingface.co/x' }, (r) => decisions.push(r));
    expect(decisions).toEqual([{ cancel: true }, { cancel: false }, { cancel: false }]);
  });

  it('blocks navigation away, denies new windows and webviews, opens https links in the browser', () => {
    const listeners: Record<string, (event: Record<string, unknown>) => void> = {};
    let openHandler: (details: { url: string }) => unknown = () => undefined;
    const contents = {
      on: (name: string, listener: (event: Record<string, unknown>) => void) => (listeners[name] = listener),
      setWindowOpenHandler: (h: (details: { url: string }) => unknown) => (openHandler = h),
    };
    guardContents(contents as never);
    const navigate = (url: string, isMainFrame = true) => {
      const event = { url, isMainFrame, preventDefault: vi.fn() };
      listeners['will-frame-navigate']?.(event);
      return event.preventDefault.mock.calls.length > 0;
    };
    expect(navigate('app://studio/index.html')).toBe(false);
    expect(navigate('file:///etc/passwd')).toBe(true);
    expect(navigate('https://onnxruntime.ai/', false)).toBe(true);
    expect(electron.openExternal).not.toHaveBeenCalled();
    expect(navigate('https://onnxruntime.ai/')).toBe(true);
    expect(electron.openExternal).toHaveBeenCalledWith('https://onnxruntime.ai/');
    expect(openHandler({ url: 'http://example.com/' })).toEqual({ action: 'deny' });
    expect(electron.openExternal).toHaveBeenCalledTimes(1);
    const webview = { preventDefault: vi.fn() };
    listeners['will-attach-webview']?.(webview);
    expect(webview.preventDefault).toHaveBeenCalled();
  });
});

describe('the model folder dialog', () => {
  it('asks for a directory over the window and gives back the chosen path, or null when cancelled', async () => {
    const window = { id: 1 };
    const choose = folderChooser(() => window as never);
    expect(await choose('Choose a model folder')).toBeNull();
    expect(electron.showOpenDialog).toHaveBeenLastCalledWith(window, { title: 'Choose a model folder', properties: ['openDirectory'] });
    electron.showOpenDialog.mockResolvedValueOnce({ canceled: false, filePaths: ['/models/blipdiffusion'] });
    expect(await choose('Choose a model folder')).toBe('/models/blipdiffusion');
    // Without a window (closed), the dialog still opens, unparented.
    await folderChooser(() => null)('Choose');
    expect(electron.showOpenDialog).toHaveBeenLastCalledWith({ title: 'Choose', properties: ['openDirectory'] });
  });
});
