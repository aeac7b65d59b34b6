import { defineConfig } from 'vitest/config';

// Unit tests run against the TypeScript sources; E2E tests drive the built app (npm test builds first)
// in Debian's Chromium through playwright-core, so they run one file at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        // Every net on the WebGPU provider against the reference kit, through SwiftShader where there is
        // no GPU: slow (a CPU emulating a GPU), so one file at a time with generous timeouts.
        test: {
          name: 'webgpu',
          include: ['test/webgpu/**/*.test.ts'],
          environment: 'node',
          testTimeout: 180_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
