import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The renderer bundle. Node-side bundles (main, serve, CLI, ORT worker, preload) are built by esbuild in
// scripts/build.mjs; this config is only the untrusted web UI.
export default defineConfig({
  root: 'renderer',
  base: './',
  plugins: [svelte({ configFile: '../svelte.config.js' })],
  build: {
    outDir: '../out/renderer',
    emptyOutDir: true,
    target: 'es2023',
    sourcemap: true,
    // No inline <script>/<style> or data: fonts: everything is a file so the CSP can stay strict.
    assetsInlineLimit: 0,
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
});
