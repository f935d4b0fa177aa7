// CONNECT host:80 to an enforced host: the tunnel runs the same HTTP layer as an intercepted TLS
// tunnel, without TLS (undici's EnvHttpProxyAgent and ProxyAgent tunnel every http:// request).
import { EnvHttpProxyAgent, ProxyAgent, request } from 'undici';
import { headerValues, startOrigin, type Origin } from '../helpers/origin.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pythonWithRequests, run } from '../helpers/child.js';
import { jsonBodyOf, openTunnel, rawExchange, requestOver, statusOf } from '../helpers/raw.js';

const PARTNER_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const PLAIN_HOST = 'plain-api.fabrikam.test';

let plainOrigin: Origin;
let proxy: TestProxy;

beforeAll(async () => {
  plainOrigin = await startOrigin();
  proxy = await startProxy(plainOrigin.port, { extraHosts: [PLAIN_HOST] }, {
    extraResolve: { [`${PLAIN_HOST}:80`]: `127.0.0.1:${plainOrigin.port}`, 'www.example.org:80': `127.0.0.1:${plainOrigin.port}` },
  });
});
afterAll(async () => {
  await proxy.close();
  await plainOrigin.close();
});

/** The User-Agent values the plain origin received in its last request. */
const lastUserAgents = (): string[] => headerValues(plainOrigin.last().rawHeaders, 'user-agent');

describe('plain HTTP inside a CONNECT tunnel', () => {
  it('gives the partner User-Agent to a request sent by undici EnvHttpProxyAgent (CONNECT host:80)', async () => {
    const dispatcher = new EnvHttpProxyAgent({ httpProxy: proxy.url, httpsProxy: proxy.url, noProxy: '' });
    try {
      const res = await request(`http://${PLAIN_HOST}/api/machines?top=1`, { dispatcher, headers: { 'user-agent': 'node-app/2.0' } });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    } finally {
      await dispatcher.close();
    }
    expect(plainOrigin.last().url).toBe('/api/machines?top=1');
    expect(lastUserAgents()).toEqual([PARTNER_UA]);
    const tunnel = await proxy.recorder.waitForTunnel((t) => t.host === PLAIN_HOST && t.port === 80);
    expect(tunnel).toMatchObject({ action: 'intercepted', reason: 'plain-http-tunnel' });
    expect(proxy.recorder.exchanges.at(-1)).toMatchObject({ mode: 'intercept', host: PLAIN_HOST, action: 'rewritten', api: 'machines' });
  });

  it('gives the partner User-Agent to a request sent by undici ProxyAgent with its default tunnelling', async () => {
    const dispatcher = new ProxyAgent({ uri: proxy.url });
    try {
      const res = await request(`http://${PLAIN_HOST}/api/alerts`, { dispatcher });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    } finally {
      await dispatcher.close();
    }
    expect(plainOrigin.last().url).toBe('/api/alerts');
    expect(lastUserAgents()).toEqual([PARTNER_UA]);
  });

  it('serves several keep-alive requests in one plain tunnel, each with the partner User-Agent', async () => {
    const dispatcher = new ProxyAgent({ uri: proxy.url });
    const seen = plainOrigin.received.length;
    try {
      for (const path of ['/api/machines', '/api/alerts', '/api/indicators']) {
        const res = await request(`http://${PLAIN_HOST}${path}`, { dispatcher, headers: { 'user-agent': 'curl/8' } });
        expect(res.statusCode).toBe(200);
        await res.body.text();
      }
    } finally {
      await dispatcher.close();
    }
    const got = plainOrigin.received.slice(seen);
    expect(got.map((r) => r.url)).toEqual(['/api/machines', '/api/alerts', '/api/indicators']);
    for (const r of got) expect(headerValues(r.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  });

  it('answers two pipelined requests in one plain tunnel in order (RFC 9112 §9.3.2)', async () => {
    const { socket, head } = await openTunnel(proxy.port, `CONNECT ${PLAIN_HOST}:80 HTTP/1.1\r\nHost: ${PLAIN_HOST}:80\r\n\r\n`);
    expect(statusOf(head)).toBe(200);
    const seen = plainOrigin.received.length;
    try {
      const res = await requestOver(socket,
        `GET /api/machines HTTP/1.1\r\nHost: ${PLAIN_HOST}\r\nUser-Agent: curl/8\r\n\r\n` +
        `GET /api/alerts HTTP/1.1\r\nHost: ${PLAIN_HOST}\r\nConnection: close\r\n\r\n`);
      expect(res.match(/HTTP\/1\.1 \d{3} /g)).toEqual(['HTTP/1.1 200 ', 'HTTP/1.1 200 ']);
    } finally {
      socket.destroy();
    }
    const got = plainOrigin.received.slice(seen);
    expect(got.map((r) => r.url)).toEqual(['/api/machines', '/api/alerts']);
    for (const r of got) expect(headerValues(r.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  });

  it('answers 421 when the inner Host names another authority than the CONNECT', async () => {
    const { socket, head } = await openTunnel(proxy.port, `CONNECT ${PLAIN_HOST}:80 HTTP/1.1\r\nHost: ${PLAIN_HOST}:80\r\n\r\n`);
    expect(statusOf(head)).toBe(200);
    const seen = plainOrigin.received.length;
    try {
      const res = await requestOver(socket, 'GET /api/machines HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n\r\n');
      expect(statusOf(res)).toBe(421);
      expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'MisdirectedRequest' } });
    } finally {
      socket.destroy();
    }
    expect(plainOrigin.received.length).toBe(seen);
  });

  it('refuses a TLS ClientHello on a plain tunnel with a TLS alert and never forwards it', async () => {
    const { socket, head } = await openTunnel(proxy.port, `CONNECT ${PLAIN_HOST}:80 HTTP/1.1\r\nHost: ${PLAIN_HOST}:80\r\n\r\n`);
    expect(statusOf(head)).toBe(200);
    const seen = plainOrigin.received.length;
    // A TLS 1.2 record header of a ClientHello; the proxy must look at the first byte only.
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03]);
    const answer = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.write(hello);
    });
    // Fatal (2) handshake_failure (40) alert record.
    expect([...answer]).toEqual([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    expect(plainOrigin.received.length).toBe(seen);
    const tunnel = await proxy.recorder.waitForTunnel((t) => t.host === PLAIN_HOST && t.error === 'PlainHttpExpected');
    expect(tunnel).toMatchObject({ action: 'intercepted', outcome: 'failed' });
  });

  it('keeps connectPorts for a CONNECT to a host that is not enforced on port 80', async () => {
    const res = await rawExchange(proxy.port, 'CONNECT www.example.org:80 HTTP/1.1\r\nHost: www.example.org:80\r\n\r\n');
    expect(statusOf(res)).toBe(403);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'DestinationDenied', message: expect.stringContaining('connectPorts') as string } });
  });

  it('still refuses a loopback destination on port 80', async () => {
    const res = await rawExchange(proxy.port, 'CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n');
    expect(statusOf(res)).toBe(403);
    expect(jsonBodyOf(res)).toMatchObject({ error: { code: 'DestinationDenied' } });
  });
});

describe('real clients reach a plain-HTTP extraHosts origin with the partner User-Agent', () => {
  const url = `http://${PLAIN_HOST}/api/machines`;
  const expectPartnerUa = (before: number): void => {
    expect(plainOrigin.received.length).toBe(before + 1);
    expect(plainOrigin.last().url).toBe('/api/machines');
    expect(lastUserAgents()).toEqual([PARTNER_UA]);
  };

  it('curl (absolute-form)', async () => {
    const before = plainOrigin.received.length;
    const r = await run('curl', ['-sS', '--fail-with-body', '-x', proxy.url, '-A', 'curl/8', url]);
    expect(r.code).toBe(0);
    expectPartnerUa(before);
  });

  it('curl --proxytunnel (CONNECT host:80)', async () => {
    const before = plainOrigin.received.length;
    const r = await run('curl', ['-sS', '--fail-with-body', '-p', '-x', proxy.url, url]);
    expect(r.code).toBe(0);
    expectPartnerUa(before);
  });

  it('Python requests (absolute-form)', async () => {
    const before = plainOrigin.received.length;
    const script = 'import sys, requests\nr = requests.get(sys.argv[1], proxies={"http": sys.argv[2]}, timeout=10)\nprint(r.status_code)';
    const r = await run(pythonWithRequests(), ['-c', script, url, proxy.url]);
    expect(r.stdout.trim()).toBe('200');
    expectPartnerUa(before);
  });

  it('Python httpx (absolute-form)', async () => {
    const before = plainOrigin.received.length;
    // httpx 0.26+ takes proxy=, older releases (Debian 12 ships 0.23) proxies=.
    const script = [
      'import sys, httpx',
      'try:\n    c = httpx.Client(proxy=sys.argv[2], timeout=10)',
      'except TypeError:\n    c = httpx.Client(proxies={"http://": sys.argv[2]}, timeout=10)',
      'print(c.get(sys.argv[1]).status_code)',
    ].join('\n');
    const r = await run('/usr/bin/python3', ['-c', script, url, proxy.url]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('200');
    expectPartnerUa(before);
  });

  it('Java HttpClient (absolute-form)', async () => {
    const before = plainOrigin.received.length;
    const dir = mkdtempSync(join(tmpdir(), 'mpp-java-'));
    const source = join(dir, 'Plain.java');
    writeFileSync(source, [
      'import java.net.*; import java.net.http.*;',
      'public class Plain { public static void main(String[] a) throws Exception {',
      '  URI p = URI.create(a[1]);',
      '  HttpClient c = HttpClient.newBuilder().proxy(ProxySelector.of(new InetSocketAddress(p.getHost(), p.getPort()))).build();',
      '  HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create(a[0])).build(), HttpResponse.BodyHandlers.ofString());',
      '  System.out.println(r.statusCode()); } }',
    ].join('\n'));
    const r = await run('java', [source, url, proxy.url], { timeoutMs: 60_000 });
    expect(r.stdout.trim()).toBe('200');
    expectPartnerUa(before);
  }, 70_000);
});

