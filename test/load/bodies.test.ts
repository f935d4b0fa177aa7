// Big bodies through the intercepted path: a 256 MiB download to a reader that stalls for 3 s
// arrives byte-exact with the proxy's RSS bounded (backpressure, not buffering); a 128 MiB upload
// reaches the origin byte-exact.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ProxyAgent, request } from 'undici';
import { buildCli, sleep, startCli, writeConfig, type RunningProxy } from '../helpers/cli-process.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';

let origin: Origin;
let p: RunningProxy;
let dispatcher: ProxyAgent;
const MiB = 2 ** 20;

beforeAll(async () => {
  buildCli();
  const pki = await testPki();
  origin = await startOrigin(pki.msIssuer);
  const dir = mkdtempSync(join(tmpdir(), 'mpp-bodies-'));
  const config = writeConfig(join(dir, 'config.yaml'), { originPort: origin.port, msRootFile: pki.msRootFile });
  p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', 'off']);
  dispatcher = new ProxyAgent({ uri: p.proxyUrl, requestTls: { ca: readFileSync(p.caFile, 'utf8') } });
}, 60_000);
afterAll(async () => {
  await dispatcher?.close();
  p?.child.kill('SIGKILL');
  await origin?.close();
});

it('relays 256 MiB to a reader that stalls 3 s byte-exact, with RSS growing far less than the body', async () => {
  const size = 256 * MiB;
  const before = p.rss();
  let peak = before;
  const res = await request(`https://api.security.microsoft.com/bytes/${size}`, { dispatcher });
  expect(res.statusCode).toBe(200);
  let got = 0;
  let bad = 0;
  let stalled = false;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    got += chunk.length;
    for (const b of chunk) if (b !== 0x78) bad++;
    if (!stalled && got > 32 * MiB) {
      stalled = true;
      for (let i = 0; i < 6; i++) {
        await sleep(500);
        peak = Math.max(peak, p.rss());
      }
    }
    if ((got & (16 * MiB - 1)) < chunk.length) peak = Math.max(peak, p.rss());
  }
  process.stdout.write(`256 MiB download: RSS ${(before / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB\n`);
  expect(got).toBe(size);
  expect(bad).toBe(0);
  // Without backpressure a 3 s stall would buffer most of the remaining 224 MiB in the proxy.
  expect(peak - before).toBeLessThan(96 * MiB);
}, 60_000);

it('relays a 128 MiB upload byte-exact', async () => {
  const size = 128 * MiB;
  const chunk = Buffer.alloc(MiB);
  const hash = createHash('sha256');
  let sent = 0;
  const body = Readable.from((function* () {
    while (sent < size) {
      chunk.fill(sent / MiB % 251);
      hash.update(chunk);
      sent += chunk.length;
      yield Buffer.from(chunk);
    }
  })());
  const res = await request('https://api.security.microsoft.com/sink', { dispatcher, method: 'POST', body, headers: { 'content-length': String(size) } });
  const echo = (await res.body.json()) as { bytes: number; sha256: string };
  expect(res.statusCode).toBe(200);
  expect(echo).toEqual({ bytes: size, sha256: hash.digest('hex') });
}, 60_000);
