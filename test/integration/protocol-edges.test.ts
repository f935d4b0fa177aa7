// Protocol edges a load-and-fault run found: each gets a precise status and the JSON body.
import type { Origin } from '../helpers/origin.js';
import { startProxy, startWithOrigins, type OriginsAndProxy, type TestProxy } from '../helpers/proxy.js';
import { jsonBodyOf, openTunnel, rawExchange, requestOver, statusOf, tlsOver } from '../helpers/raw.js';

let tlsOrigin: Origin;
let plainOrigin: Origin;
let proxy: TestProxy;

let setup: OriginsAndProxy;

beforeAll(async () => {
  ({ tlsOrigin, plainOrigin, proxy } = setup = await startWithOrigins({}, ({ tls }) => ({ 'api.partner.test:443': `127.0.0.1:${tls}` })));
});
afterAll(() => setup.close());

const received = (): number => tlsOrigin.received.length + plainOrigin.received.length;

type Path = 'forward' | 'intercept' | 'reverse';
async function send(path: Path, request: (target: string) => string): Promise<string> {
  if (path === 'forward') return rawExchange(proxy.port, request('http://api.security.microsoft.com/api/machines'));
  if (path === 'reverse') return rawExchange(proxy.reversePorts[0]!, request('/api/machines'));
  const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\nHost: api.security.microsoft.com:443\r\n\r\n');
  const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
  return requestOver(tls, request('/api/machines'));
}

describe('HTTP versions', () => {
  it.each<Path>(['forward', 'intercept', 'reverse'])('answers HTTP/2.0 on the request line with 505 and the JSON body (%s)', async (path) => {
    const before = received();
    const res = await send(path, (t) => `GET ${t} HTTP/2.0\r\nHost: api.security.microsoft.com\r\nConnection: close\r\n\r\n`);
    expect(statusOf(res)).toBe(505);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'HttpVersionNotSupported' } });
    expect(received()).toBe(before);
  });
});

describe('Expect', () => {
  it.each<Path>(['forward', 'intercept', 'reverse'])('answers an Expect other than 100-continue with 417, the JSON body and Proxy-Status, forwarding nothing (%s)', async (path) => {
    const before = received();
    const res = await send(path, (t) => `POST ${t} HTTP/1.1\r\nHost: api.security.microsoft.com\r\nExpect: 200-ok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(statusOf(res)).toBe(417);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'ExpectationFailed', target: 'Expect' } });
    expect(res).toMatch(/\r\nproxy-status: mde-partner-proxy; error=http_request_error/i);
    expect(received()).toBe(before);
  });
});

describe('CONNECT on a reverse route', () => {
  it('answers 405 with Allow and the JSON body', async () => {
    const res = await rawExchange(proxy.reversePorts[0]!, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\nHost: api.security.microsoft.com:443\r\n\r\n');
    expect(statusOf(res)).toBe(405);
    expect(res).toMatch(/\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'MethodNotAllowed' } });
  });
});

describe('field names and codings that intermediaries read differently', () => {
  it.each<[string, string]>([
    ['Transfer_Encoding: chunked', 'Transfer_Encoding'],
    ['Content_Length: 5', 'Content_Length'],
    ['Keep_Alive: timeout=5', 'Keep_Alive'],
    ['User_Agent: evil/1', 'User_Agent'],
    ['X_Forwarded_For: 10.0.0.1', 'X_Forwarded_For'],
  ])('refuses %s with 400 and forwards nothing (every path)', async (line, name) => {
    for (const path of ['forward', 'intercept', 'reverse'] as const) {
      const before = received();
      const res = await send(path, (t) => `POST ${t} HTTP/1.1\r\nHost: api.security.microsoft.com\r\n${line}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
      expect(statusOf(res)).toBe(400);
      expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest', target: name } });
      expect(received()).toBe(before);
    }
  });

  it('refuses Content-Encoding: chunked (a transfer coding, RFC 9110 §8.4.1) with 400', async () => {
    const before = received();
    const res = await send('intercept', (t) => `POST ${t} HTTP/1.1\r\nHost: api.security.microsoft.com\r\nContent-Encoding: gzip, chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
    expect(statusOf(res)).toBe(400);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest', target: 'Content-Encoding' } });
    expect(received()).toBe(before);
  });

  it('passes other underscored names and real content codings unchanged', async () => {
    const res = await send('intercept', (t) => `POST ${t} HTTP/1.1\r\nHost: api.security.microsoft.com\r\nX_Custom: 1\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
    expect(statusOf(res)).toBe(200);
    const echo = jsonBodyOf(res) as { rawHeaders: string[] };
    expect(echo.rawHeaders).toEqual(expect.arrayContaining(['X_Custom', '1', 'Content-Encoding', 'gzip']));
  });
});

describe('an extra host outside the CA\'s name constraints', () => {
  it('answers the CONNECT with 500 CaHostNotPermitted and says to run ca init --force', async () => {
    // The CA in stateDir was created without api.partner.test; a later config adds it to extraHosts.
    const later = await startProxy(tlsOrigin.port, { stateDir: proxy.stateDir, extraHosts: ['api.partner.test'] },
      { extraResolve: { 'api.partner.test:443': `127.0.0.1:${tlsOrigin.port}` } });
    try {
      expect(later.caPem).toBe(proxy.caPem);
      const res = await rawExchange(later.port, 'CONNECT api.partner.test:443 HTTP/1.1\r\nHost: api.partner.test:443\r\n\r\n');
      expect(statusOf(res)).toBe(500);
      const body = jsonBodyOf(res) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('CaHostNotPermitted');
      expect(body.error.message).toContain('ca init --force');
    } finally {
      await later.close();
    }
  });
});
