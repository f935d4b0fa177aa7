// Prometheus metrics fed by a ProxyObserver: the request path reports events, this file turns them
// into series on an injected Registry. Every label value comes from a bounded set, so a flood of
// random paths, hosts, methods or User-Agents can never add series.

import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { UPSTREAM_ERROR_CODES } from './errors.js';
import type { ExchangeEvent, ProxyObserver, ReloadResult, RequestAction, TunnelAction, TunnelEvent } from './events.js';

/** Prefix of the proxy's own metric names; prom-client's default process metrics stay unprefixed. */
export const METRIC_PREFIX = 'mde_partner_proxy_';

/** Product label for callers bound to no configured product (and for any unknown id). */
export const UNREGISTERED_PRODUCT = 'unregistered';

/** Catch-all label value for anything outside a bounded set. */
export const OTHER_LABEL = 'other';

/** Methods that keep their own label value; RFC 9110 §9.1 methods are case-sensitive, so 'get' is 'other'. */
export const METHOD_LABELS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** Request actions counted by requests_total; 'passed' traffic is not an API call and is not counted. */
export const REQUEST_ACTIONS: readonly RequestAction[] = ['compliant', 'rewritten', 'rejected', 'audited'];

/** Tunnel actions, pre-initialised at zero. */
export const TUNNEL_ACTIONS: readonly TunnelAction[] = ['tunnelled', 'intercepted', 'denied'];

/** Config reload results, pre-initialised at zero. */
export const RELOAD_RESULTS: readonly ReloadResult[] = ['success', 'failure'];

/** Upstream error codes that keep their own label value (errors.ts); others count as 'other'. */
export { UPSTREAM_ERROR_CODES };

/** Duration buckets in seconds: loopback-fast rejections up to slow advanced-hunting queries. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface Metrics {
  readonly observer: ProxyObserver;
  readonly registry: Registry;
  /** Replace the configured product ids (on config reload); ids no longer configured count as 'unregistered'. */
  setProducts(ids: readonly string[]): void;
  /** Set the interception CA's notAfter (at start and whenever the CA is loaded again). */
  setCaExpiry(notAfter: Date): void;
  /** Counts one failed usage store operation (usage_store_errors_total). */
  usageStoreError(): void;
}

/** Tenant/app label values: a lowercase GUID or 'unknown'; anything else is counted as 'other'. */
const TENANT_LABEL = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|unknown)$/;

/** Worst use of a Microsoft limit, as the usage recorder reports it (usage/recorder.ts UtilisationRow). */
export interface UtilisationSample {
  readonly product: string;
  readonly group: string;
  readonly window: string;
  readonly value: number;
}

/** What the usage metrics need from the usage side. */
export interface UsageMetricsOptions {
  /** Tenant/app pairs with their own tenant_requests_total series (usage.metricTenants); later pairs are tenant="other", app="other". */
  readonly metricTenants: number;
  /** Worst utilisation per product, limit group and window, read at each scrape. */
  readonly utilisation?: (products: readonly string[]) => readonly UtilisationSample[];
}

export interface MetricsOptions {
  registry: Registry;
  products: readonly string[];
  /** The bounded API label set (catalogue.API_LABELS); 'other' is always included. */
  apiLabels: readonly string[];
  version: string;
  /** Register prom-client's default process metrics (process_*, nodejs_*, unprefixed); default true. */
  collectDefault?: boolean;
  /** Upstream error codes that keep their own label; default UPSTREAM_ERROR_CODES. */
  upstreamErrorCodes?: readonly string[];
  /** Per-tenant counts and limit utilisation; default: tenant_requests_total with 200 pairs, no utilisation. */
  usage?: UsageMetricsOptions;
}

/** Status as a 3-digit label, or '0' when no valid status reached the client. */
export function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : '0';
}

/**
 * Per-request increments of a labelled counter, kept in a tree of Maps keyed by the label values
 * (in labelNames order) and added to the counter when it is collected (at each scrape). A request
 * costs a few Map lookups on strings that are mostly constants, where prom-client's inc() builds a
 * label hash and validates the labels. Values must come from bounded sets, as for any counter.
 */
export function createTally<L extends string>(labelNames: readonly L[]): {
  inc(...values: string[]): void;
  flush(counter: Counter<L>): void;
} {
  interface Cell { readonly labels: Partial<Record<L, string>>; n: number }
  const root = new Map<string, unknown>();
  const cells: Cell[] = [];
  return {
    inc(...values: string[]): void {
      let node = root;
      const last = values.length - 1;
      for (let i = 0; i < last; i++) {
        let next = node.get(values[i]!) as Map<string, unknown> | undefined;
        if (next === undefined) node.set(values[i]!, (next = new Map()));
        node = next;
      }
      let cell = node.get(values[last]!) as Cell | undefined;
      if (cell === undefined) {
        const labels: Partial<Record<L, string>> = {};
        labelNames.forEach((name, i) => (labels[name] = values[i]));
        node.set(values[last]!, (cell = { labels, n: 0 }));
        cells.push(cell);
      }
      cell.n++;
    },
    flush(counter: Counter<L>): void {
      for (const cell of cells) {
        if (cell.n === 0) continue;
        counter.inc(cell.labels, cell.n);
        cell.n = 0;
      }
    },
  };
}

/** Registers the proxy's metrics on the given registry and returns the observer that feeds them. */
export function createMetrics(opts: MetricsOptions): Metrics {
  const { registry } = opts;
  const registers = [registry];
  const apis = new Set<string>([...opts.apiLabels, OTHER_LABEL]);
  const methods = new Set<string>(METHOD_LABELS);
  const actions = new Set<string>(REQUEST_ACTIONS);
  const tunnelActions = new Set<string>(TUNNEL_ACTIONS);
  const reloadResults = new Set<string>(RELOAD_RESULTS);
  const errorCodes = new Set<string>([...(opts.upstreamErrorCodes ?? UPSTREAM_ERROR_CODES), OTHER_LABEL]);
  let products = new Set<string>([...opts.products, UNREGISTERED_PRODUCT]);

  const requestLabels = ['product', 'api', 'method', 'code', 'action'] as const;
  const requests = createTally(requestLabels);
  new Counter({
    name: `${METRIC_PREFIX}requests_total`,
    help: 'Microsoft security API requests by product, API collection, method, status sent to the client (0: client went away first) and policy action.',
    labelNames: requestLabels,
    registers,
    collect() {
      requests.flush(this);
    },
  });
  const duration = new Histogram({
    name: `${METRIC_PREFIX}request_duration_seconds`,
    help: 'Time from request head to the end of the response for API requests sent to Microsoft (rejected requests excluded).',
    labelNames: ['product', 'api'] as const,
    buckets: [...DURATION_BUCKETS],
    registers,
  });
  const tunnels = new Counter({
    name: `${METRIC_PREFIX}tunnels_total`,
    help: 'Finished CONNECT requests by decision: tunnelled (blind), intercepted (TLS terminated, policy applied) or denied; a tunnel whose destination could not be reached is not counted here.',
    labelNames: ['action'] as const,
    registers,
  });
  const openConnections = new Gauge({
    name: `${METRIC_PREFIX}open_connections`,
    help: 'Client connections currently open on the proxy listeners.',
    registers,
  });
  const refusedConnections = new Counter({
    name: `${METRIC_PREFIX}connections_refused_total`,
    help: 'New client connections closed unserved because their listener was at limits.maxConnections.',
    registers,
  });
  const certificates = new Counter({
    name: `${METRIC_PREFIX}certificates_issued_total`,
    help: 'Leaf certificates minted by the interception CA.',
    registers,
  });
  const upstreamErrors = new Counter({
    name: `${METRIC_PREFIX}upstream_errors_total`,
    help: 'Failed outbound connections or exchanges by stable error code.',
    labelNames: ['code'] as const,
    registers,
  });
  const reloads = new Counter({
    name: `${METRIC_PREFIX}config_reloads_total`,
    help: 'Configuration reloads by result; a failed reload keeps the last good configuration serving.',
    labelNames: ['result'] as const,
    registers,
  });
  const buildInfo = new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'Always 1; labels carry the proxy and Node.js versions.',
    labelNames: ['version', 'node'] as const,
    registers,
  });
  buildInfo.set({ version: opts.version, node: process.version }, 1);
  const caExpiry = new Gauge({
    name: `${METRIC_PREFIX}ca_expiry_timestamp_seconds`,
    help: 'When the interception CA certificate expires (notAfter), as a Unix timestamp (0 until the CA is loaded); alert well before it.',
    registers,
  });

  const tenantLabels = ['product', 'tenant', 'app', 'action'] as const;
  const tenantRequests = createTally(tenantLabels);
  new Counter({
    name: `${METRIC_PREFIX}tenant_requests_total`,
    help: 'Microsoft security API requests by product, tenant and application from the bearer token, and policy action; pairs beyond usage.metricTenants count as tenant="other", app="other".',
    labelNames: tenantLabels,
    registers,
    collect() {
      tenantRequests.flush(this);
    },
  });
  const usageStoreErrors = new Counter({
    name: `${METRIC_PREFIX}usage_store_errors_total`,
    help: 'Failed usage store operations (open, write, prune); the counts stay in memory and are written when the store is back.',
    registers,
  });
  usageStoreErrors.inc(0);
  const utilisation = opts.usage?.utilisation;
  new Gauge({
    name: `${METRIC_PREFIX}rate_limit_utilization`,
    help: "Worst use of Microsoft's per-tenant, per-application limit over each product's tenant/app pairs, by limit group and sliding window (1 = at the limit).",
    labelNames: ['product', 'group', 'window'] as const,
    registers,
    collect() {
      this.reset();
      if (utilisation === undefined) return;
      for (const r of utilisation([...products].filter((p) => p !== UNREGISTERED_PRODUCT))) {
        this.set({ product: bound(products, r.product, UNREGISTERED_PRODUCT), group: r.group, window: r.window }, r.value);
      }
    },
  });
  const metricTenants = opts.usage?.metricTenants ?? 200;
  const tenantPairs = new Set<string>();

  // Zero series for the small closed sets, so rate() and increase() see the first event. requests_total
  // is not pre-initialised: rate() works per series, and a zero on an arbitrary api/method/code
  // combination would add series without helping the ones that later appear.
  for (const action of TUNNEL_ACTIONS) tunnels.labels({ action }).inc(0);
  for (const result of RELOAD_RESULTS) reloads.labels({ result }).inc(0);
  for (const code of errorCodes) upstreamErrors.labels({ code }).inc(0);

  // Unprefixed, as every Prometheus client library names them, so stock Node.js dashboards and
  // process alerts work without rewriting queries.
  if (opts.collectDefault ?? true) collectDefaultMetrics({ register: registry });

  const bound = (set: ReadonlySet<string>, value: unknown, fallback: string): string =>
    typeof value === 'string' && set.has(value) ? value : fallback;

  const exchangeEnd = (e: ExchangeEvent): void => {
    if (!actions.has(e.action)) return; // 'passed' (and anything unknown) is not an API call
    const product = bound(products, e.product, UNREGISTERED_PRODUCT);
    const api = bound(apis, e.api, OTHER_LABEL);
    requests.inc(product, api, bound(methods, e.method, OTHER_LABEL), statusLabel(e.status), e.action);
    let tenant = e.tenant ?? 'unknown';
    let app = e.app ?? 'unknown';
    // An admitted pair was checked when it was admitted (admitted labels hold no '|', so no other
    // pair of strings joins to the same key); any other pair is checked, then admitted while there is room.
    if (!tenantPairs.has(`${tenant}|${app}`)) {
      if (!TENANT_LABEL.test(tenant)) tenant = 'unknown';
      if (!TENANT_LABEL.test(app)) app = 'unknown';
      const pair = `${tenant}|${app}`;
      if (!tenantPairs.has(pair)) {
        if (tenantPairs.size < metricTenants) tenantPairs.add(pair);
        else tenant = app = OTHER_LABEL;
      }
    }
    tenantRequests.inc(product, tenant, app, e.action);
    // A rejected request never leaves the proxy; its few microseconds would hide Microsoft's latency.
    if (e.action !== 'rejected' && Number.isFinite(e.durationMs) && e.durationMs >= 0) {
      duration.observe({ product, api }, e.durationMs / 1000);
    }
  };

  // createProxy guards every observer (events.guardObserver): a fault here loses one sample, no more.
  const observer: ProxyObserver = {
    exchangeEnd,
    // A tunnel whose destination could not be reached did not tunnel: upstream_errors_total counts it.
    tunnelEnd: (e: TunnelEvent) => {
      if (e.outcome !== 'failed') tunnels.inc({ action: bound(tunnelActions, e.action, OTHER_LABEL) });
    },
    connectionOpen: () => openConnections.inc(),
    connectionClose: () => openConnections.dec(),
    connectionRefused: () => refusedConnections.inc(),
    certificateIssued: () => certificates.inc(),
    upstreamError: (code: string) => upstreamErrors.inc({ code: bound(errorCodes, code, OTHER_LABEL) }),
    configReload: (result: ReloadResult) => reloads.inc({ result: bound(reloadResults, result, OTHER_LABEL) }),
  };

  return {
    observer,
    registry,
    setProducts(ids: readonly string[]): void {
      products = new Set([...ids, UNREGISTERED_PRODUCT]);
    },
    setCaExpiry(notAfter: Date): void {
      if (Number.isFinite(notAfter.getTime())) caExpiry.set(notAfter.getTime() / 1000);
    },
    usageStoreError(): void {
      usageStoreErrors.inc();
    },
  };
}
