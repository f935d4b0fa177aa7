// Bytes the HTTP parser cannot read, arriving behind a valid request: the exchange in flight is
// answered first, whatever follows is refused by closing, and nothing is ever written into a body.
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Origin, Received } from '../helpers/origin.js';
import { startWithOrigins, type OriginsAndProxy, type TestProxy } from '../helpers/proxy.js';
import { jsonBodyOf, openTunnel, rawExchange, requestOver, statusOf, tlsOver } from '../helpers/raw.js';

let tlsOrigin: Origin;
let plainOrigin: Origin;
let proxy: TestProxy;

let setup: OriginsAndProxy;

beforeAll(async () => {
  ({ tlsOrigin, plainOrigin, proxy } = setup = await startWithOrigins());
});
afterAll(() => setup.close());

type Path = 'forward' | 'intercept' | 'reverse' | 'plain-tunnel';
const PATHS: Path[] = ['forward', 'intercept', 'reverse', 'plain-tunnel'];

/** A connection on a path and the request-target that path takes for a given origin path. */
async function open(path: Path): Promise<{ socket: Socket | TLSSocket; target: (p: string) => string; origin: Origin }> {
  if (path === 'forward') {
    return { socket: connect(proxy.port, '127.0.0.1'), target: (p) => `http://api.security.microsoft.com${p}`, origin: plainOrigin };
  }
  if (path === 'reverse') return { socket: connect(proxy.reversePorts[0]!, '127.0.0.1'), target: (p) => p, origin: tlsOrigin };
  if (path === 'plain-tunnel') {
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:80 HTTP/1.1\r\nHost: api.security.microsoft.com:80\r\n\r\n');
    return { socket, target: (p) => p, origin: plainOrigin };
  }
  const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\nHost: api.security.microsoft.com:443\r\n\r\n');
  const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
  return { socket: tls, target: (p) => p, origin: tlsOrigin };
}

const statusLines = (raw: string): string[] => raw.match(/HTTP\/1\.[01] \d{3}[^\r\n]*/g) ?? [];

describe('a parse error behind a request in flight', () => {
  it.each(PATHS)('answers a POST followed by garbage in the same write, then closes (%s)', async (path) => {
    const { socket, target, origin } = await open(path);
    const before = origin.received.length;
    const res = await requestOver(socket,
      `POST ${target('/api/machines/x/isolate')} HTTP/1.1\r\nHost: api.security.microsoft.com\r\nContent-Length: 5\r\n\r\nhelloGARBAGE NONSENSE\r\n\r\n`);
    expect(statusLines(res)).toEqual(['HTTP/1.1 200 OK']);
    const echo = jsonBodyOf(res) as Received;
    expect(echo).toMatchObject({ method: 'POST', body: 'hello' });
    expect(origin.received.length - before).toBe(1);
  });

  it.each(PATHS)('answers an HTTP/1.0 POST and does not serve the request pipelined after it (%s)', async (path) => {
    const { socket, target, origin } = await open(path);
    const before = origin.received.length;
    const res = await requestOver(socket,
      `POST ${target('/api/machines/y/isolate')} HTTP/1.0\r\nHost: api.security.microsoft.com\r\nContent-Length: 5\r\n\r\nhello`
      + `GET ${target('/api/alerts')} HTTP/1.1\r\nHost: api.security.microsoft.com\r\n\r\n`);
    expect(statusLines(res)).toEqual(['HTTP/1.1 200 OK']);
    expect(jsonBodyOf(res)).toMatchObject({ method: 'POST', body: 'hello' });
    expect(origin.received.slice(before).map((r) => r.method)).toEqual(['POST']);
  });

  it.each(PATHS)('never completes upstream a chunked body cut by a parse error (%s)', async (path) => {
    const { socket, target, origin } = await open(path);
    const before = origin.received.length;
    const res = await requestOver(socket,
      `POST ${target('/api/machines/z/isolate')} HTTP/1.1\r\nHost: api.security.microsoft.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\n\r\n`);
    expect(statusLines(res).filter((l) => l.includes(' 200 '))).toEqual([]);
    expect(origin.received.length).toBe(before);
  });

  it('still answers garbage with no request before it 400 BadRequest', async () => {
    const res = await rawExchange(proxy.port, 'GARBAGE NONSENSE\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest' } });
  });
});

describe('a parse error during a streaming response', () => {
  const SIZE = 20 * 1024 * 1024;

  it.each(PATHS)('never writes a 400 into a 20 MiB body: the body arrives whole and the connection closes (%s)', async (path) => {
    const { socket, target } = await open(path);
    const chunks: Buffer[] = [];
    let got = 0;
    let sent = false;
    const done = new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      // Garbage once the response is well under way (past its head and 2 MiB of body).
      if (!sent && got > 2 * 1024 * 1024) {
        sent = true;
        socket.write('GARBAGE NONSENSE\r\n\r\n');
      }
    });
    socket.write(`GET ${target(`/bytes/${SIZE}`)} HTTP/1.1\r\nHost: api.security.microsoft.com\r\n\r\n`);
    await done;
    const all = Buffer.concat(chunks);
    const headEnd = all.indexOf('\r\n\r\n');
    expect(statusLines(all.subarray(0, headEnd).toString('latin1'))).toEqual(['HTTP/1.1 200 OK']);
    const body = all.subarray(headEnd + 4);
    expect(sent).toBe(true);
    expect(body.length).toBe(SIZE);
    expect(body.every((b) => b === 0x78)).toBe(true);
  });
});
