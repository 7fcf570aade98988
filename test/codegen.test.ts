import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { project, ROOT } from './helpers.ts';

const tsx = path.join(ROOT, 'node_modules/.bin/tsx');
const codegen = (cwd: string, ...args: string[]) =>
  spawnSync(tsx, [path.join(ROOT, 'src/codegen.ts'), '--root', cwd, ...args], { encoding: 'utf8' });

describe('npm run codegen', () => {
  it('the committed generated types match the schema (run `npm run codegen` if this fails)', () => {
    const r = codegen(ROOT, '--check');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('up to date: src/generated/schema-types.ts\n');
    expect(r.status).toBe(0);
  });

  it('writes typed resolver signatures from codegen.yml, and --check catches a stale file', () => {
    const { dir, remove } = project({
      'codegen.yml': 'schema: schema/**/*.graphql\ngenerates:\n  out/types.ts:\n    config:\n      contextType: ./ctx.ts#Ctx\n',
      'schema/a.graphql': 'type Query { order(id: ID!): Order }\ntype Order { id: ID! total: Float! }\n',
    });
    try {
      const first = codegen(dir);
      expect(first.stdout).toBe('wrote out/types.ts\n');
      const code = readFileSync(path.join(dir, 'out/types.ts'), 'utf8');
      expect(code).toContain('export type Order = {');
      expect(code).toContain('total: Scalars["Float"];');
      expect(code).toContain('export type QueryorderArgs = {');
      expect(code).toContain('import type { Ctx } from "./ctx.ts";');
      // The built-in SDL is always part of the schema.
      expect(code).toContain('export type Hub = {');
      // Nothing of Mercurius or Fastify is left in the output.
      expect(code).not.toMatch(/mercurius|fastify/);

      expect(codegen(dir, '--check').status).toBe(0);
      writeFileSync(path.join(dir, 'schema/a.graphql'), 'type Query { order(id: ID!): Order }\ntype Order { id: ID! total: Int! }\n');
      const stale = codegen(dir, '--check');
      expect(stale.status).toBe(1);
      expect(stale.stderr).toBe('stale: out/types.ts does not match the schema; run `npm run codegen`\n');
      expect(readFileSync(path.join(dir, 'out/types.ts'), 'utf8')).toBe(code);
    } finally {
      remove();
    }
  });
});
