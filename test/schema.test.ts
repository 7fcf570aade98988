import path from 'node:path';
import { printSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../src/connector-registry.ts';
import { buildSchema, SchemaError } from '../src/schema.ts';
import { project } from './helpers.ts';

async function build(files: Record<string, string>) {
  const { dir, remove } = project(files);
  try {
    return await buildSchema({
      schema: [path.join(dir, 'schema/**/*.graphql')],
      resolvers: [path.join(dir, 'resolvers/**/*')],
      baseDir: dir,
      authEnabled: false,
      registry: builtinRegistry,
    });
  } finally {
    remove();
  }
}

async function problems(files: Record<string, string>): Promise<string[]> {
  const error = await build(files).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SchemaError);
  return (error as SchemaError).message.split('\n');
}

describe('schema assembly', () => {
  it('merges root and object types declared in several files with the built-in SDL', async () => {
    const schema = await build({
      'schema/a.graphql': 'type Query { a: Int }\ntype Thing { x: Int }',
      'schema/b/b.graphql': 'type Query { b: Int }\nextend type Thing { y: Int }',
    });
    expect(Object.keys(schema.getQueryType()!.getFields()).sort()).toEqual(['a', 'b', 'events', 'hub']);
    expect(printSchema(schema)).toContain('type Thing {\n  x: Int\n  y: Int\n}');
  });

  it('lists the syntax errors of every file and every broken resolver module at once', async () => {
    expect(
      await problems({
        'schema/a.graphql': 'type Query {\n  a: Int\n',
        'schema/b.graphql': 'type Thing {\n  x: Int!!\n}',
        'resolvers/r.mjs': 'export const notDefault = {};',
      }),
    ).toEqual([
      'schema/a.graphql:3:1: Syntax Error: Expected Name, found <EOF>.',
      'schema/b.graphql:2:10: Syntax Error: Expected Name, found "!".',
      'resolvers/r.mjs: expected a default export of a resolver map (an object)',
    ]);
  });

  it('lists every validation error of the merged SDL, each with its file, line and column', async () => {
    expect(
      await problems({
        'schema/a.graphql': 'type Query {\n  a: Thingy\n}',
        'schema/b.graphql': 'type Thing {\n  x: Intt\n}',
      }),
    ).toEqual([
      'schema/a.graphql:2:6: Unknown type "Thingy". Did you mean "Thing" or "String"?',
      'schema/b.graphql:2:6: Unknown type "Intt". Did you mean "Int"?',
    ]);
  });

  it('reports type-system errors (an interface not implemented) with their location', async () => {
    expect(
      await problems({
        'schema/a.graphql': 'type Query { p: Person }\ninterface Named { name: String }\ntype Person implements Named { id: ID }',
      }),
    ).toEqual(['schema/a.graphql:2:19: Interface field Named.name expected but Person does not provide it.']);
  });

  it('reports the same field declared with two types', async () => {
    expect(
      await problems({ 'schema/a.graphql': 'type Query { a: Int }', 'schema/b.graphql': 'type Query { a: String }' }),
    ).toEqual(['schema/b.graphql:1:14: Query.a is declared as String here but as Int at schema/a.graphql:1:14']);
  });

  it('reports resolvers for types, fields and enum values the schema lacks', async () => {
    expect(
      await problems({
        'schema/a.graphql': 'type Query { a: Color }\nenum Color { RED }',
        'resolvers/r.mjs': 'export default { Query: { a: () => 1, b: () => 2 }, Color: { RED: "r", BLUE: "b" }, Ghost: { x: () => 1 } };',
      }),
    ).toEqual([
      'resolvers/r.mjs: resolver for Query.b, but type Query has no field "b"',
      'resolvers/r.mjs: resolver for Color.BLUE, but type Color has no value "BLUE"',
      'resolvers/r.mjs: resolver for type "Ghost", which the schema does not define',
    ]);
  });

  it('reports a resolver module that fails to load', async () => {
    expect(await problems({ 'schema/a.graphql': 'type Query { a: Int }', 'resolvers/r.mjs': 'throw new Error("boom at load");' })).toEqual([
      'resolvers/r.mjs: cannot load: boom at load',
    ]);
  });
});
