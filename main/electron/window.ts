/** The one application window: sandboxed, context-isolated, shown once its first frame is ready. */
import { BrowserWindow, nativeTheme } from 'electron';
import { guardContents } from './hardening';
import { RENDERER_ENTRY_URL, windowBackgroundColor } from './policy';

export interface StudioWindowOptions {
  preloadPath: string;
  iconPath: string;
  allowDevTools: boolean;
}

export function createStudioWindow(options: StudioWindowOptions): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 1024,
    minHeight: 700,
    title: 'BLIP Studio',
    icon: options.iconPath,
    show: false,
    backgroundColor: windowBackgroundColor(nativeTheme.shouldUseDarkColors),
    webPreferences: {
      preload: options.preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      devTools: options.allowDevTools,
    },
  });
  guardContents(window.webContents);
  window.once('ready-to-show', () => window.show());
  void window.loadURL(RENDERER_ENTRY_URL);
  return window;
}
