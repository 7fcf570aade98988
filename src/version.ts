import { createRequire } from 'node:module';

/** The hub's version, from package.json (found by the package's own name, from src/ or dist/). */
export const version: string = (createRequire(import.meta.url)('junction/package.json') as { version: string }).version;
