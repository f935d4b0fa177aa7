// Start-up truth, from a real process: the banner names the address the listener really binds,
// and a bind beyond loopback with a loopback-only allow-list is called out in one warning line.
// (Binding 0.0.0.0 exposes a port for a moment; access.allowedClients still admits loopback only.)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useCliOrigin, startCli, until, writeConfig } from '../helpers/cli-process.js';

const env = useCliOrigin();

async function banner(listen: string, extra = ''): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mpp-startup-'));
  const config = writeConfig(join(dir, 'config.yaml'), { originPort: env.origin.port, msRootFile: env.msRootFile, extra });
  const p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', listen, '--admin', 'off']);
  try {
    return await until(() => (/listening on/.test(p.stderr()) ? p.stderr() : undefined), () => p.stderr());
  } finally {
    p.child.kill('SIGKILL');
    await p.exit;
  }
}

it('prints the real bind address 0.0.0.0 and one warning line with the fix when only loopback is allowed', async () => {
  const err = await banner('0.0.0.0:0');
  expect(err).toMatch(/listening on http:\/\/0\.0\.0\.0:\d+ /);
  const warnings = err.split('\n').filter((l) => l.startsWith('WARNING:') && l.includes('access.allowedClients'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/proxy 0\.0\.0\.0:\d+ is reachable from other hosts/);
  expect(warnings[0]).toContain('Add the clients\' networks to access.allowedClients');
});

it('does not warn when the allow-list admits other hosts too', async () => {
  const err = await banner('0.0.0.0:0', 'access:\n  allowedClients: [127.0.0.0/8, "::1/128", 192.0.2.0/24]');
  expect(err).toMatch(/listening on http:\/\/0\.0\.0\.0:\d+ /);
  expect(err).not.toMatch(/WARNING:.*access\.allowedClients/);
});

it('does not warn on a loopback listener', async () => {
  const err = await banner('127.0.0.1:0');
  expect(err).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+ /);
  expect(err).not.toMatch(/WARNING:.*access\.allowedClients/);
});
