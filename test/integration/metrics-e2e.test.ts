// Metrics end to end: the real proxy, the real metrics observer and the real admin server. A known
// set of requests goes through the proxy with undici; the scrape over HTTP must show exactly those
// counts with exactly those labels. A flood of random requests must not add label values.
// (A real Prometheus server scraping the admin port is test/integration/prometheus.test.ts.)
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { ProxyAgent, request } from 'undici';
import { createAdminServer, type AdminServer } from '../../src/admin.js';
import { API_LABELS } from '../../src/catalogue.js';
import { buildConfig } from '../../src/config.js';
import { combineObservers } from '../../src/events.js';
import { METHOD_LABELS, REQUEST_ACTIONS, UNREGISTERED_PRODUCT, createMetrics } from '../../src/metrics.js';
import { createProxy, type ProxyServer } from '../../src/server.js';
import { viaProxy, type ProxiedResponse } from '../helpers/client.js';
import { headerValues, startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';
import { promtoolLint } from '../helpers/prometheus.js';
import { createPrng } from '../helpers/prng.js';
import { testConfigDoc } from '../helpers/proxy.js';
import { openTunnel, statusOf } from '../helpers/raw.js';
import { createRecorder, type Recorder } from '../helpers/recorder.js';
import { parseScrape, sumOf, type Sample } from '../helpers/scrape.js';

const PARTNER_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const P = 'mde_partner_proxy_';
// A catalogue host that upstream.resolve sends to a port nobody listens on: every call is a 502.
const DEAD_HOST = 'api-eu.securitycenter.microsoft.com';

/** `a=1,b=2 value` lines for one metric, label order as given, sorted. */
function seriesOf(samples: readonly Sample[], name: string, labelOrder: readonly string[]): string[] {
  return samples
    .filter((s) => s.name === `${P}${name}`)
    .map((s) => `${labelOrder.map((k) => `${k}=${s.labels[k] ?? '?'}`).join(',')} ${s.value}`)
    .sort();
}

let origin: Origin;
let proxy: ProxyServer;
let admin: AdminServer;
let recorder: Recorder;
let proxyUrl: string;
let caPem: string;
let metricsUrl: string;
let doc: Record<string, unknown>;

async function scrape(): Promise<{ status: number; contentType: string; text: string; samples: Sample[] }> {
  const res = await request(metricsUrl);
  const text = await res.body.text();
  return { status: res.statusCode, contentType: String(res.headers['content-type']), text, samples: parseScrape(text) };
}

/** Switches the running proxy to another policy mode (the CLI does the same on SIGHUP). */
function setMode(mode: 'rewrite' | 'reject' | 'audit'): void {
  proxy.reload(buildConfig({ ...doc, policy: { mode } }, { source: 'test', baseDir: process.cwd() }));
}

beforeAll(async () => {
  const pki = await testPki();
  origin = await startOrigin(pki.msIssuer);
  doc = await testConfigDoc(origin.port, {}, { [`${DEAD_HOST}:443`]: '127.0.0.1:1' });
  const config = buildConfig(doc, { source: 'test', baseDir: process.cwd() });
  recorder = createRecorder();
  // runProxy's (src/server.ts) options without `usage` (test/unit/usage/usage-metrics.test.ts covers those
  // metrics); the upstream error codes left at their default.
  const metrics = createMetrics({ registry: new Registry(), products: config.policy.products.map((p) => p.id), apiLabels: API_LABELS, version: VERSION });
  proxy = await createProxy(config, { observer: combineObservers(metrics.observer, recorder) });
  const { proxy: addr } = await proxy.listen();
  proxyUrl = `http://127.0.0.1:${addr.port}`;
  caPem = readFileSync(proxy.ca.certFile, 'utf8');
  admin = createAdminServer({ registry: metrics.registry });
  const adminAddr = await admin.listen(0, '127.0.0.1');
  admin.setReady(true);
  metricsUrl = `http://127.0.0.1:${adminAddr.port}/metrics`;
});

afterAll(async () => {
  await admin?.close();
  await proxy?.close();
  await origin?.close();
});

describe('a known set of requests', () => {
  const get = (url: string, ua?: string, method = 'GET') =>
    viaProxy(proxyUrl, caPem, url, { method, headers: ua === undefined ? {} : { 'user-agent': ua } });
  /** The answers to the known requests, by name; the tests below check them and the scrape. */
  const answers = new Map<string, ProxiedResponse>();
  const answer = (name: string): ProxiedResponse => {
    const r = answers.get(name);
    if (r === undefined) throw new Error(`no answer recorded for ${name}`);
    return r;
  };
  const deniedConnects: Array<[string, number]> = [];
  let originCalls = { beforeReject: 0, afterReject: 0 };

  beforeAll(async () => {
    // rewrite mode (the default)
    answers.set('compliant', await get('https://api.security.microsoft.com/api/machines', PARTNER_UA));
    answers.set('rewritten', await get('https://api.security.microsoft.com/api/machines', 'python-requests/2.32.3'));
    answers.set('graph', await get('https://graph.microsoft.com/v1.0/security/alerts_v2?$top=1', 'python-requests/2.32.3'));
    answers.set('no-ua-post', await get('https://api.security.microsoft.com/api/advancedqueries/run', undefined, 'POST'));
    answers.set('throttled', await get('https://api.security.microsoft.com/status/429', 'curl/8.5.0'));
    answers.set('dead-host', await get(`https://${DEAD_HOST}/api/alerts`, 'python-requests/2.32.3'));
    answers.set('graph-other', await get('https://graph.microsoft.com/v1.0/users', 'python-requests/2.32.3'));

    // A blind tunnel: the client sees the origin's own certificate.
    const pki = await testPki();
    answers.set('blind', await viaProxy(proxyUrl, pki.msRoot.certPem, 'https://login.microsoftonline.com/common/oauth2/v2.0/token', { headers: { 'user-agent': 'python-requests/2.32.3' } }));

    // Two denied CONNECTs: a private address and a port outside access.connectPorts.
    for (const authority of ['10.0.0.1:443', 'api.security.microsoft.com:8443']) {
      const { socket, head } = await openTunnel(Number(new URL(proxyUrl).port), `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      socket.destroy();
      deniedConnects.push([authority, statusOf(head)]);
    }

    setMode('reject');
    const beforeReject = origin.received.length;
    answers.set('rejected', await get('https://api.security.microsoft.com/api/machines', 'python-requests/2.32.3'));
    originCalls = { beforeReject, afterReject: origin.received.length };
    answers.set('reject-mode-compliant', await get('https://api.security.microsoft.com/api/machines', PARTNER_UA));

    setMode('audit');
    answers.set('audited', await get('https://api.security.microsoft.com/api/incidents', 'curl/8.5.0'));
    setMode('rewrite');

    // Events fire when the response closes, which can trail the client by a tick.
    await recorder.waitForExchanges(10);
    // Tunnels report when they close: 10 intercepted, 1 blind, 2 denied.
    await recorder.waitForTunnel(() => recorder.tunnels.length >= 13);
  });

  it('answers each known request as the policy says', () => {
    const statuses = [...answers].map(([name, r]) => `${name} ${r.status}`);
    expect(statuses).toEqual([
      'compliant 200', 'rewritten 200', 'graph 200', 'no-ua-post 200', 'throttled 429', 'dead-host 502', 'graph-other 200',
      'blind 200', 'rejected 403', 'reject-mode-compliant 200', 'audited 200',
    ]);
    expect(answer('throttled').headers['retry-after']).toBe('1');
    expect(JSON.parse(answer('dead-host').text)).toMatchObject({ error: { code: 'UpstreamUnreachable' } });
    expect(JSON.parse(answer('rejected').text)).toMatchObject({ error: { code: 'PartnerUserAgentRequired', target: 'User-Agent' } });
  });

  it('sends the User-Agent each mode and route calls for', () => {
    const seen = (name: string): string[] => headerValues(answer(name).echo!.rawHeaders, 'user-agent');
    expect(seen('rewritten')).toEqual([PARTNER_UA]);
    expect(seen('graph-other')).toEqual(['python-requests/2.32.3']); // not a security API
    expect(seen('blind')).toEqual(['python-requests/2.32.3']); // a blind tunnel is not touched
    expect(seen('audited')).toEqual(['curl/8.5.0']);
  });

  it('denies the CONNECTs to a private address and to a port outside access.connectPorts', () => {
    expect(deniedConnects).toEqual([['10.0.0.1:443', 403], ['api.security.microsoft.com:8443', 403]]);
  });

  it('never contacts Microsoft for a rejected request', () => {
    expect(originCalls.afterReject).toBe(originCalls.beforeReject);
  });

  it('counts requests_total exactly, with product, api, method, code and action', async () => {
    const { samples } = await scrape();
    expect(seriesOf(samples, 'requests_total', ['product', 'api', 'method', 'code', 'action'])).toEqual([
      'product=cognito,api=advancedqueries,method=POST,code=200,action=rewritten 1',
      'product=cognito,api=alerts,method=GET,code=502,action=rewritten 1',
      'product=cognito,api=incidents,method=GET,code=200,action=audited 1',
      'product=cognito,api=machines,method=GET,code=200,action=compliant 2',
      'product=cognito,api=machines,method=GET,code=200,action=rewritten 1',
      'product=cognito,api=machines,method=GET,code=403,action=rejected 1',
      'product=cognito,api=other,method=GET,code=429,action=rewritten 1',
      'product=cognito,api=security.alerts_v2,method=GET,code=200,action=rewritten 1',
    ]);
  });

  it('counts tunnels by action: intercepted, tunnelled and denied', async () => {
    const { samples } = await scrape();
    expect(seriesOf(samples, 'tunnels_total', ['action'])).toEqual(['action=denied 2', 'action=intercepted 10', 'action=tunnelled 1']);
  });

  it('counts the upstream failure under its stable code and nothing else', async () => {
    const { samples } = await scrape();
    const nonZero = seriesOf(samples, 'upstream_errors_total', ['code']).filter((s) => !s.endsWith(' 0'));
    expect(nonZero).toEqual(['code=UpstreamUnreachable 1']);
  });

  it('counts one certificate per intercepted host', async () => {
    const { samples } = await scrape();
    // api.security.microsoft.com, graph.microsoft.com and the dead host; the blind tunnel mints none.
    expect(seriesOf(samples, 'certificates_issued_total', [])).toEqual([' 3']);
  });

  it('observes durations for every counted request that left the proxy, rejected ones excluded', async () => {
    const { samples } = await scrape();
    expect(seriesOf(samples, 'request_duration_seconds_count', ['product', 'api'])).toEqual([
      'product=cognito,api=advancedqueries 1',
      'product=cognito,api=alerts 1',
      'product=cognito,api=incidents 1',
      'product=cognito,api=machines 3',
      'product=cognito,api=other 1',
      'product=cognito,api=security.alerts_v2 1',
    ]);
  });

  it('exports build_info with the package version', async () => {
    const { samples } = await scrape();
    expect(seriesOf(samples, 'build_info', ['version', 'node'])).toEqual([`version=${VERSION},node=${process.version} 1`]);
  });

  it('returns open_connections to zero once the clients have gone', async () => {
    const deadline = Date.now() + 5000;
    let value: string[] = [];
    while (Date.now() < deadline) {
      value = seriesOf((await scrape()).samples, 'open_connections', []);
      if (value[0] === ' 0') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(value).toEqual([' 0']);
  });

  it('serves a scrape that promtool accepts', async () => {
    const { status, contentType, text } = await scrape();
    expect([status, contentType]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8']);
    // prom-client's default metrics carry the known lints (exit 3); anything else is a finding.
    const lint = await promtoolLint(text);
    expect(lint.problems).toEqual([]);
    expect(lint.code).toBe(lint.known.length > 0 ? 3 : 0);
  });
});

describe('a flood of random requests', () => {
  const MARK = 'zqflood';
  const prng = createPrng();
  const rnd = (n: number): string => prng.hex(n);
  const HOSTS = ['api.security.microsoft.com', 'us.api.security.microsoft.com', 'api.securitycenter.microsoft.com', 'graph.microsoft.com'];
  // Node's HTTP parser accepts only registered methods; the odd ones must land in 'other'.
  const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'PROPFIND', 'PURGE', 'MKCOL', 'REPORT', 'SEARCH'];
  const PATHS = [
    () => `/api/${MARK}${rnd(4)}`,
    () => `/api/machines/${MARK}${rnd(8)}/isolate`,
    () => `/api/v1.0/${MARK}${rnd(3)}?$filter=${MARK}`,
    () => `/${MARK}/${rnd(6)}`,
    () => `/v1.0/security/${MARK}${rnd(4)}`,
    () => `/beta/security/alerts_v2('${MARK}${rnd(4)}')`,
    () => `/v1.0/${MARK}${rnd(2)}`,
    () => `/API/Alerts/${MARK}%2F..%2F${rnd(2)}`,
    () => `//v1.0//security//incidents/${MARK}`,
  ];
  const UAS = [
    () => `${MARK}/${rnd(3)}`,
    () => `MdePartner-${MARK}-${rnd(3)}/9.9`,
    () => `MdePartner-Contoso-ContosoCognito/${MARK}${rnd(2)}`,
    () => `Mozilla/5.0 (${MARK} ${rnd(10)})`,
    () => `M365DPartner-Contoso-ContosoCognito/1.0.0 ${MARK}`,
    () => undefined,
  ];

  it(`adds no label values outside the bounded sets and no raw path, host or User-Agent (seed ${prng.seed})`, async () => {
    const startedAt = recorder.exchanges.length;
    const total = 300;
    // Drawn up front, so the same seed sends the same requests whatever order the workers run in.
    const flood = Array.from({ length: total }, () => {
      const ua = prng.pick(UAS)();
      return { url: `https://${prng.pick(HOSTS)}${prng.pick(PATHS)()}`, method: prng.pick(METHODS), headers: ua === undefined ? {} : { 'user-agent': ua } };
    });
    const connects = Array.from({ length: 5 }, (_, i) => `10.${i}.${prng.int(256)}.${prng.int(256)}:${1 + prng.int(256)}`);
    const dispatcher = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: caPem } });
    try {
      const queue = [...flood];
      const worker = async (): Promise<void> => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          const res = await request(next.url, { dispatcher, method: next.method as 'GET', headers: next.headers });
          await res.body.dump();
        }
      };
      await Promise.all(Array.from({ length: 20 }, worker));
      // A few CONNECTs to random private addresses and ports: denied, counted only as tunnels.
      for (const authority of connects) {
        const { socket, head } = await openTunnel(Number(new URL(proxyUrl).port), `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
        socket.destroy();
        expect([authority, statusOf(head)]).toEqual([authority, 403]);
      }
    } finally {
      await dispatcher.close();
    }
    const events = (await recorder.waitForExchanges(startedAt + total)).slice(startedAt);
    const counted = events.filter((e) => e.action !== 'passed').length;
    expect(counted).toBeGreaterThan(0);

    const { text, samples } = await scrape();
    const allowed: Record<string, ReadonlySet<string>> = {
      product: new Set(['cognito', UNREGISTERED_PRODUCT]),
      api: new Set(API_LABELS),
      method: new Set([...METHOD_LABELS, 'other']),
      action: new Set(REQUEST_ACTIONS),
    };
    const requests = samples.filter((s) => s.name === `${P}requests_total`);
    const outside: string[] = [];
    for (const s of requests) {
      for (const [k, set] of Object.entries(allowed)) if (!set.has(s.labels[k] ?? '')) outside.push(`${k}=${s.labels[k]}`);
      if (!/^[1-5]\d\d$/.test(s.labels['code'] ?? '')) outside.push(`code=${s.labels['code']}`);
    }
    for (const s of samples.filter((x) => x.name.startsWith(`${P}request_duration_seconds`))) {
      if (!allowed.product!.has(s.labels['product'] ?? '') || !allowed.api!.has(s.labels['api'] ?? '')) outside.push(JSON.stringify(s.labels));
    }
    expect(outside).toEqual([]);
    // The flood did reach the catch-alls (odd methods, unknown collections) rather than new values.
    expect(requests.some((s) => s.labels['method'] === 'other') && requests.some((s) => s.labels['api'] === 'other')).toBe(true);
    // Every counted exchange landed in requests_total: 9 known ones plus the flood's counted ones.
    expect(sumOf(samples, `${P}requests_total`)).toBe(9 + counted);
    expect(seriesOf(samples, 'tunnels_total', ['action']).find((s) => s.startsWith('action=denied'))).toBe('action=denied 7');
    expect(text).not.toContain(MARK);
    expect(text).not.toMatch(/MdePartner-|microsoft\.com|\/api\//);
  });
});
