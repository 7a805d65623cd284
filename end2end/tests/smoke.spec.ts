import { expect, signIn, test } from './helpers';

const DEMO_UNITS = ['4 West Medical', '5 East Cardiac', 'Medical ICU'];

test('GET /health answers 200 {"status":"ok"}', async ({ request }) => {
  const res = await request.get('/health');
  expect(res.status()).toBe(200);
  expect(await res.json()).toEqual({ status: 'ok' });
});

test('an unknown path answers 404', async ({ request }) => {
  const res = await request.get('/no-such-path');
  expect(res.status()).toBe(404);
});

test('signed-out visitors are sent to the server-rendered sign-in page', async ({ request }) => {
  const res = await request.get('/', { maxRedirects: 0 });
  expect(res.status()).toBe(303);
  expect(res.headers()['location']).toBe('/login');
  const login = await request.get('/login');
  expect(login.status()).toBe(200);
  expect(login.headers()['content-type']).toContain('text/html');
  const html = await login.text();
  expect(html).toContain('Rounds');
  expect(html).toMatch(/data-testid=["']?login-page/);
});

test('the workspace renders on the server, hydrates, and the sidebar and unit filter work', async ({ page, request }) => {
  await signIn(page, 'admin');

  // The first paint already had the data: the HTML of / (with the session cookie) lists patients.
  const cookies = await page.context().cookies();
  const html = await (
    await request.get('/', { headers: { cookie: cookies.map((c) => `${c.name}=${c.value}`).join('; ') } })
  ).text();
  expect(html).toMatch(/data-testid=["']?app-shell/);
  expect(html).toContain('data-testid="patient-row"');

  const toggle = page.getByTestId('sidebar-toggle');
  const sidebar = page.getByTestId('sidebar');
  await expect(toggle).toHaveAttribute('aria-expanded', 'true');
  await expect(sidebar).not.toHaveClass(/(^|\s)collapsed(\s|$)/);
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await expect(sidebar).toHaveClass(/(^|\s)collapsed(\s|$)/);
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-expanded', 'true');

  const units = page.locator('[data-testid="unit-census"] li');
  await expect(units).toHaveCount(3);
  const census = (await units.allInnerTexts()).join('\n');
  for (const unit of DEMO_UNITS) expect(census, `census lists ${unit}`).toContain(unit);

  const rows = page.getByTestId('patient-row');
  await expect(rows).toHaveCount(40);
  await page.getByRole('button', { name: /Medical ICU/ }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Medical ICU');
  const icuCount = await rows.count();
  expect(icuCount).toBeGreaterThan(0);
  expect(icuCount).toBeLessThan(40);
  for (const unit of await page.locator('[data-testid="patient-row"] td:nth-child(4)').allInnerTexts()) {
    expect(unit).toBe('Medical ICU');
  }
  await page.screenshot({ path: test.info().outputPath('workspace.png'), fullPage: true });

});
