// The usage recorder: a ProxyObserver that counts every API call in memory (per hour, product,
// tenant, app, API, action and client; 429s; errors; non-compliant callers; Microsoft's limit
// windows and their peaks) and hands the counts to the UsageStore in batches on a timer. The
// request path only ever touches the in-memory maps: nothing it does waits for the store. A store
// that fails keeps the counts here (bounded) until it comes back.
import type pino from 'pino';
import type { ExchangeEvent, ProxyObserver } from '../events.js';
import { UNKNOWN, guidOrUnknown } from '../attribution.js';
import { userAgentFamily } from './callers.js';
import {
  LIMIT_GROUPS, LIMIT_WINDOWS, addCall, createWindow, limitGroup, utilisation, windowCounts, windowsToWarn,
  type LimitGroup, type LimitTable, type LimitWindow, type WindowState,
} from './limits.js';
import { createLru, type Lru } from './lru.js';
import type { CallerCount, LimitPeak, UsageAction, UsageBatch, UsageCount, UsageStore } from './store.js';
import type { UsageConfig } from './usage-config.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Distinct count rows held between flushes (and while the store is down); beyond it new combinations count as tenant/app/client 'other'. */
export const MAX_PENDING_COUNTS = 100_000;
/** Distinct non-compliant callers held between flushes; beyond it they count as family '(other)', client ''. */
export const MAX_PENDING_CALLERS = 5_000;
/** Limit peaks of evicted or past-hour windows held between flushes. */
export const MAX_PENDING_PEAKS = 50_000;
/** Value of tenant, app and client for counts beyond MAX_PENDING_COUNTS. */
export const OVERFLOW = 'other';

const ACTIONS: ReadonlySet<string> = new Set<UsageAction>(['compliant', 'rewritten', 'rejected', 'audited']);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type MutableCount = Mutable<UsageCount>;
type MutableCaller = Mutable<CallerCount>;
type MutablePeak = Mutable<LimitPeak>;

/** One tenant/app/group's limit window and what it saw in the current hour. */
interface Tracked {
  readonly key: string;
  readonly product: string;
  readonly tenant: string;
  readonly app: string;
  readonly group: LimitGroup;
  appName: string;
  readonly window: WindowState;
  /** The UTC hour the peaks belong to. */
  hour: number;
  peakMinute: number;
  peakHour: number;
  /** 429s since the last flush (the store adds them up). */
  throttled: number;
  maxRetryAfter: number;
  dirty: boolean;
}

/** Store health as /healthz and the endpoints see it. */
export type StoreState = 'none' | 'opening' | 'ok' | 'failing';

export interface UtilisationRow {
  readonly product: string;
  readonly group: LimitGroup;
  readonly window: LimitWindow;
  /** Worst use of the limit over the product's tenant/app pairs (1 = at the limit). */
  readonly value: number;
}

/** One row of the live limit windows (for /usage/limits?live and tests). */
export interface LiveWindow {
  readonly product: string;
  readonly tenant: string;
  readonly app: string;
  readonly group: LimitGroup;
  readonly minute: number;
  readonly hour: number;
}

export interface Recorder {
  readonly observer: ProxyObserver;
  /** Writes what is counted now; resolves when the write finished or failed (never rejects). */
  flush(): Promise<void>;
  /** Stops the timers, flushes once more (bounded by timeoutMs) and closes the store. */
  close(timeoutMs?: number): Promise<void>;
  /** The store when it is open and answering; undefined for `usage.store: none` or while it is unavailable. */
  readonly store: UsageStore | undefined;
  readonly state: StoreState;
  /** Worst utilisation per product, group and window, now (every product × group × window, zeros included). */
  utilisation(products: readonly string[]): UtilisationRow[];
  /** The limit windows held now, for tests and diagnostics. */
  live(): LiveWindow[];
  /** Applies a reloaded usage config (warnAt, limits; store, flush and retention need a restart). */
  reload(usage: UsageConfig): void;
  /** Tracked tenant/app/group windows (bounded by usage.maxTracked). */
  readonly tracked: number;
}

export interface RecorderOptions {
  readonly usage: UsageConfig;
  /** Creates the store (not yet opened); undefined for `usage.store: none`. */
  readonly createStore?: () => Promise<UsageStore> | UsageStore;
  readonly logger?: pino.Logger;
  /** How logs name the store (a path or a URL without its password). */
  readonly storeName?: string;
  /** Called once per failed store operation (usage_store_errors_total). */
  readonly onStoreError?: () => void;
  readonly now?: () => number;
  /** Start the flush and prune timers (default true; tests drive flush() themselves when false). */
  readonly timers?: boolean;
}

/** Milliseconds between retention prunes. */
export const PRUNE_INTERVAL_MS = HOUR_MS;

/**
 * A Map key made of parts joined with '|'. The last key is returned again when the parts are the
 * same as last time (consecutive calls of one caller): V8 has then already flattened and hashed it,
 * where a key built anew is flattened and hashed on every lookup.
 */
export function createKeyJoiner(): (...parts: (string | number)[]) => string {
  let last: (string | number)[] = [];
  let lastKey = '';
  return (...parts) => {
    let same = parts.length === last.length;
    for (let i = 0; same && i < parts.length; i++) same = parts[i] === last[i];
    if (!same) {
      last = parts;
      lastKey = parts.join('|');
    }
    return lastKey;
  };
}

/** Creates the recorder; it opens the store in the background and retries on every flush until it opens. */
export function createRecorder(opts: RecorderOptions): Recorder {
  const now = opts.now ?? Date.now;
  const storeName = opts.storeName ?? 'usage store';
  const logger = opts.logger;
  let usage = opts.usage;
  let limits: LimitTable = usage.limits;
  let warnAt = usage.warnAt;

  let counts = new Map<string, MutableCount>();
  let callers = new Map<string, MutableCaller>();
  let peaks = new Map<string, MutablePeak>();
  const windows: Lru<string, Tracked> = createLru(usage.maxTracked);
  const dirty = new Set<Tracked>();
  const countKey = createKeyJoiner();
  const callerKey = createKeyJoiner();
  const windowKey = createKeyJoiner();
  let lastUserAgent: string | undefined;
  let lastFamily = userAgentFamily(undefined);

  // ---- counting (the request path) -------------------------------------------------------------

  const addCount = (into: Map<string, MutableCount>, c: UsageCount): void => {
    let key = `${c.hour}|${c.product}|${c.tenant}|${c.app}|${c.api}|${c.action}|${c.client}`;
    let row = into.get(key);
    if (row === undefined) {
      if (into.size >= MAX_PENDING_COUNTS) {
        key = `${c.hour}|${c.product}|${OVERFLOW}|${OVERFLOW}|${c.api}|${c.action}|${OVERFLOW}`;
        row = into.get(key);
        if (row === undefined) {
          row = { ...c, tenant: OVERFLOW, app: OVERFLOW, client: OVERFLOW, calls: 0, throttled: 0, errors: 0 };
          into.set(key, row);
        }
      } else {
        row = { ...c, calls: 0, throttled: 0, errors: 0 };
        into.set(key, row);
      }
    }
    row.calls += c.calls;
    row.throttled += c.throttled;
    row.errors += c.errors;
  };

  const addCaller = (into: Map<string, MutableCaller>, c: CallerCount): void => {
    let key = `${c.product}|${c.family}|${c.client}`;
    let row = into.get(key);
    if (row === undefined) {
      if (into.size >= MAX_PENDING_CALLERS) {
        // The store's own overflow row (family '(other)', client '') sums these with its past-top-50 callers.
        key = `${c.product}|(other)|`;
        row = into.get(key);
        if (row === undefined) {
          row = { ...c, family: '(other)', client: '', calls: 0 };
          into.set(key, row);
        }
      } else {
        row = { ...c, calls: 0 };
        into.set(key, row);
      }
    }
    row.calls += c.calls;
    if (c.firstSeen < row.firstSeen) row.firstSeen = c.firstSeen;
    if (c.lastSeen > row.lastSeen) row.lastSeen = c.lastSeen;
  };

  const addPeak = (into: Map<string, MutablePeak>, p: LimitPeak): void => {
    const key = `${p.hour}|${p.product}|${p.tenant}|${p.app}|${p.group}`;
    const row = into.get(key);
    if (row === undefined) {
      // Beyond the bound a peak is dropped: it is a maximum, and the hour's later flushes carry it again while tracked.
      if (into.size < MAX_PENDING_PEAKS) into.set(key, { ...p });
      return;
    }
    row.perMinute = Math.max(row.perMinute, p.perMinute);
    row.perHour = Math.max(row.perHour, p.perHour);
    row.minuteLimit = p.minuteLimit;
    row.hourLimit = p.hourLimit;
    row.throttled += p.throttled;
    row.maxRetryAfter = Math.max(row.maxRetryAfter, p.maxRetryAfter);
    if (p.appName !== '') row.appName = p.appName;
  };

  const peakOf = (t: Tracked): LimitPeak => ({
    hour: t.hour, product: t.product, tenant: t.tenant, app: t.app, appName: t.appName, group: t.group,
    perMinute: t.peakMinute, perHour: t.peakHour, minuteLimit: limits[t.group].perMinute, hourLimit: limits[t.group].perHour,
    throttled: t.throttled, maxRetryAfter: t.maxRetryAfter,
  });

  /** Moves a tracked window's unflushed peak into the pending peaks. */
  const retire = (t: Tracked): void => {
    if (!t.dirty) return;
    addPeak(peaks, peakOf(t));
    t.dirty = false;
    t.throttled = 0;
    dirty.delete(t);
  };

  const countLimit = (e: ExchangeEvent, product: string, tenant: string, app: string, at: number, hour: number, throttled: boolean): void => {
    const group = limitGroup(e.api);
    const key = windowKey(product, tenant, app, group);
    let t = windows.get(key);
    if (t === undefined) {
      t = { key, product, tenant, app, group, appName: '', window: createWindow(at), hour, peakMinute: 0, peakHour: 0, throttled: 0, maxRetryAfter: 0, dirty: false };
      const evicted = windows.set(key, t);
      if (evicted !== undefined) retire(evicted[1]);
    }
    if (t.hour !== hour) {
      retire(t);
      t.hour = hour;
      t.peakMinute = 0;
      t.peakHour = 0;
      t.maxRetryAfter = 0;
    }
    if (e.appName !== undefined && e.appName !== '') t.appName = e.appName;
    const c = addCall(t.window, at);
    if (c.minute > t.peakMinute) t.peakMinute = c.minute;
    if (c.hour > t.peakHour) t.peakHour = c.hour;
    if (throttled) {
      t.throttled++;
      if (e.retryAfter !== undefined && e.retryAfter > t.maxRetryAfter) t.maxRetryAfter = e.retryAfter;
    }
    if (!t.dirty) {
      t.dirty = true;
      dirty.add(t);
    }
    const limit = limits[group];
    for (const window of windowsToWarn(t.window, c, limit, warnAt, at)) {
      const count = window === 'minute' ? c.minute : c.hour;
      const max = window === 'minute' ? limit.perMinute : limit.perHour;
      logger?.warn({ event: 'rate-limit-near', product, tenant, app, group, window, count, limit: max, warnAt },
        `${count} ${group} calls in the last ${window} for tenant ${tenant}, app ${app}: ${Math.round((count / max) * 100)}% of Microsoft's limit of ${max}`);
    }
    if (throttled) {
      logger?.warn({ event: 'rate-limited', product, tenant, app, group, api: e.api, retryAfter: e.retryAfter ?? null },
        `Microsoft answered 429 for tenant ${tenant}, app ${app} (${group})${e.retryAfter !== undefined ? `; Retry-After ${e.retryAfter} s` : ''}`);
    }
  };

  const exchangeEnd = (e: ExchangeEvent): void => {
    if (!ACTIONS.has(e.action)) return; // 'passed' traffic is not an API call
    const at = now();
    const hour = at - (at % HOUR_MS);
    const action = e.action as UsageAction;
    const tenant = idOf(e.tenant);
    const app = idOf(e.app);
    const client = e.client === '' ? UNKNOWN : e.client;
    const throttled = e.status === 429;
    const error = !throttled && action !== 'rejected' && (e.status >= 500 || (e.error !== undefined && e.status !== 0));
    // The common case, a combination already counted this interval, allocates nothing.
    const row = counts.get(countKey(hour, e.product, tenant, app, e.api, action, client));
    if (row !== undefined) {
      row.calls++;
      if (throttled) row.throttled++;
      if (error) row.errors++;
    } else {
      addCount(counts, { hour, product: e.product, tenant, app, api: e.api, action, client, calls: 1, throttled: throttled ? 1 : 0, errors: error ? 1 : 0 });
    }
    if (action !== 'compliant') {
      if (e.userAgent !== lastUserAgent) {
        lastUserAgent = e.userAgent;
        lastFamily = userAgentFamily(e.userAgent);
      }
      const family = lastFamily;
      const caller = callers.get(callerKey(e.product, family, client));
      // A caller already counted this interval: count it in place (addCaller would build a row to merge).
      if (caller !== undefined) {
        caller.calls++;
        if (at > caller.lastSeen) caller.lastSeen = at;
      } else {
        addCaller(callers, { product: e.product, family, client, calls: 1, firstSeen: at, lastSeen: at });
      }
    }
    // A rejected call never reaches Microsoft and does not count against its limits.
    if (action !== 'rejected') countLimit(e, e.product, tenant, app, at, hour, throttled);
  };

  // ---- the store (off the request path) ----------------------------------------------------------

  let store: UsageStore | undefined;
  let opened = false;
  let opening: Promise<UsageStore | undefined> | undefined;
  let state: StoreState = opts.createStore === undefined ? 'none' : 'opening';
  let failingSince = 0;
  let lastPrune = 0;
  let flushing: Promise<void> | undefined;

  const failed = (what: string, err: unknown): void => {
    opts.onStoreError?.();
    if (state !== 'failing') {
      failingSince = now();
      state = 'failing';
      logger?.error({ event: 'usage-store', result: 'failing', operation: what, store: storeName, cause: causeOf(err) },
        `usage store ${what} failed: counts are kept in memory and written when it is back`);
    }
  };
  const succeeded = (): void => {
    if (state === 'failing') {
      logger?.info({ event: 'usage-store', result: 'recovered', store: storeName, downMs: now() - failingSince }, 'usage store is back; writing the counts kept in memory');
    } else if (state === 'opening') {
      logger?.info({ event: 'usage-store', result: 'open', store: storeName }, 'usage store open');
    }
    state = 'ok';
  };

  /** The open store, opening it first when needed; undefined when it cannot be opened now. */
  const ensureOpen = (): Promise<UsageStore | undefined> => {
    if (opened) return Promise.resolve(store);
    if (opts.createStore === undefined) return Promise.resolve(undefined);
    if (opening === undefined) {
      const attempt = (async (): Promise<UsageStore | undefined> => {
        let s: UsageStore | undefined;
        try {
          // A fresh store object per attempt: one that failed to open may hold a half-open handle.
          s = await opts.createStore!();
          await s.open();
          store = s;
          opened = true;
          succeeded();
          return s;
        } catch (err) {
          failed('open', err);
          void s?.close().catch(() => undefined);
          return undefined;
        }
      })();
      opening = attempt;
      void attempt.then(() => {
        opening = undefined;
      });
    }
    return opening;
  };

  const takeBatch = (): { batch: UsageBatch; taken: { counts: Map<string, MutableCount>; callers: Map<string, MutableCaller>; peaks: Map<string, MutablePeak> } } => {
    for (const t of dirty) {
      addPeak(peaks, peakOf(t));
      t.dirty = false;
      t.throttled = 0;
    }
    dirty.clear();
    const taken = { counts, callers, peaks };
    counts = new Map();
    callers = new Map();
    peaks = new Map();
    return { batch: { counts: [...taken.counts.values()], callers: [...taken.callers.values()], peaks: [...taken.peaks.values()] }, taken };
  };

  /** Puts a batch that could not be written back under what was counted since (bounded like the rest). */
  const giveBack = (taken: ReturnType<typeof takeBatch>['taken']): void => {
    const newer = { counts, callers, peaks };
    counts = taken.counts;
    callers = taken.callers;
    peaks = taken.peaks;
    for (const c of newer.counts.values()) addCount(counts, c);
    for (const c of newer.callers.values()) addCaller(callers, c);
    for (const p of newer.peaks.values()) addPeak(peaks, p);
  };

  const doFlush = async (): Promise<void> => {
    if (opts.createStore === undefined) {
      // usage.store: none: nothing is kept beyond the live windows.
      takeBatch();
      return;
    }
    const s = await ensureOpen();
    if (s === undefined) return;
    const { batch, taken } = takeBatch();
    if (batch.counts.length > 0 || batch.callers.length > 0 || batch.peaks.length > 0) {
      try {
        await s.write(batch);
        succeeded();
      } catch (err) {
        giveBack(taken);
        failed('write', err);
        return;
      }
    }
    const at = now();
    if (at - lastPrune >= PRUNE_INTERVAL_MS) {
      try {
        await s.prune(at, usage.retention);
        lastPrune = at;
      } catch (err) {
        failed('prune', err);
      }
    }
  };

  const flush = (): Promise<void> => {
    // One flush at a time: a timer that fires during a slow write waits for the next tick.
    flushing ??= doFlush().catch((err: unknown) => failed('flush', err)).finally(() => {
      flushing = undefined;
    });
    return flushing;
  };

  const timers: NodeJS.Timeout[] = [];
  if (opts.timers ?? true) {
    timers.push(setInterval(() => void flush(), usage.flushMs).unref());
    if (opts.createStore !== undefined) setImmediate(() => void ensureOpen());
  }

  const observer: ProxyObserver = {
    exchangeEnd(e) {
      try {
        exchangeEnd(e);
      } catch {
        // Counting is best effort; the request path never sees a fault here.
      }
    },
  };

  return {
    observer,
    flush,
    async close(timeoutMs = 10_000) {
      for (const t of timers) clearInterval(t);
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
      await Promise.race([(async () => {
        await flushing;
        await flush();
      })(), timeout]);
      const s = store;
      store = undefined;
      opened = false;
      if (s !== undefined) await Promise.race([s.close().catch(() => undefined), new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
    },
    get store() {
      return opened ? store : undefined;
    },
    get state() {
      return state;
    },
    utilisation(products) {
      const at = now();
      const worst = new Map<string, number>();
      for (const p of products) for (const g of LIMIT_GROUPS) for (const w of LIMIT_WINDOWS) worst.set(`${p}|${g}|${w}`, 0);
      for (const [, t] of windows.entries()) {
        const c = windowCounts(t.window, at);
        const limit = limits[t.group];
        for (const [w, u] of [['minute', utilisation(c.minute, limit.perMinute)], ['hour', utilisation(c.hour, limit.perHour)]] as const) {
          const key = `${t.product}|${t.group}|${w}`;
          const prev = worst.get(key);
          if (prev !== undefined && u > prev) worst.set(key, u);
        }
      }
      return [...worst].map(([key, value]) => {
        const [product, group, window] = key.split('|') as [string, LimitGroup, LimitWindow];
        return { product, group, window, value };
      });
    },
    live() {
      const at = now();
      return [...windows.entries()].map(([, t]) => ({ product: t.product, tenant: t.tenant, app: t.app, group: t.group, ...windowCounts(t.window, at) }));
    },
    reload(next) {
      usage = next;
      limits = next.limits;
      warnAt = next.warnAt;
    },
    get tracked() {
      return windows.size;
    },
  };
}

/** A short, secret-free cause for a store fault: the error code and first line of the message, URLs' passwords removed. */
export function causeOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message.split('\n', 1)[0]! : String(err);
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  return `${code}${message}`.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1redacted@').slice(0, 300);
}

/**
 * A tenant or application id from an event: forward.ts only sends lowercase GUIDs or 'unknown'
 * (../attribution.ts); anything else is checked in full and becomes 'unknown'.
 */
function idOf(value: string | undefined): string {
  if (value === undefined || value === UNKNOWN) return UNKNOWN;
  return guidOrUnknown(value);
}

/** Start of the UTC day of an epoch-ms time. */
export function dayStart(ms: number): number {
  return ms - (ms % DAY_MS);
}
