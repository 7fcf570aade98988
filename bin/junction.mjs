#!/usr/bin/env node
// The `junction` command: the hub's own code runs compiled (dist/, built by `npm install`), so
// the CLI starts without compiling TypeScript; a project's own .ts modules (resolvers,
// connector types) are compiled on load by tsx.
try {
  await import('../dist/src/cli.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/src/cli.js')) throw error;
  process.stderr.write('junction: dist/ is missing; run `npm install` (or `npm run build`) in the junction package first\n');
  process.exitCode = 1;
}
