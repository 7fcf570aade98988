#!/usr/bin/env node
// The `junction` command. The hub is TypeScript run by tsx, so no build step stands between
// `npm install` and `npm start`, and resolver modules under resolvers/ may be .ts files too:
// ESM ones, and CommonJS ones in a project whose package.json has no "type": "module".
import { register as registerCommonJs } from 'tsx/cjs/api';
import { register } from 'tsx/esm/api';

register();
registerCommonJs();
await import('../src/cli.ts');
