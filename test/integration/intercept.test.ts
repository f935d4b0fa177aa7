// The interceptor on its own: a loopback listener reads a CONNECT head from a raw socket and hands
// the socket (and any bytes that followed the head) to intercept(); a real TLS client then talks to
// the internal http.Server through it. The leaves come from the test PKI's root.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { LeafIssuer } from '../../src/ca.js';
import type { RequestContext } from '../../src/context.js';
import { ProxyError } from '../../src/errors.js';
import { CONNECT_ESTABLISHED, createInterceptor, type InterceptStart, type Interceptor } from '../../src/intercept.js';
import { testPki } from '../helpers/pki.js';
import { jsonBodyOf, openTunnel, rawExchange, requestOver, statusOf, tlsOver } from '../helpers/raw.js';

const HOST = 'api.security.microsoft.com';

interface Seen {
  readonly ctx: RequestContext;
  readonly method: string;
  readonly url: string;
  readonly host: string | undefined;
}

let caPem: string;
let issuer: LeafIssuer;
let interceptor: Interceptor;
let listener: Server;
let port: number;
const seen: Seen[] = [];
const starts: Array<InterceptStart | 'not-called'> = [];
/** What the next CONNECT's handler does before intercepting ('destroy': the client is gone first). */
let before: 'none' | 'destroy' = 'none';

/** The context a CONNECT gets: its authority is the origin, scheme from the port (80 plain, else TLS). */
function contextFor(authority: string): RequestContext & { origin: NonNullable<RequestContext['origin']> } {
  const [host, p] = authority.split(':') as [string, string];
  return { mode: 'intercept', origin: { scheme: p === '80' ? 'http' : 'https', host, port: Number(p) }, client: '127.0.0.1' };
}

beforeAll(async () => {
  const pki = await testPki();
  caPem = pki.msRoot.certPem;
  issuer = pki.msIssuer;
  const server = createHttpServer({ keepAliveTimeout: 60_000 });
  interceptor = createInterceptor({
    server,
    issuer: () => issuer,
    onRequest: (ctx: RequestContext, req: IncomingMessage, res: ServerResponse) => {
      seen.push({ ctx, method: req.method ?? '', url: req.url ?? '', host: req.headers.host });
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ served: req.url })));
    },
  });
  listener = createServer((socket: Socket) => {
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      // Like node:http's 'connect': no 'data' listener left, the socket still flowing.
      socket.off('data', onData);
      const authority = /^CONNECT (\S+) /.exec(buf.toString('latin1'))?.[1] ?? '';
      if (before === 'destroy') socket.destroy();
      void interceptor.intercept(socket, buf.subarray(end + 4), contextFor(authority)).then((r) => starts.push(r));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  port = (listener.address() as AddressInfo).port;
});
afterEach(() => {
  seen.length = 0;
  starts.length = 0;
  before = 'none';
});
afterAll(async () => {
  interceptor.closeAll();
  await new Promise<void>((resolve) => listener.close(() => resolve()));
});

const connectLine = (authority: string): string => `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`;
const get = (path: string, host = HOST): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

/** Waits until intercept() has resolved n times. */
async function startsSettled(n: number): Promise<void> {
  for (let i = 0; i < 200 && starts.length < n; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('TLS interception', () => {
  it('answers 200, terminates TLS with a leaf for the CONNECT host, and serves the request with the CONNECT\'s context', async () => {
    const { socket, head } = await openTunnel(port, connectLine(`${HOST}:443`));
    expect(`${head}\r\n\r\n`).toBe(CONNECT_ESTABLISHED);
    const tls = await tlsOver(socket, { servername: HOST, ca: caPem });
    expect(tls.getPeerX509Certificate()?.subjectAltName).toBe(`DNS:${HOST}`);
    const res = await requestOver(tls, get('/api/machines?x=1'));
    expect(statusOf(res)).toBe(200);
    expect(jsonBodyOf(res)).toEqual({ served: '/api/machines?x=1' });
    expect(seen).toEqual([{ ctx: contextFor(`${HOST}:443`), method: 'GET', url: '/api/machines?x=1', host: HOST }]);
    expect(starts).toEqual(['established']);
  });

  it('offers only HTTP/1.1 by ALPN, whatever the client offers', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:443`));
    const tls = await tlsOver(socket, { servername: HOST, ca: caPem }); // offers h2 and http/1.1
    expect(tls.alpnProtocol).toBe('http/1.1');
    tls.destroy();
  });

  it('accepts the SNI in another letter case', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:443`));
    const tls = await tlsOver(socket, { servername: 'API.Security.Microsoft.COM', ca: caPem });
    expect(statusOf(await requestOver(tls, get('/case')))).toBe(200);
  });

  it('fails the handshake when the SNI names another host than the CONNECT, and serves nothing', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:443`));
    await expect(tlsOver(socket, { servername: 'graph.microsoft.com', ca: caPem })).rejects.toThrow();
    expect(seen).toEqual([]);
  });

  it('serves several requests on one kept-alive connection, each with the context', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:443`));
    const tls = await tlsOver(socket, { servername: HOST, ca: caPem });
    const res = await requestOver(tls, `GET /one HTTP/1.1\r\nHost: ${HOST}\r\n\r\n${get('/two')}`);
    expect(res.match(/HTTP\/1\.1 200 OK\r\n/g)).toHaveLength(2);
    expect(seen.map((s) => [s.url, s.ctx.origin?.host])).toEqual([['/one', HOST], ['/two', HOST]]);
  });

  it('refuses a CONNECT inside the intercepted connection with 400', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:443`));
    const tls = await tlsOver(socket, { servername: HOST, ca: caPem });
    const res = await requestOver(tls, connectLine('10.0.0.1:22'));
    expect(statusOf(res)).toBe(400);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest', message: 'CONNECT is not allowed inside an intercepted connection' } });
    expect(seen).toEqual([]);
  });

  it('refuses a protocol upgrade with 400', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:443`));
    const tls = await tlsOver(socket, { servername: HOST, ca: caPem });
    const res = await requestOver(tls, `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    expect(statusOf(res)).toBe(400);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest' } });
    expect(seen).toEqual([]);
  });

  it('answers a malformed request head inside the tunnel with 400', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:443`));
    const tls = await tlsOver(socket, { servername: HOST, ca: caPem });
    const res = await requestOver(tls, 'GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    expect(seen).toEqual([]);
  });

  it('refuses, without answering 200, a host the CA\'s name constraints do not cover', async () => {
    const res = await rawExchange(port, connectLine('api.partner-cloud.invalid:443'));
    expect(statusOf(res)).toBe(500);
    expect(res).not.toContain('Connection Established');
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'CaHostNotPermitted', message: expect.stringContaining('ca init --force') as string } });
    await startsSettled(1);
    expect(starts).toEqual([expect.objectContaining({ code: 'CaHostNotPermitted' })]);
    expect(starts[0]).toBeInstanceOf(ProxyError);
  });

  it('refuses with InternalError when the issuer fails otherwise', async () => {
    const working = issuer;
    issuer = { size: 0, secureContextFor: () => Promise.reject(new Error('key store offline')) };
    try {
      const res = await rawExchange(port, connectLine(`${HOST}:443`));
      expect(statusOf(res)).toBe(500);
      expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'InternalError', message: `cannot issue a certificate for ${HOST}: key store offline` } });
    } finally {
      issuer = working;
    }
  });

  it('reports client-gone when the client left before the tunnel opened', async () => {
    before = 'destroy';
    expect(await rawExchange(port, connectLine(`${HOST}:443`))).toBe('');
    await startsSettled(1);
    expect(starts).toEqual(['client-gone']);
  });
});

describe('plain-HTTP tunnels (CONNECT host:80)', () => {
  it('serves the requests without TLS, including one sent with the CONNECT itself', async () => {
    const res = await rawExchange(port, `${connectLine(`${HOST}:80`)}${get('/plain')}`);
    expect(res.startsWith(CONNECT_ESTABLISHED)).toBe(true);
    expect(statusOf(res.slice(CONNECT_ESTABLISHED.length))).toBe(200);
    expect(seen).toEqual([{ ctx: contextFor(`${HOST}:80`), method: 'GET', url: '/plain', host: HOST }]);
  });

  it('serves a request sent after the 200', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:80`));
    const res = await requestOver(socket, get('/after'));
    expect(statusOf(res)).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/after']);
  });

  it('answers a TLS ClientHello with a fatal handshake_failure alert and forwards nothing', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:80`));
    await expect(tlsOver(socket, { servername: HOST, ca: caPem })).rejects.toThrow(/handshake failure/i);
    await startsSettled(1);
    expect(starts).toEqual([expect.objectContaining({ code: 'PlainHttpExpected' })]);
    expect(seen).toEqual([]);
  });

  it('reports client-gone when the client closes without sending a byte', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:80`));
    socket.end();
    await startsSettled(1);
    expect(starts).toEqual(['client-gone']);
  });
});

describe('closeIdle and closeAll', () => {
  /** Resolves once the socket closes. */
  const closed = (s: Socket): Promise<void> => new Promise((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));

  it('closeIdle ends a kept-alive connection between requests', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:80`));
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.write(`GET /idle HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    for (let i = 0; i < 200 && !got.includes('"served"'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(statusOf(got)).toBe(200);
    interceptor.closeIdle();
    await closed(socket);
  });

  it('closeAll destroys a connection in the middle of a request head', async () => {
    const { socket } = await openTunnel(port, connectLine(`${HOST}:80`));
    socket.write(`GET /never HTTP/1.1\r\nHost: ${HOST}\r\n`);
    const ended = closed(socket);
    socket.on('data', () => undefined);
    for (let i = 0; i < 200 && starts.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
    interceptor.closeAll();
    await ended;
    expect(seen).toEqual([]);
  });
});
