// The usage metrics: tenant_requests_total bounded by usage.metricTenants, rate_limit_utilization
// from the recorder's windows, usage_store_errors_total; the scrape stays promtool-clean.
import { Registry } from 'prom-client';
import { buildConfig } from '../../../src/config.js';
import { createMetrics } from '../../../src/metrics.js';
import { createRecorder } from '../../../src/usage/recorder.js';
import { exchangeEvent } from '../../helpers/events.js';
import { promtoolLint } from '../../helpers/prometheus.js';

const P = 'mde_partner_proxy_';
const tenant = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const APP = '0c5a9b1e-2d3f-4a6b-8c7d-9e0f1a2b3c4d';

function setup(metricTenants = 3) {
  const usage = buildConfig({ version: 1, stateDir: '/tmp/x', usage: { store: 'none', metricTenants } }, { source: 'test', baseDir: '/tmp', env: {} }).usage;
  const recorder = createRecorder({ usage, timers: false });
  const metrics = createMetrics({ registry: new Registry(), products: ['cognito', 'sandbox'], apiLabels: ['machines', 'advancedhunting', 'other'], version: '1.2.3',
    collectDefault: false, usage: { metricTenants, utilisation: (p) => recorder.utilisation(p) } });
  const feed = (over: Parameters<typeof exchangeEvent>[0]) => {
    const e = exchangeEvent(over);
    metrics.observer.exchangeEnd?.(e);
    recorder.observer.exchangeEnd?.(e);
  };
  const values = async (name: string) => ((await metrics.registry.getMetricsAsJSON()).find((m) => m.name === `${P}${name}`)?.values ?? []) as { labels: Record<string, string>; value: number }[];
  return { metrics, recorder, feed, values };
}

describe('usage metrics', () => {
  it('tenant_requests_total keeps usage.metricTenants pairs and counts the rest as other', async () => {
    const { feed, values } = setup(3);
    feed({ tenant: 'not-a-guid" } evil', app: 'x'.repeat(300), action: 'rewritten' }); // never a label: 'unknown'
    feed({ tenant: `${tenant(0)}|${APP}`, app: '', action: 'rewritten' }); // joins like an admitted pair would: still 'unknown'
    for (let i = 0; i < 6; i++) feed({ tenant: tenant(i), app: APP, action: 'rewritten' });
    feed({ tenant: tenant(0), app: APP, action: 'rewritten' }); // a known pair keeps its series
    feed({ action: 'passed' }); // not an API call
    const rows = await values('tenant_requests_total');
    const tenants = rows.map((r) => r.labels['tenant']).sort();
    expect(tenants).toEqual([tenant(0), tenant(1), 'other', 'unknown'].sort());
    expect(rows.find((r) => r.labels['tenant'] === 'unknown')).toMatchObject({ labels: { app: 'unknown' }, value: 2 });
    expect(rows.find((r) => r.labels['tenant'] === tenant(0))!.value).toBe(2);
    expect(rows.find((r) => r.labels['tenant'] === 'other')).toMatchObject({ labels: { app: 'other', product: 'cognito', action: 'rewritten' }, value: 4 });
  });

  it('rate_limit_utilization is the worst use per product, group and window', async () => {
    const { feed, values } = setup();
    for (let i = 0; i < 36; i++) feed({ tenant: tenant(1), app: APP, api: 'advancedhunting' });
    for (let i = 0; i < 9; i++) feed({ tenant: tenant(2), app: APP, api: 'advancedhunting' });
    const rows = await values('rate_limit_utilization');
    expect(rows).toHaveLength(2 * 3 * 2); // both products, every group and window
    expect(rows.find((r) => r.labels['product'] === 'cognito' && r.labels['group'] === 'hunting' && r.labels['window'] === 'minute')!.value).toBe(0.8);
    expect(rows.find((r) => r.labels['product'] === 'sandbox' && r.labels['group'] === 'hunting' && r.labels['window'] === 'minute')!.value).toBe(0);
  });

  it('usage_store_errors_total starts at zero and counts', async () => {
    const { metrics, values } = setup();
    expect((await values('usage_store_errors_total'))[0]!.value).toBe(0);
    metrics.usageStoreError();
    metrics.usageStoreError();
    expect((await values('usage_store_errors_total'))[0]!.value).toBe(2);
  });

  it('the scrape passes promtool check metrics', async () => {
    const { feed, metrics } = setup();
    for (let i = 0; i < 5; i++) feed({ tenant: tenant(i), app: APP, action: 'rewritten', api: i % 2 ? 'advancedhunting' : 'machines' });
    metrics.usageStoreError();
    const text = await metrics.registry.metrics();
    expect(text).toContain(`${P}tenant_requests_total{`);
    expect(text).toContain(`${P}rate_limit_utilization{`);
    expect(await promtoolLint(text)).toEqual({ code: 0, known: [], problems: [] });
  });
});
