import { Agent, get } from 'node:http';
import { parseArgs } from 'node:util';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import DataLoader from 'dataloader';

/**
 * The reference server of `npm run bench`, written the way the public graphql-benchmarks'
 * Apollo entry is: plain @apollo/server (its standalone server) and graphql, hand-written
 * resolvers, a DataLoader per request whose batch function makes one GET per user id, a
 * keep-alive HTTP agent, no caching.
 *
 *   tsx bench/reference-server.ts --upstream http://127.0.0.1:4001 --port 0
 *
 * Prints `reference server on <url>` once it listens.
 */
const { values } = parseArgs({
  options: {
    upstream: { type: 'string', default: 'http://127.0.0.1:4001' },
    port: { type: 'string', default: '8000' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const upstream = values.upstream.replace(/\/+$/, '');

const agent = new Agent({ keepAlive: true });

/** GET a JSON body from the upstream over the keep-alive agent. */
function getJson<T>(path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    get(`${upstream}${path}`, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${path} answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (error) {
          reject(error as Error);
        }
      });
      res.on('error', reject);
    }).on('error', reject);
  });
}

interface Post {
  id: number;
  userId: number;
  title: string;
  body: string;
}
interface User {
  id: number;
}
interface Context {
  userLoader: DataLoader<number, User>;
}

const typeDefs = `#graphql
  type User {
    id: Int!
    name: String!
    username: String!
    email: String!
    phone: String
    website: String
  }

  type Post {
    id: Int!
    userId: Int!
    title: String!
    body: String!
    user: User
  }

  type Query {
    posts: [Post]
    greet: String!
  }
`;

const resolvers = {
  Query: {
    posts: () => getJson<Post[]>('/posts'),
    greet: () => 'Hello World!',
  },
  Post: {
    user: (post: Post, _: unknown, ctx: Context) => ctx.userLoader.load(post.userId),
  },
};

const server = new ApolloServer<Context>({ typeDefs, resolvers });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(values.port), host: values.host },
  // One GET per user id, as the public entry's batch function does.
  context: async () => ({ userLoader: new DataLoader((ids: readonly number[]) => Promise.all(ids.map((id) => getJson<User>(`/users/${id}`)))) }),
});
process.stdout.write(`reference server on ${url}\n`);

const stop = () => {
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
