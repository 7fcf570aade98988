import { afterAll, beforeAll, expect, it } from 'vitest';
import { gql, startHub, type TestHub } from './helpers.ts';
let h: TestHub;
beforeAll(async () => { h = await startHub({ 'schema/a.graphql': 'type Query { a: Int }', 'resolvers/a.ts': 'export default { Query: { a: () => 1 } }' }); });
afterAll(() => h.stop());
it('works', async () => {
  const r = await gql(h.url, '{ a hub { version } }');
  expect(r.body).toEqual({ data: { a: 1, hub: { version: '0.1.0' } } });
});
