// Plain absolute-form http:// forwarding and reverse routes: the same request path as interception.
import { request } from 'undici';
import { ProxyAgent } from 'undici';
import { headerValues, type Origin, type Received } from '../helpers/origin.js';
import { startWithOrigins, type OriginsAndProxy, type TestProxy } from '../helpers/proxy.js';
import { jsonBodyOf, rawExchange, statusOf } from '../helpers/raw.js';
import { run } from '../helpers/child.js';
import { basicAuth } from '../helpers/auth.js';

const PARTNER_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
let plainOrigin: Origin;
let proxy: TestProxy;

let setup: OriginsAndProxy;

beforeAll(async () => {
  ({ plainOrigin, proxy } = setup = await startWithOrigins({}, ({ plain }) => ({ 'www.example.org:80': `127.0.0.1:${plain}` })));
});
afterAll(() => setup.close());

describe('plain absolute-form forwarding', () => {
  it('rewrites the User-Agent of a plain http:// request to a catalogue host (curl -x)', async () => {
    const r = await run('curl', ['-sS', '-x', proxy.url, '-A', 'curl-test/1', 'http://api.security.microsoft.com/api/machines?x=1']);
    const echo = JSON.parse(r.stdout) as Received;
    expect(echo.url).toBe('/api/machines?x=1');
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
    expect(headerValues(echo.rawHeaders, 'host')).toEqual(['api.security.microsoft.com']);
  });

  it('forwards a plain request to another host unchanged', async () => {
    // proxyTunnel: false sends absolute-form http:// requests instead of CONNECT to port 80.
    const dispatcher = new ProxyAgent({ uri: proxy.url, proxyTunnel: false });
    try {
      const res = await request('http://www.example.org/index.html', { dispatcher, headers: { 'user-agent': 'browser/1' } });
      const echo = (await res.body.json()) as Received;
      expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual(['browser/1']);
    } finally {
      await dispatcher.close();
    }
  });

  it('strips hop-by-hop headers, including those named by Connection (RFC 9110 §7.6.1)', async () => {
    const res = await rawExchange(proxy.port, [
      'GET http://api.security.microsoft.com/api/alerts HTTP/1.1',
      'Host: api.security.microsoft.com',
      'Connection: close, X-Secret-Hop',
      'X-Secret-Hop: 1',
      'Keep-Alive: timeout=5',
      `Proxy-Authorization: ${basicAuth('u', 'p')}`,
      'X-Kept: yes',
      '', ''].join('\r\n'));
    expect(statusOf(res)).toBe(200);
    const echo = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4)) as Received;
    const names = echo.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names).not.toContain('x-secret-hop');
    expect(names).not.toContain('keep-alive');
    expect(names).not.toContain('proxy-authorization');
    expect(headerValues(echo.rawHeaders, 'x-kept')).toEqual(['yes']);
  });

  it('streams a chunked request body to the origin', async () => {
    const res = await rawExchange(proxy.port, [
      'POST http://api.security.microsoft.com/api/indicators HTTP/1.1',
      'Host: api.security.microsoft.com',
      'Transfer-Encoding: chunked',
      'Connection: close',
      '', '5', 'hello', '6', ' world', '0', '', ''].join('\r\n'));
    expect(statusOf(res)).toBe(200);
    const echo = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4)) as Received;
    expect(echo.body).toBe('hello world');
  });
});

describe('refusals carry their decision', () => {
  it.each([
    ['http://127.1/api/machines', 'loopback-destination', 'DestinationDenied', 403],
    ['http://[::1]:8080/', 'loopback-destination', 'DestinationDenied', 403],
    ['http://10.0.0.7/', 'private-destination', 'DestinationDenied', 403],
  ])('reports %s refused with reason %s', async (url, reason, code, status) => {
    const before = proxy.recorder.exchanges.length;
    const res = await rawExchange(proxy.port, `GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(res)).toBe(status);
    const e = (await proxy.recorder.waitForExchanges(before + 1))[before];
    expect(e).toMatchObject({ mode: 'forward', status, reason, error: code, action: 'passed', client: '127.0.0.1' });
  });

  it('reports an origin-form request on the forward listener as not-absolute-form', async () => {
    const res = await rawExchange(proxy.port, 'GET /api/machines HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    const e = await proxy.recorder.waitForExchange((x) => x.reason === 'not-absolute-form');
    expect(e).toMatchObject({ status: 400, error: 'BadRequest' });
  });
});

describe('reverse routes', () => {
  it('forwards plain HTTP in to the fixed HTTPS upstream with the route\'s product', async () => {
    const port = proxy.reversePorts[0]!;
    const res = await request(`http://127.0.0.1:${port}/api/machines?$filter=x`, { headers: { 'user-agent': 'app/1' } });
    expect(res.statusCode).toBe(200);
    const echo = (await res.body.json()) as Received;
    expect(echo.url).toBe('/api/machines?$filter=x');
    expect(echo.servername).toBe('api.security.microsoft.com');
    expect(headerValues(echo.rawHeaders, 'host')).toEqual(['api.security.microsoft.com']);
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
    const e = (await proxy.recorder.waitForExchanges(1)).find((x) => x.mode === 'reverse');
    expect(e).toMatchObject({ product: 'cognito', api: 'machines', action: 'rewritten' });
  });

  it('relays the origin\'s trailer fields after a chunked body', async () => {
    const res = await request(`http://127.0.0.1:${proxy.reversePorts[0]!}/trailers`, { headers: { 'user-agent': PARTNER_UA } });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('first chunk;second chunk');
    expect(res.trailers).toEqual({ 'x-checksum': 'sha256-abc', 'x-records': '2' });
  });

  it('answers 421 for an absolute-form request naming another host on a reverse route', async () => {
    const res = await rawExchange(proxy.reversePorts[0]!, 'GET https://graph.microsoft.com/v1.0/users HTTP/1.1\r\nHost: graph.microsoft.com\r\nConnection: close\r\n\r\n');
    expect(statusOf(res)).toBe(421);
  });
});

describe('request framing (no smuggling)', () => {
  it('forwards a chunked DELETE body and keeps the next pipelined request separate', async () => {
    const seen = plainOrigin.received.length;
    const res = await rawExchange(proxy.port, [
      'DELETE http://api.security.microsoft.com/api/indicators/1 HTTP/1.1',
      'Host: api.security.microsoft.com',
      'Transfer-Encoding: chunked',
      '', '4', 'GET ', '0', '', // a body that looks like the start of a request
      'GET http://api.security.microsoft.com/api/alerts HTTP/1.1',
      'Host: api.security.microsoft.com',
      'Connection: close',
      '', ''].join('\r\n'));
    expect(res.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    const got = plainOrigin.received.slice(seen);
    expect(got.map((r) => `${r.method} ${r.url} ${JSON.stringify(r.body)}`)).toEqual([
      'DELETE /api/indicators/1 "GET "',
      'GET /api/alerts ""',
    ]);
  });

  it('refuses a request with both Content-Length and Transfer-Encoding (RFC 9112 §6.3)', async () => {
    const seen = plainOrigin.received.length;
    const res = await rawExchange(proxy.port, [
      'POST http://api.security.microsoft.com/api/indicators HTTP/1.1',
      'Host: api.security.microsoft.com',
      'Content-Length: 4',
      'Transfer-Encoding: chunked',
      '', '0', '', ''].join('\r\n'));
    expect(statusOf(res)).toBe(400);
    expect(plainOrigin.received.length).toBe(seen);
  });
});

describe('the Host header (RFC 9112 §3.2)', () => {
  it.each([
    ['the forward listener', 'forward', 'GET http://api.security.microsoft.com/api/alerts HTTP/1.1'],
    ['a reverse route', 'reverse', 'GET /api/alerts HTTP/1.1'],
  ])('answers an HTTP/1.1 request without Host on %s with 400 JSON and Proxy-Status, and reports it', async (_where, mode, line) => {
    const seen = plainOrigin.received.length + setup.tlsOrigin.received.length;
    const port = mode === 'forward' ? proxy.port : proxy.reversePorts[0]!;
    const res = await rawExchange(port, `${line}\r\nUser-Agent: raw/1\r\nConnection: close\r\n\r\n`);
    expect(statusOf(res)).toBe(400);
    expect(res).toMatch(/^proxy-status: mde-partner-proxy; error=http_request_error/im);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest' } });
    const e = await proxy.recorder.waitForExchange((x) => x.mode === mode && x.reason === 'host-header-count');
    expect(e).toMatchObject({ status: 400, error: 'BadRequest' });
    expect(plainOrigin.received.length + setup.tlsOrigin.received.length).toBe(seen);
  });

  it('forwards an HTTP/1.0 absolute-form request without Host', async () => {
    const res = await rawExchange(proxy.port, 'GET http://api.security.microsoft.com/api/alerts HTTP/1.0\r\nUser-Agent: raw/1\r\n\r\n');
    expect(statusOf(res)).toBe(200);
    const echo = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4)) as Received;
    expect(headerValues(echo.rawHeaders, 'host')).toEqual(['api.security.microsoft.com']);
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  });
});
