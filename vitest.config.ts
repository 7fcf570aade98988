import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Node resolves `graphql` to its CommonJS build (package.json "main"), and so do the
    // libraries that import it; Vite would pick the "module" build and load graphql twice.
    alias: [
      { find: /^graphql$/, replacement: 'graphql/index.js' },
      // In-process tests run the hub from its source: a connector module importing 'junction'
      // must get the same classes, not the compiled copy in dist/.
      { find: /^junction$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^junction\/connectors$/, replacement: fileURLToPath(new URL('./src/builtin-connectors.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'connectors/**/*.test.ts'],
    // Generous: tests spawn hubs and talk to real servers, and must hold while both cores are
    // busy with something else. No test asserts a duration.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Test files start real servers and child processes; two cores, so keep it modest.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
