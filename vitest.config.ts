import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'connectors/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Test files start real servers and child processes; two cores, so keep it modest.
    maxWorkers: 2,
  },
});
