// The usage endpoints of the admin listener: GET /usage, /usage/limits and /usage/callers read the
// usage store through its interface. Parameters are checked strictly (a clear 400 naming the
// parameter); answers are bounded (MAX_ROWS, "truncated": true when cut); a store that is off or
// unavailable is a 503. No parameter value is ever echoed into a log line.
import type pino from 'pino';
import type { AdminRoute, RouteResponse } from '../admin.js';
import { USAGE_BY, type Page, type UsageBy, type UsageStore } from './store.js';

/** Most rows one answer holds. */
export const MAX_ROWS = 10_000;
/** Longest range one query may span. */
export const MAX_RANGE_DAYS = 800;
const DAY_MS = 86_400_000;
const DEFAULT_DAYS = 30;

const COUNT_COLUMNS = ['calls', 'compliant', 'rewritten', 'rejected', 'audited', 'throttled', 'errors'] as const;

export type UsageFormat = 'json' | 'csv';

export interface ParsedQuery {
  readonly from: number;
  readonly to: number;
  readonly by: readonly UsageBy[];
  readonly format: UsageFormat;
  readonly limit: number;
}

/** A bad parameter: which one, and what is wrong. */
export class QueryError extends Error {
  constructor(readonly parameter: string, message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

const ISO = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** Parses an ISO 8601 date (UTC midnight) or date-time with Z or an offset; undefined when it is not one. */
export function parseIsoTime(value: string): number | undefined {
  if (!ISO.test(value)) return undefined;
  // Date.parse takes any day up to 31 and rolls it over (2026-06-31 is July 1): a day the month lacks is refused.
  const day = Date.parse(`${value.slice(0, 10)}T00:00:00Z`);
  if (Number.isNaN(day) || new Date(day).toISOString().slice(0, 10) !== value.slice(0, 10)) return undefined;
  const ms = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value);
  return Number.isNaN(ms) ? undefined : ms;
}

const OFFSET_AFTER_SPACE = /(?<=T[\d:.]+) (\d{2}:\d{2})$/;

/** Checks the query string of /usage (allowBy) or /usage/limits and /usage/callers (no `by`). */
export function parseUsageQuery(params: URLSearchParams, nowMs: number, allowBy: boolean): ParsedQuery {
  const allowed = new Set(['from', 'to', 'format', 'limit', ...(allowBy ? ['by'] : [])]);
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (!allowed.has(key)) throw new QueryError(key.slice(0, 40), `unknown parameter; use ${[...allowed].join(', ')}`);
    if (seen.has(key)) throw new QueryError(key, 'given more than once');
    seen.add(key);
  }
  const time = (name: 'from' | 'to', fallback: number): number => {
    const v = params.get(name);
    if (v === null) return fallback;
    // An offset's unencoded `+` arrives as a space (form encoding): `T12:00:00 02:00` is read as +02:00.
    const ms = parseIsoTime(v.replace(OFFSET_AFTER_SPACE, '+$1'));
    if (ms === undefined) throw new QueryError(name, 'must be an ISO 8601 date (2026-12-01) or date-time with a zone (2026-12-01T10:00:00Z)');
    return ms;
  };
  const to = time('to', nowMs);
  const from = time('from', to - DEFAULT_DAYS * DAY_MS);
  if (!(from < to)) throw new QueryError('from', 'must be before to');
  if (to - from > MAX_RANGE_DAYS * DAY_MS) throw new QueryError('from', `the range may span at most ${MAX_RANGE_DAYS} days`);
  let by: UsageBy[] = ['product'];
  const byValue = params.get('by');
  if (byValue !== null) {
    by = byValue.split(',').map((b) => b.trim()) as UsageBy[];
    for (const b of by) if (!(USAGE_BY as readonly string[]).includes(b)) throw new QueryError('by', `must be a comma-separated list of ${USAGE_BY.join(', ')}`);
    if (new Set(by).size !== by.length) throw new QueryError('by', 'names a key twice');
  }
  const format = params.get('format') ?? 'json';
  if (format !== 'json' && format !== 'csv') throw new QueryError('format', 'must be json or csv');
  const limitValue = params.get('limit');
  let limit = MAX_ROWS;
  if (limitValue !== null) {
    if (!/^\d{1,6}$/.test(limitValue) || Number(limitValue) < 1 || Number(limitValue) > MAX_ROWS) throw new QueryError('limit', `must be a whole number from 1 to ${MAX_ROWS}`);
    limit = Number(limitValue);
  }
  return { from, to, by, format, limit };
}

/** One CSV field (RFC 4180 §2): quoted when it holds a comma, quote or line break; a leading =, +, - or @ is quoted with a ' so spreadsheets do not run it. */
export function csvField(value: unknown): string {
  let s = typeof value === 'string' ? value
    : typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' ? String(value)
    : value === null || value === undefined ? '' : (JSON.stringify(value) ?? '');
  if (/^[=+\-@]/.test(s) && !/^-?\d/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV text with a header row; CRLF line ends (RFC 4180). */
export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvField(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const CSV_TYPE = 'text/csv; charset=utf-8; header=present';

const json = (status: number, value: unknown): RouteResponse => ({ status, type: JSON_TYPE, body: `${JSON.stringify(value)}\n` });
const error = (status: number, code: string, message: string, target?: string): RouteResponse =>
  json(status, { error: { code, message, ...(target !== undefined ? { target } : {}) } });

export interface UsageSource {
  /** The open store, or undefined when `usage.store` is none or the store is unavailable. */
  readonly store: UsageStore | undefined;
  /** 'none' | 'opening' | 'ok' | 'failing'. */
  readonly state: string;
}

/** The /usage routes over a store source. */
export function usageRoutes(source: UsageSource, opts: { logger?: pino.Logger; now?: () => number } = {}): Map<string, AdminRoute> {
  const now = opts.now ?? Date.now;

  const withStore = async (params: URLSearchParams, allowBy: boolean, run: (store: UsageStore, q: ParsedQuery) => Promise<RouteResponse>): Promise<RouteResponse> => {
    let q: ParsedQuery;
    try {
      q = parseUsageQuery(params, now(), allowBy);
    } catch (e) {
      if (e instanceof QueryError) return error(400, 'BadRequest', `Parameter ${e.parameter}: ${e.message}.`, e.parameter);
      throw e;
    }
    const store = source.store;
    if (store === undefined) {
      return source.state === 'none'
        ? error(503, 'UsageStoreOff', 'The usage store is turned off (usage.store: none).')
        : error(503, 'UsageStoreUnavailable', 'The usage store is not available now; the proxy keeps counting and retries. See the proxy log.');
    }
    try {
      return await run(store, q);
    } catch (e) {
      opts.logger?.error({ event: 'usage-query', cause: (e as Error).message?.split('\n', 1)[0] }, 'usage store query failed');
      return error(503, 'UsageStoreUnavailable', 'The usage store did not answer; see the proxy log.');
    }
  };

  const answer = <T extends object>(q: ParsedQuery, page: Page<T>, columns: readonly string[], extra: Record<string, unknown> = {}): RouteResponse => {
    const from = new Date(q.from).toISOString();
    const to = new Date(q.to).toISOString();
    if (q.format === 'csv') {
      return { status: 200, type: CSV_TYPE, body: toCsv(columns, page.rows as unknown as Record<string, unknown>[]),
        headers: { 'Usage-Truncated': String(page.truncated), 'Content-Disposition': 'inline; filename="usage.csv"' } };
    }
    return json(200, { from, to, ...extra, rows: page.rows, truncated: page.truncated });
  };

  return new Map<string, AdminRoute>([
    ['/usage', (params) => withStore(params, true, async (store, q) => {
      const page = await store.usage({ from: q.from, to: q.to, by: q.by, limit: q.limit });
      return answer(q, page, [...q.by, ...COUNT_COLUMNS], { by: q.by });
    })],
    ['/usage/limits', (params) => withStore(params, false, async (store, q) => {
      const page = await store.limits({ from: q.from, to: q.to, limit: q.limit });
      if (q.format === 'csv') {
        const flat = page.rows.map((r) => ({ ...r, perMinutePeak: r.perMinute.peak, perMinuteLimit: r.perMinute.limit, perHourPeak: r.perHour.peak, perHourLimit: r.perHour.limit }));
        return answer(q, { rows: flat, truncated: page.truncated },
          ['product', 'tenant', 'app', 'appName', 'group', 'perMinutePeak', 'perMinuteLimit', 'perHourPeak', 'perHourLimit', 'throttled', 'maxRetryAfter']);
      }
      return answer(q, page, []);
    })],
    ['/usage/callers', (params) => withStore(params, false, async (store, q) => {
      const page = await store.callers({ from: q.from, to: q.to, limit: q.limit });
      const rows = page.rows.map((r) => ({ ...r, firstSeen: new Date(r.firstSeen).toISOString(), lastSeen: new Date(r.lastSeen).toISOString() }));
      return answer(q, { rows, truncated: page.truncated }, ['product', 'family', 'client', 'calls', 'firstSeen', 'lastSeen']);
    })],
  ]);
}
