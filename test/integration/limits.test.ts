// Request-head limits on every path: the forward listener, intercepted tunnels and reverse routes.
// A head past a limit is refused with 431 and never reaches the origin, whole or cut.
import type { Origin } from '../helpers/origin.js';
import { startWithOrigins, type OriginsAndProxy, type TestProxy } from '../helpers/proxy.js';
import { jsonBodyOf, openTunnel, rawExchange, requestOver, statusOf, tlsOver } from '../helpers/raw.js';

let tlsOrigin: Origin;
let plainOrigin: Origin;
let proxy: TestProxy;

let setup: OriginsAndProxy;

beforeAll(async () => {
  ({ tlsOrigin, plainOrigin, proxy } = setup = await startWithOrigins({ limits: { maxHeaderCount: 50, maxHeaderBytes: 8192 } }));
});
afterAll(() => setup.close());

type Path = 'forward' | 'intercept' | 'reverse' | 'plain-tunnel';

/** Sends one raw request on a path and returns the raw response. */
async function send(path: Path, head: (target: string) => string, body = ''): Promise<string> {
  if (path === 'forward') return rawExchange(proxy.port, head('http://api.security.microsoft.com/api/machines') + body);
  if (path === 'reverse') return rawExchange(proxy.reversePorts[0]!, head('/api/machines') + body);
  if (path === 'plain-tunnel') {
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:80 HTTP/1.1\r\nHost: api.security.microsoft.com:80\r\n\r\n');
    return requestOver(socket, head('/api/machines') + body);
  }
  const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\nHost: api.security.microsoft.com:443\r\n\r\n');
  const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
  return requestOver(tls, head('/api/machines') + body);
}

const received = (): number => tlsOrigin.received.length + plainOrigin.received.length;
const fields = (n: number, line: (i: number) => string): string => Array.from({ length: n }, (_, i) => `${line(i)}\r\n`).join('');
const post = (extra: string) => (target: string): string =>
  `POST ${target} HTTP/1.1\r\nHost: api.security.microsoft.com\r\n${extra}Content-Length: 5\r\nConnection: close\r\n\r\n`;

describe('request head limits', () => {
  it.each<Path>(['forward', 'intercept', 'reverse', 'plain-tunnel'])('refuses 2,100 header fields with 431 and forwards nothing (%s)', async (path) => {
    const before = received();
    const res = await send(path, post(fields(2100, () => 'a: b')), 'hello');
    expect(statusOf(res)).toBe(431);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'RequestHeaderFieldsTooLarge' } });
    expect(received()).toBe(before);
  });

  it.each<Path>(['forward', 'intercept', 'reverse', 'plain-tunnel'])('refuses one field past limits.maxHeaderCount with 431 (%s)', async (path) => {
    const before = received();
    // Host, Content-Length and Connection make 3: 48 more is 51 fields, one past the limit of 50.
    const res = await send(path, post(fields(48, (i) => `x-f${i}: v`)), 'hello');
    expect(statusOf(res)).toBe(431);
    expect(received()).toBe(before);
  });

  it.each<Path>(['forward', 'intercept', 'reverse', 'plain-tunnel'])('serves a head at exactly limits.maxHeaderCount fields, body intact (%s)', async (path) => {
    const res = await send(path, post(fields(47, (i) => `x-f${i}: v`)), 'hello');
    expect(statusOf(res)).toBe(200);
    const echo = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4)) as { body: string; rawHeaders: string[] };
    expect(echo.body).toBe('hello');
    expect(echo.rawHeaders.filter((_, i) => i % 2 === 0 && /^x-f\d+$/.test(echo.rawHeaders[i]!))).toHaveLength(47);
  });

  it.each<Path>(['forward', 'intercept', 'reverse', 'plain-tunnel'])('refuses a head larger than limits.maxHeaderBytes with 431 (%s)', async (path) => {
    const before = received();
    const res = await send(path, post(fields(10, (i) => `x-big${i}: ${'v'.repeat(1000)}`)), 'hello');
    expect(statusOf(res)).toBe(431);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'RequestHeaderFieldsTooLarge' } });
    expect(received()).toBe(before);
  });
});
