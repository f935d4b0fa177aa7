// CONNECT on the wire: interception, blind tunnels and every refusal, with raw sockets.
import { X509Certificate } from 'node:crypto';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { testPki } from '../helpers/pki.js';
import { jsonBodyOf, openTunnel, rawExchange, requestOver, statusOf, tlsOver } from '../helpers/raw.js';
import { viaProxy } from '../helpers/client.js';
import { basicAuth } from '../helpers/auth.js';

let origin: Origin;
let proxy: TestProxy;
const extra: TestProxy[] = [];

beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
  proxy = await startProxy(origin.port);
});
afterAll(async () => {
  for (const p of [proxy, ...extra]) await p.close();
  await origin.close();
});

const get = (host: string, path = '/api/machines'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: raw/1\r\nConnection: close\r\n\r\n`;

describe('refusals before any connection', () => {
  it.each([
    ['no port', 'CONNECT api.security.microsoft.com HTTP/1.1\r\nHost: api.security.microsoft.com\r\n\r\n', 400, 'BadRequest'],
    ['an empty port', 'CONNECT api.security.microsoft.com: HTTP/1.1\r\n\r\n', 400, 'BadRequest'],
    ['userinfo in the authority', 'CONNECT user@api.security.microsoft.com:443 HTTP/1.1\r\n\r\n', 400, 'BadRequest'],
    ['an unbracketed IPv6 literal', 'CONNECT ::1:443 HTTP/1.1\r\n\r\n', 400, 'BadRequest'],
    ['a port outside connectPorts', 'CONNECT api.security.microsoft.com:8443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['loopback', 'CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['short-form loopback 127.1', 'CONNECT 127.1:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['decimal loopback 2130706433', 'CONNECT 2130706433:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['hex loopback 0x7f000001', 'CONNECT 0x7f000001:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['IPv6 loopback [::1]', 'CONNECT [::1]:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['IPv4-mapped loopback [::ffff:127.0.0.1]', 'CONNECT [::ffff:127.0.0.1]:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['a private address', 'CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['link-local metadata 169.254.169.254', 'CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
    ['localhost', 'CONNECT localhost:443 HTTP/1.1\r\n\r\n', 403, 'DestinationDenied'],
  ])('refuses a CONNECT with %s', async (_name, request, status, code) => {
    const res = await rawExchange(proxy.port, request);
    expect(statusOf(res)).toBe(status);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code } });
    expect(res).toMatch(/\r\nProxy-Status: mde-partner-proxy; error=/);
  });

  it.each([
    ['http://127.1/', 'DestinationDenied'],
    ['http://2130706433/', 'DestinationDenied'],
    ['http://[::1]/', 'DestinationDenied'],
    ['http://192.168.1.1/', 'DestinationDenied'],
  ])('refuses a plain request to %s', async (url, code) => {
    const res = await rawExchange(proxy.port, `GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(statusOf(res)).toBe(403);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code } });
  });

  it('refuses an origin-form request to the forward listener with 400', async () => {
    const res = await rawExchange(proxy.port, 'GET /api/machines HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest' } });
  });

  it('answers a malformed request line with 400 JSON and keeps serving', async () => {
    const res = await rawExchange(proxy.port, 'GARBAGE\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    const ok = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines');
    expect(ok.status).toBe(200);
  });
});

describe('interception', () => {
  it('accepts an HTTP/1.0 CONNECT without Host (Python\'s form) and rewrites inside', async () => {
    const { socket, head } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.0\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
    const res = await requestOver(tls, get('api.security.microsoft.com'));
    expect(statusOf(res)).toBe(200);
    expect(res).toContain('MdePartner-Contoso-ContosoCognito/1.0.0');
  });

  it('offers only http/1.1 by ALPN, so an h2 client cannot bypass the policy', async () => {
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\nHost: api.security.microsoft.com:443\r\n\r\n');
    const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
    expect(tls.alpnProtocol).toBe('http/1.1');
    tls.destroy();
  });

  it('presents a leaf minted for the CONNECT host, signed by the interception CA', async () => {
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.securitycenter.microsoft.com:443 HTTP/1.1\r\n\r\n');
    const tls = await tlsOver(socket, { servername: 'api.securitycenter.microsoft.com', ca: proxy.caPem });
    const leaf = new X509Certificate(tls.getPeerX509Certificate()!.raw);
    expect(leaf.subjectAltName).toBe('DNS:api.securitycenter.microsoft.com');
    expect(leaf.checkIssued(new X509Certificate(proxy.caPem))).toBe(true);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    tls.destroy();
  });

  it('fails the handshake when the SNI names another host than the CONNECT', async () => {
    const seen = origin.received.length;
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
    await expect(tlsOver(socket, { servername: 'graph.microsoft.com', ca: proxy.caPem })).rejects.toThrow();
    expect(origin.received.length).toBe(seen);
  });

  it('answers 421 when the inner Host names another host than the CONNECT', async () => {
    const seen = origin.received.length;
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
    const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
    const res = await requestOver(tls, get('graph.microsoft.com', '/v1.0/users'));
    expect(statusOf(res)).toBe(421);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'MisdirectedRequest' } });
    expect(origin.received.length).toBe(seen);
  });

  it('answers an HTTP/1.1 request without Host inside a tunnel with 400 JSON and Proxy-Status, and reports it', async () => {
    const seen = origin.received.length;
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
    const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
    const res = await requestOver(tls, 'GET /api/alerts HTTP/1.1\r\nUser-Agent: raw/1\r\nConnection: close\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    expect(res).toMatch(/^proxy-status: mde-partner-proxy; error=http_request_error/im);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'BadRequest' } });
    const e = await proxy.recorder.waitForExchange((x) => x.mode === 'intercept' && x.reason === 'host-header-count');
    expect(e).toMatchObject({ status: 400, error: 'BadRequest' });
    expect(origin.received.length).toBe(seen);
  });

  it('refuses a CONNECT inside an intercepted connection', async () => {
    const { socket } = await openTunnel(proxy.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
    const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: proxy.caPem });
    const res = await requestOver(tls, 'CONNECT graph.microsoft.com:443 HTTP/1.1\r\nHost: graph.microsoft.com:443\r\n\r\n');
    expect(statusOf(res)).toBe(400);
  });

  it('mints one leaf for 100 parallel CONNECTs to one new host', async () => {
    const p = await startProxy(origin.port);
    extra.push(p);
    const results = await Promise.all(Array.from({ length: 100 }, () => viaProxy(p.url, p.caPem, 'https://us.api.security.microsoft.com/api/alerts')));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(p.recorder.issued).toEqual(['us.api.security.microsoft.com']);
  });
});

describe('blind tunnels', () => {
  it('tunnels login.microsoftonline.com untouched: the client sees the origin\'s own certificate', async () => {
    const pki = await testPki();
    const { socket, head } = await openTunnel(proxy.port, 'CONNECT login.microsoftonline.com:443 HTTP/1.1\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const tls = await tlsOver(socket, { servername: 'login.microsoftonline.com', ca: pki.msRoot.certPem });
    const leaf = new X509Certificate(tls.getPeerX509Certificate()!.raw);
    expect(leaf.checkIssued(new X509Certificate(pki.msRoot.certPem))).toBe(true);
    const res = await requestOver(tls, get('login.microsoftonline.com', '/common/oauth2/v2.0/token'));
    expect(statusOf(res)).toBe(200);
    expect(res).toContain('"raw/1"'); // the User-Agent reached the origin unchanged
    tls.destroy();
    const ended = await proxy.recorder.waitForTunnel((e) => e.host === 'login.microsoftonline.com');
    expect(ended).toMatchObject({ action: 'tunnelled', outcome: 'closed', reason: 'token-endpoint', client: '127.0.0.1' });
    // Both directions carried at least a TLS handshake and one request/response.
    expect(ended.bytesFromClient).toBeGreaterThan(200);
    expect(ended.bytesToClient).toBeGreaterThan(res.length);
  });

  it('closes open blind tunnels when the proxy closes', async () => {
    const p = await startProxy(origin.port);
    const { socket } = await openTunnel(p.port, 'CONNECT www.example.org:443 HTTP/1.1\r\n\r\n');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await p.close();
    await closed;
    expect(socket.destroyed).toBe(true);
  });

  it('tunnels other hosts blind by default', async () => {
    const { head, socket } = await openTunnel(proxy.port, 'CONNECT www.example.org:443 HTTP/1.1\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    socket.destroy();
  });

  it('denies other hosts with 403 when otherHosts is deny, and still serves catalogue hosts', async () => {
    const p = await startProxy(origin.port, { otherHosts: 'deny' });
    extra.push(p);
    const res = await rawExchange(p.port, 'CONNECT www.example.org:443 HTTP/1.1\r\n\r\n');
    expect(statusOf(res)).toBe(403);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'DestinationDenied' } });
    const plain = await rawExchange(p.port, 'GET http://www.example.org/ HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n\r\n');
    expect(statusOf(plain)).toBe(403);
    expect(jsonBodyOf(plain)).toMatchObject({ error: { code: 'DestinationDenied' } });
    const tokens = await rawExchange(p.port, 'CONNECT login.microsoftonline.com:443 HTTP/1.1\r\n\r\n', 500);
    expect(statusOf(tokens)).toBe(200);
    const ok = await viaProxy(p.url, p.caPem, 'https://api.security.microsoft.com/api/machines');
    expect(ok.status).toBe(200);
  });

  it('answers 502 when the tunnel destination refuses the connection', async () => {
    const p = await startProxy(origin.port, {}, { extraResolve: { 'www.example.org:443': '127.0.0.1:1' } });
    extra.push(p);
    const res = await rawExchange(p.port, 'CONNECT www.example.org:443 HTTP/1.1\r\n\r\n');
    expect(statusOf(res)).toBe(502);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'UpstreamUnreachable' } });
    // A dial that failed did not tunnel: the event says so, with no payload counted.
    expect(await p.recorder.waitForTunnel(() => true)).toMatchObject({
      action: 'tunnelled', outcome: 'failed', error: 'UpstreamUnreachable', bytesFromClient: 0, bytesToClient: 0,
    });
  });
});

describe('tunnel end events', () => {
  it('reports an intercepted tunnel once, when it closes, with the caller and the bytes each way', async () => {
    const p = await startProxy(origin.port);
    extra.push(p);
    const { socket } = await openTunnel(p.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
    const tls = await tlsOver(socket, { servername: 'api.security.microsoft.com', ca: p.caPem });
    const res = await requestOver(tls, get('api.security.microsoft.com'));
    expect(statusOf(res)).toBe(200);
    expect(p.recorder.tunnels).toEqual([]); // still open: nothing reported yet
    tls.destroy();
    const e = await p.recorder.waitForTunnel(() => true);
    expect(e).toMatchObject({ action: 'intercepted', outcome: 'closed', reason: 'catalogue-host', product: 'cognito', host: 'api.security.microsoft.com', port: 443, client: '127.0.0.1' });
    // The client sent a ClientHello and a request; it received a certificate chain and the response.
    expect(e.bytesFromClient).toBeGreaterThan(get('api.security.microsoft.com').length);
    expect(e.bytesToClient).toBeGreaterThan(res.length);
    expect(e.durationMs).toBeGreaterThan(0);
    expect(p.recorder.tunnels).toHaveLength(1);
    // The exchange inside names the same caller.
    expect((await p.recorder.waitForExchanges(1))[0]).toMatchObject({ mode: 'intercept', client: '127.0.0.1' });
  });

  it('reports a denied CONNECT at once, with its reason', async () => {
    const before = proxy.recorder.tunnels.length;
    const res = await rawExchange(proxy.port, 'CONNECT 10.9.9.9:443 HTTP/1.1\r\n\r\n');
    expect(statusOf(res)).toBe(403);
    expect(proxy.recorder.tunnels.slice(before)).toEqual([expect.objectContaining({
      action: 'denied', outcome: 'denied', reason: 'private-destination', error: 'DestinationDenied', bytesFromClient: 0, bytesToClient: 0,
    })]);
  });
});

describe('a faulty observer', () => {
  it('never reaches the request path: requests and tunnels are served while every event throws', async () => {
    const boom = (): never => { throw new Error('observer fault'); };
    const p = await startProxy(origin.port, {}, {
      observer: { exchangeEnd: boom, tunnelEnd: boom, connectionOpen: boom, connectionClose: boom, certificateIssued: boom, upstreamError: boom },
    });
    extra.push(p);
    const ok = await viaProxy(p.url, p.caPem, 'https://api.security.microsoft.com/api/machines');
    expect(ok.status).toBe(200);
    const denied = await rawExchange(p.port, 'CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n');
    expect(statusOf(denied)).toBe(403);
    const again = await viaProxy(p.url, p.caPem, 'https://api.security.microsoft.com/api/alerts');
    expect(again.status).toBe(200);
  });
});

describe('proxy credentials', () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startProxy(origin.port, {
      products: [
        { id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', credentials: { username: 'cognito', password: 's3cret' } },
        { id: 'scanner', company: 'Fabrikam', product: 'Scanner', version: '2.1', credentials: { username: 'scanner', password: 'other' } },
      ],
    });
    extra.push(p);
  });

  it('answers 407 with Proxy-Authenticate when credentials are missing', async () => {
    const res = await rawExchange(p.port, 'CONNECT api.security.microsoft.com:443 HTTP/1.1\r\n\r\n');
    expect(statusOf(res)).toBe(407);
    expect(res).toMatch(/\r\nproxy-authenticate: Basic realm="mde-partner-proxy"/i);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'ProxyAuthenticationRequired' } });
  });

  it('answers 407 for a wrong password', async () => {
    const res = await rawExchange(p.port, `CONNECT api.security.microsoft.com:443 HTTP/1.1\r\nProxy-Authorization: ${basicAuth('cognito', 'nope')}\r\n\r\n`);
    expect(statusOf(res)).toBe(407);
  });

  it('binds each caller to its product by user name', async () => {
    const a = await viaProxy(p.url, p.caPem, 'https://api.security.microsoft.com/api/machines', { token: basicAuth('cognito', 's3cret') });
    const b = await viaProxy(p.url, p.caPem, 'https://api.security.microsoft.com/api/machines', { token: basicAuth('scanner', 'other') });
    expect(a.echo!.rawHeaders).toContain('MdePartner-Contoso-ContosoCognito/1.0.0');
    expect(b.echo!.rawHeaders).toContain('MdePartner-Fabrikam-Scanner/2.1');
    expect(a.echo!.rawHeaders.map((h) => h.toLowerCase())).not.toContain('proxy-authorization');
  });

  it('answers 407 on a plain http request without credentials', async () => {
    const res = await rawExchange(p.port, 'GET http://api.security.microsoft.com/api/machines HTTP/1.1\r\nHost: api.security.microsoft.com\r\nConnection: close\r\n\r\n');
    expect(statusOf(res)).toBe(407);
  });
});
