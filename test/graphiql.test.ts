import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GRAPHIQL_CSP } from '../src/graphiql.ts';
import { version } from '../src/version.ts';
import { gql, startHub, type TestHub } from './helpers.ts';

// GraphiQL in a real headless Chromium (Debian's package; playwright-core never downloads one).
const CHROMIUM = '/usr/bin/chromium';

const SDL = `
type Shout {
  text: String!
  by: String!
}
type Query {
  "Always pong."
  ping: String!
  greet(name: String!): String!
}
type Mutation {
  shout(text: String!, by: String!): Shout!
}
type Subscription {
  shouted: Shout!
}
`;

const RESOLVERS = `
const SHOUTED = 'test.shouted';
export default {
  Query: {
    ping: () => 'pong',
    greet: (_, { name }) => 'Hello, ' + name + '!',
  },
  Mutation: {
    shout: async (_, { text, by }, { pubsub }) => {
      const shout = { text, by };
      await pubsub.publish(SHOUTED, shout);
      return shout;
    },
  },
  Subscription: {
    shouted: {
      subscribe: (_, __, { pubsub }) => pubsub.asyncIterableIterator(SHOUTED),
      resolve: (shout) => shout,
    },
  },
};
`;

const QUERY_EDITOR = '.graphiql-query-editor';
const RESPONSE = '.graphiql-response';

let h: TestHub | undefined;
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
let csp: string | undefined;

/** Everything the page asked for, and everything that went wrong while it ran. */
const requested: string[] = [];
const sockets: string[] = [];
const framesSent: unknown[] = [];
const framesReceived: unknown[] = [];
const consoleErrors: string[] = [];
const pageErrors: string[] = [];
const failedRequests: string[] = [];
const badResponses: string[] = [];

/**
 * The text an editor shows, line by line. innerText gives a no-break space for CodeMirror's
 * indentation and a zero-width space for an empty line.
 */
async function editorText(selector: string): Promise<string> {
  const lines = await page.locator(`${selector} .CodeMirror-line`).allInnerTexts();
  return lines.map((line) => line.replace(/\u200b/g, '').replace(/\u00a0/g, ' ')).join('\n');
}

/** The result pane's JSON, or undefined while it shows nothing parseable. */
async function shownResult(): Promise<unknown> {
  const text = await editorText(RESPONSE);
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Replaces the query editor's content the way a user would: click, select all, type. */
async function typeOperation(operation: string): Promise<void> {
  await page.locator(`${QUERY_EDITOR} .CodeMirror`).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(operation);
  // Typing `{`, `(` or `"` auto-inserts the closing one and typing it steps over it: check the
  // editor holds exactly what was typed, so a stray character cannot pass unnoticed.
  expect(await editorText(QUERY_EDITOR)).toBe(operation);
  // Close the autocomplete list typing may have opened.
  await page.keyboard.press('Escape');
  // GraphiQL takes an edit in after a short debounce; run before that and it sends the new text
  // with the old operation name. The tab's title shows the operation name once it has.
  const name = /^(?:query|mutation|subscription)\s+(\w+)/.exec(operation)?.[1];
  if (name) await page.locator('.graphiql-tab-active .graphiql-tab-button').getByText(name, { exact: true }).waitFor();
}

describe('GraphiQL in headless Chromium', () => {
  // Without Chromium every test fails (a failing beforeAll would only mark them skipped).
  const chromiumMissing = !existsSync(CHROMIUM);
  beforeEach(() => {
    if (chromiumMissing) {
      throw new Error(`${CHROMIUM} not found: this test needs Debian's Chromium. Run \`apt-get update && apt-get install -y chromium\`.`);
    }
  });

  beforeAll(async () => {
    if (chromiumMissing) return;
    h = await startHub({ 'schema/test.graphql': SDL, 'resolvers/test.ts': RESOLVERS });
    const origin = h.origin;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // Every HTTP request passes through here; one for another origin is recorded and never sent.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      requested.push(url);
      return new URL(url).origin === origin ? route.continue() : route.abort('blockedbyclient');
    });
    // Runs in the page before its own scripts (the project has no DOM types, hence a string).
    await context.addInitScript(`
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(e.violatedDirective + ' blocked ' + e.blockedURI);
      });
    `);
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('requestfailed', (r) => failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) badResponses.push(`${r.status()} ${r.url()}`);
    });
    page.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framesent', (f) => framesSent.push(JSON.parse(String(f.payload))));
      ws.on('framereceived', (f) => framesReceived.push(JSON.parse(String(f.payload))));
    });

    const response = await page.goto(h.url, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    csp = response?.headers()['content-security-policy'];
  });

  afterAll(async () => {
    await browser?.close();
    await h?.stop();
  });

  it('renders GraphiQL with its editor, under a Content-Security-Policy', async () => {
    expect(csp).toBe(GRAPHIQL_CSP);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
    await page.locator(`${QUERY_EDITOR} .CodeMirror`).waitFor({ state: 'visible' });
    await page.locator('.graphiql-execute-button').waitFor({ state: 'visible' });
    expect(await page.locator('#graphiql').innerText()).not.toContain('Loading GraphiQL');
    expect(await editorText(QUERY_EDITOR)).toContain('query Hub {');
  });

  it('shows the schema in the docs explorer', async () => {
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.getByText('Root Types').waitFor();
    await docs.locator('a', { hasText: /^Query$/ }).first().click();
    const fields = docs.locator('.graphiql-doc-explorer-field-name');
    await fields.filter({ hasText: /^ping$/ }).waitFor();
    expect((await fields.allInnerTexts()).sort()).toEqual(['events', 'greet', 'hub', 'ping']);
    await expect.poll(() => docs.innerText()).toContain('Always pong.');
  });

  it('runs a query typed into the editor and shows its result', async () => {
    await typeOperation('query Greeting { ping greet(name: "Ada") hub { version } }');
    await page.locator('.graphiql-execute-button').click();
    await expect
      .poll(shownResult, { timeout: 10_000 })
      .toEqual({ data: { ping: 'pong', greet: 'Hello, Ada!', hub: { version } } });
  });

  it('runs a subscription over graphql-transport-ws and shows an event published over HTTP', async () => {
    const hub = h!;
    await typeOperation('subscription OnShout { shouted { text by } }');
    await page.keyboard.press('Control+Enter');

    // The subscription is live on the server once the hub has counted it; only then publish.
    await expect
      .poll(async () => (await fetch(`${hub.origin}/metrics`)).text(), { timeout: 10_000 })
      .toMatch(/junction_graphql_operations_total\{type="subscription",name="OnShout",outcome="success"\} 1/);
    const mutation = await gql(hub.url, 'mutation { shout(text: "Hello from HTTP", by: "vitest") { text } }');
    expect(mutation.body).toEqual({ data: { shout: { text: 'Hello from HTTP' } } });

    await expect
      .poll(shownResult, { timeout: 10_000 })
      .toEqual({ data: { shouted: { text: 'Hello from HTTP', by: 'vitest' } } });
    expect(sockets).toEqual([hub.wsUrl]);
    expect(framesSent).toContainEqual(expect.objectContaining({ type: 'connection_init' }));
    expect(framesReceived).toContainEqual(expect.objectContaining({ type: 'connection_ack' }));
    expect(framesSent).toContainEqual(
      expect.objectContaining({ type: 'subscribe', payload: expect.objectContaining({ operationName: 'OnShout' }) }),
    );
    expect(framesReceived).toContainEqual(
      expect.objectContaining({ type: 'next', payload: { data: { shouted: { text: 'Hello from HTTP', by: 'vitest' } } } }),
    );
  });

  it('loaded everything from the hub itself, with no CSP violation or failed load', async () => {
    const hub = h!;
    const offOrigin = requested.filter((url) => new URL(url).origin !== hub.origin);
    expect(offOrigin).toEqual([]);
    expect(requested).toEqual(
      expect.arrayContaining([
        hub.url,
        `${hub.origin}/graphiql/graphiql.css`,
        `${hub.origin}/graphiql/react.js`,
        `${hub.origin}/graphiql/react-dom.js`,
        `${hub.origin}/graphiql/graphiql.js`,
        `${hub.origin}/graphiql/init.js`,
      ]),
    );
    expect(sockets.every((url) => new URL(url).origin === hub.origin.replace(/^http/, 'ws'))).toBe(true);
    expect(await page.evaluate('window.__cspViolations')).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(failedRequests).toEqual([]);
    expect(badResponses).toEqual([]);
  });
});
