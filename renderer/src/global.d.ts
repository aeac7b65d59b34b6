import type { StudioBridge } from './contract';

declare global {
  interface Window {
    /** The Electron preload bridge; absent in serve mode (a plain browser tab). */
    studio?: StudioBridge;
  }
}

export {};
