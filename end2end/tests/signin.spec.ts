import { authHeaders, expect, signIn, test, token } from './helpers';

/** The patient ids a user may see, according to the FHIR API. */
async function visibleIds(request: import('@playwright/test').APIRequestContext, username: string): Promise<string[]> {
  const access = await token(request, username);
  const res = await request.get('/fhir/R4/Patient?_count=1000', { headers: authHeaders(access) });
  expect(res.status()).toBe(200);
  const bundle = await res.json();
  return (bundle.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id).sort();
}

for (const username of ['dr.chen', 'nurse.garcia', 'pharm.nguyen']) {
  test(`${username} sees exactly their own patients`, async ({ page, request }) => {
    const expected = await visibleIds(request, username);
    expect(expected.length).toBeGreaterThan(0);
    await signIn(page, username);
    await expect(page.getByTestId('current-user')).toContainText(/Chen|Garcia|Nguyen/);
    await expect(page.getByTestId('patient-row')).toHaveCount(expected.length);
    const shown = (await page.getByTestId('patient-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient-id') ?? ''))).sort();
    expect(shown).toEqual(expected);
  });
}

test('a nurse never sees a patient of another unit, and sign-out ends the session', async ({ page, request }) => {
  const garcia = await visibleIds(request, 'nurse.garcia');
  const patel = await visibleIds(request, 'nurse.patel');
  const onlyPatel = patel.filter((id) => !garcia.includes(id));
  expect(onlyPatel.length).toBeGreaterThan(0);
  await signIn(page, 'nurse.garcia');
  for (const id of onlyPatel) {
    await expect(page.locator(`[data-patient-id="${id}"]`)).toHaveCount(0);
  }
  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
});

test('a wrong password shows a clear error and stays on the sign-in page', async ({ page, consoleErrors }) => {
  consoleErrors.allow(
    /api\/sign_in.*status of 500|status of 500.*api\/sign_in/,
    'the refused password comes back as the sign-in server function\'s error, which Leptos carries as HTTP 500',
  );
  await page.goto('/login');
  await page.waitForFunction(() => document.body.dataset.hydrated === 'true');
  await page.getByLabel('Username').fill('dr.okafor');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toContainText('wrong username or password');
  await expect(page).toHaveURL(/\/login$/);
});
