// `npm run setup:cuda`: adds ONNX Runtime's CUDA 12 execution provider to onnxruntime-node on Linux x64
// (the add-on is too large for npm, so it comes from NuGet). Other platforms already have their GPU
// provider built in. Plain `npm install` never fetches it (package.json's allowScripts denies
// onnxruntime-node's install script), so installs stay offline-safe.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './electron-support.mjs';

const force = process.argv.includes('--force');
const ortDir = join(root, 'node_modules/onnxruntime-node');
const providerFile = join(ortDir, 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so');

function hasNvidiaDriver() {
  return spawnSync('nvidia-smi', ['-L'], { stdio: 'ignore' }).status === 0;
}

if (process.platform === 'win32') {
  console.log('Windows: nothing to install. DirectML (any DirectX 12 GPU) is built into onnxruntime-node: choose "dml" in Settings.');
  process.exit(0);
}
if (process.platform === 'darwin') {
  console.log('macOS: nothing to install. CoreML (Apple GPU and Neural Engine) is built into onnxruntime-node: choose "coreml" in Settings.');
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`No CUDA build of ONNX Runtime exists for ${process.platform}/${process.arch}; the CPU (and WebGPU where available) backends are what this machine gets.`);
  process.exit(0);
}
if (!force && !hasNvidiaDriver()) {
  console.error('No NVIDIA driver found (`nvidia-smi -L` failed). Install the driver first, or run `npm run setup:cuda -- --force` to download anyway.');
  process.exit(1);
}

console.log('Downloading the CUDA 12 execution provider for onnxruntime-node (several hundred MB)...');
// The installer reads npm's config before its argv: a "skip" from any .npmrc must not win here.
const { npm_config_onnxruntime_node_install: _skip, ...inherited } = process.env;
const result = spawnSync(process.execPath, [join(ortDir, 'script/install.js'), '--onnxruntime-node-install=cuda12'], {
  cwd: ortDir,
  stdio: 'inherit',
  env: { ...inherited, ONNXRUNTIME_NODE_INSTALL: 'cuda12' },
});
if (result.status !== 0 || !existsSync(providerFile)) {
  console.error('The CUDA provider could not be installed (see above). Check the internet connection and run `npm run setup:cuda` again.');
  process.exit(1);
}
console.log('CUDA provider installed. It needs the CUDA 12 runtime and cuDNN 9 libraries on the library path; choose "cuda" in Settings.');
