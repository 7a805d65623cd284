// One realtime connection for all the tabs of a browser: leader election, sharing through
// BroadcastChannel, failover when the leader tab closes, recovery from a server restart and from
// going offline, and the long-polling fallback when WebSocket upgrades are blocked.
//
// Failover and resume times are printed (and attached to the report): run
//   cd end2end && npx playwright test shared-connection
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { APIRequestContext, BrowserContext, Page, TestInfo } from '@playwright/test';
import { killServer as kill, launchServer as launch } from '../server';
import { authHeaders, expect, openChart, signIn, test, token } from './helpers';

const USER = 'dr.okafor';

interface Debug {
  tab: string;
  role: 'leader' | 'follower' | 'electing';
  leader: string | null;
  election: string;
  state: string;
  transport: 'web_socket' | 'polling';
  watches: { id: string; replaying: boolean; cursor: number | null }[];
  leader_since: number | null;
  connected_at: number | null;
  resumed_at: number | null;
  messages: unknown[];
}

async function debug(page: Page): Promise<Debug> {
  return page.evaluate(() => (window as unknown as { __ROUNDS_DEBUG__: Debug }).__ROUNDS_DEBUG__);
}

/** An admin's bearer token per server (keyed by base URL), for the operator endpoint. */
const adminTokens = new Map<string, string>();

/**
 * Open WebSockets of `user` according to the server's operator endpoint `/admin/sockets`
 * (admins only; `/metrics` counts users without naming them).
 */
async function socketsOf(request: APIRequestContext, user: string, base = ''): Promise<number> {
  for (let attempt = 0; attempt < 2; attempt++) {
    let bearer = adminTokens.get(base);
    if (!bearer) {
      bearer = await tokenAt(request, 'admin', base);
      adminTokens.set(base, bearer);
    }
    const res = await request.get(`${base}/admin/sockets?user=${encodeURIComponent(user)}`, { headers: authHeaders(bearer) });
    // An expired token, or a server started afresh on another database: sign in again.
    if (res.status() === 401) {
      adminTokens.delete(base);
      continue;
    }
    expect(res.status(), await res.text()).toBe(200);
    return ((await res.json()) as { sockets: number }).sockets;
  }
  throw new Error(`no admin token was accepted by ${base || 'the suite server'}`);
}

/** A bearer token from the server at `base` (default: the suite's server). */
async function tokenAt(request: APIRequestContext, username: string, base = ''): Promise<string> {
  if (!base) return token(request, username);
  const res = await request.post(`${base}/auth/login`, { data: { username, password: 'rounds-demo' } });
  expect(res.status()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function firstPatient(request: APIRequestContext, base = ''): Promise<string> {
  const bearer = await tokenAt(request, USER, base);
  const res = await request.get(`${base}/fhir/R4/Patient?_count=1&_elements=id`, { headers: authHeaders(bearer) });
  expect(res.status()).toBe(200);
  const bundle = (await res.json()) as { entry?: { resource: { id: string } }[] };
  expect(bundle.entry?.length, `${USER} sees a patient`).toBeGreaterThan(0);
  return bundle.entry![0].resource.id;
}

/** Posts a (normal) potassium result for `patient`; returns its id. */
async function postResult(request: APIRequestContext, bearer: string, patient: string, value: number, base = ''): Promise<string> {
  const res = await request.post(`${base}/fhir/R4/Observation`, {
    headers: { ...authHeaders(bearer), 'Content-Type': 'application/fhir+json' },
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

function resultRow(page: Page, id: string) {
  return page.locator(`[data-testid="result-row"][data-result="Observation/${id}"]`);
}

/** Every result shows exactly once in every page. */
async function expectEachOnce(pages: Page[], ids: string[]): Promise<void> {
  for (const page of pages) {
    for (const id of ids) await expect(resultRow(page, id), `Observation/${id}`).toHaveCount(1);
  }
}

/** Opens `count` tabs of one signed-in user on the patient's Results tab. */
async function tabs(context: BrowserContext, count: number, patient: string, base = ''): Promise<{ pages: Page[] }> {
  const pages: Page[] = [];
  for (let i = 0; i < count; i++) {
    const page = await context.newPage();
    if (i === 0) await signIn(page, USER, 'rounds-demo', base);
    await openChart(page, patient, 'results', base);
    pages.push(page);
  }
  return { pages };
}

/** Waits until exactly one of the pages leads and the others follow it; returns the leader. */
async function theLeader(pages: Page[]): Promise<Page> {
  let leader: Page | undefined;
  await expect
    .poll(async () => {
      const states = await Promise.all(pages.map(debug));
      const leaders = states.filter((s) => s.role === 'leader');
      const followers = states.filter((s) => s.role === 'follower' && s.leader === leaders[0]?.tab);
      leader = leaders.length === 1 ? pages[states.indexOf(leaders[0])] : undefined;
      return leaders.length === 1 && followers.length === pages.length - 1;
    }, { message: 'one leader, the others following it' })
    .toBe(true);
  return leader!;
}

/** Waits until every page has confirmed all its subscriptions after `since`; returns when (ms). */
async function resumedAfter(pages: Page[], since: number): Promise<number[]> {
  const times: number[] = [];
  for (const page of pages) {
    await expect
      .poll(async () => {
        const d = await debug(page);
        return d.resumed_at !== null && d.resumed_at > since && d.watches.every((w) => !w.replaying);
      }, { message: 'the tab resumed' })
      .toBe(true);
    times.push((await debug(page)).resumed_at! - since);
  }
  return times;
}

async function report(testInfo: TestInfo, line: string): Promise<void> {
  console.log(line);
  await testInfo.attach('timing', { body: line, contentType: 'text/plain' });
}

test('three tabs of one user share one WebSocket and each shows the update', async ({ browser, request }) => {
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  const { pages } = await tabs(context, 3, patient);
  const leader = await theLeader(pages);
  await expect.poll(() => socketsOf(request, USER), { message: 'open sockets of the user' }).toBe(1);
  await expect(leader.getByTestId('connection-role')).toHaveText('this tab holds the connection');
  for (const page of pages.filter((p) => p !== leader)) {
    await expect(page.getByTestId('connection-role')).toHaveText("sharing another tab's connection");
  }
  const bearer = await token(request, 'admin');
  const id = await postResult(request, bearer, patient, 4.1);
  await expectEachOnce(pages, [id]);
  expect(await socketsOf(request, USER)).toBe(1);
  await context.close();
});

test('closing the leader tab while results are written: a new leader, one socket, every result once', async ({ browser, request }, testInfo) => {
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  const { pages } = await tabs(context, 3, patient);
  const leader = await theLeader(pages);
  const bearer = await token(request, 'admin');
  const ids: string[] = [];
  let closedAt = 0;
  const writer = (async () => {
    for (let i = 0; i < 30; i++) ids.push(await postResult(request, bearer, patient, 3.6 + i / 100));
  })();
  await expect.poll(() => ids.length).toBeGreaterThanOrEqual(10);
  closedAt = Date.now();
  await leader.close();
  await writer;
  const rest = pages.filter((p) => p !== leader);
  const next = await theLeader(rest);
  const elected = (await debug(next)).leader_since! - closedAt;
  const resumed = await resumedAfter(rest, closedAt);
  await expectEachOnce(rest, ids);
  await report(
    testInfo,
    `failover: new leader elected ${elected} ms after the leader tab closed; subscriptions resumed in ${resumed.join(' / ')} ms (the tabs); ${ids.length} results written across it, each shown once`,
  );
  await expect.poll(() => socketsOf(request, USER), { message: 'open sockets of the user' }).toBe(1);
  expect(elected).toBeLessThan(1000);
  await context.close();
});

test('closing the leader without Web Locks: the channel election hands over', async ({ browser, request }, testInfo) => {
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true });
  });
  const { pages } = await tabs(context, 2, patient);
  const leader = await theLeader(pages);
  expect((await debug(leader)).election).toBe('broadcast-channel');
  const closedAt = Date.now();
  await leader.close();
  const [next] = pages.filter((p) => p !== leader);
  await theLeader([next]);
  const elected = (await debug(next)).leader_since! - closedAt;
  const bearer = await token(request, 'admin');
  const id = await postResult(request, bearer, patient, 4.2);
  await expectEachOnce([next], [id]);
  await expect.poll(() => socketsOf(request, USER)).toBe(1);
  await report(testInfo, `failover without Web Locks: new leader after ${elected} ms`);
  await context.close();
});

test('going offline and back: the status says so and what was written meanwhile appears', async ({ browser, request, consoleErrors }) => {
  consoleErrors.allow(/ERR_INTERNET_DISCONNECTED/, 'the context goes offline on purpose: requests in flight fail');
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  const { pages } = await tabs(context, 2, patient);
  await theLeader(pages);
  await context.setOffline(true);
  for (const page of pages) await expect(page.getByTestId('connection-status')).toHaveText('Offline');
  const bearer = await token(request, 'admin');
  const ids = [await postResult(request, bearer, patient, 3.7), await postResult(request, bearer, patient, 3.8)];
  await context.setOffline(false);
  for (const page of pages) await expect(page.getByTestId('connection-status')).toHaveText('Live');
  await expectEachOnce(pages, ids);
  ids.push(await postResult(request, bearer, patient, 3.9));
  await expectEachOnce(pages, ids);
  await context.close();
});

test('with WebSocket upgrades blocked the leader long-polls, and goes back to a socket when they work', async ({ browser, request }) => {
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  let blocked = true;
  await context.routeWebSocket(/\/ws$/, (ws) => {
    if (blocked) void ws.close();
    else ws.connectToServer();
  });
  const { pages } = await tabs(context, 2, patient);
  const leader = await theLeader(pages);
  for (const page of pages) await expect(page.getByTestId('connection-role')).toContainText('HTTP polling');
  expect(await socketsOf(request, USER)).toBe(0);
  const bearer = await token(request, 'admin');
  const ids = [await postResult(request, bearer, patient, 4.3)];
  await expectEachOnce(pages, ids);
  blocked = false;
  await expect(leader.getByTestId('connection-role')).toHaveText('this tab holds the connection', { timeout: 40_000 });
  await expect.poll(() => socketsOf(request, USER)).toBe(1);
  ids.push(await postResult(request, bearer, patient, 4.4));
  await expectEachOnce(pages, ids);
  await context.close();
});

test('a half-open socket (frames stop arriving) is detected by the pong watchdog and the tabs resume', async ({ browser, request }) => {
  test.setTimeout(90_000);
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  // Each socket goes through a proxy; the newest one stops passing the server's frames on when told.
  let sockets = 0;
  let newest = { silent: false };
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const proxy = { silent: false };
    newest = proxy;
    sockets++;
    const server = ws.connectToServer();
    server.onMessage((message) => { if (!proxy.silent) ws.send(message); });
    ws.onMessage((message) => server.send(message));
  });
  const { pages } = await tabs(context, 2, patient);
  await theLeader(pages);
  await expect.poll(() => socketsOf(request, USER)).toBe(1);
  const before = sockets;
  newest.silent = true;
  const silentFrom = Date.now();
  const bearer = await token(request, 'admin');
  const ids = [await postResult(request, bearer, patient, 4.6)];
  // Nothing arrives on the silent socket: the watchdog pings it, gets no pong, and reconnects.
  await expect.poll(() => sockets, { timeout: 30_000, message: 'a new socket' }).toBe(before + 1);
  const resumed = await resumedAfter(pages, silentFrom);
  await expectEachOnce(pages, ids);
  ids.push(await postResult(request, bearer, patient, 4.7));
  await expectEachOnce(pages, ids);
  console.log(`watchdog: a silent socket replaced and the tabs resumed ${resumed.join(' / ')} ms after its frames stopped`);
  await context.close();
});

test('a 4401 close: the leader refreshes the session and resumes', async ({ browser, request }) => {
  const patient = await firstPatient(request);
  const context = await browser.newContext();
  let refuse: (() => void) | undefined;
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((message) => ws.send(message));
    ws.onMessage((message) => server.send(message));
    refuse = () => void ws.close({ code: 4401, reason: 'token expired' });
  });
  const { pages } = await tabs(context, 2, patient);
  const leader = await theLeader(pages);
  const refreshed = leader.waitForRequest((r) => r.url().endsWith('/auth/refresh') && r.method() === 'POST');
  const bearer = await token(request, 'admin');
  const closedAt = Date.now();
  refuse!();
  const ids = [await postResult(request, bearer, patient, 4.8)];
  expect((await (await refreshed).response())?.status()).toBe(200);
  await resumedAfter(pages, closedAt);
  await expectEachOnce(pages, ids);
  for (const page of pages) await expect(page.getByTestId('connection-status')).toHaveText('Live');
  await context.close();
});

// ---------------------------------------------------------------------------------------------
// A server of this test's own, to restart under the open tabs.

test('a server restart under open tabs: every tab recovers and shows every result once', async ({ browser, request, consoleErrors }, testInfo) => {
  consoleErrors.allow(/ERR_CONNECTION_REFUSED|WebSocket/, 'the server is killed on purpose: sockets and requests are refused until it is back');
  test.setTimeout(120_000);
  const dbDir = mkdtempSync(path.join(tmpdir(), 'rounds-restart-'));
  let server = await launch(dbDir, '127.0.0.1:0', 'restart-server.log');
  try {
    const base = server.url;
    const patient = await firstPatient(request, base);
    const context = await browser.newContext();
    const { pages } = await tabs(context, 3, patient, base);
    await theLeader(pages);
    const admin = await tokenAt(request, 'admin', base);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await postResult(request, admin, patient, 3.5 + i / 10, base));
    await expectEachOnce(pages, ids);

    // Crash it, and start it again on the same port and database.
    await kill(server);
    for (const page of pages) await expect(page.getByTestId('connection-status')).toHaveText('Reconnecting…');
    server = await launch(dbDir, new URL(base).host, 'restart-server.log');
    const restartedAt = Date.now();
    // Written while the tabs are still reconnecting…
    for (let i = 0; i < 5; i++) ids.push(await postResult(request, admin, patient, 4.5 + i / 10, base));
    const resumed = await resumedAfter(pages, restartedAt);
    // …and after.
    for (let i = 0; i < 5; i++) ids.push(await postResult(request, admin, patient, 5.5 + i / 10, base));
    await expectEachOnce(pages, ids);
    await report(testInfo, `server restart: tabs resumed ${resumed.join(' / ')} ms after the new process listened; ${ids.length} results, each shown once in ${pages.length} tabs`);
    expect(await socketsOf(request, USER, base)).toBe(1);
    await context.close();
  } finally {
    await kill(server);
    rmSync(dbDir, { recursive: true, force: true });
  }
});
