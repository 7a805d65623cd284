// The worklist is live: the browser holds a WebSocket to /ws, and a write anywhere shows up on the
// patient's row without a reload.
import { authHeaders, expect, signIn, test, token } from './helpers';

function order(patient: string): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    code: { coding: [{ system: 'http://loinc.org', code: '58410-2', display: 'CBC panel' }] },
    subject: { reference: `Patient/${patient}` },
  };
}

test('the worklist goes live and badges the patient an order arrives for', async ({ page, request }) => {
  await signIn(page, 'nurse.patel');
  await expect(page.getByTestId('connection-status')).toHaveText('Live');

  const row = page.getByTestId('patient-row').nth(1);
  const patient = await row.getAttribute('data-patient-id');
  expect(patient).toBeTruthy();
  const admin = await token(request, 'admin');
  for (const expected of ['1 new', '2 new']) {
    const res = await request.post('/fhir/R4/ServiceRequest', {
      headers: { ...authHeaders(admin), 'Content-Type': 'application/fhir+json' },
      data: JSON.stringify(order(patient ?? '')),
    });
    expect(res.status()).toBe(201);
    await expect(row.getByTestId('live-badge')).toHaveText(expected);
  }
  // Only that patient's row changed.
  await expect(page.getByTestId('live-badge')).toHaveCount(1);
});
