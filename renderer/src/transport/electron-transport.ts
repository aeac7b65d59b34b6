import { STUDIO_METHODS, type StudioBridge } from '../contract';
import { electronFileUrl } from './file-urls';
import { StudioError } from './studio-error';
import { ALWAYS_ONLINE, type Transport } from './transport';

/** The preload bridge must offer every method of the contract plus `on`; anything less is a build bug. */
export function assertCompleteBridge(bridge: unknown): asserts bridge is StudioBridge {
  const record = typeof bridge === 'object' && bridge !== null ? (bridge as Record<string, unknown>) : {};
  const missing = [...STUDIO_METHODS, 'on'].filter((name) => typeof record[name] !== 'function');
  if (missing.length > 0) {
    throw new StudioError('internal', `The app's bridge to its engine is incomplete (missing: ${missing.join(', ')}).`);
  }
}

/** Electron: the preload's `window.studio` already is a `StudioBridge`; images use the custom scheme. */
export function createElectronTransport(bridge: unknown): Transport {
  assertCompleteBridge(bridge);
  return {
    bridge,
    link: ALWAYS_ONLINE,
    fileUrl: electronFileUrl,
    close: () => {},
  };
}
