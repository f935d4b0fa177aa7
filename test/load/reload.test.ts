// Reloads and memory: a SIGHUP that changes nothing about the outbound side reuses it (trust
// store, pools, TLS sessions), so 100 reloads leave the process's RSS where it was.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';
import { buildCli, runBounded, sleep, startCli, writeConfig, type RunningProxy } from '../helpers/cli-process.js';

let origin: Origin;
let p: RunningProxy;

beforeAll(async () => {
  buildCli();
  const pki = await testPki();
  origin = await startOrigin(pki.msIssuer);
  const dir = mkdtempSync(join(tmpdir(), 'mpp-load-reload-'));
  const config = writeConfig(join(dir, 'config.yaml'), { originPort: origin.port, msRootFile: pki.msRootFile });
  p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', 'off']);
}, 60_000);
afterAll(async () => {
  p?.child.kill('SIGKILL');
  await origin?.close();
});

/** n intercepted requests, 4 at a time; returns how many were not 200. */
async function traffic(n: number): Promise<number> {
  const dispatcher = new ProxyAgent({ uri: p.proxyUrl, requestTls: { ca: readFileSync(p.caFile, 'utf8') } });
  let failed = 0;
  try {
    for (let i = 0; i < n; i += 4) {
      await Promise.all([0, 1, 2, 3].map(async () => {
        const res = await request('https://api.security.microsoft.com/api/machines', { dispatcher });
        await res.body.dump();
        if (res.statusCode !== 200) failed++;
      }));
    }
  } finally {
    await dispatcher.close();
  }
  return failed;
}

it('keeps RSS within 20% over 100 reloads', async () => {
  expect(await traffic(40)).toBe(0);
  for (let i = 0; i < 10; i++) await p.reload();
  expect(await traffic(40)).toBe(0);
  await sleep(500);
  const before = p.rss();
  for (let i = 0; i < 100; i++) expect(await p.reload()).toMatchObject({ result: 'success' });
  expect(await traffic(40)).toBe(0);
  await sleep(500);
  const after = p.rss();
  process.stdout.write(`RSS after warm-up ${(before / 2 ** 20).toFixed(1)} MiB, after 100 reloads ${(after / 2 ** 20).toFixed(1)} MiB\n`);
  expect(after).toBeLessThan(before * 1.2);
}, 60_000);

/**
 * At least n intercepted requests, 8 at a time, while a reload runs every ~300 ms, and on until at
 * least minReloads reloads happened during the traffic (a fast machine answers 2,000 requests in
 * fewer reloads); bounded by maxRequests. The statuses and the reload count.
 */
async function underReloads(dispatcher: ProxyAgent, n: number, minReloads = 0, maxRequests = 20_000): Promise<{ statuses: number[]; reloads: number }> {
  let done = false;
  let reloads = 0;
  const storm = (async () => {
    while (!done) {
      await p.reload();
      reloads++;
      await sleep(100);
    }
  })();
  const statuses: number[] = [];
  try {
    while (statuses.length < maxRequests && (statuses.length < n || reloads < minReloads)) {
      const offset = statuses.length;
      statuses.push(...await runBounded(Math.min(500, n), 8, async (i) => {
        const res = await request(`https://api.security.microsoft.com/api/machines?i=${offset + i}`, { dispatcher });
        await res.body.dump();
        return res.statusCode;
      }));
    }
  } finally {
    done = true;
  }
  await storm;
  return { statuses, reloads };
}

it('serves 2,000 requests with 0 failures through a reload every 300 ms, RSS within 20%', async () => {
  const dispatcher = new ProxyAgent({ uri: p.proxyUrl, requestTls: { ca: readFileSync(p.caFile, 'utf8') } });
  try {
    // Warm-up under the same load and reloads, so the heap has grown to its working size first.
    // (Measured: the heap keeps growing for the first few thousand requests, with or without reloads.)
    expect((await underReloads(dispatcher, 2500, 5)).statuses.filter((s) => s !== 200)).toEqual([]);
    await sleep(500);
    const before = p.rss();
    const { statuses, reloads } = await underReloads(dispatcher, 2000, 5);
    await sleep(500);
    const after = p.rss();
    process.stdout.write(`reload storm: ${reloads} reloads during ${statuses.length} requests; RSS ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB\n`);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(reloads).toBeGreaterThanOrEqual(5);
    expect(after).toBeLessThan(before * 1.2);
  } finally {
    await dispatcher.close();
  }
}, 60_000);
