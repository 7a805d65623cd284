// Starts ONE Rounds server for the whole run (see server.ts) and hands its URL to the workers.
//
// Playwright loads playwright.config.ts in the runner before this runs, then starts the worker
// processes after it: they inherit the runner's environment and evaluate the config again, so
// `use.baseURL: process.env.ROUNDS_BASE_URL` in the config picks up the URL set here.
import type { FullConfig } from '@playwright/test';
import { BASE_URL_ENV, startServer } from './server';

export default async function globalSetup(_config: FullConfig): Promise<void> {
  const preset = process.env[BASE_URL_ENV];
  if (preset) {
    // Debugging aid: run the suite against a server you started yourself.
    console.log(`[rounds e2e] using the running server at ${preset} (${BASE_URL_ENV} was set)`);
    return;
  }
  const url = await startServer();
  process.env[BASE_URL_ENV] = url;
  console.log(`[rounds e2e] server ready at ${url} (log: end2end/test-results/server.log)`);
}
