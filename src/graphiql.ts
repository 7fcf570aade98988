import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * GraphiQL served from the hub's own npm packages: no CDN, nothing fetched at run time.
 * graphiql 4.1.2 is the last release with a browser bundle (React 18 UMD); see README.
 */
const require = createRequire(import.meta.url);

function packageFile(pkg: string, file: string): string {
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
}

interface Asset {
  file: string;
  type: string;
}

const assets: Record<string, Asset> = {
  'react.js': { file: packageFile('react', 'umd/react.production.min.js'), type: 'text/javascript' },
  'react-dom.js': { file: packageFile('react-dom', 'umd/react-dom.production.min.js'), type: 'text/javascript' },
  'graphiql.js': { file: packageFile('graphiql', 'graphiql.min.js'), type: 'text/javascript' },
  'graphiql.css': { file: packageFile('graphiql', 'graphiql.min.css'), type: 'text/css' },
  'init.js': { file: new URL('./graphiql-init.js', import.meta.url).pathname, type: 'text/javascript' },
};

/** Where the assets are served from. */
export const GRAPHIQL_ASSET_PATH = '/graphiql/';

/** The page's Content-Security-Policy: the page may load and connect to this origin only. */
export const GRAPHIQL_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // GraphiQL's editors set inline styles.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  // CSP 3: 'self' covers ws:// and wss:// on the page's own host and port.
  "connect-src 'self'",
].join('; ');

// The empty icon keeps the browser from asking for /favicon.ico (a 404 in the page's console).
export function graphiqlPage(endpoint: string): string {
  const a = (name: string) => `${GRAPHIQL_ASSET_PATH}${name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Junction · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${a('graphiql.css')}">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql" data-endpoint="${escapeAttr(endpoint)}">Loading GraphiQL…</div>
<script src="${a('react.js')}"></script>
<script src="${a('react-dom.js')}"></script>
<script src="${a('graphiql.js')}"></script>
<script src="${a('init.js')}"></script>
</body>
</html>`;
}

const cache = new Map<string, Buffer>();

/** An asset by its name under /graphiql/, or undefined. */
export function graphiqlAsset(name: string): { body: Buffer; type: string } | undefined {
  const asset = Object.hasOwn(assets, name) ? assets[name] : undefined;
  if (!asset) return undefined;
  let body = cache.get(name);
  if (!body) {
    body = readFileSync(asset.file);
    cache.set(name, body);
  }
  return { body, type: asset.type };
}

function escapeAttr(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
