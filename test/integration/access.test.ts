// Access control and outbound routing: allowedClients, the request-head timeout, upstream.proxy.
import { connect } from 'node:net';
import { startOrigin, headerValues, type Origin } from '../helpers/origin.js';
import { buildConfig } from '../../src/config.js';
import { startProxy, testConfigDoc, type TestProxy } from '../helpers/proxy.js';
import { testPki } from '../helpers/pki.js';
import { rawExchange, statusOf, jsonBodyOf, openTunnel, tlsOver, requestOver } from '../helpers/raw.js';
import { viaProxy } from '../helpers/client.js';

let origin: Origin;
const proxies: TestProxy[] = [];
const track = (p: TestProxy): TestProxy => (proxies.push(p), p);

beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  await origin.close();
});

/** A request head that never ends, on the listener: what the proxy answers before it closes. */
function slowHead(port: number): Promise<string> {
  return new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('close', () => resolve(out));
    s.write('GET http://api.security.microsoft.com/ HTTP/1.1\r\nHost: api.security.microsoft.com\r\n');
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

/** The same inside an intercepted tunnel. */
async function slowHeadInTunnel(p: TestProxy): Promise<string> {
  const { socket } = await openTunnel(p.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
  const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: p.caPem });
  return requestOver(tls, 'GET /api/machines HTTP/1.1\r\nHost: api.security.microsoft.com\r\n', 5000);
}

it('refuses clients outside access.allowedClients with 403 ClientDenied', async () => {
  const p = track(await startProxy(origin.port, { access: { allowedClients: ['10.0.0.0/8'] } }));
  const res = await rawExchange(p.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
  expect(statusOf(res)).toBe(403);
  expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'ClientDenied' } });
});

it('never forwards a request from a refused client, even one sent with the connection', async () => {
  const p = track(await startProxy(origin.port, { access: { allowedClients: ['10.0.0.0/8'] } }, { extraResolve: { 'api.security.microsoft.com:80': `127.0.0.1:${origin.port}` } }));
  const seen = origin.received.length;
  const res = await rawExchange(p.port, 'GET http://api.security.microsoft.com/api/machines HTTP/1.1\r\nHost: api.security.microsoft.com\r\n\r\nCONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n', 1000);
  expect(statusOf(res)).toBe(403);
  expect(res.match(/HTTP\/1\.1/g)).toHaveLength(1);
  expect(origin.received.length).toBe(seen);
  expect(p.recorder.exchanges).toEqual([]);
  expect(p.recorder.tunnels).toEqual([]);
});

it('answers 408 when the request head does not arrive within timeouts.headers', async () => {
  const p = track(await startProxy(origin.port, { timeouts: { headers: 300 } }));
  const res = await slowHead(p.port);
  expect(statusOf(res)).toBe(408);
  expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'RequestHeaderTimeout' } });
});

it('answers 408 inside an intercepted tunnel when the request head is too slow (slowloris)', async () => {
  const p = track(await startProxy(origin.port, { timeouts: { headers: 300 } }));
  expect(statusOf(await slowHeadInTunnel(p))).toBe(408);
});

it('applies a reloaded timeouts.headers on the listener and inside intercepted tunnels', async () => {
  const p = track(await startProxy(origin.port, { timeouts: { headers: 30_000 } }));
  p.proxy.reload(buildConfig(await testConfigDoc(origin.port, { stateDir: p.stateDir, timeouts: { headers: 300 } }), { source: 'test', baseDir: process.cwd() }));
  expect(statusOf(await slowHead(p.port))).toBe(408);
  expect(statusOf(await slowHeadInTunnel(p))).toBe(408);
});

it('reaches Microsoft through upstream.proxy, asking it to CONNECT the resolved address', async () => {
  // The outer proxy only tunnels: it is told to allow the origin's loopback port.
  const outer = track(await startProxy(origin.port, { access: { allowPrivateDestinations: true, connectPorts: [origin.port] }, otherHosts: 'tunnel' }));
  const inner = track(await startProxy(origin.port, { upstream: { proxy: outer.url } }));
  const r = await viaProxy(inner.url, inner.caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'x/1' } });
  expect(r.status).toBe(200);
  expect(headerValues(r.echo!.rawHeaders, 'user-agent')).toEqual(['MdePartner-Contoso-ContosoCognito/1.0.0']);
  // The inner proxy keeps its upstream connection; closing it ends the outer tunnel.
  await inner.close();
  await outer.recorder.waitForTunnel(() => true);
  expect(outer.recorder.tunnels).toEqual([expect.objectContaining({ action: 'tunnelled', outcome: 'closed', host: '127.0.0.1', port: origin.port })]);
});

it('answers 502 when upstream.proxy refuses the CONNECT', async () => {
  const outer = track(await startProxy(origin.port, { otherHosts: 'deny' }));
  const inner = track(await startProxy(origin.port, { upstream: { proxy: outer.url } }));
  const r = await viaProxy(inner.url, inner.caPem, 'https://api.security.microsoft.com/api/machines');
  expect(r.status).toBe(502);
  expect(JSON.parse(r.text)).toMatchObject({ error: { code: 'UpstreamUnreachable' } });
});
