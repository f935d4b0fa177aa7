// The outbound side on its own: pools per origin over `upstream.resolve`, the destination checks,
// dial for blind tunnels, an upstream proxy (a real proxy of ours, tunnelling only), pool reuse
// and eviction, and reuse across configs. The TLS echo origin stands in for Microsoft.
import { lookup } from 'node:dns/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { request } from 'undici';
import { classifyHost, isRestricted } from '../../src/address.js';
import { buildConfig, type Config } from '../../src/config.js';
import { formatAuthority } from '../../src/target.js';
import { createUpstream, outboundKey, reuseOrCreateUpstream, type Upstream } from '../../src/upstream.js';
import { headerValues, startOrigin, type Origin, type Received } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';
import { startProxy, testConfigDoc, type TestProxy } from '../helpers/proxy.js';

let origin: Origin;
let plainOrigin: Origin;
let listener: Server;
let listenerPort: number;
const upstreams: Upstream[] = [];
const proxies: TestProxy[] = [];

beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
  plainOrigin = await startOrigin();
  listener = createServer((s) => s.end('raw hello'));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  listenerPort = (listener.address() as AddressInfo).port;
});
afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await origin.close();
  await plainOrigin.close();
  await new Promise<void>((resolve) => listener.close(() => resolve()));
});

async function configFor(doc: Record<string, unknown> = {}, extraResolve: Record<string, string> = {}): Promise<Config> {
  return buildConfig(await testConfigDoc(origin.port, doc, extraResolve), { source: 'test', baseDir: process.cwd() });
}

async function upstreamFor(doc: Record<string, unknown> = {}, extraResolve: Record<string, string> = {}): Promise<Upstream> {
  const u = createUpstream(await configFor(doc, extraResolve));
  upstreams.push(u);
  return u;
}

/** A GET through a pool; resolves with the status and the echo origin's record. */
async function get(u: Upstream, scheme: 'http' | 'https', host: string, port: number, path = '/api/machines'): Promise<{ status: number; echo: Received }> {
  const res = await request(`${scheme}://${formatAuthority({ host, port })}${path}`, { dispatcher: u.pool(scheme, host, port), headers: { host } });
  return { status: res.statusCode, echo: JSON.parse(await res.body.text()) as Received };
}

/** Reads a dialled socket to its end (a socket from an upstream proxy arrives paused). */
const readAll = (socket: Socket): Promise<string> => new Promise((resolve, reject) => {
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString()));
  socket.on('end', () => resolve(got));
  socket.on('error', reject);
  socket.resume();
});

describe('pool', () => {
  it('reaches a Microsoft host at its upstream.resolve address, with the host name as SNI, verified against upstream.ca', async () => {
    const u = await upstreamFor();
    const r = await get(u, 'https', 'api.security.microsoft.com', 443);
    expect(r.status).toBe(200);
    expect(r.echo.servername).toBe('api.security.microsoft.com');
    expect(headerValues(r.echo.rawHeaders, 'host')).toEqual(['api.security.microsoft.com']);
  });

  it('refuses an origin whose certificate upstream.ca does not cover', async () => {
    const pki = await testPki();
    const rogue = await startOrigin(pki.rogueIssuer);
    try {
      const u = await upstreamFor({}, { 'graph.microsoft.com:443': `127.0.0.1:${rogue.port}` });
      await expect(get(u, 'https', 'graph.microsoft.com', 443)).rejects.toMatchObject({ code: 'SELF_SIGNED_CERT_IN_CHAIN' });
      expect(rogue.received).toEqual([]);
    } finally {
      await rogue.close();
    }
  });

  it('keeps one pool per scheme, host and port', async () => {
    const u = await upstreamFor();
    const a = u.pool('https', 'api.security.microsoft.com', 443);
    expect(u.pool('https', 'api.security.microsoft.com', 443)).toBe(a);
    expect(u.pool('http', 'api.security.microsoft.com', 443)).not.toBe(a);
    expect(u.pool('https', 'api.security.microsoft.com', 8443)).not.toBe(a);
    expect(u.pool('https', 'graph.microsoft.com', 443)).not.toBe(a);
  });

  it('closes the oldest pool past 256 and makes a new one when that origin is asked for again', async () => {
    const u = await upstreamFor();
    const first = u.pool('https', 'api.security.microsoft.com', 1);
    for (let port = 2; port <= 256; port++) u.pool('https', 'api.security.microsoft.com', port);
    expect(first.closed).toBe(false);
    u.pool('https', 'api.security.microsoft.com', 257);
    expect(first.closed).toBe(true);
    expect(u.pool('https', 'api.security.microsoft.com', 1)).not.toBe(first);
  });

  it('refuses a loopback destination that upstream.resolve does not name, without connecting', async () => {
    const u = await upstreamFor();
    await expect(get(u, 'http', '127.0.0.1', plainOrigin.port)).rejects.toMatchObject({ code: 'DestinationDenied', status: 403 });
    expect(plainOrigin.received).toEqual([]);
  });

  it('reaches a loopback destination when access.allowPrivateDestinations is on', async () => {
    const u = await upstreamFor({ access: { allowPrivateDestinations: true, connectPorts: [443] } });
    const r = await get(u, 'http', '127.0.0.1', plainOrigin.port, '/private');
    expect([r.status, r.echo.url]).toEqual([200, '/private']);
  });

  it('closes every pool on close()', async () => {
    const u = createUpstream(await configFor());
    const pools = [u.pool('https', 'api.security.microsoft.com', 443), u.pool('https', 'graph.microsoft.com', 443)];
    await get(u, 'https', 'api.security.microsoft.com', 443);
    await u.close();
    expect(pools.map((p) => p.closed)).toEqual([true, true]);
  });
});

describe('dial', () => {
  it('opens a raw connection to the upstream.resolve address', async () => {
    const u = await upstreamFor({}, { 'www.example.org:443': `127.0.0.1:${listenerPort}` });
    expect(await readAll(await u.dial('www.example.org', 443))).toBe('raw hello');
  });

  it('refuses a private destination with DestinationDenied, naming it', async () => {
    const u = await upstreamFor();
    await expect(u.dial('127.0.0.1', listenerPort)).rejects.toMatchObject({ code: 'DestinationDenied', message: expect.stringContaining(`127.0.0.1:${listenerPort} refused`) as string });
    await expect(u.dial('10.0.0.1', 443)).rejects.toMatchObject({ code: 'DestinationDenied' });
  });

  it('refuses a name that resolves to a restricted address (the DNS guard), without connecting', async () => {
    // The machine's own name passes the name check and resolves, through /etc/hosts, to a loopback or
    // private address on any usual host (127.0.1.1 on Debian, the container's address in Docker).
    const name = hostname();
    const { address } = await lookup(name);
    expect([name, isRestricted(classifyHost(address))]).toEqual([name, true]);
    const u = await upstreamFor();
    let accepted = 0;
    const count = (): void => void accepted++;
    listener.on('connection', count);
    try {
      await expect(u.dial(name, listenerPort)).rejects.toMatchObject({ code: 'EDESTDENIED' });
      expect(accepted).toBe(0);
    } finally {
      listener.off('connection', count);
    }
  });

  it('dials a private destination when allowed', async () => {
    const u = await upstreamFor({ access: { allowPrivateDestinations: true, connectPorts: [443] } });
    expect(await readAll(await u.dial('127.0.0.1', listenerPort))).toBe('raw hello');
  });

  it('rejects with the socket error when nothing listens', async () => {
    const u = await upstreamFor({}, { 'www.example.org:443': '127.0.0.1:1' });
    await expect(u.dial('www.example.org', 443)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('through upstream.proxy', () => {
  /** A proxy of ours that only tunnels, allowed to reach the origins' loopback ports. */
  const outerProxy = async (): Promise<TestProxy> => {
    const p = await startProxy(origin.port, { access: { allowPrivateDestinations: true, connectPorts: [origin.port, listenerPort] }, otherHosts: 'tunnel' });
    proxies.push(p);
    return p;
  };

  it('asks the upstream proxy to CONNECT the resolved address, then speaks TLS to the origin inside', async () => {
    const outer = await outerProxy();
    const u = await upstreamFor({ upstream: { proxy: outer.url } });
    const r = await get(u, 'https', 'api.security.microsoft.com', 443);
    expect([r.status, r.echo.servername]).toEqual([200, 'api.security.microsoft.com']);
    await u.close();
    const tunnel = await outer.recorder.waitForTunnel(() => true);
    expect([tunnel.action, tunnel.host, tunnel.port]).toEqual(['tunnelled', '127.0.0.1', origin.port]);
  });

  it('dials through the upstream proxy for a blind tunnel', async () => {
    const outer = await outerProxy();
    const u = await upstreamFor({ upstream: { proxy: outer.url } }, { 'www.example.org:443': `127.0.0.1:${listenerPort}` });
    expect(await readAll(await u.dial('www.example.org', 443))).toBe('raw hello');
    const tunnel = await outer.recorder.waitForTunnel(() => true);
    expect([tunnel.host, tunnel.port]).toEqual(['127.0.0.1', listenerPort]);
  });

  it('goes direct for a host in upstream.noProxy', async () => {
    const outer = await outerProxy();
    const u = await upstreamFor({ upstream: { proxy: outer.url, noProxy: ['.microsoft.com'] } });
    expect((await get(u, 'https', 'api.security.microsoft.com', 443)).status).toBe(200);
    await u.close();
    expect(outer.recorder.tunnels).toEqual([]);
  });
});

describe('outboundKey and reuseOrCreateUpstream', () => {
  it('keeps the same outbound side when only the policy changed', async () => {
    const before = await upstreamFor();
    const policyOnly = await configFor({ policy: { mode: 'audit' } });
    expect(outboundKey(policyOnly)).toBe(before.key);
    expect(reuseOrCreateUpstream(policyOnly, before)).toBe(before);
  });

  it.each([
    ['an outbound timeout', { timeouts: { connect: 4321 } }, {}],
    ['access.allowPrivateDestinations', { access: { allowPrivateDestinations: true, connectPorts: [443] } }, {}],
    ['upstream.resolve', {}, { 'www.example.org:443': '127.0.0.1:9' }],
    ['upstream.noProxy', { upstream: { noProxy: ['example.org'] } }, {}],
  ])('builds a new one when %s changes, keeping the trust store', async (_what, doc, extraResolve) => {
    const before = await upstreamFor();
    const changed = await configFor(doc, extraResolve);
    expect(outboundKey(changed)).not.toBe(before.key);
    const next = reuseOrCreateUpstream(changed, before);
    upstreams.push(next);
    expect(next).not.toBe(before);
    expect(next.trust).toBe(before.trust);
    expect((await get(next, 'https', 'api.security.microsoft.com', 443)).status).toBe(200);
  });
});
