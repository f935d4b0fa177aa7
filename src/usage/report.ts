// PURE. The compliance report as data: usage rows (from the store or from Prometheus) plus static
// facts (products, clouds, hosts, mode, CA dates, version, period) → one ReportModel. html.ts renders
// it as a page; this file also renders it as JSON and CSV, so the three formats hold the same figures.
//
// The headline, per product: of the calls that LEFT the proxy for Microsoft (every API call except
// the rejected ones, which never leave), the share that carried the partner User-Agent: the ones
// that arrived compliant plus the ones the proxy rewrote. Audited calls left unchanged without it,
// so they count against the share. The share is floored to two decimals: "100.00%" means every one.

import { csvField } from './endpoints.js';
import type { CallerRow, Counts, LimitGroup, LimitRow, TimeRange, UsageRow } from './store.js';

/** The counters every row of the report carries, as in `/usage`. */
export type { Counts };

/** Counts plus the two figures the headline is made of. */
export interface Compliance extends Counts {
  /** Calls that left the proxy for Microsoft: calls − rejected. */
  readonly sent: number;
  /** Calls that left with the partner User-Agent: compliant + rewritten. */
  readonly carried: number;
  /** carried / sent floored to two decimals, as text ("100.00%"); "—" when nothing was sent. */
  readonly share: string;
}

export interface ProductFacts {
  readonly id: string;
  /** The configured partner User-Agent, e.g. MdePartner-Contoso-ContosoCognito/1.0.0. */
  readonly userAgent: string;
}

export interface CaFacts {
  readonly subject: string;
  /** Epoch ms. */
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Where the figures came from. */
export interface ReportSource {
  readonly kind: 'store' | 'prometheus';
  /** 'sqlite', 'postgres' or the Prometheus base URL (without credentials). */
  readonly name: string;
}

/** What the report states besides the counts; the caller gathers these from the config and the CA. */
export interface ReportFacts {
  readonly period: TimeRange;
  readonly generatedAt: number;
  /** Version of the proxy that rendered the report. */
  readonly version: string;
  /** Versions the fleet's replicas reported (Prometheus build_info); empty for one proxy's store. */
  readonly replicaVersions: readonly string[];
  readonly products: readonly ProductFacts[];
  readonly clouds: readonly string[];
  /** Enforced host patterns: the catalogue's for the clouds, then extraHosts. */
  readonly hosts: readonly string[];
  readonly extraHosts: readonly string[];
  readonly mode: string;
  readonly rewrite: string;
  readonly ca: CaFacts | undefined;
  readonly source: ReportSource;
}

/** One product/group/window maximum of rate_limit_utilization (Prometheus has no per-tenant peaks). */
export interface UtilisationRow {
  readonly product: string;
  readonly group: LimitGroup;
  readonly window: 'minute' | 'hour';
  /** Highest utilisation seen, 1 = at the limit. */
  readonly utilisation: number;
}

/** The rows a source hands over; `undefined` lists are ones the source cannot provide. */
export interface ReportRows {
  /** Counts by product. */
  readonly products: readonly UsageRow[];
  /** Counts by product and api. */
  readonly apis: readonly UsageRow[];
  /** Counts by product and day (day: an ISO 8601 date or date-time at 00:00 UTC). */
  readonly days: readonly UsageRow[];
  /** Counts by product, tenant and app. */
  readonly tenants: readonly UsageRow[];
  /** Per tenant/app/group peaks (store only). */
  readonly limits: readonly LimitRow[] | undefined;
  /** Non-compliant callers (store only). */
  readonly callers: readonly CallerRow[] | undefined;
  /** Worst utilisation per product and group (Prometheus only). */
  readonly utilisation: readonly UtilisationRow[] | undefined;
  /** Names of the lists the source cut at its row limit. */
  readonly truncated: readonly string[];
  /** What this source cannot show, said on the page. */
  readonly notes: readonly string[];
}

export interface ApiLine extends Counts { readonly api: string }
export interface DayLine extends Counts { readonly day: string }

export interface ProductReport extends Compliance {
  readonly id: string;
  /** The configured User-Agent, or '' for a product id the rows name but the config does not. */
  readonly userAgent: string;
  /** The partner token without its version: what "carried" means. */
  readonly token: string;
  /** The one-sentence headline. */
  readonly headline: string;
  readonly apis: readonly ApiLine[];
  readonly days: readonly DayLine[];
}

export interface LimitUse {
  readonly group: LimitGroup;
  readonly perMinute: { readonly peak: number; readonly limit: number };
  readonly perHour: { readonly peak: number; readonly limit: number };
  /** The larger of the two peak/limit ratios. */
  readonly utilisation: number;
  readonly throttled: number;
  readonly maxRetryAfter: number;
}

export interface TenantLine extends Counts {
  readonly product: string;
  readonly tenant: string;
  readonly app: string;
  readonly appName: string;
  /** Peaks per limit group; empty when the source has none. */
  readonly limits: readonly LimitUse[];
}

export interface CallerLine {
  readonly product: string;
  readonly family: string;
  readonly client: string;
  readonly calls: number;
  /** ISO 8601. */
  readonly firstSeen: string;
  readonly lastSeen: string;
}

export interface ReportModel {
  readonly title: string;
  /** ISO 8601 instants of the half-open period [from, to). */
  readonly from: string;
  readonly to: string;
  readonly generatedAt: string;
  readonly facts: ReportFacts;
  /** All products together. */
  readonly total: Compliance;
  readonly products: readonly ProductReport[];
  readonly tenants: readonly TenantLine[];
  /** undefined when the source cannot name callers. */
  readonly callers: readonly CallerLine[] | undefined;
  readonly utilisation: readonly UtilisationRow[] | undefined;
  readonly truncated: readonly string[];
  readonly notes: readonly string[];
}

const DAY_MS = 86_400_000;
/** Longest period the day series is filled with zero days for (a chart of more days is unreadable). */
export const MAX_FILLED_DAYS = 400;

export const ZERO: Counts = Object.freeze({ calls: 0, compliant: 0, rewritten: 0, rejected: 0, audited: 0, throttled: 0, errors: 0 });
const COUNT_KEYS: readonly (keyof Counts)[] = ['calls', 'compliant', 'rewritten', 'rejected', 'audited', 'throttled', 'errors'];

/** A non-negative integer from an untrusted value (NaN, negatives and strings become 0). */
function count(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

/** The counts of a row. */
export function countsOf(row: Partial<Record<keyof Counts, unknown>>): Counts {
  return { calls: count(row.calls), compliant: count(row.compliant), rewritten: count(row.rewritten), rejected: count(row.rejected),
    audited: count(row.audited), throttled: count(row.throttled), errors: count(row.errors) };
}

/** Adds counts field by field. */
export function addCounts(a: Counts, b: Counts): Counts {
  const out: Record<string, number> = {};
  for (const k of COUNT_KEYS) out[k] = a[k] + b[k];
  return out as unknown as Counts;
}

/** carried / sent floored to two decimals, so 99.999% never shows as 100.00%; "—" when sent is 0. */
export function shareText(carried: number, sent: number): string {
  if (sent <= 0) return '—';
  const basisPoints = Math.floor((Math.min(carried, sent) * 10_000) / sent);
  return `${Math.floor(basisPoints / 100)}.${String(basisPoints % 100).padStart(2, '0')}%`;
}

/** The headline figures of some counts. */
export function complianceOf(c: Counts): Compliance {
  const sent = Math.max(0, c.calls - c.rejected);
  const carried = c.compliant + c.rewritten;
  return { ...c, sent, carried, share: shareText(carried, sent) };
}

/** 12345 → "12,345". */
export function formatCount(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** The partner token without its version: MdePartner-Contoso-ContosoCognito/1.0.0 → MdePartner-Contoso-ContosoCognito. */
export function partnerToken(userAgent: string): string {
  const slash = userAgent.indexOf('/');
  return slash < 0 ? userAgent : userAgent.slice(0, slash);
}

/** The headline sentence of one product (or of all products, when token is ''). */
export function headlineOf(c: Compliance, token: string): string {
  if (c.sent === 0) {
    const refused = c.rejected > 0 ? `; ${formatCount(c.rejected)} refused before reaching Microsoft` : '';
    return `No calls to Microsoft security APIs left the proxy in this period${refused}.`;
  }
  const what = token === '' ? 'the partner User-Agent of their product' : token;
  const noun = c.sent === 1 ? 'call' : 'calls';
  return `${formatCount(c.sent)} ${noun} to Microsoft security APIs, ${c.share} carried ${what}.`;
}

/** A UTC day key 'YYYY-MM-DD' from a row's day value (date or date-time), or undefined. */
export function dayKey(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})(?:$|T)/.exec(value);
  if (m === null) return undefined;
  const t = Date.parse(`${m[1]}T00:00:00Z`);
  return Number.isNaN(t) ? undefined : m[1];
}

/** Every UTC day that overlaps [from, to), or undefined past MAX_FILLED_DAYS. */
export function daysOf(range: TimeRange): string[] | undefined {
  const first = Math.floor(range.from / DAY_MS) * DAY_MS;
  if (!(range.to > range.from) || (range.to - first) / DAY_MS > MAX_FILLED_DAYS) return undefined;
  const out: string[] = [];
  for (let t = first; t < range.to; t += DAY_MS) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

const text = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback);

/** Sums rows into a map by key, keeping first-seen order. */
function sumBy<K>(rows: readonly UsageRow[], key: (row: UsageRow) => K | undefined): Map<K, Counts> {
  const out = new Map<K, Counts>();
  for (const row of rows) {
    const k = key(row);
    if (k === undefined) continue;
    out.set(k, addCounts(out.get(k) ?? ZERO, countsOf(row)));
  }
  return out;
}

const iso = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : '');
const byCallsThen = <T extends { calls: number }>(name: (x: T) => string) => (a: T, b: T): number =>
  b.calls - a.calls || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);

/** Computes the report from a source's rows and the static facts. */
export function buildReport(facts: ReportFacts, rows: ReportRows): ReportModel {
  const configured = new Map(facts.products.map((p) => [p.id, p]));
  const productTotals = sumBy(rows.products, (r) => text(r.product, 'unknown'));
  const ids = [...facts.products.map((p) => p.id), ...[...productTotals.keys()].filter((id) => !configured.has(id)).sort()];
  const filled = daysOf(facts.period);

  const products: ProductReport[] = ids.map((id) => {
    const userAgent = configured.get(id)?.userAgent ?? '';
    const token = userAgent === '' ? '' : partnerToken(userAgent);
    const c = complianceOf(productTotals.get(id) ?? ZERO);
    const apis = [...sumBy(rows.apis.filter((r) => text(r.product) === id), (r) => text(r.api, 'other'))]
      .map(([api, counts]) => ({ api, ...counts }))
      .sort(byCallsThen((x) => x.api));
    const dayCounts = sumBy(rows.days.filter((r) => text(r.product) === id), (r) => dayKey(r.day));
    const dayKeys = filled ?? [...dayCounts.keys()].sort();
    const days = dayKeys.map((day) => ({ day, ...(dayCounts.get(day) ?? ZERO) }));
    return { id, userAgent, token, ...c, headline: headlineOf(c, token), apis, days };
  });

  const total = complianceOf(products.reduce<Counts>((acc, p) => addCounts(acc, p), ZERO));

  const limitsByKey = new Map<string, { appName: string; uses: LimitUse[] }>();
  for (const l of rows.limits ?? []) {
    const key = JSON.stringify([text(l.product), text(l.tenant), text(l.app)]);
    const entry = limitsByKey.get(key) ?? { appName: '', uses: [] };
    if (entry.appName === '' && text(l.appName) !== '') entry.appName = text(l.appName);
    const perMinute = { peak: count(l.perMinute?.peak), limit: count(l.perMinute?.limit) };
    const perHour = { peak: count(l.perHour?.peak), limit: count(l.perHour?.limit) };
    const ratio = (w: { peak: number; limit: number }): number => (w.limit > 0 ? w.peak / w.limit : 0);
    entry.uses.push({ group: l.group, perMinute, perHour, utilisation: Math.max(ratio(perMinute), ratio(perHour)),
      throttled: count(l.throttled), maxRetryAfter: count(l.maxRetryAfter) });
    limitsByKey.set(key, entry);
  }
  const tenantCounts = sumBy(rows.tenants, (r) => JSON.stringify([text(r.product, 'unknown'), text(r.tenant, 'unknown'), text(r.app, 'unknown')]));
  // A tenant/app with peaks but no counts in the period still belongs in the table (limits rows only).
  for (const key of limitsByKey.keys()) if (!tenantCounts.has(key)) tenantCounts.set(key, ZERO);
  const tenants: TenantLine[] = [...tenantCounts].map(([key, counts]) => {
    const [product, tenant, app] = JSON.parse(key) as [string, string, string];
    const lim = limitsByKey.get(key);
    const limits = [...(lim?.uses ?? [])].sort((a, b) => b.utilisation - a.utilisation || (a.group < b.group ? -1 : 1));
    return { product, tenant, app, appName: lim?.appName ?? '', ...counts, limits };
  }).sort(byCallsThen((x) => `${x.product}\u0000${x.tenant}\u0000${x.app}`));

  const callers = rows.callers?.map((c) => ({ product: text(c.product), family: text(c.family, '(none)'), client: text(c.client),
    calls: count(c.calls), firstSeen: iso(c.firstSeen), lastSeen: iso(c.lastSeen) }))
    .sort((a, b) => (a.product < b.product ? -1 : a.product > b.product ? 1 : 0) || b.calls - a.calls || (a.family < b.family ? -1 : a.family > b.family ? 1 : 0));

  const utilisation = rows.utilisation?.map((u) => ({ ...u, utilisation: Number.isFinite(u.utilisation) && u.utilisation > 0 ? u.utilisation : 0 }))
    .sort((a, b) => (a.product < b.product ? -1 : a.product > b.product ? 1 : 0) || b.utilisation - a.utilisation);

  return {
    title: 'Partner User-Agent compliance report',
    from: iso(facts.period.from),
    to: iso(facts.period.to),
    generatedAt: iso(facts.generatedAt),
    facts,
    total,
    products,
    tenants,
    callers,
    utilisation,
    truncated: [...rows.truncated],
    notes: [...rows.notes],
  };
}

/** The model as JSON text (what `--format json` writes and `/report?format=json` answers). */
export function reportJson(model: ReportModel): string {
  return `${JSON.stringify(model, null, 2)}\n`;
}

const COUNT_HEADER = ['calls', 'compliant', 'rewritten', 'rejected', 'audited', 'throttled', 'errors'] as const;
const countCells = (c: Counts): number[] => COUNT_HEADER.map((k) => c[k]);

/**
 * The model as CSV: one block per table, blocks separated by an empty line; each block has a header
 * row whose first column is `section`, and every data row starts with its block's name, so `grep ^day,` or a spreadsheet filter picks one table.
 */
export function reportCsv(model: ReportModel): string {
  const blocks: (string | number)[][][] = [];
  blocks.push([
    ['section', 'key', 'value'],
    ['report', 'from', model.from], ['report', 'to', model.to], ['report', 'generatedAt', model.generatedAt],
    ['report', 'source', `${model.facts.source.kind}:${model.facts.source.name}`],
    ['report', 'version', model.facts.version],
    ...model.facts.replicaVersions.map((v) => ['report', 'replicaVersion', v]),
    ['report', 'mode', model.facts.mode], ['report', 'rewrite', model.facts.rewrite],
    ...model.facts.clouds.map((c) => ['report', 'cloud', c]),
    ...model.facts.hosts.map((h) => ['report', 'host', h]),
    ...(model.facts.ca ? [['report', 'caSubject', model.facts.ca.subject], ['report', 'caNotBefore', iso(model.facts.ca.notBefore)],
      ['report', 'caNotAfter', iso(model.facts.ca.notAfter)]] : []),
    ...model.truncated.map((t) => ['report', 'truncated', t]),
    ...model.notes.map((n) => ['report', 'note', n]),
  ]);
  blocks.push([
    ['section', 'product', 'userAgent', 'sent', 'carried', 'share', ...COUNT_HEADER],
    ...model.products.map((p) => ['product', p.id, p.userAgent, p.sent, p.carried, p.share, ...countCells(p)]),
    ['product', '(all)', '', model.total.sent, model.total.carried, model.total.share, ...countCells(model.total)],
  ]);
  blocks.push([['section', 'product', 'api', ...COUNT_HEADER], ...model.products.flatMap((p) => p.apis.map((a) => ['api', p.id, a.api, ...countCells(a)]))]);
  blocks.push([['section', 'product', 'day', ...COUNT_HEADER], ...model.products.flatMap((p) => p.days.map((d) => ['day', p.id, d.day, ...countCells(d)]))]);
  blocks.push([
    ['section', 'product', 'tenant', 'app', 'appName', ...COUNT_HEADER, 'group', 'perMinutePeak', 'perMinuteLimit', 'perHourPeak', 'perHourLimit', 'groupThrottled', 'maxRetryAfter'],
    ...model.tenants.flatMap((t) => {
      const head = ['tenant', t.product, t.tenant, t.app, t.appName, ...countCells(t)];
      if (t.limits.length === 0) return [[...head, '', '', '', '', '', '', '']];
      return t.limits.map((l) => [...head, l.group, l.perMinute.peak, l.perMinute.limit, l.perHour.peak, l.perHour.limit, l.throttled, l.maxRetryAfter]);
    }),
  ]);
  if (model.utilisation !== undefined) {
    blocks.push([['section', 'product', 'group', 'window', 'utilisation'],
      ...model.utilisation.map((u) => ['utilisation', u.product, u.group, u.window, Number(u.utilisation.toFixed(4))])]);
  }
  if (model.callers !== undefined) {
    blocks.push([['section', 'product', 'family', 'client', 'calls', 'firstSeen', 'lastSeen'],
      ...model.callers.map((c) => ['caller', c.product, c.family, c.client, c.calls, c.firstSeen, c.lastSeen])]);
  }
  return `${blocks.map((b) => b.map((row) => row.map(csvField).join(',')).join('\r\n')).join('\r\n\r\n')}\r\n`;
}
