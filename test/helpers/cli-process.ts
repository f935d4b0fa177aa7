// The proxy as users run it: `node dist/cli.js start …` as a child process with a clean
// environment, for tests that need signals, a real process's memory or a SIGKILL.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from './child.js';
import { startOrigin, type Origin } from './origin.js';
import { testPki } from './pki.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist', 'cli.js');

/** Builds dist/cli.js (the bundle `npm start` runs) unless it is already there and newer than src. */
export function buildCli(): void {
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(CLI)) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a value other than undefined; throws with describe() after ms. */
export async function until<T>(fn: () => T | undefined | Promise<T | undefined>, describe: () => string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${describe()}`);
    await sleep(25);
  }
}

/** The JSON log lines (pino) in a process's stdout. */
export function logLines(stdout: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

export interface RunningProxy {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly port: number;
  readonly proxyUrl: string;
  readonly adminUrl: string | undefined;
  readonly caFile: string;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  /** Sends SIGHUP and resolves once one more reload line was logged. */
  reload(): Promise<Record<string, unknown>>;
}

/** Starts `cli start …` and resolves once its 'ready' log line is out. */
export async function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, opts: { cli?: string; nodeFlags?: readonly string[]; cwd?: string } = {}): Promise<RunningProxy> {
  const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), opts.cli ?? CLI, 'start', ...args], {
    env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exited = false;
  void exit.then(() => (exited = true));
  const describe = (): string => `the proxy to start; exited=${exited}\nstdout:\n${out.slice(-4000)}\nstderr:\n${err.slice(-4000)}`;
  const ready = await until(() => (exited ? null : logLines(out).find((l) => l['event'] === 'ready')), describe, 30_000);
  if (ready === null) throw new Error(describe());
  const listen = String(ready['listen']);
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  const reloads = (): Record<string, unknown>[] => logLines(out).filter((l) => l['event'] === 'config-reload' && l['result'] !== undefined);
  return {
    child, exit, port,
    stdout: () => out,
    stderr: () => err,
    proxyUrl: `http://127.0.0.1:${port}`,
    adminUrl: ready['admin'] === 'off' ? undefined : `http://${String(ready['admin'])}`,
    caFile: String(ready['ca']),
    rss() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
    },
    async reload() {
      const n = reloads().length;
      child.kill('SIGHUP');
      return until(() => reloads()[n], () => `reload ${n + 1}\n${out.slice(-2000)}`);
    },
  };
}

/** Writes a config file that maps the Microsoft API hosts to a local origin; extra YAML lines are appended. */
export function writeConfig(file: string, opts: { originPort: number; msRootFile: string; extra?: string }): string {
  writeFileSync(file, [
    'version: 1',
    'log:',
    '  level: info',
    'products:',
    '  - id: cognito',
    '    company: Contoso',
    '    product: ContosoCognito',
    '    version: 1.0.0',
    'upstream:',
    `  ca: ${opts.msRootFile}`,
    '  resolve:',
    `    "api.security.microsoft.com:443": "127.0.0.1:${opts.originPort}"`,
    `    "graph.microsoft.com:443": "127.0.0.1:${opts.originPort}"`,
    opts.extra ?? '',
  ].join('\n'));
  return file;
}

/** Runs task(i) for i in [0, n) with at most `concurrency` at once; resolves with every result. */
export async function runBounded<T>(n: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return results;
}

/**
 * The set-up of the tests that run the CLI against the TLS echo origin (writeConfig's Microsoft
 * hosts): registers beforeAll (build dist/, start the origin) and afterAll (close it); the fields
 * are read inside tests.
 */
export function useCliOrigin(): { readonly origin: Origin; readonly msRootFile: string } {
  const set: { origin?: Origin; msRootFile?: string } = {};
  beforeAll(async () => {
    buildCli();
    const pki = await testPki();
    set.msRootFile = pki.msRootFile;
    set.origin = await startOrigin(pki.msIssuer);
  }, 60_000);
  afterAll(async () => {
    await set.origin?.close();
  });
  return {
    get origin() {
      return set.origin!;
    },
    get msRootFile() {
      return set.msRootFile!;
    },
  };
}
