// The report model from literal rows: the headline's definition, the sums, the joins and the CSV.
import { buildReport, complianceOf, dayKey, daysOf, headlineOf, reportCsv, shareText, type ReportFacts, type ReportRows } from '../../../src/usage/report.js';
import type { LimitRow, UsageRow } from '../../../src/usage/store.js';

const DAY = 86_400_000;
const NOV1 = Date.UTC(2026, 10, 1);

const facts = (over: Partial<ReportFacts> = {}): ReportFacts => ({
  period: { from: NOV1, to: NOV1 + 3 * DAY },
  generatedAt: NOV1 + 3 * DAY + 60_000,
  version: '0.1.0',
  replicaVersions: [],
  products: [{ id: 'cognito', userAgent: 'MdePartner-Contoso-ContosoCognito/1.0.0' }],
  clouds: ['commercial'],
  hosts: ['api.security.microsoft.com'],
  extraHosts: [],
  mode: 'rewrite',
  rewrite: 'replace',
  ca: { subject: 'CN=test', notBefore: NOV1 - DAY, notAfter: NOV1 + 365 * DAY },
  source: { kind: 'store', name: 'sqlite' },
  ...over,
});

const row = (keys: Record<string, string>, c: Partial<Record<'calls' | 'compliant' | 'rewritten' | 'rejected' | 'audited' | 'throttled' | 'errors', number>>): UsageRow => {
  const counts = { compliant: 0, rewritten: 0, rejected: 0, audited: 0, throttled: 0, errors: 0, ...c };
  return { ...keys, calls: c.calls ?? counts.compliant + counts.rewritten + counts.rejected + counts.audited, ...counts };
};

const rows = (over: Partial<ReportRows> = {}): ReportRows => ({
  products: [], apis: [], days: [], tenants: [], limits: [], callers: [], utilisation: undefined, truncated: [], notes: [], ...over,
});

describe('the headline share', () => {
  it.each([
    // [compliant, rewritten, rejected, audited, sent, carried, share]
    [10, 0, 0, 0, 10, 10, '100.00%'],
    [3, 7, 0, 0, 10, 10, '100.00%'], // rewritten calls left compliant
    [5, 0, 5, 0, 5, 5, '100.00%'], // rejected calls never left: not in the denominator
    [1, 0, 0, 1, 2, 1, '50.00%'], // audited calls left without the partner User-Agent
    [99_999, 0, 0, 1, 100_000, 99_999, '99.99%'], // floored, never rounded up to 100.00%
    [2, 0, 0, 1, 3, 2, '66.66%'],
    [0, 0, 4, 0, 0, 0, '—'], // nothing left the proxy
    [0, 0, 0, 0, 0, 0, '—'],
  ])('compliant %i, rewritten %i, rejected %i, audited %i → sent %i, carried %i, %s', (compliant, rewritten, rejected, audited, sent, carried, share) => {
    const c = complianceOf({ calls: compliant + rewritten + rejected + audited, compliant, rewritten, rejected, audited, throttled: 0, errors: 0 });
    expect([c.sent, c.carried, c.share]).toEqual([sent, carried, share]);
  });

  it.each([
    [1, 1, '100.00%'], [0, 3, '0.00%'], [1, 3, '33.33%'], [1, 8, '12.50%'], [0, 0, '—'],
  ])('shareText(%i, %i) is %s', (carried, sent, text) => expect(shareText(carried, sent)).toBe(text));

  it.each([
    [{ sent: 1234, carried: 1234, rejected: 0 }, 'MdePartner-Contoso-ContosoCognito', '1,234 calls to Microsoft security APIs, 100.00% carried MdePartner-Contoso-ContosoCognito.'],
    [{ sent: 1, carried: 1, rejected: 0 }, 'MdePartner-A-B', '1 call to Microsoft security APIs, 100.00% carried MdePartner-A-B.'],
    [{ sent: 0, carried: 0, rejected: 3 }, 'MdePartner-A-B', 'No calls to Microsoft security APIs left the proxy in this period; 3 refused before reaching Microsoft.'],
  ])('headline for %o', (figures, token, text) => {
    const c = complianceOf({ calls: figures.sent + figures.rejected, compliant: figures.carried, rewritten: 0, rejected: figures.rejected, audited: figures.sent - figures.carried, throttled: 0, errors: 0 });
    expect(headlineOf(c, token)).toBe(text);
  });
});

describe('days', () => {
  it.each([
    ['2026-11-03', '2026-11-03'],
    ['2026-11-03T00:00:00.000Z', '2026-11-03'],
    ['2026-11-03T00:00:00Z', '2026-11-03'],
    ['2026-13-45', undefined],
    ['yesterday', undefined],
    [20261103, undefined],
  ])('dayKey(%p) is %p', (value, key) => expect(dayKey(value)).toBe(key));

  it('fills every UTC day that overlaps the period, a partial first day included', () => {
    expect(daysOf({ from: NOV1 + 5 * 3_600_000, to: NOV1 + 2 * DAY })).toEqual(['2026-11-01', '2026-11-02']);
    expect(daysOf({ from: NOV1, to: NOV1 + 2 * DAY + 1 })).toEqual(['2026-11-01', '2026-11-02', '2026-11-03']);
    expect(daysOf({ from: NOV1, to: NOV1 + 401 * DAY })).toBeUndefined();
    expect(daysOf({ from: NOV1, to: NOV1 })).toBeUndefined();
  });
});

describe('buildReport', () => {
  it('sums per product and per API, fills empty days and keeps configured products without calls', () => {
    const model = buildReport(facts({ products: [{ id: 'cognito', userAgent: 'MdePartner-Contoso-ContosoCognito/1.0.0' }, { id: 'idle', userAgent: 'MdePartner-Contoso-Idle/2.0' }] }), rows({
      products: [row({ product: 'cognito' }, { compliant: 90, rewritten: 8, rejected: 0, audited: 0, throttled: 2, errors: 1 }), row({ product: 'unregistered' }, { rewritten: 1 })],
      apis: [row({ product: 'cognito', api: 'machines' }, { compliant: 60, rewritten: 8, throttled: 2 }), row({ product: 'cognito', api: 'alerts' }, { compliant: 30, errors: 1 })],
      days: [row({ product: 'cognito', day: '2026-11-01' }, { compliant: 40 }), row({ product: 'cognito', day: '2026-11-03T00:00:00.000Z' }, { compliant: 50, rewritten: 8 })],
    }));
    expect(model.products.map((p) => [p.id, p.calls, p.sent, p.share])).toEqual([
      ['cognito', 98, 98, '100.00%'], ['idle', 0, 0, '—'], ['unregistered', 1, 1, '100.00%'],
    ]);
    const cognito = model.products[0]!;
    expect(cognito.headline).toBe('98 calls to Microsoft security APIs, 100.00% carried MdePartner-Contoso-ContosoCognito.');
    expect(cognito.apis.map((a) => [a.api, a.calls, a.throttled, a.errors])).toEqual([['machines', 68, 2, 0], ['alerts', 30, 0, 1]]);
    expect(cognito.days.map((d) => [d.day, d.calls])).toEqual([['2026-11-01', 40], ['2026-11-02', 0], ['2026-11-03', 58]]);
    expect(model.products[2]!.userAgent).toBe('');
    expect([model.total.calls, model.total.sent, model.total.carried]).toEqual([99, 99, 99]);
    expect(model.from).toBe('2026-11-01T00:00:00.000Z');
  });

  it('joins tenant counts with their limit peaks, worst group first, and keeps tenants that only have peaks', () => {
    const limit = (tenant: string, group: LimitRow['group'], perMinute: number, minuteLimit: number, perHour: number, throttled: number): LimitRow => ({
      product: 'cognito', tenant, app: 'app-1', appName: 'Sentinel sync', group, perMinute: { peak: perMinute, limit: minuteLimit },
      perHour: { peak: perHour, limit: 1500 }, throttled, maxRetryAfter: throttled > 0 ? 30 : 0,
    });
    const model = buildReport(facts(), rows({
      tenants: [row({ product: 'cognito', tenant: 't-1', app: 'app-1' }, { compliant: 120, throttled: 3 }), row({ product: 'cognito', tenant: 't-2', app: 'app-1' }, { compliant: 500 })],
      limits: [limit('t-1', 'api', 40, 100, 120, 0), limit('t-1', 'hunting', 45, 45, 45, 3), limit('t-3', 'api', 1, 100, 1, 0)],
    }));
    expect(model.tenants.map((t) => [t.tenant, t.calls, t.appName, t.limits.map((l) => [l.group, l.utilisation])])).toEqual([
      ['t-2', 500, '', []],
      ['t-1', 120, 'Sentinel sync', [['hunting', 1], ['api', 0.4]]],
      ['t-3', 0, 'Sentinel sync', [['api', 0.01]]],
    ]);
  });

  it('sorts callers by product then calls, and turns their times into ISO 8601', () => {
    const model = buildReport(facts(), rows({
      callers: [
        { product: 'cognito', family: 'python-requests', client: '10.0.0.5', calls: 4, firstSeen: NOV1, lastSeen: NOV1 + DAY },
        { product: 'cognito', family: '(none)', client: '10.0.0.6', calls: 9, firstSeen: NOV1 + 1000, lastSeen: NOV1 + 2000 },
      ],
    }));
    expect(model.callers?.map((c) => [c.family, c.calls, c.firstSeen])).toEqual([
      ['(none)', 9, '2026-11-01T00:00:01.000Z'], ['python-requests', 4, '2026-11-01T00:00:00.000Z'],
    ]);
  });

  it('keeps "cannot provide" lists undefined and carries the source\'s notes', () => {
    const model = buildReport(facts(), rows({ callers: undefined, limits: undefined, utilisation: [{ product: 'cognito', group: 'api', window: 'minute', utilisation: 0.42 }], notes: ['no callers from Prometheus'] }));
    expect(model.callers).toBeUndefined();
    expect(model.utilisation).toEqual([{ product: 'cognito', group: 'api', window: 'minute', utilisation: 0.42 }]);
    expect(model.notes).toEqual(['no callers from Prometheus']);
  });

  it.each([
    [{ calls: -5, compliant: Number.NaN }, 0, 0],
    [{ calls: '7', compliant: '7' }, 7, 7],
    [{ calls: 2.0000001, compliant: 1.9999999 }, 2, 2],
  ])('reads untrusted counts %o as calls %i, compliant %i', (counts, calls, compliant) => {
    const model = buildReport(facts(), rows({ products: [{ product: 'cognito', ...counts } as unknown as UsageRow] }));
    expect([model.products[0]!.calls, model.products[0]!.compliant]).toEqual([calls, compliant]);
  });
});

describe('CSV', () => {
  it('writes one block per table, each header starting with "section" and each row with its block name', () => {
    const model = buildReport(facts(), rows({
      products: [row({ product: 'cognito' }, { compliant: 2, audited: 1 })],
      apis: [row({ product: 'cognito', api: 'machines' }, { compliant: 2, audited: 1 })],
      days: [row({ product: 'cognito', day: '2026-11-02' }, { compliant: 2, audited: 1 })],
      tenants: [row({ product: 'cognito', tenant: '=evil', app: 'a' }, { compliant: 2, audited: 1 })],
      callers: [{ product: 'cognito', family: 'curl', client: '127.0.0.1', calls: 1, firstSeen: NOV1, lastSeen: NOV1 }],
    }));
    const blocks = reportCsv(model).trimEnd().split('\r\n\r\n').map((b) => b.split('\r\n'));
    expect(blocks.map((b) => b[0]!.split(',')[0])).toEqual(['section', 'section', 'section', 'section', 'section', 'section']);
    expect(blocks.map((b) => b[1]!.split(',')[0])).toEqual(['report', 'product', 'api', 'day', 'tenant', 'caller']);
    expect(blocks[1]).toContain('product,cognito,MdePartner-Contoso-ContosoCognito/1.0.0,3,2,66.66%,3,2,0,0,1,0,0');
    expect(blocks[3]).toEqual(['section,product,day,calls,compliant,rewritten,rejected,audited,throttled,errors',
      'day,cognito,2026-11-01,0,0,0,0,0,0,0', 'day,cognito,2026-11-02,3,2,0,0,1,0,0', 'day,cognito,2026-11-03,0,0,0,0,0,0,0']);
    expect(blocks[4]![1]).toMatch(/^tenant,cognito,'=evil,a,/);
  });
});
