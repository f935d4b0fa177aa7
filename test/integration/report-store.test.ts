// GET /report and `report --store` over a real SQLite usage store: the figures of each format are
// the ones computed here in plain JavaScript from the same known traffic the store tests use.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { createAdminServer, type AdminServer } from '../../src/admin.js';
import { buildConfig } from '../../src/config.js';
import { createReportRoute, staticFacts } from '../../src/usage/evidence.js';
import type { ReportModel } from '../../src/usage/report.js';
import { createSqliteStore } from '../../src/usage/sqlite.js';
import { DAY_MS, HOUR_MS, type UsageStore } from '../../src/usage/store.js';
import { DAY0, expectedUsage, inBatches, trafficCounts } from '../helpers/usage-data.js';
import { buildCli, runCli } from '../helpers/cli-proxy.js';

const config = buildConfig({ version: 1, products: [
  { id: 'alpha', company: 'Contoso', product: 'Alpha', version: '1.0.0' },
  { id: 'beta', company: 'Contoso', product: 'Beta', version: '2.0.0' },
] }, { source: 'test', baseDir: process.cwd() });
const counts = trafficCounts(7);
let store: UsageStore;
let admin: AdminServer;
let base: string;
const dir = mkdtempSync(join(tmpdir(), 'mpp-report-store-'));
const dbFile = join(dir, 'usage.db');

beforeAll(async () => {
  store = createSqliteStore({ path: dbFile });
  await store.open();
  for (const batch of inBatches(counts, 500)) await store.write(batch);
  await store.write({ counts: [], peaks: [], callers: [
    { product: 'alpha', family: 'python-requests', client: '10.0.0.1', calls: 12, firstSeen: DAY0 + HOUR_MS, lastSeen: DAY0 + 30 * HOUR_MS },
    { product: 'alpha', family: '<b>Go-http-client</b>', client: '::1', calls: 3, firstSeen: DAY0 + 2 * HOUR_MS, lastSeen: DAY0 + 3 * HOUR_MS },
  ] });
  await store.write({ counts: [], callers: [], peaks: [
    { hour: DAY0 + 5 * HOUR_MS, product: 'alpha', tenant: 't-1', app: 'app-a', appName: 'Alpha sync', group: 'api', perMinute: 91, perHour: 400, minuteLimit: 100, hourLimit: 1500, throttled: 2, maxRetryAfter: 30 },
  ] });
  admin = createAdminServer({ registry: new Registry(), routes: new Map([['/report', createReportRoute({ source: { store, state: 'ok' }, facts: () => staticFacts(config, undefined, '0.0.0-test') })]]) });
  const { port } = await admin.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await admin?.close();
  await store?.close();
});

const FROM = new Date(DAY0).toISOString();
const TO = new Date(DAY0 + 3 * DAY_MS).toISOString();
const get = async (query: string): Promise<{ status: number; type: string; body: string }> => {
  const res = await request(`${base}/report?from=${FROM}&to=${TO}${query}`);
  return { status: res.statusCode, type: String(res.headers['content-type']), body: await res.body.text() };
};

it('answers JSON whose products, APIs, days and tenants are the sums of the traffic', async () => {
  const res = await get('&format=json');
  expect([res.status, res.type]).toEqual([200, 'application/json; charset=utf-8']);
  const model = JSON.parse(res.body) as ReportModel;
  const from = DAY0;
  const to = DAY0 + 3 * DAY_MS;
  const pick = (row: object): unknown[] => ['calls', 'compliant', 'rewritten', 'rejected', 'audited', 'throttled', 'errors'].map((k) => (row as Record<string, unknown>)[k]);
  expect(Object.fromEntries(model.products.map((p) => [p.id, pick(p)]))).toEqual(Object.fromEntries(expectedUsage(counts, ['product'], from, to).map((r) => [r.product, pick(r)])));
  for (const p of model.products) {
    expect(Object.fromEntries(p.apis.map((a) => [a.api, pick(a)]))).toEqual(Object.fromEntries(expectedUsage(counts, ['product', 'api'], from, to).filter((r) => r.product === p.id).map((r) => [r.api, pick(r)])));
    expect(p.days.map((d) => d.day)).toEqual(['2026-11-28', '2026-11-29', '2026-11-30']);
    expect(Object.fromEntries(p.days.map((d) => [d.day, pick(d)]))).toEqual(Object.fromEntries(expectedUsage(counts, ['product', 'day'], from, to).filter((r) => r.product === p.id).map((r) => [r.day, pick(r)])));
    expect(p.sent).toBe(p.calls - p.rejected);
    expect(p.carried).toBe(p.compliant + p.rewritten);
  }
  expect(model.tenants.map((t) => [t.product, t.tenant, t.app, t.calls]).sort()).toEqual(
    expectedUsage(counts, ['product', 'tenant', 'app'], from, to).map((r) => [r.product, r.tenant, r.app, r.calls]).sort());
  const t1 = model.tenants.find((t) => t.product === 'alpha' && t.tenant === 't-1' && t.app === 'app-a')!;
  expect(t1.limits).toEqual([{ group: 'api', perMinute: { peak: 91, limit: 100 }, perHour: { peak: 400, limit: 1500 }, utilisation: 0.91, throttled: 2, maxRetryAfter: 30 }]);
  expect(t1.appName).toBe('Alpha sync');
  expect(model.callers?.map((c) => [c.family, c.client, c.calls])).toEqual([['python-requests', '10.0.0.1', 12], ['<b>Go-http-client</b>', '::1', 3]]);
  expect(model.facts.source).toEqual({ kind: 'store', name: 'sqlite' });
});

it('answers the same figures as CSV and HTML', async () => {
  const json = JSON.parse((await get('&format=json')).body) as ReportModel;
  const csv = await get('&format=csv');
  expect(csv.type).toBe('text/csv; charset=utf-8; header=present');
  const alpha = json.products.find((p) => p.id === 'alpha')!;
  expect(csv.body).toContain(`\r\nproduct,alpha,MdePartner-Contoso-Alpha/1.0.0,${alpha.sent},${alpha.carried},${alpha.share},${alpha.calls},`);
  const html = await get('');
  expect([html.status, html.type]).toEqual([200, 'text/html; charset=utf-8']);
  expect(html.body).toContain(`data-product="alpha" data-sent="${alpha.sent}" data-carried="${alpha.carried}" data-share="${alpha.share}" data-calls="${alpha.calls}"`);
  expect(html.body).toContain('&lt;b&gt;Go-http-client&lt;/b&gt;');
  expect(html.body).not.toContain('<b>Go-http-client');
});

describe('the report command', () => {
  let cli: string;
  const configFile = join(dir, 'config.yaml');
  beforeAll(async () => {
    cli = await buildCli('store');
    writeFileSync(configFile, [
      'version: 1', `stateDir: ${JSON.stringify(join(dir, 'state'))}`, 'products:',
      '  - {id: alpha, company: Contoso, product: Alpha, version: 1.0.0}', '  - {id: beta, company: Contoso, product: Beta, version: 2.0.0}', '',
    ].join('\n'));
  }, 120_000);

  it('renders the same JSON from --store as /report does', async () => {
    const r = await runCli(cli, ['report', '--config', configFile, '--store', dbFile, '--from', FROM, '--to', TO, '--format', 'json']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const fromCli = JSON.parse(r.stdout) as ReportModel;
    const fromAdmin = JSON.parse((await get('&format=json')).body) as ReportModel;
    const strip = (m: ReportModel) => ({ ...m, generatedAt: '', facts: { ...m.facts, generatedAt: 0, version: '' } });
    expect(strip(fromCli)).toEqual(strip(fromAdmin));
  });

  it('writes --out whole and prints the headline', async () => {
    const out = join(dir, 'nov.html');
    const r = await runCli(cli, ['report', '--config', configFile, '--store', `sqlite:${dbFile}`, '--from', '2026-11-28', '--to', '2026-12-01', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html.trimEnd()).toMatch(/<\/html>$/);
    expect(r.stderr).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ bytes\\)\\. [\\d,]+ calls to Microsoft security APIs, `));
  });

  it.each([
    [['--store', 'ftp://example/usage'], 2, /--store: must be none, a postgres:\/\/ URL, or a SQLite file path/],
    [['--store', '/nonexistent/usage.db'], 1, /no usage store at \/nonexistent\/usage\.db/],
    [['--from', '2026-11-01T00:00'], 2, /--from: must be an ISO 8601 date/],
  ])('report %p exits %i naming the cause', async (args, code, message) => {
    const r = await runCli(cli, ['report', '--config', configFile, ...args]);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(dir, 'state', 'usage.db'))).toBe(false); // the report never creates a store
  });
});
