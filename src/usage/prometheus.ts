// The report's rows for a whole fleet, from Prometheus' HTTP API over the proxy's own metrics
// (requests_total, tenant_requests_total, rate_limit_utilization, build_info) of every replica it
// scrapes.
//
// Counts are computed here from the counters' values at each step of a query_range, not with
// PromQL's increase(): increase() extrapolates to the window's edges (fractions of calls) and
// ignores a series' first sample, so the calls made before the first scrape of a new series
// (a new tenant, API or replica) would be missing. Here each replica's series counts from 0 when it
// appears inside the period, a drop is a restart (the new value is counted), and the per-replica
// figures are summed. Exact for integer counters, except that calls between a replica's last
// scrape and its crash are lost, and a restart hidden between two steps is counted from the value
// it had reached.

import type { LimitGroup, TimeRange, UsageRow } from './store.js';
import type { ReportRows, UtilisationRow } from './report.js';

const PREFIX = 'mde_partner_proxy_';
/** Steps that divide a day, so every step falls in one UTC day. */
const STEPS_S: readonly number[] = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];
/** Points per series: Prometheus refuses more than 11,000; fewer keeps a month's answer small. */
const MAX_POINTS_DAYS = 2000;
const MAX_POINTS_TENANTS = 400;

export interface PrometheusSource {
  /** Base URL, e.g. http://prometheus:9090 (user:password@ becomes Basic authorization). */
  readonly url: string;
  readonly timeoutMs?: number;
}

/** The smallest day-dividing step that keeps a range within maxPoints points. */
export function stepFor(rangeS: number, maxPoints: number): number {
  for (const s of STEPS_S) if (rangeS / s <= maxPoints) return s;
  return STEPS_S[STEPS_S.length - 1]!;
}

/**
 * Calls counted by one counter series sampled at steps: the first value counts only when the series
 * appeared after the period's start (it started from 0 inside the period); a rise counts its
 * difference; a drop is a restart and counts the new value.
 */
export function seriesIncrease(points: readonly (readonly [number, number])[], startS: number): { total: number; byTime: [number, number][] } {
  const byTime: [number, number][] = [];
  let total = 0;
  let prev: number | undefined;
  for (const [t, v] of points) {
    if (!Number.isFinite(v) || v < 0) continue;
    const inc = prev === undefined ? (t > startS ? v : 0) : v >= prev ? v - prev : v;
    prev = v;
    if (inc > 0) {
      byTime.push([t, inc]);
      total += inc;
    }
  }
  return { total, byTime };
}

/** The URL without credentials, for the page. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}

interface Matrix { readonly metric: Record<string, string>; readonly values: readonly (readonly [number, string])[] }
interface Vector { readonly metric: Record<string, string>; readonly value: readonly [number, string] }

/** A small client for /api/v1/query and /api/v1/query_range. */
function client(source: PrometheusSource) {
  let base: URL;
  try {
    base = new URL(source.url);
  } catch {
    // Everything up to the last '@' may be user:password, and a URL that does not parse has no defined user part.
    throw new Error(`--prometheus: not a URL: ${JSON.stringify(source.url.replace(/^([^:/@]*:\/\/)?.*@/s, '$1…@'))}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`--prometheus: must be an http:// or https:// URL, got ${base.protocol}`);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (base.username !== '' || base.password !== '') {
    headers.Authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`;
    base.username = '';
    base.password = '';
  }
  const root = base.toString().replace(/\/$/, '');
  const call = async <T>(path: string, params: Record<string, string>): Promise<T> => {
    const body = new URLSearchParams(params).toString();
    let res: Response;
    try {
      res = await fetch(`${root}${path}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' }, body,
        signal: AbortSignal.timeout(source.timeoutMs ?? 60_000) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`Prometheus at ${displayUrl(source.url)} cannot be reached: ${cause?.code ?? cause?.message ?? (e as Error).message}`, { cause: e });
    }
    const text = await res.text();
    let json: { status?: string; data?: { resultType?: string; result?: T }; error?: string; errorType?: string };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new Error(`Prometheus at ${displayUrl(source.url)} answered ${res.status} without JSON (is this Prometheus' address?)`);
    }
    if (json.status !== 'success' || json.data?.result === undefined) {
      throw new Error(`Prometheus at ${displayUrl(source.url)} answered ${res.status}: ${json.errorType ?? 'error'}: ${json.error ?? 'no result'}`);
    }
    return json.data.result;
  };
  return {
    range: (query: string, startS: number, endS: number, stepS: number): Promise<Matrix[]> =>
      call<Matrix[]>('/api/v1/query_range', { query, start: String(startS), end: String(endS), step: String(stepS) }),
    instant: (query: string, timeS: number): Promise<Vector[]> => call<Vector[]>('/api/v1/query', { query, time: String(timeS) }),
  };
}

type CountKey = 'compliant' | 'rewritten' | 'rejected' | 'audited';
const ACTIONS: ReadonlySet<string> = new Set(['compliant', 'rewritten', 'rejected', 'audited']);

/** Adds n calls of one action (and their 429s / errors) to a row kept in a map. */
function add(map: Map<string, Record<string, string | number>>, keys: Record<string, string>, action: string, cls: string, n: number): void {
  const id = JSON.stringify(keys);
  const row = map.get(id) ?? { ...keys, calls: 0, compliant: 0, rewritten: 0, rejected: 0, audited: 0, throttled: 0, errors: 0 };
  row.calls = (row.calls as number) + n;
  if (ACTIONS.has(action)) row[action as CountKey] = (row[action as CountKey] as number) + n;
  if (cls === 'throttled') row.throttled = (row.throttled as number) + n;
  if (cls === 'error') row.errors = (row.errors as number) + n;
  map.set(id, row);
}

const toPoints = (m: Matrix): [number, number][] => m.values.map(([t, v]) => [t, Number(v)]);

/**
 * A query_range whose last point is the period's end: the steps stop up to one step before it, and
 * the calls counted since then (a whole step of them) would be missing. An instant query at the end
 * supplies that point, also for a series born inside the last step.
 */
async function withEndPoint(api: ReturnType<typeof client>, query: string, startS: number, endS: number, stepS: number): Promise<Matrix[]> {
  const [matrix, last] = await Promise.all([api.range(query, startS, endS, stepS), api.instant(query, endS)]);
  const byLabels = new Map(matrix.map((m) => [JSON.stringify(Object.entries(m.metric).sort()), { metric: m.metric, values: [...m.values] }]));
  for (const v of last) {
    const key = JSON.stringify(Object.entries(v.metric).sort());
    const series = byLabels.get(key) ?? { metric: v.metric, values: [] };
    const lastT = series.values.at(-1)?.[0];
    if (lastT === undefined || lastT < v.value[0]) series.values.push(v.value);
    byLabels.set(key, series);
  }
  return [...byLabels.values()];
}
const dayOf = (tS: number): string => new Date((tS - 1) * 1000).toISOString().slice(0, 10);

/** Everything the report needs for the period, from Prometheus; the replicas' versions on the side. */
export async function rowsFromPrometheus(source: PrometheusSource, range: TimeRange, now: number = Date.now()): Promise<{ rows: ReportRows; versions: string[]; replicas: string[] }> {
  const api = client(source);
  const startS = Math.floor(range.from / 1000);
  // Past "now" nothing more can have been scraped; the last point is at the end (or now).
  const endS = Math.max(startS + 1, Math.ceil(Math.min(range.to, now) / 1000));
  const rangeS = endS - startS;
  const window = `${rangeS}s`;

  // requests_total per replica, with its status codes folded into three classes: 429, 5xx (an error
  // unless the proxy rejected the call itself) and the rest.
  const classed = `label_replace(label_replace(label_replace(${PREFIX}requests_total, "class", "ok", "code", ".*"), "class", "throttled", "code", "429"), "class", "error", "code", "5..")`;
  const requestsQuery = `sum by (job, instance, product, api, action, class) (${classed})`;
  const tenantsQuery = `sum by (job, instance, product, tenant, app, action) (${PREFIX}tenant_requests_total)`;
  const dayStep = stepFor(rangeS, MAX_POINTS_DAYS);
  const tenantStep = stepFor(rangeS, MAX_POINTS_TENANTS);
  const [requests, tenantSeries, utilisation, builds] = await Promise.all([
    withEndPoint(api, requestsQuery, startS, endS, dayStep),
    withEndPoint(api, tenantsQuery, startS, endS, tenantStep),
    api.instant(`max by (product, group, window) (max_over_time(${PREFIX}rate_limit_utilization[${window}]))`, endS),
    api.instant(`max by (job, instance, version) (max_over_time(${PREFIX}build_info[${window}]))`, endS),
  ]);

  const products = new Map<string, Record<string, string | number>>();
  const apis = new Map<string, Record<string, string | number>>();
  const days = new Map<string, Record<string, string | number>>();
  for (const series of requests) {
    const { product = 'unregistered', api: apiLabel = 'other', action = '', class: cls = 'ok' } = series.metric;
    // A rejected call never reached Microsoft: its 5xx cannot be Microsoft's error.
    const effectiveClass = action === 'rejected' && cls === 'error' ? 'ok' : cls;
    const { total, byTime } = seriesIncrease(toPoints(series), startS);
    if (total === 0) continue;
    add(products, { product }, action, effectiveClass, total);
    add(apis, { product, api: apiLabel }, action, effectiveClass, total);
    for (const [t, n] of byTime) add(days, { product, day: dayOf(Math.min(t, endS)) }, action, effectiveClass, n);
  }
  const tenants = new Map<string, Record<string, string | number>>();
  for (const series of tenantSeries) {
    const { product = 'unregistered', tenant = 'unknown', app = 'unknown', action = '' } = series.metric;
    const { total } = seriesIncrease(toPoints(series), startS);
    if (total > 0) add(tenants, { product, tenant, app }, action, 'ok', total);
  }
  const limitRows: UtilisationRow[] = utilisation
    .filter((v) => v.metric.product !== undefined && (v.metric.window === 'minute' || v.metric.window === 'hour'))
    .map((v) => ({ product: v.metric.product!, group: (v.metric.group ?? 'api') as LimitGroup, window: v.metric.window as 'minute' | 'hour', utilisation: Number(v.value[1]) }));
  const versions = [...new Set(builds.map((b) => b.metric.version).filter((v): v is string => v !== undefined))].sort();
  const replicas = [...new Set(builds.map((b) => `${b.metric.job ?? ''}/${b.metric.instance ?? ''}`))].sort();

  const rows: ReportRows = {
    products: [...products.values()] as UsageRow[],
    apis: [...apis.values()] as UsageRow[],
    days: [...days.values()] as UsageRow[],
    tenants: [...tenants.values()] as UsageRow[],
    limits: undefined,
    callers: undefined,
    utilisation: limitRows,
    truncated: [],
    notes: [
      `Figures summed over ${replicas.length} ${replicas.length === 1 ? 'replica' : 'replicas'} that Prometheus scraped in the period${replicas.length > 0 ? `: ${replicas.join(', ')}` : ''}.`,
      'From Prometheus: no non-compliant callers (User-Agent families and client addresses are not metric labels), no per-tenant peaks or per-tenant 429s (the tenant metric has no status), and tenants beyond usage.metricTenants appear as "other".',
      'Calls made between a replica\'s last scrape and a crash are not counted; days are attributed at the resolution of the query step.',
      'Policy mode, clouds, hosts and the CA are those of the configuration this report was run with.',
    ],
  };
  return { rows, versions, replicas };
}
