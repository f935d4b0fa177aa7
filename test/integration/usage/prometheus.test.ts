// src/usage/prometheus.ts through `report --prometheus`, the fleet report: a real Prometheus
// (Debian's package, its own temp dir and port, 1 s scrapes) scrapes two running proxies (the
// bundled CLI as child processes) that carried known traffic; `report --prometheus` must give the
// sum of the two proxies' own figures for the same traffic.
import { request } from 'undici';
import { viaProxy } from '../../helpers/client.js';
import { buildCli, runCli, startCliProxy, writeTestConfig, type CliProxy } from '../../helpers/cli-proxy.js';
import { startOrigin, type Origin } from '../../helpers/origin.js';
import { testPki } from '../../helpers/pki.js';
import { freePort, startPrometheus, type RunningPrometheus } from '../../helpers/prometheus.js';
import type { ReportModel } from '../../../src/usage/report.js';
import { parseScrape, sumOf } from '../../helpers/scrape.js';

const UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const DEADLINE_MS = 30_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let origin: Origin;
let cli: string;
const proxies: CliProxy[] = [];
let prometheus: RunningPrometheus | undefined;

beforeAll(async () => {
  const pki = await testPki();
  origin = await startOrigin(pki.msIssuer);
  cli = await buildCli('report');
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  for (const p of proxies) await p.stop();
  await origin?.close();
});

/** One Prometheus instant query's vector. */
async function query(url: string, promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[] | undefined> {
  try {
    const res = await request(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`, { headersTimeout: 2000, bodyTimeout: 2000 });
    const body = JSON.parse(await res.body.text()) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    return body.status === 'success' ? body.data?.result : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of requests_total in a proxy's own /metrics text. */
async function localRequestTotal(p: CliProxy): Promise<number> {
  const text = await (await request(`${p.adminUrl}/metrics`)).body.text();
  return sumOf(parseScrape(text), 'mde_partner_proxy_requests_total');
}

/** The figures the comparison reads from a report model. */
function figures(model: ReportModel) {
  return {
    products: Object.fromEntries(model.products.map((p) => [p.id, [p.calls, p.compliant, p.rewritten, p.rejected, p.audited, p.throttled, p.errors]])),
    apis: Object.fromEntries(model.products.flatMap((p) => p.apis.map((a) => [`${p.id}/${a.api}`, [a.calls, a.rewritten, a.throttled, a.errors]]))),
    days: Object.fromEntries(model.products.flatMap((p) => p.days.filter((d) => d.calls > 0).map((d) => [`${p.id}/${d.day}`, d.calls]))),
  };
}

/** Adds the second figures into the first, key by key. */
function addFigures(a: ReturnType<typeof figures>, b: ReturnType<typeof figures>): ReturnType<typeof figures> {
  const add = <T extends number | number[]>(x: T, y: T): T =>
    (typeof x === 'number' ? x + (y as number) : x.map((n, i) => n + (y as number[])[i]!)) as T;
  const merge = <T extends number | number[]>(x: Record<string, T>, y: Record<string, T>): Record<string, T> => {
    const out: Record<string, T> = { ...x };
    for (const [k, v] of Object.entries(y)) {
      const prev = out[k];
      out[k] = prev === undefined ? v : add(v, prev);
    }
    return out;
  };
  return { products: merge(a.products, b.products), apis: merge(a.apis, b.apis), days: merge(a.days, b.days) };
}

it('report --prometheus equals the sum of the two proxies\' own reports for the same traffic', async () => {
  for (let i = 0; i < 2; i++) {
    const { file, stateDir } = await writeTestConfig(origin.port, { usage: { flushMs: 200 } });
    proxies.push(await startCliProxy(cli, file, stateDir));
  }
  const [a, b] = proxies as [CliProxy, CliProxy];
  prometheus = await startPrometheus(proxies.map((p) => p.adminUrl.replace('http://', '')));
  const prom = prometheus;
  // Both targets up before any traffic, so every counter series is born inside the period.
  const deadline = Date.now() + DEADLINE_MS;
  while (Number((await query(prom.url, 'sum(up)'))?.[0]?.value[1] ?? 0) !== 2) {
    if (Date.now() > deadline) throw new Error(`Prometheus never saw both proxies up:\n${prom.log()}`);
    await sleep(200);
  }

  const from = new Date(Date.now() - 3_600_000).toISOString();
  const api = 'https://api.security.microsoft.com';
  const send = async (p: CliProxy, path: string, userAgent: string | undefined, n: number, host = api): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const res = await viaProxy(p.proxyUrl, p.caPem, `${host}${path}`, { headers: userAgent === undefined ? {} : { 'user-agent': userAgent } });
      expect(res.status).toBeGreaterThanOrEqual(200);
    }
  };
  // A: compliant and rewritten machines calls, a 429, a 503.
  await send(a, '/api/machines', UA, 5);
  await send(a, '/api/machines', 'python-requests/2.32.3', 3);
  await send(a, '/status/429', UA, 2);
  await send(a, '/status/503', 'curl/8.5.0', 1);
  // B: alerts, Graph security alerts, and a new series (advanced hunting) born late.
  await send(b, '/api/alerts', UA, 4);
  await send(b, '/v1.0/security/alerts_v2', undefined, 2, 'https://graph.microsoft.com');
  await send(b, '/api/advancedqueries/run', 'Go-http-client/1.1', 1);
  await send(b, '/v1.0/me', UA, 3, 'https://graph.microsoft.com'); // not a security API call: counted nowhere

  // Wait until Prometheus holds the final values of both proxies (25 API calls in all).
  const expected = (await localRequestTotal(a)) + (await localRequestTotal(b));
  expect(expected).toBe(18);
  while (Number((await query(prom.url, 'sum(mde_partner_proxy_requests_total)'))?.[0]?.value[1] ?? 0) !== expected) {
    if (Date.now() > deadline + DEADLINE_MS) throw new Error(`Prometheus never reached ${expected} calls:\n${prom.log()}`);
    await sleep(200);
  }
  const to = new Date(Date.now() + 60_000).toISOString();

  const fleet = await runCli(cli, ['report', '--config', a.configFile, '--prometheus', prom.url, '--from', from, '--to', to, '--format', 'json']);
  expect(fleet.stderr).toBe('');
  expect(fleet.code).toBe(0);
  const fleetModel = JSON.parse(fleet.stdout) as ReportModel;

  const local = async (p: CliProxy): Promise<ReportModel> => {
    const res = await request(`${p.adminUrl}/report?format=json&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    const text = await res.body.text();
    expect([res.statusCode, text.slice(0, 200)]).toEqual([200, expect.any(String)]);
    return JSON.parse(text) as ReportModel;
  };
  // Each proxy flushes its store every 200 ms (usage.flushMs); poll until both local reports have all 18 calls.
  let localA: ReportModel;
  let localB: ReportModel;
  for (;;) {
    [localA, localB] = [await local(a), await local(b)];
    if (localA.total.calls + localB.total.calls === expected) break;
    if (Date.now() > deadline + 2 * DEADLINE_MS) throw new Error(`local reports hold ${localA.total.calls} + ${localB.total.calls} calls, expected ${expected}`);
    await sleep(200);
  }

  expect(figures(fleetModel)).toEqual(addFigures(figures(localA), figures(localB)));
  expect(fleetModel.products[0]).toMatchObject({ id: 'cognito', calls: 18, compliant: 11, rewritten: 7, rejected: 0, audited: 0, throttled: 2, errors: 1, share: '100.00%' });
  expect(fleetModel.products[0]!.headline).toBe('18 calls to Microsoft security APIs, 100.00% carried MdePartner-Contoso-ContosoCognito.');
  // Tenants: every call carried no token, so all are tenant "unknown", app "unknown", on both sides.
  const tenantCalls = (m: ReportModel): Record<string, number> => Object.fromEntries(m.tenants.map((t) => [`${t.product}/${t.tenant}/${t.app}`, t.calls]));
  const localTenants = { ...tenantCalls(localA) };
  for (const [k, v] of Object.entries(tenantCalls(localB))) localTenants[k] = (localTenants[k] ?? 0) + v;
  expect(tenantCalls(fleetModel)).toEqual(localTenants);
  // What Prometheus cannot give is said, not faked.
  expect(fleetModel.callers).toBeUndefined();
  expect(fleetModel.notes.join(' ')).toMatch(/no non-compliant callers/);
  expect(fleetModel.notes[0]).toMatch(/over 2 replicas/);
  expect(fleetModel.facts.source).toEqual({ kind: 'prometheus', name: prom.url });

  // The HTML form of the same fleet report says so on the page.
  const html = await runCli(cli, ['report', '--config', a.configFile, '--prometheus', prom.url, '--from', from, '--to', to]);
  expect(html.code).toBe(0);
  expect(html.stdout).toContain('data-role="callers-unavailable"');
  expect(html.stdout).toContain('18 calls to Microsoft security APIs, 100.00% carried MdePartner-Contoso-ContosoCognito.');
}, 180_000);

it('report --prometheus names an unreachable Prometheus and exits 1', async () => {
  const { file } = await writeTestConfig(origin.port);
  const port = await freePort(); // nothing listens there
  const r = await runCli(cli, ['report', '--config', file, '--prometheus', `http://127.0.0.1:${port}`, '--format', 'json']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`Prometheus at http://127.0.0.1:${port} cannot be reached: ECONNREFUSED`);
  expect(r.stdout).toBe('');
});

it.each([
  [['--from', 'yesterday'], /--from: must be an ISO 8601 date/],
  [['--from', '2026-12-01', '--to', '2026-11-01'], /--from: must be before to/],
  [['--format', 'pdf'], /--format "pdf" is not one of html, json, csv/],
])('report %p exits non-zero naming the option', async (args, message) => {
  const { file } = await writeTestConfig(origin.port);
  const r = await runCli(cli, ['report', '--config', file, '--prometheus', 'http://127.0.0.1:1', ...args]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(message);
});
