// limits.maxConnections: a listener past its cap closes new connections at once, counts each in
// connections_refused_total, reports one event per episode, and serves again once one closes.
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { combineObservers, type ConnectionRefusedEvent } from '../../src/events.js';
import { createMetrics } from '../../src/metrics.js';
import { defaultMaxConnections } from '../../src/server.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { testPki } from '../helpers/pki.js';
import { rawExchange, statusOf } from '../helpers/raw.js';
import { seriesValue } from '../helpers/scrape.js';

let origin: Origin;
let proxy: TestProxy;
const registry = new Registry();
const refused: ConnectionRefusedEvent[] = [];

beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
  const metrics = createMetrics({ registry, products: ['cognito'], apiLabels: ['machines', 'other'], version: 'test', collectDefault: false });
  proxy = await startProxy(origin.port, { limits: { maxConnections: 3 } }, { observer: combineObservers(metrics.observer, { connectionRefused: (e) => refused.push(e) }) });
});
afterAll(async () => {
  await proxy.close();
  await origin.close();
});

/** Opens a connection and resolves once it is connected. */
const open = (port: number): Promise<Socket> => new Promise((resolve, reject) => {
  const s = connect(port, '127.0.0.1', () => resolve(s));
  s.once('error', reject);
});

/** Resolves with what a connection received before the proxy closed it (or '' after timeoutMs). */
const closedWith = (s: Socket, timeoutMs = 3000): Promise<string | undefined> => new Promise((resolve) => {
  let got = '';
  const timer = setTimeout(() => resolve(undefined), timeoutMs);
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  s.on('error', () => undefined);
  s.once('close', () => {
    clearTimeout(timer);
    resolve(got);
  });
});

const counter = async (series: string): Promise<number> => seriesValue(await registry.metrics(), series);

// Answered by the proxy itself (400: origin-form on the forward listener): any answer means served.
const GET = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

it('closes connections past limits.maxConnections, counts them, reports the episode once, and serves again after one closes', async () => {
  const held = [await open(proxy.port), await open(proxy.port), await open(proxy.port)];
  // Give the server time to accept all three before the next ones arrive.
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 3; i++) {
    const extra = await open(proxy.port);
    extra.write(GET);
    expect(await closedWith(extra)).toBe('');
  }
  expect(await counter('mde_partner_proxy_connections_refused_total')).toBe(3);
  expect(refused.map((e) => e.firstInEpisode)).toEqual([true, false, false]);
  expect(refused[0]).toMatchObject({ limit: 3, listener: `127.0.0.1:${proxy.port}` });

  held[0]!.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const res = await rawExchange(proxy.port, GET);
  expect(statusOf(res)).toBe(400);
  for (const s of held) s.destroy();
});

it.each([
  ['a soft limit of 1024', 'Max open files            1024                 1048576              files     \n', 448],
  ['a soft limit of 65536', 'Max open files            65536                65536                files     \n', 32704],
  ['an unlimited soft limit', 'Max open files            unlimited            unlimited            files     \n', 4096],
  ['no such line', 'Max processes             63704                63704                processes \n', 4096],
  ['a tiny soft limit', 'Max open files            200                  200                  files     \n', 64],
])('derives the default from /proc/self/limits with %s', (_name, limits, expected) => {
  expect(defaultMaxConnections(limits)).toBe(expected);
});

it('applies the default from this process\'s descriptor limit when none is configured', async () => {
  const other = await startProxy(origin.port);
  try {
    expect(other.proxy.maxConnections).toBe(defaultMaxConnections());
  } finally {
    await other.close();
  }
});
