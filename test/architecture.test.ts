// The shape of the code itself: no import cycles, and the built-in connector types written
// against the same public API a user's connector type gets.
import path from 'node:path';
import { type DependencyTree, parseCircular, parseDependencyTree } from 'dpdm';
import fg from 'fast-glob';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

let tree: DependencyTree;
beforeAll(async () => {
  // Every module of the hub and of the built-in connectors, type-only imports included: a
  // cycle through types is still two modules that cannot be understood one without the other.
  const entries = await fg(['src/**/*.ts', 'connectors/**/*.ts', 'demo/**/*.ts'], { cwd: ROOT, ignore: ['**/*.test.ts', '**/*.d.ts'] });
  tree = await parseDependencyTree(entries, { context: ROOT, transform: false, skipDynamicImports: false });
});

describe('architecture', () => {
  it('has no import cycles between modules', () => {
    const cycles = parseCircular(tree).map((cycle) => cycle.join(' → '));
    expect(cycles).toEqual([]);
  });

  it('the built-in connector types import the public API (src/index.ts) and their own folder only', () => {
    // transport.ts is itself part of the public API (HttpTransport), so it is built from the runtime.
    const builtins = Object.keys(tree).filter((file) => /^connectors\/(?!runtime\/)[^/]+\/.+\.ts$/.test(file) && !file.endsWith('/transport.ts'));
    expect(builtins.length).toBeGreaterThan(6);
    const reachesIn: string[] = [];
    for (const file of builtins) {
      for (const dep of tree[file] ?? []) {
        if (!dep.id || dep.id.includes('node_modules') || !/^(src|connectors|demo)\//.test(dep.id)) continue; // packages, node:*
        const ownFolder = path.dirname(dep.id) === path.dirname(file);
        if (!ownFolder && dep.id !== 'src/index.ts') reachesIn.push(`${file} imports ${dep.request}`);
      }
    }
    expect(reachesIn).toEqual([]);
  });
});
