// SIGTERM under load: every exchange in flight finishes (0 lost), new connections are refused,
// and the process exits 0.
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { useCliOrigin, sleep, startCli, until, writeConfig } from '../helpers/cli-process.js';

const env = useCliOrigin();

/** Whether a new TCP connection to port is accepted. */
const accepts = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = connect(port, '127.0.0.1', () => {
    s.destroy();
    resolve(true);
  });
  s.once('error', () => resolve(false));
});

it('finishes all 48 in-flight exchanges after SIGTERM, refuses new connections and exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpp-drain-'));
  const config = writeConfig(join(dir, 'config.yaml'), { originPort: env.origin.port, msRootFile: env.msRootFile });
  const p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', 'off']);
  const caPem = readFileSync(p.caFile, 'utf8');
  // Intercepted and plain absolute-form requests, each held 1.5 s by the origin.
  const tunnelled = new ProxyAgent({ uri: p.proxyUrl, requestTls: { ca: caPem } });
  const before = env.origin.received.length;
  const inFlight = Array.from({ length: 48 }, async (_, i) => {
    const res = await request(`https://api.security.microsoft.com/slow/1500?i=${i}`, { dispatcher: tunnelled });
    const body = (await res.body.json()) as { url: string };
    return res.statusCode === 200 && body.url === `/slow/1500?i=${i}`;
  });
  await sleep(700); // all 48 are at the origin, which holds each for 1.5 s
  p.child.kill('SIGTERM');
  await until(async () => ((await accepts(p.port)) ? undefined : true), () => 'the listener to stop accepting');
  const results = await Promise.all(inFlight.map((r) => r.catch(() => false)));
  expect(results.filter((ok) => !ok)).toHaveLength(0);
  expect(env.origin.received.length - before).toBe(48);
  expect(await p.exit).toEqual({ code: 0, signal: null });
  await tunnelled.close();
}, 60_000);
