/**
 * The sandboxed preload (bundled to out/preload/index.cjs): exposes `window.studio`, and nothing else,
 * to the page. ipcRenderer stays here; the page only ever sees the bridge's functions.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { IPC_CHANNELS } from '../main/api/contract';
import { createStudioBridge } from './bridge';

const bridge = createStudioBridge({
  invoke: (method, args) => ipcRenderer.invoke(IPC_CHANNELS.call, method, args),
  subscribe: (handler) => {
    ipcRenderer.on(IPC_CHANNELS.event, (_event, name: unknown, payload: unknown) => handler(name, payload));
  },
});

contextBridge.exposeInMainWorld('studio', bridge);
