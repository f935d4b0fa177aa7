// The UsageStore interface and its query shapes: what the recorder writes, what /usage, /usage/limits
// and the report read. Backends (sqlite.ts, postgres.ts) are thin adapters behind it; the same
// shared test suite runs against each. Times are epoch milliseconds, UTC.

/** What the policy did with one API call (the same words as RequestAction in events.ts). */
export type UsageAction = 'compliant' | 'rewritten' | 'rejected' | 'audited';
export const USAGE_ACTIONS: readonly UsageAction[] = ['compliant', 'rewritten', 'rejected', 'audited'];

/**
 * The keys `/usage?by=` accepts. `day` and `hour` are UTC buckets written as ISO 8601 strings:
 * a day as `2026-12-02`, an hour as `2026-12-02T13:00:00Z` (also RFC 3339; see isoDay, isoHour).
 */
export type UsageBy = 'product' | 'tenant' | 'app' | 'api' | 'action' | 'day' | 'hour' | 'client';
export const USAGE_BY: readonly UsageBy[] = ['product', 'tenant', 'app', 'api', 'action', 'day', 'hour', 'client'];

/** Microsoft's throttling groups (limits.ts holds the table). */
export type LimitGroup = 'api' | 'hunting' | 'incidents';
export type LimitWindow = 'minute' | 'hour';

/**
 * One hour's counts for one combination of dimensions. The recorder merges exchanges into these
 * in memory and hands them over in batches; a backend adds them to its hour and day tables.
 */
export interface UsageCount {
  /** Start of the UTC hour (epoch ms, a multiple of 3,600,000). */
  readonly hour: number;
  readonly product: string;
  /** Token `tid`, or 'unknown'. */
  readonly tenant: string;
  /** Token `appid` / `azp`, or 'unknown'. */
  readonly app: string;
  /** The catalogue's API label ('machines', 'security.alerts_v2', 'other'). */
  readonly api: string;
  readonly action: UsageAction;
  /** The caller's address as the proxy saw it (IPv4-mapped IPv6 unwrapped). */
  readonly client: string;
  readonly calls: number;
  /** Upstream answered 429. */
  readonly throttled: number;
  /** Any other failure: upstream 5xx, or a proxy error (502/504…) on a forwarded call. */
  readonly errors: number;
}

/** Per product, one non-compliant caller (User-Agent family from one client address). */
export interface CallerCount {
  readonly product: string;
  /** First product token without its version: 'python-requests', 'Go-http-client', '(none)', 'MdatpPartner-…'. */
  readonly family: string;
  readonly client: string;
  readonly calls: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
}

/** The highest count seen in one sliding window during one UTC hour, for one tenant/app/group. */
export interface LimitPeak {
  readonly hour: number;
  readonly product: string;
  readonly tenant: string;
  readonly app: string;
  /** Application display name from the token, when it had one ('' otherwise). */
  readonly appName: string;
  readonly group: LimitGroup;
  readonly perMinute: number;
  readonly perHour: number;
  /** The limits in force when the peak was seen. */
  readonly minuteLimit: number;
  readonly hourLimit: number;
  /** 429s in this hour, and the largest Retry-After seen (seconds; 0 when none). */
  readonly throttled: number;
  readonly maxRetryAfter: number;
}

/** One flush of the recorder. Every list may be empty. */
export interface UsageBatch {
  readonly counts: readonly UsageCount[];
  readonly callers: readonly CallerCount[];
  readonly peaks: readonly LimitPeak[];
}

/** A half-open time range [from, to), epoch ms. */
export interface TimeRange {
  readonly from: number;
  readonly to: number;
}

export interface UsageQuery extends TimeRange {
  readonly by: readonly UsageBy[];
  /** At most this many rows (the answer says truncated when cut). */
  readonly limit: number;
}

/** The counters of a `/usage` row (and of every row of the report). */
export interface Counts {
  readonly calls: number;
  readonly compliant: number;
  readonly rewritten: number;
  readonly rejected: number;
  readonly audited: number;
  readonly throttled: number;
  readonly errors: number;
}

/** One `/usage` row: its `by` keys (strings) and the counts. */
export type UsageRow = Record<string, string | number> & Counts;

/** One `/usage/limits` row: the worst windows of one tenant/app/group over the range. */
export interface LimitRow {
  readonly product: string;
  readonly tenant: string;
  readonly app: string;
  readonly appName: string;
  readonly group: LimitGroup;
  readonly perMinute: { readonly peak: number; readonly limit: number };
  readonly perHour: { readonly peak: number; readonly limit: number };
  readonly throttled: number;
  readonly maxRetryAfter: number;
}

/** One non-compliant caller over a range (a product's top callers, by calls). */
export type CallerRow = CallerCount;

export interface Page<T> {
  readonly rows: readonly T[];
  readonly truncated: boolean;
}

/** Retention in days for each table (usage.retentionDays). */
export interface Retention {
  readonly hours: number;
  readonly days: number;
}

/** The store behind the recorder, the usage endpoints and the report. */
export interface UsageStore {
  /** 'sqlite' | 'postgres'; named in the report's source and its error messages. */
  readonly kind: string;
  /** Opens the store and applies pending schema migrations. Rejects when the store cannot be used now. */
  open(): Promise<void>;
  /** Adds one batch in one transaction (all of it or none of it). */
  write(batch: UsageBatch): Promise<void>;
  /**
   * Counts grouped by `by` over the range. Whole UTC days without 'hour' in `by` read the day table;
   * 'hour' in `by` reads the hour table; any other range reads the hour table from the hour-retention
   * horizon on and, before it, the whole days that overlap the range (only whole days are kept there).
   */
  usage(query: UsageQuery): Promise<Page<UsageRow>>;
  /** Peaks per tenant/app/group over the hours that overlap the range, worst utilisation first. */
  limits(range: TimeRange & { readonly limit: number }): Promise<Page<LimitRow>>;
  /**
   * Non-compliant callers over the UTC days that overlap the range, per product, most calls first
   * (top 50 per product, the rest summed as family '(other)', client ''). Callers are kept per day.
   */
  callers(range: TimeRange & { readonly limit: number }): Promise<Page<CallerRow>>;
  /**
   * Deletes hour rows (counts, limit peaks) older than retention.hours days and day rows (counts,
   * callers) older than retention.days days, relative to now; cut-offs are rounded down to a UTC day.
   */
  prune(now: number, retention: Retention): Promise<void>;
  close(): Promise<void>;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
/** Non-compliant callers kept per product (per UTC day in the store, over the range in an answer). */
export const CALLERS_PER_PRODUCT = 50;
/** The family of the row that sums the callers past CALLERS_PER_PRODUCT (its client is ''). */
export const OTHER_CALLERS = '(other)';

/** The UTC day of an instant as ISO 8601, `2026-12-02`. */
export function isoDay(ms: number): string {
  return new Date(ms - (ms % DAY_MS)).toISOString().slice(0, 10);
}

/** The UTC hour of an instant as ISO 8601 / RFC 3339, `2026-12-02T13:00:00Z`. */
export function isoHour(ms: number): string {
  return `${new Date(ms - (ms % HOUR_MS)).toISOString().slice(0, 13)}:00:00Z`;
}

/**
 * Why a store operation could not be done. Stable words for logs and metrics; a backend maps its
 * driver's errors onto them. `StoreCorrupt` is reported when a file turns out corrupt while open;
 * the SQLite backend then moves it aside at its next open.
 */
export type UsageStoreErrorCode =
  | 'StoreUnavailable' // PostgreSQL unreachable or refusing connections
  | 'StoreReadOnly' // the file or its directory is not writable
  | 'StoreFull' // the disk (or SQLite's page limit) is full
  | 'StoreLocked' // another connection held a lock past the busy timeout
  | 'StoreCorrupt' // the file is not a usable database
  | 'StoreSchemaTooNew' // the database was migrated by a newer version of the proxy
  | 'StoreClosed' // close() was called
  | 'StoreFailed'; // anything else

/** The one error a store's promises reject with. The driver's error is its `cause`. */
export class UsageStoreError extends Error {
  readonly code: UsageStoreErrorCode;

  constructor(code: UsageStoreErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UsageStoreError';
    this.code = code;
  }
}

/** A backend's open, made lazily: see lazyOpen. */
export interface LazyOpen {
  /** Resolves once the store is open; concurrent callers share one attempt, and a closed store rejects with StoreClosed. */
  readonly ensure: () => Promise<void>;
  /** Makes the next ensure() open again (the connection or worker was lost, or corruption is suspected). */
  readonly forget: () => void;
  /** Makes every later ensure() reject; true the first time only. */
  readonly markClosed: () => boolean;
}

/** Opens a store on first use; a failed attempt is not kept, so the next call tries again. */
export function lazyOpen(open: () => Promise<void>, where: string): LazyOpen {
  let opened: Promise<void> | undefined;
  let closed = false;
  return {
    ensure: () => {
      if (closed) return Promise.reject(new UsageStoreError('StoreClosed', `usage store ${where}: closed`));
      opened ??= open().catch((e: unknown) => {
        opened = undefined;
        throw e;
      });
      return opened;
    },
    forget: () => {
      opened = undefined;
    },
    markClosed: () => {
      if (closed) return false;
      closed = true;
      return true;
    },
  };
}

/** Where a backend reports what it did on its own (a corrupt file moved aside); pino's logger fits. */
export interface StoreLog {
  warn(fields: Record<string, unknown>, message: string): void;
}
