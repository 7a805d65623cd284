// A clinician never sees less after a reload than live: a critical result for a patient whose chart
// holds more than 2,000 results is in the banner, the worklist badge and the Results tab after a reload
// and in a new tab, as it was live. (The session loader used to read the first 1,000 final results the
// user could see and look for criticals among them.) On a server of its own: the 2,100 results would
// slow every later spec.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { APIRequestContext } from '@playwright/test';
import { killServer, launchServer } from '../server';
import { authHeaders, expect, openChart, signIn, test } from './helpers';

const USER = 'dr.chen';
const RESULTS = 2_100;

function potassium(patient: string, value: number, interpretation: string): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '2823-3', display: 'Potassium' }], text: 'K' },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: new Date().toISOString(),
    valueQuantity: { value, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: interpretation }] }],
  };
}

async function bearer(request: APIRequestContext, base: string, username: string): Promise<string> {
  const res = await request.post(`${base}/auth/login`, { data: { username, password: 'rounds-demo' } });
  expect(res.status()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function post(request: APIRequestContext, base: string, bearer: string, resource: Record<string, unknown>): Promise<string> {
  const res = await request.post(`${base}/fhir/R4/Observation`, {
    headers: { ...authHeaders(bearer), 'Content-Type': 'application/fhir+json' },
    data: JSON.stringify(resource),
  });
  expect(res.status(), await res.text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

test('a critical result is still in the banner, the badge and Results after a reload, with more than 2,000 results', async ({ browser, request }) => {
  test.setTimeout(180_000);
  const dbDir = mkdtempSync(path.join(tmpdir(), 'rounds-alerts-'));
  const server = await launchServer(dbDir, '127.0.0.1:0', 'alerts-server.log');
  try {
    const base = server.url;
    const doctor = await bearer(request, base, USER);
    const admin = await bearer(request, base, 'admin');
    const res = await request.get(`${base}/fhir/R4/Patient?_count=1&_sort=_id&_elements=id`, { headers: authHeaders(doctor) });
    const patient = ((await res.json()) as { entry: { resource: { id: string } }[] }).entry[0].resource.id;

    // 2,100 normal results for one patient of the doctor's, 16 at a time.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < RESULTS) {
          next += 1;
          await post(request, base, admin, potassium(patient, 4.1, 'N'));
        }
      }),
    );

    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, USER, 'rounds-demo', base);
    const critical = await post(request, base, admin, potassium(patient, 7.2, 'HH'));
    const key = `Observation/${critical}`;
    const alert = page.locator(`[data-testid="alert-item"][data-alert="${key}"]`);
    const badge = page.locator(`[data-testid="patient-row"][data-patient-id="${patient}"] [data-testid="badge-critical"]`);
    await expect(alert, 'live').toHaveCount(1);
    await expect(badge, 'live').toBeVisible();

    await page.reload();
    await page.waitForFunction(() => document.body.dataset.hydrated === 'true');
    await expect(alert, 'after a reload').toHaveCount(1);
    await expect(badge, 'after a reload').toBeVisible();

    // A new tab, on the chart: the banner, and the result among all 2,101 of them.
    const tab = await context.newPage();
    await openChart(tab, patient, 'results', base);
    await expect(tab.locator(`[data-testid="alert-item"][data-alert="${key}"]`)).toHaveCount(1);
    await expect(tab.getByTestId('banner-alert').filter({ hasText: '7.2' })).toBeVisible();
    await expect(tab.locator(`[data-testid="result-row"][data-result="${key}"]`)).toContainText('7.2 mmol/L');
    await context.close();
  } finally {
    await killServer(server);
  }
});
