// GraphiQL in a real headless Chromium (Debian's package) shows a webhook event live: a
// `Subscription.events` typed into the editor, a signed webhook POSTed by the test, the event in
// the result pane.
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const SECRET = 'graphiql-events-hmac-secret';
const QUERY_EDITOR = '.graphiql-query-editor';
const RESPONSE = '.graphiql-response';

let h: TestHub | undefined;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

/** The text an editor shows (innerText has a no-break space for indentation, a zero-width one for an empty line). */
async function editorText(selector: string): Promise<string> {
  const lines = await page.locator(`${selector} .CodeMirror-line`).allInnerTexts();
  return lines.map((line) => line.replace(/\u200b/g, '').replace(/\u00a0/g, ' ')).join('\n');
}

async function shownResult(): Promise<unknown> {
  try {
    return JSON.parse(await editorText(RESPONSE));
  } catch {
    return undefined;
  }
}

describe('GraphiQL in headless Chromium shows a live webhook event', () => {
  const chromiumMissing = !existsSync(CHROMIUM);
  beforeEach(() => {
    if (chromiumMissing) throw new Error(`${CHROMIUM} not found: this test needs Debian's Chromium (apt-get install -y chromium).`);
  });

  beforeAll(async () => {
    if (chromiumMissing) return;
    h = await startHub(
      { 'schema/app.graphql': 'type Query { ping: String }\n' },
      { connectors: { hooks: { type: 'webhook', scheme: 'hmac', secret: SECRET, header: 'X-Signature', prefix: 'sha256=' } } },
    );
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const origin = h.origin;
    await context.route('**/*', (route) => (new URL(route.request().url()).origin === origin ? route.continue() : route.abort('blockedbyclient')));
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    expect((await page.goto(h.url, { waitUntil: 'load' }))?.status()).toBe(200);
  });

  afterAll(async () => {
    await browser?.close();
    await h?.stop();
  });

  it('runs `subscription { events(source: …) }` typed into the editor and shows a signed webhook POSTed meanwhile', async () => {
    const hub = h!;
    const operation = 'subscription LiveEvents { events(source: "hooks") { type payload } }';
    await page.locator(`${QUERY_EDITOR} .CodeMirror`).click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.type(operation);
    // Auto-closed brackets and quotes are stepped over when typed: the editor holds exactly this.
    expect(await editorText(QUERY_EDITOR)).toBe(operation);
    await page.keyboard.press('Escape');
    // GraphiQL takes the edit in after a debounce; the tab shows the operation name once it has.
    await page.locator('.graphiql-tab-active .graphiql-tab-button').getByText('LiveEvents', { exact: true }).waitFor();
    // Run it; the execute button turns into "Stop query" while it runs. On a busy machine a
    // key press can land before GraphiQL has taken the edit in: then it is pressed again (only
    // while nothing runs: pressing it then would stop the subscription).
    const running = page.getByRole('button', { name: 'Stop query (Ctrl-Enter)' });
    for (let attempt = 0; !(await running.isVisible()); attempt++) {
      expect(attempt, `GraphiQL did not run the subscription; result pane: ${await editorText(RESPONSE)}`).toBeLessThan(5);
      await page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' }).click();
      await running.waitFor({ timeout: 10_000 }).catch(() => undefined);
    }

    // Live on the hub once it has counted the subscription (and the source had no event before,
    // so a live-only stream misses nothing posted from here on).
    await expect
      .poll(async () => (await fetch(`${hub.origin}/metrics`)).text(), { timeout: 30_000 })
      .toMatch(/junction_graphql_operations_total\{type="subscription",name="LiveEvents",outcome="success"\} 1/);

    const event = { type: 'order.created', id: `order-${randomUUID()}`, total: 42, customer: { name: 'Ada' } };
    const body = JSON.stringify(event);
    const res = await fetch(`${hub.origin}/webhooks/hooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
      body,
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };

    await expect
      .poll(shownResult, { timeout: 30_000 })
      .toEqual({ data: { events: { type: 'order.created', payload: event } }, extensions: { cursor: id } });
    expect(await page.locator(RESPONSE).innerText()).toContain('order.created');
    expect(pageErrors).toEqual([]);
  });
});
