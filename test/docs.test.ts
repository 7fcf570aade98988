import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../src/connector-registry.ts';
import { configSchema } from '../src/config.ts';
import { ErrorCode } from '../src/errors.ts';
import { ROOT } from './helpers.ts';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

describe('README stays true to the code', () => {
  it('starts with the set-up commands', () => {
    const firstCode = readme.slice(readme.indexOf('```'), readme.indexOf('```', readme.indexOf('```') + 3));
    expect(firstCode).toContain('npm install');
    expect(firstCode).toContain('npm start');
    expect(readme.indexOf('npm test')).toBeGreaterThan(-1);
  });

  it('documents every error code in its table', () => {
    for (const code of Object.values(ErrorCode)) expect(readme).toContain(`| \`${code}\` |`);
  });

  it('documents every configuration key', () => {
    const keys: string[] = [];
    const walk = (shape: Record<string, unknown>, prefix: string) => {
      for (const [key, schema] of Object.entries(shape)) {
        keys.push(prefix + key);
        let inner = schema as { def?: { innerType?: unknown; in?: unknown; shape?: Record<string, unknown> }; shape?: Record<string, unknown> };
        // Unwrap defaults, optionals, refinements and pipes down to an object, if any.
        for (let i = 0; i < 5 && inner && !inner.shape; i++) inner = (inner.def?.innerType ?? inner.def?.in) as typeof inner;
        if (inner?.shape) walk(inner.shape, `${prefix}${key}.`);
      }
    };
    walk(configSchema(builtinRegistry).shape, '');
    for (const key of keys) expect(readme, `README has no row for \`${key}\``).toContain(`\`${key}\``);
  });
});
