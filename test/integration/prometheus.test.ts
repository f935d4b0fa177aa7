import { Registry } from 'prom-client';
import { request } from 'undici';
import { createAdminServer, type AdminServer } from '../../src/admin.js';
import { createMetrics } from '../../src/metrics.js';
import { startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';
import { exchangeEvent } from '../helpers/events.js';

const DEADLINE_MS = 20_000;
const POLL_MS = 250;

interface QueryResponse {
  status: string;
  data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe('a real Prometheus server', () => {
  let admin: AdminServer | undefined;
  let prometheus: RunningPrometheus | undefined;

  afterAll(async () => {
    await prometheus?.stop();
    await admin?.close();
  });

  it('scrapes the admin port and its query API returns the request count', async () => {
    const registry = new Registry();
    const metrics = createMetrics({ registry, products: ['cognito'], apiLabels: ['machines', 'alerts', 'other'], version: '0.0.0-test' });
    const base = exchangeEvent({ durationMs: 25 });
    const o = metrics.observer;
    o.exchangeEnd?.(base);
    o.exchangeEnd?.({ ...base, action: 'rewritten', status: 429 });
    o.exchangeEnd?.({ ...base, action: 'rejected', status: 403, api: 'alerts' });
    o.exchangeEnd?.({ ...base, action: 'passed' }); // not an API call: not counted
    admin = createAdminServer({ registry });
    const { port } = await admin.listen(0, '127.0.0.1');
    prometheus = await startPrometheus(`127.0.0.1:${port}`);
    const started = prometheus;

    const query = async (promql: string): Promise<QueryResponse | undefined> => {
      try {
        const res = await request(`${started.url}/api/v1/query?query=${encodeURIComponent(promql)}`, {
          headersTimeout: 2000,
          bodyTimeout: 2000,
        });
        const text = await res.body.text();
        return res.statusCode === 200 ? (JSON.parse(text) as QueryResponse) : undefined;
      } catch {
        return undefined; // not up yet
      }
    };

    // Bounded poll: Prometheus needs a moment to start and one scrape interval (1 s) to ingest.
    const deadline = Date.now() + DEADLINE_MS;
    let last: QueryResponse | undefined;
    let total = Number.NaN;
    while (Date.now() < deadline) {
      last = await query('sum(mde_partner_proxy_requests_total)');
      const value = last?.data?.result[0]?.value[1];
      total = value === undefined ? Number.NaN : Number(value);
      if (total === 3) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (total !== 3) {
      throw new Error(`Prometheus did not report 3 requests within ${DEADLINE_MS} ms; last answer ${JSON.stringify(last)}; log:\n${started.log()}`);
    }

    const series = await query('mde_partner_proxy_requests_total{code="429"}');
    expect(series?.data?.result.map((r) => r.metric)).toEqual([
      {
        __name__: 'mde_partner_proxy_requests_total',
        job: 'mde-partner-proxy',
        instance: `127.0.0.1:${port}`,
        product: 'cognito',
        api: 'machines',
        method: 'GET',
        code: '429',
        action: 'rewritten',
      },
    ]);
    const up = await query('up');
    expect(up?.data?.result[0]?.value[1]).toBe('1');
  }, DEADLINE_MS + 10_000);
});
