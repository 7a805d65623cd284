// The end of a session, in a real browser: signing out in one tab takes every tab of the browser to the
// sign-in page with nothing of the session left, the next user signs in in the same tab, a write at the
// instant the access token expires is stored once, and switching a chart's tab replays only what it missed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { APIRequestContext, Page } from '@playwright/test';
import { killServer, launchServer } from '../server';
import { authHeaders, expect, openChart, signIn, test } from './helpers';

const USER = 'dr.okafor';

interface Debug {
  role: 'leader' | 'follower' | 'electing';
  applied: number;
  watches: { id: string; replaying: boolean }[];
  messages: { at: number; via: string; kind: string; seq?: number | null }[];
}

async function debug(page: Page): Promise<Debug> {
  return page.evaluate(() => (window as unknown as { __ROUNDS_DEBUG__: Debug }).__ROUNDS_DEBUG__);
}

async function bearer(request: APIRequestContext, username: string, base = ''): Promise<string> {
  const res = await request.post(`${base}/auth/login`, { data: { username, password: 'rounds-demo' } });
  expect(res.status()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function firstPatient(request: APIRequestContext, base = ''): Promise<string> {
  const res = await request.get(`${base}/fhir/R4/Patient?_count=1&_elements=id`, { headers: authHeaders(await bearer(request, USER, base)) });
  expect(res.status()).toBe(200);
  const bundle = (await res.json()) as { entry?: { resource: { id: string } }[] };
  expect(bundle.entry?.length, `${USER} sees a patient`).toBeGreaterThan(0);
  return bundle.entry![0].resource.id;
}

/** Posts a normal potassium result for `patient`; returns its id. */
async function postResult(request: APIRequestContext, token: string, patient: string, value: number): Promise<string> {
  const res = await request.post('/fhir/R4/Observation', {
    headers: { ...authHeaders(token), 'Content-Type': 'application/fhir+json' },
    data: JSON.stringify({
      resourceType: 'Observation',
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: '2823-3', display: 'Potassium' }], text: 'K' },
      subject: { reference: `Patient/${patient}` },
      effectiveDateTime: new Date().toISOString(),
      valueQuantity: { value, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    }),
  });
  expect(res.status(), await res.text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

test('signing out in one of three tabs takes all three to the sign-in page within a second, with nothing left', async ({ browser, request }) => {
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  const pages: Page[] = [];
  for (let i = 0; i < 3; i++) {
    const page = await context.newPage();
    if (i === 0) await signIn(page, USER);
    await openChart(page, patient, 'review');
    pages.push(page);
  }
  const name = (await pages[0].getByTestId('patient-name').textContent())?.trim() ?? '';
  expect(name.length).toBeGreaterThan(0);
  await expect.poll(async () => (await Promise.all(pages.map(debug))).filter((d) => d.role === 'leader').length).toBe(1);
  // Sign out in a follower: the leader's socket is the one the server ends.
  const states = await Promise.all(pages.map(debug));
  const signer = pages[states.findIndex((d) => d.role === 'follower')];

  const started = Date.now();
  const arrived = Promise.all(
    pages.map(async (page) => {
      await page.waitForURL(/\/login$/, { timeout: 5_000, waitUntil: 'commit' });
      await expect(page.getByTestId('login-page')).toBeVisible({ timeout: 5_000 });
      return Date.now() - started;
    }),
  );
  await signer.getByTestId('sign-out').click();
  const times = await arrived;
  console.log(`sign-out: the three tabs showed the sign-in page after ${times.join(' / ')} ms`);
  // The figure is printed above (about 150-400 ms on a quiet machine); the bound only catches a
  // tab that stays behind, with room for a loaded CI machine, since a timed test must not flake.
  for (const time of times) expect(time, 'each tab on the sign-in page').toBeLessThan(5_000);
  for (const page of pages) {
    expect(await page.content(), 'no patient name left in the DOM').not.toContain(name);
    await expect(page.getByTestId('app-shell')).toHaveCount(0);
  }

  // Another user signs in in the same tab, without a reload, and gets a working workspace.
  await signer.waitForFunction(() => document.body.dataset.hydrated === 'true');
  await signer.getByLabel('Username').fill('dr.chen');
  await signer.getByLabel('Password').fill('rounds-demo');
  await signer.getByRole('button', { name: 'Sign in' }).click();
  await expect(signer.getByTestId('current-user')).toContainText('Chen');
  await expect(signer.getByTestId('patient-row').first()).toBeVisible();
  await expect(signer.getByTestId('connection-status')).toHaveText('Live');
  // The other tabs stayed signed out (they share the new cookies, but show the sign-in page until asked).
  await context.close();
});

test('a write at the instant the access token expires is refreshed, retried once, stored once and shown once', async ({ browser, request, consoleErrors }) => {
  consoleErrors.allow(/status of 401/, 'the first attempt of the order goes out with the expired token on purpose and is refused');
  const TOKEN_SECS = 6;
  const dbDir = mkdtempSync(path.join(tmpdir(), 'rounds-expiry-'));
  const server = await launchServer(dbDir, '127.0.0.1:0', 'expiry-server.log', { ROUNDS_ACCESS_TOKEN_SECS: String(TOKEN_SECS) });
  try {
    const base = server.url;
    const patient = await firstPatient(request, base);
    const context = await browser.newContext();
    // The server closes the socket with 4401 when the token expires, and the page would refresh at once;
    // swallow that close so that the order below is the first to meet the expired token.
    await context.routeWebSocket(/\/ws$/, (ws) => {
      const upstream = ws.connectToServer();
      upstream.onMessage((message) => ws.send(message));
      ws.onMessage((message) => upstream.send(message));
      upstream.onClose(() => undefined);
    });
    const page = await context.newPage();
    await signIn(page, USER, 'rounds-demo', base);
    await openChart(page, patient, 'orders', base);
    const ctRows = page.getByTestId('order').filter({ hasText: 'CT head' });
    const before = await ctRows.count();
    const exchanges: string[] = [];
    page.on('response', (res) => {
      const url = new URL(res.url());
      if (url.pathname === '/fhir/R4/ServiceRequest' || url.pathname === '/auth/refresh') {
        exchanges.push(`${res.request().method()} ${url.pathname} ${res.status()}`);
      }
    });
    await page.getByTestId('order-choice').selectOption('CT head');

    // Wait for the instant the access cookie expires, then order.
    const access = (await context.cookies(base)).find((c) => c.name === 'rounds_access');
    expect(access?.expires, 'the access cookie has an expiry').toBeGreaterThan(0);
    expect(access!.expires * 1000 - Date.now()).toBeLessThan(TOKEN_SECS * 1000 + 1000);
    // The browser drops the cookie at its expiry: wait for exactly that condition.
    await expect
      .poll(async () => (await context.cookies(base)).some((c) => c.name === 'rounds_access'), {
        timeout: TOKEN_SECS * 1000 + 5_000,
        intervals: [25],
      })
      .toBe(false);
    await page.getByTestId('place-order').click();

    await expect(ctRows).toHaveCount(before + 1);
    await expect(page.locator('tr.pending[data-testid="order"]')).toHaveCount(0);
    await expect.poll(() => exchanges.length).toBeGreaterThanOrEqual(3);
    expect(exchanges).toEqual(['POST /fhir/R4/ServiceRequest 401', 'POST /auth/refresh 200', 'POST /fhir/R4/ServiceRequest 201']);
    await expect(page.getByTestId('toast').filter({ hasText: 'not ordered' })).toHaveCount(0);
    const admin = await bearer(request, 'admin', base);
    const res = await request.get(`${base}/fhir/R4/ServiceRequest?patient=Patient/${patient}&code=30799-1&_summary=count`, { headers: authHeaders(admin) });
    expect(((await res.json()) as { total: number }).total, 'stored once').toBe(before + 1);
    await expect(ctRows).toHaveCount(before + 1);
    await context.close();
  } finally {
    await killServer(server);
    rmSync(dbDir, { recursive: true, force: true });
  }
});

test('switching a chart tab replays only what that tab\'s types missed', async ({ page, request }) => {
  const patient = await firstPatient(request);
  await signIn(page, USER);
  await openChart(page, patient, 'review');
  await expect.poll(async () => (await debug(page)).role).toBe('leader');
  // Results arrive while Chart Review (which shows Observations too) is open.
  const admin = await bearer(request, 'admin');
  const applied = (await debug(page)).applied;
  let last = '';
  for (let i = 0; i < 20; i++) last = await postResult(request, admin, patient, 3.6 + i / 100);
  await expect.poll(async () => (await debug(page)).applied, { message: 'the 20 results reached the chart live' }).toBeGreaterThanOrEqual(applied + 20);

  const switchedAt = Date.now();
  await page.getByTestId('tab-results').click();
  await expect(page.locator(`[data-testid="result-row"][data-result="Observation/${last}"]`)).toHaveCount(1);
  await expect.poll(async () => (await debug(page)).watches.every((w) => !w.replaying), { message: 'the switch is confirmed' }).toBe(true);
  const replayed = (await debug(page)).messages.filter((m) => m.via === 'server' && m.kind === 'update' && m.at >= switchedAt);
  console.log(`tab switch after 20 results: ${replayed.length} updates replayed`);
  expect(replayed, 'the Observations were live on Chart Review: nothing to replay').toEqual([]);
  expect((await debug(page)).watches.map((w) => w.id)).not.toContain('chart+catch-up');
});
