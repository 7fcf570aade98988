#!/usr/bin/env node
// The `junction` command. The hub is TypeScript run by tsx, so no build step stands between
// `npm install` and `npm start`, and resolver modules under resolvers/ may be .ts files too.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
