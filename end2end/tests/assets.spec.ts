// The first load: assets arrive compressed and under content-hashed names the browser keeps for a
// year, pages and server functions are compressed and never kept, and a second page load takes
// every asset from the cache. The second test prints the bytes each route sends over the wire.
import { request as http, type IncomingMessage } from 'node:http';
import type { APIRequestContext, Browser, Response } from '@playwright/test';
import { expect, openChart, signIn, test, token } from './helpers';

const IMMUTABLE = 'public, max-age=31536000, immutable';
/** cargo-leptos names a hashed file `<stem>.<22 characters of base64url MD5>.<extension>`. */
const HASHED = /^\/pkg\/[^/]+\.[A-Za-z0-9_-]{22}\.[a-z]+$/;

function pathOf(url: string): string {
  return new URL(url).pathname;
}

/** The first patient `username` may see. */
async function firstPatient(request: APIRequestContext, username: string): Promise<string> {
  const bearer = await token(request, username);
  const res = await request.get('/fhir/R4/Patient?_count=1&_sort=_id', { headers: { Authorization: `Bearer ${bearer}` } });
  expect(res.status()).toBe(200);
  const bundle = (await res.json()) as { entry?: { resource: { id: string } }[] };
  const id = bundle.entry?.[0]?.resource.id;
  expect(id, `a patient ${username} may see`).toBeTruthy();
  return id as string;
}

test('assets arrive compressed under hashed names, kept for a year; a second page load fetches none', async ({ browser, request }) => {
  const patient = await firstPatient(request, 'dr.chen');
  const context = await browser.newContext();
  const page = await context.newPage();
  const assets: Response[] = [];
  const documents: Response[] = [];
  page.on('response', (response) => {
    const path = pathOf(response.url());
    if (path.startsWith('/pkg/')) assets.push(response);
    else if (response.request().resourceType() === 'document') documents.push(response);
  });
  await signIn(page, 'dr.chen');

  const kinds = new Set(assets.map((r) => pathOf(r.url()).split('.').pop()));
  expect([...kinds].sort(), 'the page loads its JS, WASM and CSS from /pkg/').toEqual(['css', 'js', 'wasm']);
  for (const response of assets) {
    const path = pathOf(response.url());
    const headers = await response.allHeaders();
    expect(path, 'a content-hashed name').toMatch(HASHED);
    expect(response.status(), path).toBe(200);
    expect(headers['cache-control'], path).toBe(IMMUTABLE);
    expect(['br', 'gzip'], `${path} is sent compressed`).toContain(headers['content-encoding']);
    expect(headers['vary'] ?? '', path).toMatch(/accept-encoding/i);
  }
  expect(documents.length).toBeGreaterThan(0);
  for (const response of documents) {
    const headers = await response.allHeaders();
    const path = pathOf(response.url());
    if (response.status() !== 200) continue; // the sign-in's redirects carry no page
    expect(headers['cache-control'], `${path}: a page names patients`).toContain('no-store');
    expect(['br', 'gzip'], `${path} is compressed on the fly`).toContain(headers['content-encoding']);
  }

  // A full page load of another screen: every asset comes from the browser's cache.
  await openChart(page, patient, 'review');
  const fetched = await page.evaluate(() =>
    (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
      .filter((entry) => new URL(entry.name).pathname.startsWith('/pkg/'))
      .map((entry) => ({ path: new URL(entry.name).pathname, transferSize: entry.transferSize, decodedBodySize: entry.decodedBodySize })),
  );
  expect(fetched.length, 'the chart loads the same assets').toBeGreaterThanOrEqual(3);
  for (const entry of fetched) {
    expect(entry.decodedBodySize, entry.path).toBeGreaterThan(0);
    expect(entry.transferSize, `${entry.path} came from the cache, not the network`).toBe(0);
  }
  await context.close();
});

/** The size of `path`'s body as sent with `Accept-Encoding: encoding`, read off the socket undecoded. */
function wireBytes(base: string, path: string, encoding: string, cookie: string): Promise<{ bytes: number; encoding: string }> {
  return new Promise((resolve, reject) => {
    const req = http(new URL(path, base), { headers: { 'Accept-Encoding': encoding, Cookie: cookie } }, (res: IncomingMessage) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      res.on('end', () => resolve({ bytes, encoding: String(res.headers['content-encoding'] ?? 'identity') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface Loaded { path: string; kind: string; cacheControl: string; contentEncoding: string }

/** A cold load of `route` by `username`: what the page fetched from the server, by kind. */
async function coldLoad(browser: Browser, base: string, username: string | null, route: string): Promise<{ loaded: Loaded[]; cookie: string }> {
  const context = await browser.newContext();
  if (username) {
    const res = await context.request.post('/auth/login', { data: { username, password: 'rounds-demo' } });
    expect(res.status()).toBe(200);
  }
  const page = await context.newPage();
  const loaded: Loaded[] = [];
  page.on('response', async (response) => {
    const path = pathOf(response.url());
    const type = response.request().resourceType();
    const kind = type === 'document' ? 'html' : path.split('.').pop() ?? type;
    if (response.status() !== 200 || !['html', 'wasm', 'js', 'css'].includes(kind)) return;
    const headers = await response.allHeaders();
    loaded.push({
      path: `${path}${new URL(response.url()).search}`,
      kind,
      cacheControl: headers['cache-control'] ?? '(none)',
      contentEncoding: headers['content-encoding'] ?? 'identity',
    });
  });
  await page.goto(`${base}${route}`);
  await page.waitForFunction(() => document.body.dataset.hydrated === 'true');
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  await context.close();
  return { loaded, cookie };
}

test('bytes on the wire per route (printed): HTML, WASM, JS and CSS, br and gzip', async ({ browser, request, baseURL }) => {
  const base = baseURL as string;
  const patient = await firstPatient(request, 'dr.chen');
  const routes: [string, string | null, string][] = [
    ['sign-in', null, '/login'],
    ['patient panel', 'dr.chen', '/'],
    ['chart', 'dr.chen', `/patient/${patient}?tab=review`],
    ['pharmacy queue', 'pharm.nguyen', '/pharmacy'],
  ];
  const lines: string[] = [];
  for (const [name, username, route] of routes) {
    const { loaded, cookie } = await coldLoad(browser, base, username, route);
    const totals: Record<string, Record<string, number>> = { br: {}, gzip: {}, identity: {} };
    for (const item of loaded) {
      for (const encoding of ['br', 'gzip', 'identity']) {
        const { bytes, encoding: sent } = await wireBytes(base, item.path, encoding, cookie);
        expect(sent, `${item.path} asked for ${encoding}`).toBe(encoding);
        totals[encoding][item.kind] = (totals[encoding][item.kind] ?? 0) + bytes;
      }
      lines.push(`  ${item.kind.padEnd(4)} ${item.path}  Cache-Control: ${item.cacheControl}; sent to Chromium as ${item.contentEncoding}`);
    }
    const sum = (t: Record<string, number>) => Object.values(t).reduce((a, b) => a + b, 0);
    const kb = (n: number) => `${(n / 1000).toFixed(1)} kB`;
    const row = (encoding: string) => ['html', 'wasm', 'js', 'css'].map((k) => `${k} ${kb(totals[encoding][k] ?? 0)}`).join(', ');
    lines.push(`${name} (${route}): br ${kb(sum(totals.br))} [${row('br')}]; gzip ${kb(sum(totals.gzip))} [${row('gzip')}]; uncompressed ${kb(sum(totals.identity))}`);
    expect(loaded.some((item) => item.kind === 'wasm'), `${name} loads the WASM`).toBe(true);
  }
  console.log(`bytes on the wire, cold cache, per route:\n${lines.join('\n')}`);
});
