/**
 * Electron entry (bundled to out/main/electron.js): one hardened window onto the studio. The studio is
 * opened before the window exists, so the first API call always finds it; it is closed before quitting.
 */
import { app, dialog, session, type BrowserWindow } from 'electron';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { folderChooser } from './folder-dialog';
import { openStudio, type Studio } from '../api/studio';
import { hardenSession } from './hardening';
import { serveStudioOverIpc } from './ipc';
import { dataDirFromArgs } from './policy';
import { handleAppProtocol, handleDataFileProtocol, registerPrivilegedSchemes } from './protocols';
import { createStudioWindow } from './window';

// Paths relative to this bundle, so they hold both in the source tree and inside app.asar.
const bundleDir = dirname(fileURLToPath(import.meta.url));
const PRELOAD_PATH = join(bundleDir, '../preload/index.cjs');
const RENDERER_DIR = join(bundleDir, '../renderer');
const ICON_PATH = join(bundleDir, '../../resources/icon.png');

function describeStartupFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes('NODE_MODULE_VERSION')) {
    return `${message}\n\nA native module was built for Node.js rather than Electron. Start the app with \`npm start\`, which builds it for Electron.`;
  }
  return message;
}

function startStudioApp(): void {
  registerPrivilegedSchemes();
  app.enableSandbox();
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }

  const dataDir = resolve(dataDirFromArgs(process.argv) ?? app.getPath('userData'));
  let studio: Studio | null = null;
  let window: BrowserWindow | null = null;

  const showWindow = (): void => {
    if (window === null || window.isDestroyed()) {
      window = createStudioWindow({ preloadPath: PRELOAD_PATH, iconPath: ICON_PATH, allowDevTools: !app.isPackaged });
      window.on('closed', () => {
        window = null;
      });
      return;
    }
    if (window.isMinimized()) window.restore();
    window.focus();
  };

  app.on('second-instance', () => {
    if (app.isReady() && studio !== null) showWindow();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('activate', () => {
    if (studio !== null) showWindow();
  });
  app.on('will-quit', (event) => {
    if (studio === null) return;
    event.preventDefault();
    // Quit again once closed (studio is then null). The database is in WAL mode, so a failed close
    // loses at most the last transaction: quit anyway.
    const closing = studio;
    studio = null;
    void closing
      .close()
      .catch(() => undefined)
      .finally(() => app.quit());
  });

  app
    .whenReady()
    .then(async () => {
      hardenSession(session.defaultSession);
      handleAppProtocol(RENDERER_DIR);
      handleDataFileProtocol(dataDir);
      const currentWindow = (): BrowserWindow | null => (window !== null && !window.isDestroyed() ? window : null);
      const opened = await openStudio({ dataDir, mode: 'electron', electronVersion: process.versions.electron, chooseFolder: folderChooser(currentWindow) });
      studio = opened;
      serveStudioOverIpc(opened, currentWindow);
      showWindow();
    })
    .catch((error: unknown) => {
      dialog.showErrorBox('BLIP Studio could not start', describeStartupFailure(error));
      app.exit(1);
    });
}

startStudioApp();
