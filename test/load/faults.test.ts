// Upstream faults under load: resets, hangs, 429s and 503s mixed with good calls, 8 at a time.
// Each gets its exact status and code, and upstream_errors_total counts exactly the faults.
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { buildCli, runBounded, startCli, writeConfig, type RunningProxy } from '../helpers/cli-process.js';
import { testPki } from '../helpers/pki.js';
import { seriesValue } from '../helpers/scrape.js';

let faulty: Server;
let p: RunningProxy;
const hung = new Set<import('node:http').ServerResponse>();

beforeAll(async () => {
  buildCli();
  const pki = await testPki();
  const context = await pki.msIssuer.secureContextFor('api.security.microsoft.com');
  faulty = createServer({ SNICallback: (_name: string, cb: (e: Error | null, c: typeof context) => void) => cb(null, context) } as Parameters<typeof createServer>[0], (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url!.startsWith('/reset')) return void req.socket.destroy();
      if (req.url!.startsWith('/hang')) return void hung.add(res);
      const status = Number(/^\/status\/(\d{3})/.exec(req.url!)?.[1] ?? 200);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': 2 });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => faulty.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'mpp-faults-'));
  const config = writeConfig(join(dir, 'config.yaml'), {
    originPort: (faulty.address() as AddressInfo).port, msRootFile: pki.msRootFile, extra: 'timeouts:\n  upstream: 1000',
  });
  p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
}, 60_000);
afterAll(async () => {
  p?.child.kill('SIGKILL');
  for (const res of hung) res.destroy();
  faulty?.closeAllConnections();
  await new Promise<void>((resolve) => (faulty ? faulty.close(() => resolve()) : resolve()));
});

const KINDS = [
  { path: '/api/machines', status: 200, code: undefined },
  { path: '/reset', status: 502, code: 'UpstreamReset' },
  { path: '/hang', status: 504, code: 'UpstreamTimeout' },
  { path: '/status/429', status: 429, code: undefined },
  { path: '/status/503', status: 503, code: undefined },
] as const;

/** A counter's value from the admin /metrics scrape (0 when absent). */
async function counter(series: string): Promise<number> {
  return seriesValue(await (await request(`${p.adminUrl!}/metrics`)).body.text(), series);
}

it('answers 400 mixed requests with the exact status and code for each fault, and counts exactly the faults', async () => {
  const dispatcher = new ProxyAgent({ uri: p.proxyUrl, requestTls: { ca: readFileSync(p.caFile, 'utf8') } });
  try {
    const results = await runBounded(400, 8, async (i) => {
      const kind = KINDS[i % KINDS.length]!;
      const res = await request(`https://api.security.microsoft.com${kind.path}?i=${i}`, { dispatcher });
      const text = await res.body.text();
      const code = res.statusCode >= 500 && kind.code !== undefined ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined;
      return { kind, status: res.statusCode, code };
    });
    const wrong = results.filter((r) => r.status !== r.kind.status || r.code !== r.kind.code);
    expect(wrong).toEqual([]);
    expect(await counter('mde_partner_proxy_upstream_errors_total{code="UpstreamReset"}')).toBe(80);
    expect(await counter('mde_partner_proxy_upstream_errors_total{code="UpstreamTimeout"}')).toBe(80);
  } finally {
    await dispatcher.close();
  }
}, 60_000);
