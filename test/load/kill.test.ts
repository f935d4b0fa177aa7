// SIGKILL, for real: a first start killed at arbitrary moments while it creates the CA must still
// start next time, and a proxy killed under load restarts with the same CA and serves.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { cleanEnv } from '../helpers/child.js';
import { CLI, useCliOrigin, sleep, startCli, writeConfig } from '../helpers/cli-process.js';

const env = useCliOrigin();

/** Runs `ca init` and SIGKILLs it after delayMs (or lets it finish first); resolves when it is gone. */
function caInitKilledAfter(stateDir: string, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'ca', 'init', '--state-dir', stateDir], { env: cleanEnv(), stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

it('starts after first starts SIGKILLed at 8 moments spread over the second half of CA creation', async () => {
  // Calibrate: how long one complete `ca init` takes here, then kill at fractions of it.
  const t0 = Date.now();
  await caInitKilledAfter(mkdtempSync(join(tmpdir(), 'mpp-kill-cal-')), 60_000);
  const full = Date.now() - t0;
  let killedMidway = 0;
  // Node's start-up and key generation take the first half; the files are written at the end.
  for (let i = 0; i < 8; i++) {
    const stateDir = join(mkdtempSync(join(tmpdir(), 'mpp-kill-ca-')), 'state');
    await caInitKilledAfter(stateDir, Math.floor(full * (0.5 + (0.5 * (i + 1)) / 8)));
    const left = existsSync(stateDir) ? readdirSync(stateDir) : [];
    if (left.length > 0 && !(left.includes('ca.pem') && left.includes('ca-key.pem') && left.length === 2)) killedMidway++;
    const dir = mkdtempSync(join(tmpdir(), 'mpp-kill-cfg-'));
    const config = writeConfig(join(dir, 'config.yaml'), { originPort: env.origin.port, msRootFile: env.msRootFile });
    const p = await startCli(['--config', config, '--state-dir', stateDir, '--listen', '127.0.0.1:0', '--admin', 'off']);
    try {
      expect(readdirSync(stateDir).filter((f) => f.endsWith('.tmp') || f.startsWith('ca.new.'))).toEqual([]);
      expect(readFileSync(join(stateDir, 'ca.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    } finally {
      p.child.kill('SIGKILL');
      await p.exit;
    }
  }
  process.stdout.write(`ca init takes ${full} ms; ${killedMidway} of 8 kills left a partial state directory\n`);
}, 60_000);

it('restarts with the same CA after SIGKILL under load, and serves', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpp-kill-load-'));
  const stateDir = join(dir, 'state');
  const config = writeConfig(join(dir, 'config.yaml'), { originPort: env.origin.port, msRootFile: env.msRootFile });
  const args = ['--config', config, '--state-dir', stateDir, '--listen', '127.0.0.1:0', '--admin', 'off'];
  const first = await startCli(args);
  const caPem = readFileSync(first.caFile, 'utf8');
  const dispatcher = new ProxyAgent({ uri: first.proxyUrl, requestTls: { ca: caPem } });
  // Requests in flight while the process dies: they fail, the next process must not care.
  const load = Array.from({ length: 32 }, () => request('https://api.security.microsoft.com/slow/200', { dispatcher }).then((r) => r.body.dump(), () => undefined));
  await sleep(50);
  first.child.kill('SIGKILL');
  await first.exit;
  await Promise.all(load);
  await dispatcher.close();

  const second = await startCli(args);
  try {
    expect(readFileSync(second.caFile, 'utf8')).toBe(caPem);
    const again = new ProxyAgent({ uri: second.proxyUrl, requestTls: { ca: caPem } });
    try {
      const res = await request('https://api.security.microsoft.com/api/machines', { dispatcher: again });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    } finally {
      await again.close();
    }
  } finally {
    second.child.kill('SIGKILL');
  }
}, 60_000);
