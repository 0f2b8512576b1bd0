import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real daemons on loopback; keep the 2-core machine from thrashing.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
