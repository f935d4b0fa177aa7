// Real Prometheus tools for tests: promtool to lint a scrape, a prometheus server to scrape the
// admin port. Both come from Debian's `prometheus` package; CI installs it.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanEnv, run, type RunResult } from './child.js';

export { cleanEnv };

/** Absolute path of an executable on PATH; throws a message that says how to install it. */
export function requireBinary(name: 'promtool' | 'prometheus'): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${name} not found on PATH: install Debian's 'prometheus' package (apt-get install -y prometheus); CI does this in .ci/run`);
}

/** Runs `promtool check metrics` on a scrape body (stdin); bounded by timeoutMs. */
export function promtoolCheckMetrics(body: string, timeoutMs = 10_000): Promise<RunResult> {
  return run(requireBinary('promtool'), ['check', 'metrics'], { input: body, timeoutMs });
}

/**
 * prom-client's default metrics that promtool lints but parses: gauges whose names end in `_total`,
 * a suffix promtool keeps for counters. Our own metrics have no known lint.
 */
export const KNOWN_PROMTOOL_LINTS: readonly string[] = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** What `promtool check metrics` said about a scrape, with the known lints set apart from the rest. */
export interface PromtoolLint {
  /** promtool's exit code: 0 clean, 3 lint problems only, 1 the scrape does not parse. */
  readonly code: number;
  /** Output lines about the KNOWN_PROMTOOL_LINTS metrics. */
  readonly known: readonly string[];
  /** Every other output line: each one is a finding. */
  readonly problems: readonly string[];
}

/** Runs `promtool check metrics` on a scrape and splits its output into known lints and problems. */
export async function promtoolLint(body: string): Promise<PromtoolLint> {
  const result = await promtoolCheckMetrics(body);
  const lines = `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => l.trim() !== '');
  const isKnown = (line: string): boolean => KNOWN_PROMTOOL_LINTS.some((name) => line.startsWith(`${name} `));
  return { code: result.code ?? -1, known: lines.filter(isKnown), problems: lines.filter((l) => !isKnown(l)) };
}

/** A loopback TCP port that was free a moment ago (for programs that cannot listen on port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningPrometheus {
  /** Base URL of its HTTP API, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** The last few KB of its log, for failure messages. */
  log(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes its data directory. */
  stop(): Promise<void>;
}

/** Starts prometheus on loopback scraping the targets (host:port) every second, with storage in a temp dir. */
export async function startPrometheus(target: string | readonly string[]): Promise<RunningPrometheus> {
  const targets = typeof target === 'string' ? [target] : target;
  const bin = requireBinary('prometheus');
  const dir = await mkdtemp(path.join(tmpdir(), 'mde-prom-'));
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: mde-partner-proxy',
    '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const child: ChildProcess = spawn(
    bin,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      '--log.level=warn',
    ],
    { env: cleanEnv(), cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const keep = (d: Buffer): void => {
    log = (log + d.toString()).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // 'error' without 'exit' when the spawn itself fails; either way the process is gone.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      keep(Buffer.from(`spawn error: ${err.message}\n`));
      resolve();
    });
  });

  return {
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
