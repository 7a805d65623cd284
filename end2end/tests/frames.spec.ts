// A benchmark-style run, printed rather than asserted on time: the cost of one frame on a long
// chart (2,000 results, 500 orders) while 20 updates a second arrive. Each frame's cost is what
// the client records in `window.__ROUNDS_RENDER__`: from the start of the animation frame that
// applies a batch until the next one, so applying, rendering, layout and paint.
import type { APIRequestContext, BrowserContext, Page, TestInfo } from '@playwright/test';
import { authHeaders, expect, openChart, signIn, test, token } from './helpers';

const FHIR_JSON = 'application/fhir+json';
const RESULTS = 2000;
const ORDERS = 500;
const UPDATES = 100;
const PER_SECOND = 20;

async function create(request: APIRequestContext, bearer: string, resource: Record<string, unknown>): Promise<string> {
  const res = await request.post(`/fhir/R4/${resource.resourceType as string}`, {
    headers: { ...authHeaders(bearer), 'Content-Type': FHIR_JSON, Prefer: 'return=minimal' },
    data: JSON.stringify(resource),
  });
  expect(res.status(), await res.text()).toBe(201);
  const location = res.headers()['location'] ?? '';
  const id = location.split('/_history')[0].split('/').pop();
  expect(id, `the Location of the new ${resource.resourceType as string}`).toBeTruthy();
  return id as string;
}

/** Runs `make(i)` for i in 0..count, `width` at a time. */
async function inParallel(count: number, width: number, make: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await make(next++);
  }));
}

const ANALYTES = [
  ['2823-3', 'Potassium', 'mmol/L', 4.1],
  ['2951-2', 'Sodium', 'mmol/L', 139],
  ['2160-0', 'Creatinine', 'mg/dL', 1.0],
  ['718-7', 'Hemoglobin', 'g/dL', 13.2],
  ['6690-2', 'Leukocytes', '10*3/uL', 7.4],
] as const;

function result(patient: string, i: number, when: Date): Record<string, unknown> {
  const [code, display, unit, value] = ANALYTES[i % ANALYTES.length];
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code, display }], text: display },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: when.toISOString(),
    issued: when.toISOString(),
    valueQuantity: { value: Math.round((value * (0.9 + (i % 7) / 30)) * 10) / 10, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}

function order(patient: string, i: number, when: Date): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    status: i % 5 === 0 ? 'completed' : 'active',
    intent: 'order',
    priority: i % 9 === 0 ? 'stat' : 'routine',
    code: { coding: [{ system: 'http://loinc.org', code: '24323-8', display: 'Basic metabolic panel' }], text: `Basic metabolic panel #${i}` },
    subject: { reference: `Patient/${patient}` },
    authoredOn: when.toISOString(),
  };
}

function quantiles(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1);
  return `p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${at(1)} ms over ${sorted.length} frames`;
}

async function renderTimes(page: Page): Promise<number[]> {
  return (await page.evaluate(() => (window as unknown as { __ROUNDS_RENDER__?: number[] }).__ROUNDS_RENDER__ ?? [])) as number[];
}

async function painted(page: Page): Promise<number> {
  return page.evaluate(() => ((window as unknown as { __ROUNDS_PAINT__?: number[] }).__ROUNDS_PAINT__ ?? []).length);
}

/**
 * Sends `UPDATES` updates at `PER_SECOND`, waits until every one has been painted and the newest
 * is on screen (a long list draws only the rows near the screen), and returns the new frames' costs.
 */
async function underUpdates(page: Page, send: (i: number) => Promise<string>, shown: (id: string) => string): Promise<number[]> {
  const before = (await renderTimes(page)).length;
  const paintedBefore = await painted(page);
  const ids: string[] = [];
  const started = Date.now();
  for (let i = 0; i < UPDATES; i++) {
    const due = started + (i * 1000) / PER_SECOND;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait)); // pacing the load, not waiting for a result
    ids.push(await send(i));
  }
  // __ROUNDS_PAINT__ keeps the last 1,000 updates' arrival-to-paint times.
  await expect.poll(() => painted(page), { timeout: 30_000 }).toBeGreaterThanOrEqual(Math.min(1000, paintedBefore + UPDATES));
  await expect(page.locator(shown(ids[ids.length - 1]))).toBeVisible();
  const times = await renderTimes(page);
  // __ROUNDS_RENDER__ keeps the last 1,000 frames.
  return times.slice(Math.max(0, Math.min(before, times.length - UPDATES)));
}

test('a chart of 2,000 results and 500 orders repaints within a frame under 20 updates/s (printed)', async ({ browser, request }, testInfo) => {
  test.setTimeout(300_000);
  const admin = await token(request, 'admin');
  const patient = await create(request, admin, {
    resourceType: 'Patient',
    name: [{ use: 'official', family: `Longstay${Date.now()}`, given: ['Frame'] }],
    identifier: [{ system: 'http://rounds.example.org/fhir/mrn', value: `MRN-F${Date.now()}` }],
    gender: 'female',
    birthDate: '1948-05-06',
  });
  const start = Date.now() - 30 * 24 * 3600 * 1000;
  await inParallel(RESULTS, 16, (i) => create(request, admin, result(patient, i, new Date(start + i * 1200 * 1000))));
  await inParallel(ORDERS, 16, (i) => create(request, admin, order(patient, i, new Date(start + i * 5000 * 1000))));

  const context = await browser.newContext();
  try {
    await measure(context, request, admin, patient, testInfo);
  } finally {
    // Other specs count the demo patients.
    await context.close();
    const gone = await request.delete(`/fhir/R4/Patient/${patient}`, { headers: authHeaders(admin) });
    expect(gone.status()).toBe(204);
  }
});

async function measure(context: BrowserContext, request: APIRequestContext, admin: string, patient: string, testInfo: TestInfo): Promise<void> {
  const page = await context.newPage();
  await signIn(page, 'admin');
  const opened = Date.now();
  await openChart(page, patient, 'results');
  const openMs = Date.now() - opened;

  const results = await underUpdates(
    page,
    (i) => create(request, admin, result(patient, i, new Date())),
    (id) => `[data-testid="result-row"][data-result="Observation/${id}"]`,
  );
  await page.getByTestId('tab-orders').click();
  await expect(page.getByTestId('orders')).toBeVisible();
  const orders = await underUpdates(
    page,
    (i) => create(request, admin, order(patient, RESULTS + i, new Date())),
    (id) => `[data-testid="order"][data-order-id="${id}"]`,
  );
  const summary =
    `chart with ${RESULTS} results and ${ORDERS} orders, opened (hydrated, live) in ${openMs} ms; ` +
    `frames while ${PER_SECOND} updates/s arrive — Results tab: ${quantiles(results)}; Orders tab: ${quantiles(orders)}`;
  console.log(summary);
  await testInfo.attach('frame-costs', { body: summary, contentType: 'text/plain' });
  expect(results.length).toBeGreaterThan(0);
  expect(orders.length).toBeGreaterThan(0);
  // The long tables draw a window of rows, not all of them.
  const drawn = await page.getByTestId('order').count();
  expect(drawn, 'orders drawn of the 600').toBeLessThan(ORDERS);
}

test('the chart is interactive soon after navigation with the CPU throttled 4× (printed)', async ({ browser, request }, testInfo) => {
  const bearer = await token(request, 'dr.chen');
  const res = await request.get('/fhir/R4/Patient?_count=1&_sort=_id', { headers: authHeaders(bearer) });
  const patient = ((await res.json()) as { entry: { resource: { id: string } }[] }).entry[0].resource.id;
  const context = await browser.newContext();
  // When hydration marks the body, and when the connection indicator first says Live, in ms
  // since navigation start, recorded by the page itself so that the test's own latency is not counted.
  await context.addInitScript(() => {
    const marks = ((window as unknown as { __MARKS__: Record<string, number> }).__MARKS__ = {});
    new MutationObserver(() => {
      if (!marks.hydrated && document.body?.dataset.hydrated === 'true') marks.hydrated = performance.now();
      if (!marks.live && document.querySelector('[data-testid="connection-status"]')?.textContent === 'Live') marks.live = performance.now();
    }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  });
  const page = await context.newPage();
  await signIn(page, 'dr.chen');
  const cdp = await context.newCDPSession(page);
  const lines: string[] = [];
  for (const rate of [1, 4]) {
    await cdp.send('Emulation.setCPUThrottlingRate', { rate });
    const samples: { hydrated: number; live: number }[] = [];
    for (let i = 0; i < 3; i++) {
      await openChart(page, patient, 'review');
      const marks = await page.evaluate(() => (window as unknown as { __MARKS__: Record<string, number> }).__MARKS__);
      expect(marks.hydrated, 'hydration was seen').toBeGreaterThan(0);
      samples.push({ hydrated: marks.hydrated, live: marks.live ?? Number.NaN });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(0);
    lines.push(`CPU ×${rate}: hydrated ${median(samples.map((s) => s.hydrated))} ms, live ${median(samples.map((s) => s.live))} ms after navigation start (median of ${samples.length}, warm cache)`);
  }
  const summary = `chart ${patient}: ${lines.join('; ')}`;
  console.log(summary);
  await testInfo.attach('interactive', { body: summary, contentType: 'text/plain' });
  await context.close();
});
