// After `npm install`: try to fetch the Electron binary, but never fail the install for it. Offline
// machines, CI and serve-mode/CLI users do not need it, and `npm start` retries the download.
import { installElectronBinary } from './electron-support.mjs';

const DOWNLOAD_TIMEOUT_MS = 120_000;

if (!process.env.ELECTRON_SKIP_BINARY_DOWNLOAD) {
  const result = installElectronBinary({ timeoutMs: DOWNLOAD_TIMEOUT_MS });
  if (!result.ok) {
    console.log('Electron binary not downloaded (offline?): `npm start` will retry; serve mode and the CLI work without it.');
  }
}
