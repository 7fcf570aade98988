import { readFileSync } from 'node:fs';

/**
 * The workload of the public "graphql-benchmarks" (demo/data/README.md): three queries over
 * jsonplaceholder's posts and users, and the exact answer each must get, built from the data.
 */
export interface Post {
  id: number;
  userId: number;
  title: string;
  body: string;
}
export interface User {
  id: number;
  name: string;
  username: string;
  email: string;
  phone: string;
  website: string;
}

export const data = JSON.parse(readFileSync(new URL('../demo/data/jsonplaceholder.json', import.meta.url), 'utf8')) as {
  posts: Post[];
  users: User[];
};

export type QueryName = 'Q1' | 'Q2' | 'Q3';

export interface Query {
  name: QueryName;
  query: string;
  /** The JSON POST body sent. */
  body: string;
  /** The one correct response body, parsed. */
  expected: unknown;
}

function query(name: QueryName, text: string, expected: unknown): Query {
  return { name, query: text, body: JSON.stringify({ query: text }), expected };
}

const userById = new Map(data.users.map((u) => [u.id, u]));

export const QUERIES: readonly Query[] = [
  query('Q1', '{posts{id,userId,title,user{id,name,email}}}', {
    data: {
      posts: data.posts.map((p) => {
        const u = userById.get(p.userId)!;
        return { id: p.id, userId: p.userId, title: p.title, user: { id: u.id, name: u.name, email: u.email } };
      }),
    },
  }),
  query('Q2', '{posts{title}}', { data: { posts: data.posts.map((p) => ({ title: p.title })) } }),
  query('Q3', '{greet}', { data: { greet: 'Hello World!' } }),
];

