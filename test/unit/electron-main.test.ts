// The Electron entry's start-up and shut-down order, run against stand-ins for `electron` and the studio.
import { beforeEach, describe, expect, it, vi, type Mock } from 'vitest';

type Listener = (...args: never[]) => unknown;
type Spy = Mock<(...args: unknown[]) => unknown>;
const state = vi.hoisted(() => ({
  steps: [] as string[],
  appListeners: new Map<string, Listener>(),
  windowOptions: [] as Array<Record<string, unknown>>,
  loadedUrls: [] as string[],
  hasLock: true,
  openFailure: null as string | null,
  openOptions: null as unknown,
  studioClose: null as null | Spy,
  quit: null as null | Spy,
  exit: null as null | Spy,
  showErrorBox: null as null | Spy,
}));

vi.mock('electron', () => {
  class BrowserWindow {
    readonly webContents = { on: () => undefined, setWindowOpenHandler: () => undefined, send: () => undefined, mainFrame: { frameToken: 't' } };
    constructor(options: Record<string, unknown>) {
      state.windowOptions.push(options);
      state.steps.push('window');
    }
    once(): void {}
    on(): void {}
    isDestroyed(): boolean {
      return false;
    }
    loadURL(url: string): Promise<void> {
      state.loadedUrls.push(url);
      return Promise.resolve();
    }
  }
  const session = {
    setPermissionRequestHandler: () => state.steps.push('permissions'),
    setPermissionCheckHandler: () => undefined,
    setDevicePermissionHandler: () => undefined,
    webRequest: { onBeforeRequest: () => undefined },
  };
  return {
    app: {
      enableSandbox: () => state.steps.push('enableSandbox'),
      requestSingleInstanceLock: () => state.hasLock,
      getPath: (name: string) => `/tmp/blip-electron-main-test/${name}`,
      isPackaged: false,
      isReady: () => true,
      on: (name: string, listener: Listener) => state.appListeners.set(name, listener),
      whenReady: () => {
        state.steps.push('whenReady');
        return Promise.resolve();
      },
      quit: (...args: unknown[]) => state.quit?.(...args),
      exit: (...args: unknown[]) => state.exit?.(...args),
    },
    BrowserWindow,
    nativeTheme: { shouldUseDarkColors: true },
    dialog: { showErrorBox: (...args: unknown[]) => state.showErrorBox?.(...args) },
    session: { defaultSession: session },
    protocol: {
      registerSchemesAsPrivileged: () => state.steps.push('registerSchemes'),
      handle: (scheme: string) => state.steps.push(`protocol:${scheme}`),
    },
    ipcMain: { handle: (channel: string) => state.steps.push(`ipc:${channel}`), removeHandler: () => undefined },
    shell: { openExternal: async () => undefined },
  };
});

vi.mock('../../main/api/studio', () => ({
  openStudio: async (options: unknown) => {
    state.steps.push('openStudio');
    state.openOptions = options;
    if (state.openFailure !== null) throw new Error(state.openFailure);
    return { api: {}, dataDir: '/tmp', onEvent: () => () => undefined, close: state.studioClose };
  },
}));

async function startMain(): Promise<void> {
  vi.resetModules();
  await import('../../main/electron/main');
  await new Promise((resolve) => setTimeout(resolve, 0));
}

beforeEach(() => {
  state.steps = [];
  state.appListeners.clear();
  state.windowOptions = [];
  state.loadedUrls = [];
  state.hasLock = true;
  state.openFailure = null;
  state.studioClose = vi.fn<(...args: unknown[]) => unknown>(async () => undefined);
  state.quit = vi.fn<(...args: unknown[]) => unknown>();
  state.exit = vi.fn<(...args: unknown[]) => unknown>();
  state.showErrorBox = vi.fn<(...args: unknown[]) => unknown>();
});

describe('electron main', () => {
  it('registers schemes before ready, hardens the session, opens the studio, then shows one secure window', async () => {
    await startMain();
    expect(state.steps).toEqual([
      'registerSchemes',
      'enableSandbox',
      'whenReady',
      'permissions',
      'protocol:app',
      'protocol:studio-file',
      'openStudio',
      'ipc:studio:call',
      'window',
    ]);
    expect(state.openOptions).toMatchObject({ dataDir: '/tmp/blip-electron-main-test/userData', mode: 'electron' });
    const options = state.windowOptions[0] ?? {};
    expect(options).toMatchObject({ width: 1280, height: 800, minWidth: 1024, minHeight: 700, show: false });
    expect(options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webviewTag: false });
    // Resolved next to the bundle (out/main/electron.js → out/preload/index.cjs); here, next to the source.
    expect(String((options.webPreferences as Record<string, unknown>).preload)).toMatch(/[\\/]preload[\\/]index\.cjs$/);
    expect(state.loadedUrls).toEqual(['app://studio/index.html']);
  });

  it('closes the studio before quitting, once', async () => {
    await startMain();
    const willQuit = state.appListeners.get('will-quit') as unknown as (event: { preventDefault(): void }) => void;
    const first = { preventDefault: vi.fn() };
    willQuit(first);
    expect(first.preventDefault).toHaveBeenCalled();
    expect(state.studioClose).toHaveBeenCalledTimes(1);
    await vi.waitFor(() => expect(state.quit).toHaveBeenCalledTimes(1));
    const second = { preventDefault: vi.fn() };
    willQuit(second);
    expect(second.preventDefault).not.toHaveBeenCalled();
    expect(state.studioClose).toHaveBeenCalledTimes(1);
  });

  it('explains a native-module ABI mismatch and exits when the studio cannot open', async () => {
    state.openFailure = "The module 'better_sqlite3.node' was compiled against a different Node.js version using NODE_MODULE_VERSION 115.";
    await startMain();
    expect(state.showErrorBox).toHaveBeenCalledWith('BLIP Studio could not start', expect.stringContaining('npm start'));
    expect(state.exit).toHaveBeenCalledWith(1);
    expect(state.windowOptions).toEqual([]);
  });

  it('leaves a second instance to the first one', async () => {
    state.hasLock = false;
    await startMain();
    expect(state.quit).toHaveBeenCalled();
    expect(state.steps).not.toContain('whenReady');
  });
});
