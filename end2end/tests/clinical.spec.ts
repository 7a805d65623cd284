// The clinical UI with two or three users at once, each in their own browser context: orders,
// critical results, the pharmacy queue, access, optimistic writes and conflicts, all live.
import AxeBuilder from '@axe-core/playwright';
import type { APIRequestContext, Browser, Page, TestInfo } from '@playwright/test';
import { authHeaders, expect, openChart, signIn, test, token } from './helpers';

const FHIR_JSON = 'application/fhir+json';

/** The ids of the patients `username` may see, through the FHIR API. */
async function visiblePatients(request: APIRequestContext, username: string): Promise<string[]> {
  const bearer = await token(request, username);
  const res = await request.get('/fhir/R4/Patient?_count=1000&_elements=id', { headers: authHeaders(bearer) });
  expect(res.status()).toBe(200);
  const bundle = (await res.json()) as { entry?: { resource: { id: string } }[] };
  return (bundle.entry ?? []).map((e) => e.resource.id).sort();
}

/** A patient both users see, and (if `outsider` is given) that the outsider does not. */
async function sharedPatient(request: APIRequestContext, a: string, b: string, outsider?: string, skip: string[] = []): Promise<string> {
  const seenByA = await visiblePatients(request, a);
  const seenByB = new Set(await visiblePatients(request, b));
  const hidden = new Set(outsider ? await visiblePatients(request, outsider) : []);
  const shared = seenByA.filter((id) => seenByB.has(id) && !hidden.has(id) && !skip.includes(id));
  expect(shared.length, `a patient ${a} and ${b} both see`).toBeGreaterThan(0);
  return shared[0];
}

async function userPage(browser: Browser, username: string): Promise<{ page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, username);
  return { page };
}

async function shot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  await testInfo.attach(name, { body: await page.screenshot({ fullPage: true }), contentType: 'image/png' });
}

/** No serious or critical accessibility violation on the page as it is now. */
async function expectAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(' | ')}`);
  expect(bad, `axe on ${screen}`).toEqual([]);
}

async function post(request: APIRequestContext, bearer: string, resource: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await request.post(`/fhir/R4/${resource.resourceType as string}`, {
    headers: { ...authHeaders(bearer), 'Content-Type': FHIR_JSON },
    data: JSON.stringify(resource),
  });
  expect(res.status(), await res.text()).toBe(201);
  return (await res.json()) as Record<string, unknown>;
}

function criticalPotassium(patient: string, value: number): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '2823-3', display: 'Potassium' }], text: 'K' },
    subject: { reference: `Patient/${patient}`, display: `Patient ${patient}` },
    effectiveDateTime: new Date().toISOString(),
    issued: new Date().toISOString(),
    valueQuantity: { value, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'HH' }] }],
  };
}

test('an order placed by the physician appears in the nurse\'s Orders tab, once, and its cancellation follows', async ({ browser, request }, testInfo) => {
  const patient = await sharedPatient(request, 'dr.chen', 'nurse.patel');
  const doctor = await userPage(browser, 'dr.chen');
  const nurse = await userPage(browser, 'nurse.patel');
  await openChart(doctor.page, patient, 'orders');
  await openChart(nurse.page, patient, 'orders');
  await expectAccessible(doctor.page, 'Orders tab');

  const lipidRows = (page: Page) => page.getByTestId('order').filter({ hasText: 'Lipid panel' });
  const before = await lipidRows(doctor.page).count();
  await doctor.page.getByTestId('order-choice').selectOption('Lipid panel');
  await doctor.page.getByTestId('place-order').click();
  // Confirmed by the server, and shown once although it also came back over the socket.
  await expect(lipidRows(doctor.page)).toHaveCount(before + 1);
  await expect(lipidRows(doctor.page).filter({ hasText: 'sending' })).toHaveCount(0);
  await expect(lipidRows(nurse.page)).toHaveCount(before + 1);
  await shot(nurse.page, testInfo, 'orders-tab (nurse, after the physician ordered)');

  // The nurse may not order: no form, no cancel button.
  await expect(nurse.page.getByTestId('place-order')).toHaveCount(0);
  const newest = lipidRows(doctor.page).filter({ has: doctor.page.getByTestId('cancel-order') }).first();
  const orderId = await newest.getAttribute('data-order-id');
  await newest.getByTestId('cancel-order').click();
  await expect(nurse.page.locator(`[data-testid="order"][data-order-id="${orderId}"] [data-testid="order-status"]`)).toHaveText('revoked');
  await expect(doctor.page.locator(`[data-testid="order"][data-order-id="${orderId}"]`)).toHaveCount(1);
});

test('a critical result reaches Results, the banner and a toast for both, and one acknowledgement clears it for both', async ({ browser, request, consoleErrors }, testInfo) => {
  consoleErrors.allow(/403/, 'the outsider opens a chart she may not see: the server refuses it');
  const patient = await sharedPatient(request, 'dr.chen', 'nurse.patel', 'nurse.garcia');
  const garciaSees = await visiblePatients(request, 'nurse.garcia');
  const doctor = await userPage(browser, 'dr.chen');
  const nurse = await userPage(browser, 'nurse.patel');
  const outsider = await userPage(browser, 'nurse.garcia');
  await openChart(doctor.page, patient, 'results');
  await openChart(nurse.page, patient, 'results');
  await expect(outsider.page.getByTestId('connection-status')).toHaveText('Live');

  const admin = await token(request, 'admin');
  const observation = await post(request, admin, criticalPotassium(patient, 6.9));
  const key = `Observation/${observation.id as string}`;
  for (const { page } of [doctor, nurse]) {
    await expect(page.locator(`[data-testid="result-row"][data-result="${key}"]`)).toContainText('6.9 mmol/L');
    await expect(page.getByTestId('toast').filter({ hasText: '6.9 mmol/L' })).toBeVisible();
    await expect(page.locator(`[data-testid="alert-item"][data-alert="${key}"]`)).toHaveCount(1);
    await expect(page.getByTestId('banner-alert').filter({ hasText: '6.9' })).toBeVisible();
  }
  await shot(doctor.page, testInfo, 'results-tab with a critical value, banner and toast');
  await expectAccessible(doctor.page, 'Results tab');

  // The outsider's barrier: a critical result for a patient she does see, written afterwards. Once
  // it is on her screen, the first one would have been too, had it been sent to her.
  const barrierPatient = garciaSees[0];
  const barrier = await post(request, admin, criticalPotassium(barrierPatient, 7.1));
  await expect(outsider.page.locator(`[data-testid="alert-item"][data-alert="Observation/${barrier.id as string}"]`)).toHaveCount(1);
  await expect(outsider.page.locator(`[data-alert="${key}"]`)).toHaveCount(0);
  await expect(outsider.page.getByTestId('toast').filter({ hasText: '6.9 mmol/L' })).toHaveCount(0);
  await expect(outsider.page.locator(`[data-patient-id="${patient}"]`)).toHaveCount(0);
  // Nor can she open the chart.
  await outsider.page.goto(`/patient/${patient}`);
  await expect(outsider.page.getByTestId('chart-error')).toContainText('no access');
  await expect(outsider.page.getByTestId('chart')).toHaveCount(0);

  // The nurse acknowledges from the Results tab; both screens clear.
  await nurse.page.locator(`[data-testid="result-row"][data-result="${key}"] [data-testid="acknowledge-result"]`).click();
  for (const { page } of [doctor, nurse]) {
    await expect(page.locator(`[data-testid="alert-item"][data-alert="${key}"]`)).toHaveCount(0);
    await expect(page.locator(`[data-testid="result-row"][data-result="${key}"] [data-testid="acknowledged"]`)).toContainText('Acknowledged by Priya Patel RN');
  }
});

test('a prescription moves through the pharmacy queue as the pharmacist acts, and the prescriber\'s chart follows', async ({ browser, request }, testInfo) => {
  const patient = await sharedPatient(request, 'dr.chen', 'dr.chen');
  const doctor = await userPage(browser, 'dr.chen');
  const pharmacist = await userPage(browser, 'pharm.nguyen');
  await openChart(doctor.page, patient, 'orders');
  await pharmacist.page.goto('/pharmacy');
  await pharmacist.page.waitForFunction(() => document.body.dataset.hydrated === 'true');
  await expect(pharmacist.page.getByTestId('connection-status')).toHaveText('Live');
  await expectAccessible(pharmacist.page, 'Pharmacy queue');

  const medicine = 'Ondansetron 4 mg IV';
  const rows = doctor.page.getByTestId('prescription').filter({ hasText: medicine });
  const idsOf = async () => rows.evaluateAll((list) => list.map((r) => r.getAttribute('data-order-id') ?? ''));
  const before = await idsOf();
  await doctor.page.getByTestId('medicine-choice').selectOption(medicine);
  await doctor.page.getByTestId('prescribe').click();
  await expect(rows).toHaveCount(before.length + 1);
  await expect(rows.filter({ hasText: 'sending' })).toHaveCount(0);
  const orderId = (await idsOf()).find((id) => !before.includes(id));
  expect(orderId).toBeTruthy();
  await expect(doctor.page.locator(`[data-testid="prescription"][data-order-id="${orderId}"] [data-testid="pharmacy-stage"]`)).toHaveText('Awaiting verification');
  const inQueue = (list: string) => pharmacist.page.locator(`[data-testid="${list}"] [data-testid="queue-item"][data-order-id="${orderId}"]`);

  await expect(inQueue('to-verify')).toHaveCount(1);
  await shot(pharmacist.page, testInfo, 'pharmacy queue with the new prescription');
  await inQueue('to-verify').getByTestId('verify').click();
  await expect(inQueue('to-verify')).toHaveCount(0);
  await expect(inQueue('to-dispense')).toHaveCount(1);
  const row = doctor.page.locator(`[data-testid="prescription"][data-order-id="${orderId}"]`);
  await expect(row.getByTestId('pharmacy-stage')).toHaveText('Verified by Linh Nguyen PharmD');

  await inQueue('to-dispense').getByTestId('dispense').click();
  await expect(inQueue('to-dispense')).toHaveCount(0);
  await expect(inQueue('dispensed')).toHaveCount(1);
  await expect(row.getByTestId('pharmacy-stage')).toContainText('Dispensed');
});

test('a failed write rolls back visibly', async ({ browser, request, consoleErrors }) => {
  consoleErrors.allow(/ERR_CONNECTION_RESET/, 'the order is dropped on its way to the server on purpose');
  const patient = await sharedPatient(request, 'dr.chen', 'dr.chen');
  const doctor = await userPage(browser, 'dr.chen');
  await openChart(doctor.page, patient, 'orders');
  const ctRows = doctor.page.getByTestId('order').filter({ hasText: 'CT head' });
  const before = await ctRows.count();
  // The network drops the order on its way to the server.
  await doctor.page.route('**/fhir/R4/ServiceRequest', (route) => route.abort('connectionreset'));
  await doctor.page.getByTestId('order-choice').selectOption('CT head');
  await doctor.page.getByTestId('place-order').click();
  await expect(doctor.page.getByTestId('toast').filter({ hasText: 'CT head was not ordered' })).toBeVisible();
  await expect(ctRows).toHaveCount(before);
  // Nothing reached the server either.
  const bearer = await token(request, 'dr.chen');
  const res = await request.get(`/fhir/R4/ServiceRequest?patient=Patient/${patient}&code=30799-1&_summary=count`, { headers: authHeaders(bearer) });
  expect(((await res.json()) as { total: number }).total).toBe(before);
});

test('saving a note over a newer version shows both and lets the author redo the change', async ({ browser, request, consoleErrors }, testInfo) => {
  consoleErrors.allow(/412/, 'saving over the colleague\'s newer version is refused with 412 on purpose');
  const patient = await sharedPatient(request, 'dr.chen', 'nurse.patel');
  const doctor = await userPage(browser, 'dr.chen');
  await openChart(doctor.page, patient, 'notes');
  await expectAccessible(doctor.page, 'Documentation tab');
  const text = `Progress ${Date.now()}: afebrile, eating.`;
  await doctor.page.getByTestId('note-text').fill(text);
  await doctor.page.getByTestId('save-note').click();
  const note = doctor.page.getByTestId('note').filter({ hasText: text });
  await expect(note.getByTestId('note-status')).toHaveText('Draft');
  const noteId = await note.getAttribute('data-note-id');
  await note.getByTestId('edit-note').click();
  await doctor.page.getByTestId('edit-text').fill(`${text} Plan: discharge tomorrow.`);

  // Meanwhile a colleague saves a new version through the API.
  const nurseToken = await token(request, 'nurse.patel');
  const current = (await (await request.get(`/fhir/R4/DocumentReference/${noteId}`, { headers: authHeaders(nurseToken) })).json()) as Record<string, any>;
  current.content[0].attachment.data = Buffer.from(`${text} Nurse: family asks about discharge.`).toString('base64');
  const put = await request.put(`/fhir/R4/DocumentReference/${noteId}`, {
    headers: { ...authHeaders(nurseToken), 'Content-Type': FHIR_JSON, 'If-Match': `W/"${current.meta.versionId}"` },
    data: JSON.stringify(current),
  });
  expect(put.status()).toBe(200);

  await doctor.page.getByTestId('save-edit').click();
  const conflict = doctor.page.getByTestId('conflict');
  await expect(conflict.getByTestId('conflict-theirs')).toContainText('family asks about discharge');
  await expect(conflict.getByTestId('conflict-mine')).toContainText('Plan: discharge tomorrow.');
  await shot(doctor.page, testInfo, 'documentation-tab with a conflict');
  await conflict.getByTestId('redo').click();
  await doctor.page.getByTestId('save-edit').click();
  await expect(doctor.page.locator(`[data-note-id="${noteId}"] [data-testid="note-body"]`)).toContainText('Plan: discharge tomorrow.');
  await doctor.page.locator(`[data-note-id="${noteId}"] [data-testid="sign-note"]`).click();
  await expect(doctor.page.locator(`[data-note-id="${noteId}"] [data-testid="note-status"]`)).toHaveText('Signed');
});

test('every screen is accessible and the first paint carries data', async ({ browser, request }, testInfo) => {
  const patient = await sharedPatient(request, 'dr.chen', 'dr.chen');
  // Server-rendered: the chart's HTML already holds the patient's name, before any script runs.
  const context = await browser.newContext({ javaScriptEnabled: false });
  const raw = await context.newPage();
  await raw.goto('/login');
  await raw.getByLabel('Username').fill('dr.chen');
  await raw.getByLabel('Password').fill('rounds-demo');
  await raw.getByRole('button', { name: 'Sign in' }).click();
  await raw.goto(`/patient/${patient}`);
  await expect(raw.getByTestId('patient-name')).not.toHaveText('');
  await expect(raw.getByTestId('problems')).toBeVisible();
  await context.close();

  const doctor = await userPage(browser, 'dr.chen');
  await expectAccessible(doctor.page, 'Worklist');
  await shot(doctor.page, testInfo, 'worklist');
  await openChart(doctor.page, patient, 'review');
  await expect(doctor.page.getByTestId('vitals')).toBeVisible();
  await expectAccessible(doctor.page, 'Chart Review');
  await shot(doctor.page, testInfo, 'chart-review');
  // Keyboard: the tabs follow the arrow keys.
  await doctor.page.getByTestId('tab-review').focus();
  await doctor.page.keyboard.press('ArrowRight');
  await expect(doctor.page.getByTestId('tab-orders')).toBeFocused();
  await expect(doctor.page.getByTestId('orders')).toBeVisible();
  await doctor.page.keyboard.press('ArrowRight');
  await expect(doctor.page.getByTestId('results')).toBeVisible();
  await expectAccessible(doctor.page, 'Results');
  await shot(doctor.page, testInfo, 'results-tab');
});

test('update frames reach the screen: arrival-to-paint times are recorded', async ({ browser, request }, testInfo) => {
  const patient = await sharedPatient(request, 'dr.chen', 'dr.chen');
  const doctor = await userPage(browser, 'dr.chen');
  await openChart(doctor.page, patient, 'results');
  const admin = await token(request, 'admin');
  const count = 40;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const obs = criticalPotassium(patient, 3.5 + i / 100);
    delete obs.interpretation;
    ids.push((await post(request, admin, obs)).id as string);
  }
  for (const id of ids) {
    await expect(doctor.page.locator(`[data-testid="result-row"][data-result="Observation/${id}"]`)).toHaveCount(1);
  }
  const times = await doctor.page.waitForFunction((n) => {
    const list = (window as unknown as { __ROUNDS_PAINT__?: number[] }).__ROUNDS_PAINT__ ?? [];
    return list.length >= n ? list : null;
  }, count);
  const sorted = ((await times.jsonValue()) as number[]).slice(-count).sort((a, b) => a - b);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1);
  // The browser's own frame rate bounds what can be measured: report it next to the figures.
  const fps = await doctor.page.evaluate(() => new Promise<number>((resolve) => {
    let frames = 0;
    const start = performance.now();
    const tick = () => {
      frames++;
      if (performance.now() - start < 1000) requestAnimationFrame(tick);
      else resolve(frames / ((performance.now() - start) / 1000));
    };
    requestAnimationFrame(tick);
  }));
  const render = ((await doctor.page.evaluate(() => (window as unknown as { __ROUNDS_RENDER__?: number[] }).__ROUNDS_RENDER__ ?? [])) as number[])
    .slice(-count)
    .sort((a, b) => a - b);
  const renderPick = (q: number) => render[Math.min(render.length - 1, Math.floor(q * render.length))].toFixed(1);
  const summary = `arrival-to-paint over ${sorted.length} updates: p50 ${pick(0.5)} ms, p95 ${pick(0.95)} ms, max ${pick(1)} ms; ` +
    `of which applying, rendering and painting a frame: p50 ${renderPick(0.5)} ms, p95 ${renderPick(0.95)} ms (browser at ${fps.toFixed(0)} frames/s)`;
  console.log(summary);
  await testInfo.attach('paint-times', { body: summary, contentType: 'text/plain' });
  expect(sorted.every((t) => t >= 0)).toBe(true);
});

test('an admission to my unit appears on my panel, and the discharge takes it off', async ({ browser, request }) => {
  const nurse = await userPage(browser, 'nurse.patel');
  await expect(nurse.page.getByTestId('connection-status')).toHaveText('Live');
  const admin = await token(request, 'admin');
  const family = `Admitted${Date.now()}`;
  const patient = await post(request, admin, {
    resourceType: 'Patient',
    name: [{ use: 'official', family, given: ['Ada'] }],
    gender: 'female',
    birthDate: '1950-02-03',
    identifier: [{ system: 'http://rounds.example.org/fhir/mrn', value: `MRN-${family}` }],
  });
  const encounter = await post(request, admin, {
    resourceType: 'Encounter',
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    subject: { reference: `Patient/${patient.id as string}` },
    period: { start: new Date().toISOString() },
    location: [{
      location: { reference: 'Location/unit-4w' },
      status: 'active',
      physicalType: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'wa' }] },
    }],
  });
  const row = nurse.page.locator(`[data-testid="patient-row"][data-patient-id="${patient.id as string}"]`);
  await expect(row).toContainText(`${family}, Ada`);
  await expect(row).toContainText('4 West Medical');

  const discharged = { ...encounter, status: 'finished' };
  const put = await request.put(`/fhir/R4/Encounter/${encounter.id as string}`, {
    headers: { ...authHeaders(admin), 'Content-Type': FHIR_JSON, 'If-Match': `W/"${(encounter.meta as { versionId: string }).versionId}"` },
    data: JSON.stringify(discharged),
  });
  expect(put.status()).toBe(200);
  await expect(row).toHaveCount(0);
  // The demo has forty patients; leave it so for the suites that count them.
  for (const path of [`Encounter/${encounter.id as string}`, `Patient/${patient.id as string}`]) {
    const gone = await request.delete(`/fhir/R4/${path}`, { headers: authHeaders(admin) });
    expect(gone.status()).toBe(204);
  }
});
