// The policy on the wire: what the origin receives, per mode and per kind of traffic.
import { startOrigin, headerValues, type Origin } from '../helpers/origin.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { testPki } from '../helpers/pki.js';
import { viaProxy } from '../helpers/client.js';
import { basicAuth } from '../helpers/auth.js';

const PARTNER_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
let origin: Origin;
const proxies: TestProxy[] = [];

async function proxyWith(doc: Record<string, unknown> = {}): Promise<TestProxy> {
  const p = await startProxy(origin.port, doc);
  proxies.push(p);
  return p;
}

beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  await origin.close();
});

describe('rewrite mode (default, replace)', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await proxyWith();
  });
  const uaAt = async (url: string, ua?: string): Promise<string[]> => {
    const r = await viaProxy(proxy.url, proxy.caPem, url, { headers: ua === undefined ? {} : { 'user-agent': ua } });
    expect(r.status).toBe(200);
    return headerValues(r.echo!.rawHeaders, 'user-agent');
  };

  it.each([
    ['no User-Agent', undefined, [PARTNER_UA]],
    ['a library User-Agent', 'python-requests/2.32.3', [PARTNER_UA]],
    ['another product\'s partner token', 'MdePartner-Fabrikam-Scanner/2.0', [PARTNER_UA]],
    ['the legacy MdatpPartner form (upgraded)', 'MdatpPartner-Contoso-ContosoCognito/1.0.0', [PARTNER_UA]],
    ['the legacy M365DPartner form (upgraded)', 'M365DPartner-Contoso-ContosoCognito/1.0.0', [PARTNER_UA]],
    ['a compliant User-Agent with another version (unchanged)', 'MdePartner-Contoso-ContosoCognito/2.5.1', ['MdePartner-Contoso-ContosoCognito/2.5.1']],
    ['a compliant User-Agent followed by other tokens (unchanged)', `${PARTNER_UA} python-requests/2.32.3`, [`${PARTNER_UA} python-requests/2.32.3`]],
  ])('sends the right User-Agent for %s', async (_name, ua, expected) => {
    expect(await uaAt('https://api.security.microsoft.com/api/alerts', ua)).toEqual(expected);
  });

  it('rewrites the User-Agent on a Graph security path', async () => {
    expect(await uaAt('https://graph.microsoft.com/v1.0/security/alerts_v2?$top=5', 'python-requests/2.32.3')).toEqual([PARTNER_UA]);
    expect(await uaAt('https://graph.microsoft.com/beta/security/runHuntingQuery', 'curl/8')).toEqual([PARTNER_UA]);
  });

  it('passes another Graph path unchanged and does not count it as an API call', async () => {
    const before = proxy.recorder.exchanges.length;
    expect(await uaAt('https://graph.microsoft.com/v1.0/users', 'python-requests/2.32.3')).toEqual(['python-requests/2.32.3']);
    const e = (await proxy.recorder.waitForExchanges(before + 1))[before]!;
    expect(e.action).toBe('passed');
  });

  it('rewrites on a geo host of the catalogue', async () => {
    expect(await uaAt('https://us.api.security.microsoft.com/api/incidents', 'x/1')).toEqual([PARTNER_UA]);
  });

  it('never forwards Proxy-Authorization, X-Forwarded-For or Forwarded', async () => {
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines', {
      headers: { 'x-forwarded-for': '10.1.2.3', forwarded: 'for=10.1.2.3', authorization: 'Bearer abc' },
      token: basicAuth('user', 'pass'),
    });
    const raw = r.echo!.rawHeaders;
    expect(headerValues(raw, 'proxy-authorization')).toEqual([]);
    expect(headerValues(raw, 'x-forwarded-for')).toEqual([]);
    expect(headerValues(raw, 'forwarded')).toEqual([]);
    // The bearer token is the caller's business with Microsoft and passes through.
    expect(headerValues(raw, 'authorization')).toEqual(['Bearer abc']);
  });

  it('records a rewritten exchange with its product, api label and reason', async () => {
    const before = proxy.recorder.exchanges.length;
    await uaAt('https://api.securitycenter.microsoft.com/api/machines/abc/isolate', 'x/1');
    const e = (await proxy.recorder.waitForExchanges(before + 1))[before]!;
    expect(e).toMatchObject({ product: 'cognito', api: 'machines', action: 'rewritten', reason: 'non-partner-user-agent', status: 200, mode: 'intercept' });
  });
});

describe('rewrite: prepend', () => {
  it('keeps the original User-Agent after the partner token', async () => {
    const proxy = await proxyWith({ policy: { mode: 'rewrite', rewrite: 'prepend' } });
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/alerts', { headers: { 'user-agent': 'python-requests/2.32.3' } });
    expect(headerValues(r.echo!.rawHeaders, 'user-agent')).toEqual([`${PARTNER_UA} python-requests/2.32.3`]);
  });
});

describe('reject mode', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await proxyWith({ policy: { mode: 'reject' } });
  });

  it('answers 403 PartnerUserAgentRequired naming the expected User-Agent and never contacts Microsoft', async () => {
    const seen = origin.received.length;
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'python-requests/2.32.3' } });
    expect(r.status).toBe(403);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['proxy-status']).toMatch(/^mde-partner-proxy; error=http_request_denied/);
    const body = JSON.parse(r.text) as { error: { code: string; message: string; target: string } };
    expect(body.error.code).toBe('PartnerUserAgentRequired');
    expect(body.error.target).toBe('User-Agent');
    expect(body.error.message).toContain(PARTNER_UA);
    expect(origin.received.length).toBe(seen);
  });

  it('forwards a compliant request unchanged', async () => {
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'MdePartner-Contoso-ContosoCognito/9.9' } });
    expect(r.status).toBe(200);
    expect(headerValues(r.echo!.rawHeaders, 'user-agent')).toEqual(['MdePartner-Contoso-ContosoCognito/9.9']);
  });
});

describe('audit mode', () => {
  it('forwards unchanged and records what it would have done', async () => {
    const proxy = await proxyWith({ policy: { mode: 'audit' } });
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'python-requests/2.32.3' } });
    expect(r.status).toBe(200);
    expect(headerValues(r.echo!.rawHeaders, 'user-agent')).toEqual(['python-requests/2.32.3']);
    const [e] = await proxy.recorder.waitForExchanges(1);
    expect(e).toMatchObject({ action: 'audited', reason: 'non-partner-user-agent' });
  });
});

describe('upstream failures', () => {
  it('answers 502 UpstreamTlsError when the upstream certificate is not trusted, never a silent pass', async () => {
    const rogue = await startOrigin((await testPki()).rogueIssuer);
    try {
      const proxy = await proxyWith({ upstream: { resolve: { 'api.security.microsoft.com:443': `127.0.0.1:${rogue.port}` } } });
      const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines');
      expect(r.status).toBe(502);
      expect(JSON.parse(r.text)).toMatchObject({ error: { code: 'UpstreamTlsError' } });
      expect(r.headers['proxy-status']).toMatch(/error=tls_certificate_error/);
      expect(rogue.received).toHaveLength(0);
      expect(proxy.recorder.upstreamErrors).toEqual(['UpstreamTlsError']);
    } finally {
      await rogue.close();
    }
  });

  it('answers 502 UpstreamUnreachable when nothing listens upstream', async () => {
    const proxy = await proxyWith({ upstream: { resolve: { 'api.security.microsoft.com:443': '127.0.0.1:1' } } });
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines');
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text)).toMatchObject({ error: { code: 'UpstreamUnreachable' } });
  });

  it('answers 504 UpstreamTimeout when the upstream is slower than timeouts.upstream', async () => {
    const proxy = await proxyWith({ timeouts: { upstream: 200 } });
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/slow/2000');
    expect(r.status).toBe(504);
    expect(JSON.parse(r.text)).toMatchObject({ error: { code: 'UpstreamTimeout' } });
  });

  it('relays the origin\'s own 429 with its Retry-After', async () => {
    const proxy = await proxyWith();
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/status/429');
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('1');
  });
});

describe('response relay', () => {
  it.each([
    ['a small response (held and sent in one write)', 1_000],
    ['a large response (streamed)', 300_000],
  ])('relays %s byte for byte', async (_name, size) => {
    const proxy = await proxyWith();
    const body = 'x'.repeat(size);
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/indicators/import', { method: 'POST', body });
    expect(r.status).toBe(200);
    expect(r.echo!.body).toBe(body);
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.text));
  });
});
