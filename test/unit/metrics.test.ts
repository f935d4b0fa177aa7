import { Counter, Registry } from 'prom-client';
import type { ExchangeEvent } from '../../src/events.js';
import { METHOD_LABELS, REQUEST_ACTIONS, UPSTREAM_ERROR_CODES, createMetrics, createTally, statusLabel, type Metrics } from '../../src/metrics.js';
import { promtoolLint } from '../helpers/prometheus.js';
import { exchangeEvent, tunnelEvent } from '../helpers/events.js';
import { createPrng } from '../helpers/prng.js';

const P = 'mde_partner_proxy_';
const API_LABELS = ['machines', 'alerts', 'security.alerts_v2', 'other'] as const;
const PRODUCTS = ['cognito', 'sandbox'] as const;

type Labels = Record<string, string | number>;
interface Series {
  labels: Labels;
  value: number;
}

/** Series of one metric (or of one histogram part such as `_count`), sorted for stable comparison. */
async function series(registry: Registry, name: string, part?: string): Promise<Series[]> {
  const metrics = await registry.getMetricsAsJSON();
  const metric = metrics.find((m) => m.name === `${P}${name}`);
  if (metric === undefined) throw new Error(`no metric ${P}${name}`);
  return metric.values
    .filter((v) => part === undefined || (v as { metricName?: string }).metricName === `${P}${name}${part}`)
    .map((v) => ({ labels: { ...v.labels } as Labels, value: v.value }))
    .sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));
}

const sorted = (list: Series[]): Series[] =>
  [...list].sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));


function fresh(collectDefault = false): Metrics {
  return createMetrics({ registry: new Registry(), products: PRODUCTS, apiLabels: API_LABELS, version: '1.2.3', collectDefault });
}

/** The known sequence of the issue: every action, a 429, upstream failures, an abort, and passed traffic. */
function feedKnownSequence(m: Metrics): void {
  const o = m.observer;
  o.connectionOpen?.();
  o.connectionOpen?.();
  o.connectionOpen?.();
  o.tunnelEnd?.(tunnelEvent());
  o.tunnelEnd?.(tunnelEvent({ action: 'tunnelled', reason: 'other-host', host: 'example.com' }));
  o.tunnelEnd?.(tunnelEvent({ action: 'denied', outcome: 'denied', reason: 'private-destination', host: '127.1', error: 'DestinationDenied' }));
  // A blind tunnel whose destination refused the connection did not tunnel: only upstream_errors_total counts it.
  o.tunnelEnd?.(tunnelEvent({ action: 'tunnelled', outcome: 'failed', reason: 'other-host', host: 'example.com', error: 'UpstreamUnreachable' }));
  o.certificateIssued?.('api.security.microsoft.com');
  o.exchangeEnd?.(exchangeEvent({ action: 'compliant' }));
  o.exchangeEnd?.(exchangeEvent({ action: 'rewritten', api: 'alerts', userAgent: 'python-requests/2.32.3' }));
  o.exchangeEnd?.(exchangeEvent({ action: 'rejected', method: 'POST', status: 403, error: 'PartnerUserAgentRequired', durationMs: 0.2 }));
  o.exchangeEnd?.(exchangeEvent({ action: 'audited', product: 'sandbox', api: 'security.alerts_v2', mode: 'forward' }));
  o.exchangeEnd?.(exchangeEvent({ action: 'rewritten', status: 429, durationMs: 80 })); // Microsoft throttling
  o.upstreamError?.('UpstreamUnreachable');
  o.exchangeEnd?.(exchangeEvent({ action: 'rewritten', status: 502, error: 'UpstreamUnreachable', durationMs: 3 }));
  o.upstreamError?.('UpstreamTimeout');
  o.exchangeEnd?.(exchangeEvent({ action: 'rewritten', status: 504, error: 'UpstreamTimeout', durationMs: 30_000 }));
  o.exchangeEnd?.(exchangeEvent({ action: 'compliant', status: 0, aborted: true, durationMs: 5 })); // client went away
  o.exchangeEnd?.(exchangeEvent({ action: 'passed', api: 'other', host: 'graph.microsoft.com', product: 'cognito' }));
  o.exchangeEnd?.(exchangeEvent({ action: 'passed', api: 'other', host: 'login.microsoftonline.com', status: 0 }));
  o.upstreamError?.('SomethingNew');
  o.connectionClose?.();
  o.configReload?.('success');
  o.configReload?.('failure');
  o.configReload?.('failure');
}

describe('createMetrics', () => {
  it('counts a known sequence of events exactly, with bounded labels', async () => {
    const m = fresh();
    feedKnownSequence(m);
    const r = m.registry;
    const req = (product: string, api: string, method: string, code: string, action: string, value: number): Series => ({
      labels: { product, api, method, code, action },
      value,
    });
    expect(await series(r, 'requests_total')).toEqual(
      sorted([
        req('cognito', 'machines', 'GET', '200', 'compliant', 1),
        req('cognito', 'alerts', 'GET', '200', 'rewritten', 1),
        req('cognito', 'machines', 'POST', '403', 'rejected', 1),
        req('sandbox', 'security.alerts_v2', 'GET', '200', 'audited', 1),
        req('cognito', 'machines', 'GET', '429', 'rewritten', 1),
        req('cognito', 'machines', 'GET', '502', 'rewritten', 1),
        req('cognito', 'machines', 'GET', '504', 'rewritten', 1),
        req('cognito', 'machines', 'GET', '0', 'compliant', 1),
      ]),
    );
    // Rejected requests never reach Microsoft and are left out of the latency histogram.
    expect(await series(r, 'request_duration_seconds', '_count')).toEqual(
      sorted([
        { labels: { product: 'cognito', api: 'machines' }, value: 5 },
        { labels: { product: 'cognito', api: 'alerts' }, value: 1 },
        { labels: { product: 'sandbox', api: 'security.alerts_v2' }, value: 1 },
      ]),
    );
    const sums = await series(r, 'request_duration_seconds', '_sum');
    expect(sums.find((s) => s.labels.api === 'machines')?.value).toBeCloseTo((42 + 80 + 3 + 30_000 + 5) / 1000, 6);
    expect(await series(r, 'tunnels_total')).toEqual(
      sorted([
        { labels: { action: 'intercepted' }, value: 1 },
        { labels: { action: 'tunnelled' }, value: 1 },
        { labels: { action: 'denied' }, value: 1 },
      ]),
    );
    expect(await series(r, 'open_connections')).toEqual([{ labels: {}, value: 2 }]);
    expect(await series(r, 'certificates_issued_total')).toEqual([{ labels: {}, value: 1 }]);
    expect(await series(r, 'upstream_errors_total')).toEqual(
      sorted([
        { labels: { code: 'UpstreamUnreachable' }, value: 1 },
        { labels: { code: 'UpstreamTimeout' }, value: 1 },
        { labels: { code: 'UpstreamTlsError' }, value: 0 },
        { labels: { code: 'UpstreamReset' }, value: 0 },
        { labels: { code: 'UpstreamDnsError' }, value: 0 },
        { labels: { code: 'UpstreamProtocolError' }, value: 0 },
        // The DNS guard's refusal of a name that resolves only to private addresses.
        { labels: { code: 'DestinationDenied' }, value: 0 },
        { labels: { code: 'other' }, value: 1 },
      ]),
    );
    expect(await series(r, 'config_reloads_total')).toEqual(
      sorted([
        { labels: { result: 'success' }, value: 1 },
        { labels: { result: 'failure' }, value: 2 },
      ]),
    );
    expect(await series(r, 'build_info')).toEqual([{ labels: { version: '1.2.3', node: process.version }, value: 1 }]);
  });

  it('shows the counts in the Prometheus text exposition', async () => {
    const m = fresh();
    feedKnownSequence(m);
    const text = await m.registry.getSingleMetricAsString(`${P}requests_total`);
    expect(text).toContain('# TYPE mde_partner_proxy_requests_total counter');
    expect(text).toContain('mde_partner_proxy_requests_total{product="cognito",api="machines",method="GET",code="429",action="rewritten"} 1');
    expect(text).toContain('mde_partner_proxy_requests_total{product="cognito",api="machines",method="GET",code="0",action="compliant"} 1');
    expect(text).not.toContain('passed');
  });

  it('pre-initialises the small closed sets at zero and nothing per request', async () => {
    const m = fresh();
    expect(await series(m.registry, 'requests_total')).toEqual([]);
    expect((await series(m.registry, 'tunnels_total')).map((s) => s.value)).toEqual([0, 0, 0]);
    expect((await series(m.registry, 'config_reloads_total')).map((s) => s.value)).toEqual([0, 0]);
    expect(await series(m.registry, 'open_connections')).toEqual([{ labels: {}, value: 0 }]);
  });

  it('never registers on the global registry', async () => {
    const { register } = await import('prom-client');
    const before = (await register.getMetricsAsJSON()).length;
    fresh(true);
    expect((await register.getMetricsAsJSON()).length).toBe(before);
    expect(register.getSingleMetric(`${P}requests_total`)).toBeUndefined();
  });

  it('adds the default process metrics unprefixed, as stock Node.js dashboards expect', async () => {
    const m = fresh(true);
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names).toContain('process_cpu_seconds_total');
    expect(names).toContain('nodejs_heap_size_used_bytes');
    expect(names.filter((n) => n.startsWith(`${P}process_`) || n.startsWith(`${P}nodejs_`))).toEqual([]);
    // The proxy's own metrics keep their prefix.
    expect(names.filter((n) => !n.startsWith('process_') && !n.startsWith('nodejs_')).every((n) => n.startsWith(P))).toBe(true);
  });

  it('exports the interception CA expiry as a Unix timestamp once it is known', async () => {
    const m = fresh();
    // 0 until set: the alert ignores 0, so a proxy that has not loaded its CA yet does not page.
    expect(await series(m.registry, 'ca_expiry_timestamp_seconds')).toEqual([{ labels: {}, value: 0 }]);
    m.setCaExpiry(new Date('2030-01-02T03:04:05Z'));
    expect(await series(m.registry, 'ca_expiry_timestamp_seconds')).toEqual([{ labels: {}, value: Date.parse('2030-01-02T03:04:05Z') / 1000 }]);
  });

  it('counts a product as unregistered once setProducts drops it, and a new one by name', async () => {
    const m = fresh();
    m.setProducts(['sandbox', 'newcomer']);
    m.observer.exchangeEnd?.(exchangeEvent({ product: 'cognito' }));
    m.observer.exchangeEnd?.(exchangeEvent({ product: 'newcomer' }));
    const products = (await series(m.registry, 'requests_total')).map((s) => s.labels.product).sort();
    expect(products).toEqual(['newcomer', 'unregistered']);
  });

  it.each([
    [200, '200'],
    [100, '100'],
    [599, '599'],
    [0, '0'],
    [99, '0'],
    [600, '0'],
    [-1, '0'],
    [200.5, '0'],
    [Number.NaN, '0'],
  ])('labels status %p as code %p', (status, code) => {
    expect(statusLabel(status)).toBe(code);
  });

  it('counts an event with missing or malformed fields under the catch-all labels', async () => {
    const m = fresh();
    const bad = { action: 'compliant', durationMs: Number.NaN } as unknown as ExchangeEvent;
    m.observer.exchangeEnd?.(bad);
    expect(await series(m.registry, 'requests_total')).toEqual([
      { labels: { product: 'unregistered', api: 'other', method: 'other', code: '0', action: 'compliant' }, value: 1 },
    ]);
    expect(await series(m.registry, 'request_duration_seconds', '_count')).toEqual([]);
  });

  it('adds no label values beyond the bounded sets under hundreds of random requests', async () => {
    const m = fresh();
    const prng = createPrng(0x2545f491); // seeded, so a failure reproduces
    const rand = prng.next;
    const pick = prng.pick;
    const junk = (): string => Math.floor(rand() * 1e12).toString(36) + '/' + Math.floor(rand() * 1e9).toString(36);
    const methods = [...METHOD_LABELS, 'get', 'PROPFIND', 'CONNECT', 'M-SEARCH'];
    const statuses = [0, 200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503, 504, 700, -3, 12];
    for (let i = 0; i < 600; i++) {
      m.observer.exchangeEnd?.(
        exchangeEvent({
          product: rand() < 0.5 ? pick(PRODUCTS) : `p-${junk()}`,
          api: rand() < 0.5 ? pick(API_LABELS) : `/api/${junk()}`,
          method: rand() < 0.8 ? pick(methods) : junk(),
          status: pick(statuses),
          action: pick([...REQUEST_ACTIONS, 'passed'] as const),
          host: `${junk()}.example`,
          userAgent: `${junk()} MdePartner-${junk()}`,
          durationMs: rand() * 40_000,
        }),
      );
      m.observer.upstreamError?.(`Upstream${junk()}`);
      m.observer.tunnelEnd?.(tunnelEvent({ action: pick(['tunnelled', 'intercepted', 'denied'] as const), outcome: pick(['closed', 'failed', 'denied'] as const), reason: junk(), product: junk(), host: junk() }));
    }
    const allowed = {
      product: new Set<string>([...PRODUCTS, 'unregistered']),
      api: new Set<string>(API_LABELS),
      method: new Set<string>([...METHOD_LABELS, 'other']),
      code: new Set<string>(['0', ...statuses.filter((s) => s >= 100 && s <= 599).map(String)]),
      action: new Set<string>(REQUEST_ACTIONS),
    };
    const requests = await series(m.registry, 'requests_total');
    for (const s of requests) {
      for (const [name, set] of Object.entries(allowed)) expect(set.has(String(s.labels[name]))).toBe(true);
    }
    const bound = Object.values(allowed).reduce((n, set) => n * set.size, 1);
    expect(requests.length).toBeLessThanOrEqual(bound);
    expect(requests.reduce((n, s) => n + s.value, 0)).toBeGreaterThan(400); // ~4/5 of 600 are counted
    const durationSeries = await series(m.registry, 'request_duration_seconds', '_count');
    expect(durationSeries.length).toBeLessThanOrEqual(allowed.product.size * allowed.api.size);
    expect((await series(m.registry, 'upstream_errors_total')).length).toBe(UPSTREAM_ERROR_CODES.length + 1);
    expect((await series(m.registry, 'tunnels_total')).length).toBe(3);
    const text = await m.registry.metrics();
    expect(text).not.toMatch(/example|MdePartner-|\/api\//);
  });

  it('passes promtool check metrics without a lint problem in our own metrics', async () => {
    const m = fresh(false);
    feedKnownSequence(m);
    expect(await promtoolLint(await m.registry.metrics())).toEqual({ code: 0, known: [], problems: [] });
  });

  it('passes promtool check metrics with the default process metrics, except the known prom-client lints', async () => {
    // A parse error (exit 1) or any other lint fails; the known ones alone give exit 3.
    const m = fresh(true);
    feedKnownSequence(m);
    const lint = await promtoolLint(await m.registry.metrics());
    expect(lint.problems).toEqual([]);
    expect(lint.known.length).toBeGreaterThan(0);
    expect(lint.code).toBe(3);
  });
});

describe('createTally', () => {
  const counter = (registry: Registry): Counter<'a' | 'b'> => new Counter({ name: 'tally_test_total', help: 'test', labelNames: ['a', 'b'] as const, registers: [registry] });

  it('adds each label tuple once per flush, and a second flush adds nothing', async () => {
    const registry = new Registry();
    const c = counter(registry);
    const tally = createTally(['a', 'b'] as const);
    for (let i = 0; i < 3; i++) tally.inc('x', 'y');
    tally.inc('x', 'z');
    // Values that would collide if the tuple were joined into one string stay apart.
    tally.inc('x|y', '');
    tally.inc('', 'x|y');
    tally.flush(c);
    tally.flush(c);
    const values = (await c.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
    expect(sorted(values as Series[])).toEqual(sorted([
      { labels: { a: 'x', b: 'y' }, value: 3 },
      { labels: { a: 'x', b: 'z' }, value: 1 },
      { labels: { a: 'x|y', b: '' }, value: 1 },
      { labels: { a: '', b: 'x|y' }, value: 1 },
    ]));
    tally.inc('x', 'y');
    tally.flush(c);
    expect((await c.get()).values.find((v) => v.labels.b === 'y')?.value).toBe(4);
  });

  it('is flushed by the counter at each scrape, so requests_total is current on every read', async () => {
    const registry = new Registry();
    const m = createMetrics({ registry, products: PRODUCTS, apiLabels: API_LABELS, version: '1.2.3', collectDefault: false });
    m.observer.exchangeEnd?.(exchangeEvent({ action: 'rewritten' }));
    expect((await series(registry, 'requests_total')).map((s) => s.value)).toEqual([1]);
    m.observer.exchangeEnd?.(exchangeEvent({ action: 'rewritten' }));
    expect((await series(registry, 'requests_total')).map((s) => s.value)).toEqual([2]);
    expect((await series(registry, 'tenant_requests_total')).map((s) => s.value)).toEqual([2]);
  });
});
