// The proxy as users run it, for the report tests: the bundled CLI (`node <bundle>/cli.js start`)
// as a child process with a clean environment, a config file in its own temp dir, ports picked by
// the OS and read back from the proxy's `ready` log line. The bundle is built into a directory of
// its own (dist-<name>/ beside dist/), so suites that rebuild dist/ never pull it away from under
// a running proxy.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { cleanEnv, run, type RunResult } from './child.js';
import { testPki } from './pki.js';
import { TEST_HOSTS } from './proxy.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const built = new Map<string, Promise<string>>();

/** Bundles src/cli.ts (as scripts/build.mjs does) into dist-<name>/ once per process; returns the cli.js path. */
export function buildCli(name: string): Promise<string> {
  const existing = built.get(name);
  if (existing !== undefined) return existing;
  const promise = (async () => {
    const { build } = await import('esbuild');
    const outdir = join(ROOT, `dist-${name}`);
    await build({
      absWorkingDir: ROOT, entryPoints: ['src/cli.ts'], outdir, bundle: true, splitting: true, chunkNames: 'chunks/[name]-[hash]',
      platform: 'node', format: 'esm', target: 'node20.19', logLevel: 'error',
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    });
    const cli = join(outdir, 'cli.js');
    if (!existsSync(cli)) throw new Error(`esbuild wrote no ${cli}`);
    return cli;
  })();
  built.set(name, promise);
  return promise;
}

/** Runs the bundled CLI once (report, config check …) with a clean environment. */
export function runCli(cli: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return run(process.execPath, [cli, ...args], { timeoutMs });
}

export interface CliProxy {
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly configFile: string;
  readonly stateDir: string;
  /** The interception CA (PEM) the proxy created in its state directory. */
  readonly caPem: string;
  readonly child: ChildProcess;
  /** Everything it printed, for failure messages. */
  output(): string;
  /** SIGTERM (the proxy drains and flushes its usage store), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Writes a config that maps the test hosts to originPort and has doc's keys on top; returns its path. */
export async function writeTestConfig(originPort: number, doc: Record<string, unknown> = {}): Promise<{ file: string; stateDir: string }> {
  const pki = await testPki();
  const dir = mkdtempSync(join(tmpdir(), 'mpp-report-'));
  const stateDir = join(dir, 'state');
  const resolve: Record<string, string> = {};
  for (const h of TEST_HOSTS) resolve[`${h}:443`] = `127.0.0.1:${originPort}`;
  const config = {
    version: 1,
    listen: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    stateDir,
    products: [{ id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' }],
    log: { level: 'info' },
    upstream: { ca: pki.msRootFile, resolve },
    ...doc,
  };
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  return { file, stateDir };
}

/** Starts `cli start --config file` and resolves once its ready line names both listeners. */
export async function startCliProxy(cli: string, configFile: string, stateDir: string, timeoutMs = 20_000): Promise<CliProxy> {
  const child = spawn(process.execPath, [cli, 'start', '--config', configFile], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let buffered = '';
  const ready = new Promise<{ listen: string; admin: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy not ready within ${timeoutMs} ms:\n${output.slice(-4000)}`)), timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const j = JSON.parse(line) as { event?: string; listen?: string; admin?: string };
          if (j.event === 'ready' && j.listen !== undefined && j.admin !== undefined) {
            clearTimeout(timer);
            resolve({ listen: j.listen, admin: j.admin });
          }
        } catch {
          // not a JSON log line
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`proxy exited (${code ?? signal}) before it was ready:\n${output.slice(-4000)}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const addrs = await ready;
  const { readFileSync } = await import('node:fs');
  return {
    proxyUrl: `http://${addrs.listen}`,
    adminUrl: `http://${addrs.admin}`,
    configFile,
    stateDir,
    caPem: readFileSync(join(stateDir, 'ca.pem'), 'utf8'),
    child,
    output: () => output,
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
