import { pathToFileURL } from 'node:url';

const TYPESCRIPT = /\.[cm]?ts$/;
let typescript: Promise<void> | undefined;

/**
 * Loads a module of the user's project (a resolver map, a connector type) and returns its
 * default export. `.ts` modules go through tsx, registered on first need: the hub itself runs
 * compiled, so a project without TypeScript pays nothing for it. When the hub's own code runs
 * as TypeScript (the test suite under vitest), whatever compiles it loads the user's too.
 */
export async function importDefault(file: string): Promise<unknown> {
  if (TYPESCRIPT.test(file) && import.meta.url.endsWith('.js')) await (typescript ??= registerTsx());
  return defaultExport(await import(pathToFileURL(file).href));
}

async function registerTsx(): Promise<void> {
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  // CommonJS .ts modules too: a project whose package.json has no "type": "module".
  cjs.register();
}

/**
 * A module's `export default`. A TypeScript module compiled as CommonJS (a project without
 * "type": "module") arrives as `{ default: { __esModule: true, default: … } }`.
 */
function defaultExport(mod: { default?: unknown }): unknown {
  const value = mod.default as { __esModule?: boolean; default?: unknown } | undefined;
  return value && value.__esModule === true ? value.default : value;
}
