import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commonOptions } from '../connectors/runtime/options.ts';
import { builtinRegistry } from '../src/connector-registry.ts';
import { configSchema } from '../src/config.ts';
import { ErrorCode } from '../src/errors.ts';
import { ROOT } from './helpers.ts';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

type Schema = { def?: { innerType?: unknown; in?: unknown; defaultValue?: unknown; type?: string }; shape?: Record<string, unknown> };

/** Unwraps defaults, optionals, refinements and pipes down to an object schema, if there is one. */
function objectOf(schema: unknown): Schema | undefined {
  let inner = schema as Schema | undefined;
  for (let i = 0; i < 5 && inner && !inner.shape; i++) inner = (inner.def?.innerType ?? inner.def?.in) as Schema | undefined;
  return inner?.shape ? inner : undefined;
}

/** Every key of a schema as a dot path, with its default when it has one (`retry.attempts` → 2). */
function keysOf(shape: Record<string, unknown>, prefix = ''): Map<string, { leaf: boolean; default?: unknown }> {
  const keys = new Map<string, { leaf: boolean; default?: unknown }>();
  for (const [key, schema] of Object.entries(shape)) {
    const object = objectOf(schema);
    const def = (schema as Schema).def;
    keys.set(prefix + key, { leaf: !object, ...(def?.type === 'default' && { default: def.defaultValue }) });
    if (object?.shape) for (const [k, v] of keysOf(object.shape, `${prefix}${key}.`)) keys.set(k, v);
  }
  return keys;
}

/** The rows of the first table under a heading: first cell's key → second cell (the default). */
function table(heading: string): Map<string, string> {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, `README has no heading "${heading}"`).toBeGreaterThan(-1);
  const next = readme.indexOf('\n#', start + heading.length + 2);
  const section = readme.slice(start, next === -1 ? undefined : next);
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const cells = /^\| `([^`]+)` \| ?([^|]*?) ?\|/.exec(line);
    if (cells) rows.set(cells[1]!, cells[2]!.trim());
  }
  return rows;
}

/**
 * Both directions: every key of the schema has a row, every row names a real key, and a default
 * the README writes as one literal (`5242880`, `camelCase`) is the schema's default.
 */
function expectDocumented(heading: string, keys: Map<string, { leaf: boolean; default?: unknown }>) {
  const rows = table(heading);
  for (const [key, { leaf }] of keys) {
    // A group (`retry`) is documented by its keys' rows when it has no row of its own.
    const documented = rows.has(key) || (!leaf && [...rows.keys()].some((r) => r.startsWith(`${key}.`)));
    expect(documented, `README "${heading}" has no row for \`${key}\``).toBe(true);
  }
  for (const key of rows.keys()) expect(keys.has(key), `README "${heading}" documents \`${key}\`, which is not a key`).toBe(true);
  for (const [key, cell] of rows) {
    const literal = /^`([^`]*)`$/.exec(cell)?.[1];
    let schemaDefault = keys.get(key)?.default;
    if (literal === undefined || schemaDefault === undefined) continue;
    // A one-glob list default reads better as that glob.
    if (Array.isArray(schemaDefault) && schemaDefault.length === 1) schemaDefault = schemaDefault[0];
    const text = typeof schemaDefault === 'string' ? schemaDefault : JSON.stringify(schemaDefault);
    expect(literal, `README "${heading}": default of \`${key}\``).toBe(text);
  }
}

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

  it('documents every configuration key, and only real ones, with their defaults', () => {
    expectDocumented('## Configuration', keysOf(configSchema(builtinRegistry).shape));
  });

  it('documents the options every connector has, and only those', () => {
    expectDocumented('### Options every connector has', keysOf(commonOptions));
  });

  it.each(builtinRegistry.names)('documents every key of the %s connector type, and only its own', (type) => {
    const own = Object.fromEntries(Object.entries(objectOf(builtinRegistry.get(type)!.schema)!.shape!).filter(([key]) => !(key in commonOptions)));
    expectDocumented(`### \`${type}\``, keysOf(own));
  });
});
