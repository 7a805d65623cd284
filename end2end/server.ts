// Starts and stops the one Rounds server that a test run uses.
// Used by global-setup.ts and global-teardown.ts, both of which run in the Playwright runner process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(E2E_DIR, '..');
export const RUN_DIR = path.join(E2E_DIR, '.run');
export const SERVER_LOG = path.join(E2E_DIR, 'test-results', 'server.log');
const STATE_FILE = path.join(RUN_DIR, 'server.json');

/** The environment variable that carries the base URL from global setup to the workers (they inherit it). */
export const BASE_URL_ENV = 'ROUNDS_BASE_URL';

const LISTEN_TIMEOUT_MS = 120_000;
const HEALTH_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const LISTENING_RE = /Rounds listening on (http:\/\/127\.0\.0\.1:\d+)/;
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;]*m/g;

interface RunningServer {
  child: ChildProcess;
  url: string;
  tmpDir: string;
  log: WriteStream;
  exited: Promise<void>;
}

interface ServerState {
  pid: number;
  url: string;
  tmpDir: string;
  bin: string;
}

// The runner process loads setup and teardown as separate modules: share the handle through globalThis.
const HANDLE = Symbol.for('rounds.e2e.server');
type GlobalWithHandle = typeof globalThis & { [HANDLE]?: RunningServer };

export function serverBinary(): string {
  return process.env.ROUNDS_BIN ?? path.join(REPO_ROOT, 'target', 'release', 'rounds');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Start the server, wait until it listens and /health answers, and return its base URL. */
export async function startServer(): Promise<string> {
  const bin = serverBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `Rounds server binary not found at ${bin}. Build it first (cargo leptos build --release) or set ROUNDS_BIN.`,
    );
  }
  const siteRoot = path.join(REPO_ROOT, 'target', 'site');
  mkdirSync(path.dirname(SERVER_LOG), { recursive: true });
  mkdirSync(RUN_DIR, { recursive: true });
  const tmpDir = mkdtempSync(path.join(tmpdir(), 'rounds-e2e-'));
  const log = createWriteStream(SERVER_LOG, { flags: 'w' });
  log.write(`# ${new Date().toISOString()} starting ${bin}\n# cwd=${REPO_ROOT} db=${tmpDir}/rounds.db site=${siteRoot}\n`);

  const child = spawn(bin, [], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      ROUNDS_LISTEN: '127.0.0.1:0',
      ROUNDS_DATABASE_URL: `sqlite://${tmpDir}/rounds.db`,
      ROUNDS_SEED_DEMO: 'true',
      ROUNDS_SITE_ROOT: siteRoot,
      RUST_LOG: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // Everything the server prints goes to server.log for the whole run (the pipes must keep draining),
  // and the first 64 KiB are kept in memory for error messages.
  let captured = '';
  const capture = (chunk: Buffer) => {
    log.write(chunk);
    if (captured.length < 65_536) captured += chunk.toString('utf8');
  };
  child.stderr!.on('data', capture);

  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    // 'close' comes after the output pipes are drained, so nothing the server printed is missed.
    child.on('close', (code, signal) => {
      exitInfo ??= signal ? `signal ${signal}` : `code ${code}`;
      log.write(`# server exited with ${exitInfo}\n`);
      resolve();
    });
    child.on('error', (err) => {
      exitInfo ??= `spawn error: ${err.message}`;
      log.write(`# ${exitInfo}\n`);
      resolve();
    });
  });

  const running: RunningServer = { child, url: '', tmpDir, log, exited };
  (globalThis as GlobalWithHandle)[HANDLE] = running;
  // Last resort if the runner dies without running global teardown: never leave the server behind.
  process.once('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const failure = async (what: string): Promise<never> => {
    await stopServer();
    throw new Error(
      `Rounds server ${what}.\n--- server output (also in ${SERVER_LOG}) ---\n${captured.replace(ANSI_RE, '')}--- end ---`,
    );
  };

  // 1. Wait for "Rounds listening on http://127.0.0.1:PORT" on stdout.
  const url = await new Promise<string | undefined>((resolve) => {
    let pending = '';
    const timer = setTimeout(() => resolve(undefined), LISTEN_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      capture(chunk);
      if (running.url) return;
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = LISTENING_RE.exec(line.replace(ANSI_RE, ''));
        if (m) {
          running.url = m[1];
          clearTimeout(timer);
          resolve(m[1]);
          return;
        }
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  if (!url) {
    return failure(
      exitInfo
        ? `exited (${exitInfo}) before printing "Rounds listening on http://127.0.0.1:PORT"`
        : `did not print "Rounds listening on http://127.0.0.1:PORT" within ${LISTEN_TIMEOUT_MS / 1000} s`,
    );
  }

  // 2. Poll GET /health until it answers 200 {"status":"ok"}.
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = 'no answer yet';
  for (;;) {
    if (exitInfo) return failure(`exited (${exitInfo}) while waiting for ${url}/health`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
      const body = await res.text();
      last = `${res.status} ${body.slice(0, 200)}`;
      if (res.status === 200 && (JSON.parse(body) as { status?: unknown }).status === 'ok') break;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) {
      return failure(`listened on ${url} but GET /health did not answer 200 {"status":"ok"} within ${HEALTH_TIMEOUT_MS / 1000} s (last: ${last})`);
    }
    await sleep(200);
  }

  log.write(`# healthy at ${url}\n`);
  const state: ServerState = { pid: child.pid!, url, tmpDir, bin };
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2) + '\n');
  writeFileSync(path.join(RUN_DIR, 'base-url'), url + '\n');
  return url;
}

/** SIGTERM the server, wait for it to exit (SIGKILL after 15 s), and delete its temp dir. */
export async function stopServer(): Promise<void> {
  const g = globalThis as GlobalWithHandle;
  const running = g[HANDLE];
  if (running) {
    delete g[HANDLE];
    const { child } = running;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([running.exited.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
      if (!stopped) {
        running.log.write(`# server did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM: SIGKILL\n`);
        child.kill('SIGKILL');
        await running.exited;
      }
    }
    await new Promise<void>((resolve) => running.log.end(resolve));
    rmSync(running.tmpDir, { recursive: true, force: true });
  } else if (existsSync(STATE_FILE)) {
    // Not started by this process (should not happen): stop it only if the pid is still that binary.
    const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as ServerState;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${state.pid}/cmdline`, 'utf8').split('\0')[0];
    } catch {
      // already gone
    }
    if (cmd === state.bin) {
      process.kill(state.pid, 'SIGTERM');
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (existsSync(`/proc/${state.pid}`) && Date.now() < deadline) await sleep(100);
    }
    rmSync(state.tmpDir, { recursive: true, force: true });
  }
  rmSync(STATE_FILE, { force: true });
  rmSync(path.join(RUN_DIR, 'base-url'), { force: true });
}

/** A server a test starts for itself (to restart it, or to run it with other settings). */
export interface OwnServer {
  child: ChildProcess;
  url: string;
}

/**
 * Starts a server of the test's own on `listen` with its database in `dbDir`, its output appended to
 * test-results/`logName`, and `env` on top of the usual settings (e.g. ROUNDS_ACCESS_TOKEN_SECS).
 */
export async function launchServer(dbDir: string, listen: string, logName: string, env: Record<string, string> = {}): Promise<OwnServer> {
  const log = createWriteStream(path.join(E2E_DIR, 'test-results', logName), { flags: 'a' });
  const child = spawn(serverBinary(), [], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      ROUNDS_LISTEN: listen,
      ROUNDS_DATABASE_URL: `sqlite://${dbDir}/rounds.db`,
      ROUNDS_SEED_DEMO: 'true',
      ROUNDS_SITE_ROOT: path.join(REPO_ROOT, 'target', 'site'),
      RUST_LOG: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.pipe(log);
  const url = await new Promise<string>((resolve, reject) => {
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      pending += chunk.toString('utf8');
      const m = LISTENING_RE.exec(pending.replace(ANSI_RE, ''));
      if (m) resolve(m[1]);
    });
    child.on('exit', (code, signal) => reject(new Error(`server exited (${code ?? signal}) before listening; see ${logName}`)));
  });
  return { child, url };
}

/** Kills a server of the test's own (SIGKILL: a crash) and waits until it is gone. */
export async function killServer(server: OwnServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGKILL');
  await exited;
}
