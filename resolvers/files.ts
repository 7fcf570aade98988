import { GraphQLError } from 'graphql';
import type { CatalogItem, Resolvers } from '../src/generated/schema-types.ts';

// Code resolvers over the demo's `docs` connector (type `files`, demo/connectors/files.ts).
// `context.connectors.docs` is typed as that connector's class by the generated connector map
// (src/generated/connectors.ts, `npm run codegen`), so `csv()`, `json()`, `text()` and `list()`
// are checked here, and their reads go through the connector's pipeline like `@files` fields.

const resolvers: Resolvers = {
  Query: {
    catalogItem: async (_, { sku }, { connectors }) => {
      const rows = await connectors.docs.csv('products.csv');
      const row = rows.find((r) => r.sku === sku);
      return row === undefined ? null : catalogItem(row);
    },
  },
};

/** A CSV row as the typed CatalogItem, or an error naming what the file got wrong. */
function catalogItem(row: Record<string, string | number | null>): CatalogItem {
  const { sku, name, priceCents, stock, category } = row;
  if (typeof priceCents !== 'number' || typeof stock !== 'number' || name == null || category == null || sku == null) {
    throw new GraphQLError(`products.csv: the row of ${String(sku)} lacks a name, a category or a numeric priceCents or stock`, {
      extensions: { code: 'UPSTREAM_ERROR', connector: 'docs' },
    });
  }
  return { sku: String(sku), name: String(name), priceCents, stock, category: String(category) };
}

export default resolvers;
