/**
 * The IPC side of the API: one invoke channel whose calls go through dispatchCall (method and argument
 * validation) after the sender is checked, and one event channel that forwards studio events.
 */
import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import { IPC_CHANNELS, type StudioCallOutcome } from '../api/contract';
import { dispatchCall } from '../api/dispatch';
import type { Studio } from '../api/studio';
import { isTrustedSender, type IpcSenderFacts } from './policy';

const REFUSED_SENDER: StudioCallOutcome = {
  ok: false,
  error: { code: 'invalid-request', message: 'API calls are only accepted from the BLIP Studio window.' },
};

function senderFacts(event: IpcMainInvokeEvent, window: BrowserWindow | null): IpcSenderFacts {
  const frame = event.senderFrame;
  if (window === null || window.isDestroyed() || event.sender !== window.webContents) {
    return { fromOurWindow: false, fromMainFrame: false, frameUrl: frame?.url ?? null };
  }
  const fromMainFrame = frame !== null && !frame.detached && frame.frameToken === window.webContents.mainFrame.frameToken;
  return { fromOurWindow: true, fromMainFrame, frameUrl: frame?.url ?? null };
}

/** Serves the API to `currentWindow()` until the returned function is called. */
export function serveStudioOverIpc(studio: Studio, currentWindow: () => BrowserWindow | null): () => void {
  ipcMain.handle(IPC_CHANNELS.call, (event, method: unknown, args: unknown) => {
    if (!isTrustedSender(senderFacts(event, currentWindow()))) return REFUSED_SENDER;
    return dispatchCall(studio.api, method, args);
  });
  const stopForwarding = studio.onEvent((name, payload) => {
    const window = currentWindow();
    if (window !== null && !window.isDestroyed()) window.webContents.send(IPC_CHANNELS.event, name, payload);
  });
  return () => {
    stopForwarding();
    ipcMain.removeHandler(IPC_CHANNELS.call);
  };
}
