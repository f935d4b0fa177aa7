// Where the report's rows and facts come from, and the one function that renders a report in a
// format. `GET /report` (admin.ts) and `mde-partner-proxy report` (cli.ts) both end here; they
// differ only in the rows' source: the usage store, or Prometheus for a fleet.

import { X509Certificate } from 'node:crypto';
import type { Catalogue } from '../catalogue.js';
import type { AdminRoute, RouteResponse } from '../admin.js';
import type { Config } from '../config.js';
import { MAX_RANGE_DAYS, parseIsoTime, type UsageSource } from './endpoints.js';
import { renderHtml } from './html.js';
import { buildReport, reportCsv, reportJson, type CaFacts, type ReportFacts, type ReportModel, type ReportRows, type ReportSource } from './report.js';
import type { TimeRange, UsageStore } from './store.js';

export type ReportFormat = 'html' | 'json' | 'csv';
export const REPORT_FORMATS: readonly ReportFormat[] = ['html', 'json', 'csv'];

/** The default period: the last 30 days. */
export const DEFAULT_DAYS = 30;
/** Rows read per list from a store; a list cut there is named on the page. */
export const ROW_LIMIT = 20_000;
const DAY_MS = 86_400_000;

/** The facts that do not depend on the period or the source. */
export type StaticFacts = Omit<ReportFacts, 'period' | 'generatedAt' | 'source' | 'replicaVersions'>;

/** A bad report request: the field (query parameter or option) and what is wrong. */
export class ReportInputError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ReportInputError';
    this.field = field;
  }
}

/** Every enforced host pattern of a catalogue: the built-in names in catalogue order, '*.suffix' rules, then extraHosts. */
export function enforcedHosts(catalogue: Catalogue): string[] {
  const extras = new Set(catalogue.extraHosts);
  const builtIn = [...catalogue.exact.keys(), ...[...catalogue.suffixes.keys()].map((s) => `*.${s}`)].filter((h) => !extras.has(h));
  return [...builtIn, ...catalogue.extraHosts];
}

/** Subject and validity of a PEM certificate, or undefined when it cannot be parsed. */
export function caFacts(certPem: string | undefined): CaFacts | undefined {
  if (certPem === undefined) return undefined;
  try {
    const cert = new X509Certificate(certPem);
    return { subject: cert.subject.replace(/\n/g, ', '), notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
  } catch {
    return undefined;
  }
}

/** The report's static facts from a loaded config, the CA certificate (PEM) and the proxy's version. */
export function staticFacts(config: Config, caPem: string | undefined, version: string): StaticFacts {
  const policy = config.policy;
  return {
    version,
    products: policy.products.map((p) => ({ id: p.id, userAgent: p.userAgent })),
    clouds: [...policy.catalogue.clouds],
    hosts: enforcedHosts(policy.catalogue),
    extraHosts: [...policy.catalogue.extraHosts],
    mode: policy.mode,
    rewrite: policy.rewrite,
    ca: caFacts(caPem),
  };
}

/** One end of the period: an ISO 8601 date (00:00 UTC) or a date-time with Z or an offset, as /usage reads it. */
export function parseInstant(value: string, field: string): number {
  const t = parseIsoTime(value.trim());
  if (t === undefined) throw new ReportInputError(field, `must be an ISO 8601 date (2026-11-01) or date-time with a zone (2026-11-01T00:00:00Z), got ${JSON.stringify(value.slice(0, 64))}`);
  return t;
}

/** The period [from, to) from optional ends; default: the last 30 days up to now (as /usage). */
export function parseRange(from: string | undefined, to: string | undefined, now: number): TimeRange {
  const end = to === undefined || to === '' ? now : parseInstant(to, 'to');
  const start = from === undefined || from === '' ? end - DEFAULT_DAYS * DAY_MS : parseInstant(from, 'from');
  if (!(start < end)) throw new ReportInputError('from', 'must be before to');
  if (end - start > MAX_RANGE_DAYS * DAY_MS) throw new ReportInputError('from', `the period is longer than ${MAX_RANGE_DAYS} days`);
  return { from: start, to: end };
}

/** A format name, or the error naming the field. */
export function parseFormat(value: string | undefined, field = 'format'): ReportFormat {
  if (value === undefined || value === '') return 'html';
  if ((REPORT_FORMATS as readonly string[]).includes(value)) return value as ReportFormat;
  throw new ReportInputError(field, `must be one of ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(value.slice(0, 32))}`);
}

/** Everything the report needs for the period, read from a usage store. */
export async function rowsFromStore(store: UsageStore, range: TimeRange, limit = ROW_LIMIT): Promise<ReportRows> {
  const [products, apis, days, tenants, limits, callers] = await Promise.all([
    store.usage({ ...range, by: ['product'], limit }),
    store.usage({ ...range, by: ['product', 'api'], limit }),
    store.usage({ ...range, by: ['product', 'day'], limit }),
    store.usage({ ...range, by: ['product', 'tenant', 'app'], limit }),
    store.limits({ ...range, limit }),
    store.callers({ ...range, limit }),
  ]);
  const truncated = Object.entries({ products, 'calls by API': apis, 'calls by day': days, 'tenants and applications': tenants, 'limit peaks': limits, 'non-compliant callers': callers })
    .filter(([, page]) => page.truncated).map(([name]) => name);
  return { products: products.rows, apis: apis.rows, days: days.rows, tenants: tenants.rows, limits: limits.rows, callers: callers.rows,
    utilisation: undefined, truncated, notes: [] };
}

/** The report model for a period from rows and facts. */
export function reportModel(facts: StaticFacts, rows: ReportRows, range: TimeRange, source: ReportSource, now: number, replicaVersions: readonly string[] = []): ReportModel {
  return buildReport({ ...facts, period: range, generatedAt: now, source, replicaVersions }, rows);
}

/** A rendered report: its media type and text. */
export interface RenderedReport {
  readonly contentType: string;
  readonly body: string;
  /** A file name for Content-Disposition / --out suggestions: mde-partner-proxy-report-2026-11-01-2026-12-01.html */
  readonly filename: string;
}

/** Renders a model in one format. */
export function renderReport(model: ReportModel, format: ReportFormat): RenderedReport {
  const filename = `mde-partner-proxy-report-${model.from.slice(0, 10)}-${model.to.slice(0, 10)}.${format}`;
  switch (format) {
    case 'json':
      return { contentType: 'application/json; charset=utf-8', body: reportJson(model), filename };
    case 'csv':
      return { contentType: 'text/csv; charset=utf-8; header=present', body: reportCsv(model), filename };
    default:
      return { contentType: 'text/html; charset=utf-8', body: renderHtml(model), filename };
  }
}


export interface ReportRouteOptions {
  /** The recorder: its store when open, and the store's state ('none' when usage.store is none). */
  readonly source: UsageSource;
  /** The current static facts (they follow a config reload). */
  readonly facts: () => StaticFacts;
  readonly now?: () => number;
  /** Told about a store failure (the admin server logs it). */
  readonly onStoreError?: (err: unknown) => void;
}

const errorBody = (code: string, message: string, target?: string): string =>
  `${JSON.stringify({ error: { code, message, ...(target !== undefined ? { target } : {}) } })}\n`;

/** The `GET /report?from=&to=&format=` handler: a report from the store, or a JSON error. */
export function createReportRoute(opts: ReportRouteOptions): AdminRoute {
  const now = opts.now ?? Date.now;
  return async (query) => {
    let range: TimeRange;
    let format: ReportFormat;
    try {
      const single = (name: string): string | undefined => {
        const all = query.getAll(name);
        if (all.length > 1) throw new ReportInputError(name, 'given more than once');
        return all[0];
      };
      const unknown = [...new Set(query.keys())].filter((k) => !['from', 'to', 'format'].includes(k));
      if (unknown.length > 0) throw new ReportInputError(unknown[0]!.slice(0, 32), 'unknown parameter (report takes from, to and format)');
      const at = now();
      range = parseRange(single('from'), single('to'), at);
      format = parseFormat(single('format'));
    } catch (e) {
      if (e instanceof ReportInputError) return { status: 400, type: 'application/json; charset=utf-8', body: errorBody('BadRequest', e.message, e.field) };
      throw e;
    }
    const store = opts.source.store;
    if (store === undefined) {
      return opts.source.state === 'none'
        ? { status: 503, type: 'application/json; charset=utf-8', body: errorBody('UsageStoreOff', 'The usage store is turned off (usage.store: none); run `mde-partner-proxy report --prometheus URL` for figures from Prometheus.') }
        : { status: 503, type: 'application/json; charset=utf-8', body: errorBody('UsageStoreUnavailable', 'The usage store is not available now; the proxy keeps counting and retries. See the proxy log.') };
    }
    let rows: ReportRows;
    try {
      rows = await rowsFromStore(store, range);
    } catch (e) {
      opts.onStoreError?.(e);
      return { status: 503, type: 'application/json; charset=utf-8',
        body: errorBody('UsageStoreUnavailable', `The usage store (${store.kind}) failed to answer${typeof (e as { code?: unknown }).code === 'string' ? ` (${(e as { code: string }).code})` : ''}; see the proxy log.`) };
    }
    const model = reportModel(opts.facts(), rows, range, { kind: 'store', name: store.kind }, now());
    const rendered = renderReport(model, format);
    const headers: Record<string, string> = format === 'html' ? {} : { 'Content-Disposition': `inline; filename="${rendered.filename}"` };
    return { status: 200, type: rendered.contentType, body: rendered.body, headers } satisfies RouteResponse;
  };
}
