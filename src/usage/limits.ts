// PURE. Microsoft's throttling of the Defender APIs, per tenant and application, and the sliding
// windows that count calls against it. The windows are plain data (typed-array rings) that the
// recorder owns; every function here is a calculation on them.
//
// Microsoft's published quotas (Defender for Endpoint API docs, the Defender XDR incidents and
// advanced hunting API docs): most calls 100 per minute and 1,500 per hour; advanced hunting 45 per
// minute; the Defender XDR incidents API 50 per minute; 1,500 per hour for each. A throttled call
// is answered 429 with Retry-After.
import type { LimitGroup, LimitWindow } from './store.js';

export type { LimitGroup, LimitWindow };

/** The limit groups, in table order. */
export const LIMIT_GROUPS: readonly LimitGroup[] = ['api', 'hunting', 'incidents'];
/** The windows, in table order. */
export const LIMIT_WINDOWS: readonly LimitWindow[] = ['minute', 'hour'];

export interface GroupLimit {
  readonly perMinute: number;
  readonly perHour: number;
}

export type LimitTable = Readonly<Record<LimitGroup, GroupLimit>>;

/** Microsoft's built-in table; `usage.limits` overrides any number in it. */
export const DEFAULT_LIMITS: LimitTable = Object.freeze({
  api: Object.freeze({ perMinute: 100, perHour: 1500 }),
  hunting: Object.freeze({ perMinute: 45, perHour: 1500 }),
  incidents: Object.freeze({ perMinute: 50, perHour: 1500 }),
});

/**
 * API labels (catalogue.apiLabel) outside the default 'api' group: the MDE and Defender XDR advanced
 * hunting endpoints (/api/advancedhunting/run, /api/advancedqueries/run), Graph's runHuntingQuery,
 * and the Defender XDR incidents API (/api/incidents). Graph's security.incidents is a Graph API
 * under Graph's own throttling and stays in 'api'.
 */
const GROUP_OF_API: ReadonlyMap<string, LimitGroup> = new Map<string, LimitGroup>([
  ['advancedhunting', 'hunting'],
  ['advancedqueries', 'hunting'],
  ['security.runHuntingQuery', 'hunting'],
  ['incidents', 'incidents'],
]);

/** The limit group of an API label. */
export function limitGroup(api: string): LimitGroup {
  return GROUP_OF_API.get(api) ?? 'api';
}

/** Overrides of the table as `usage.limits` gives them: any group, any window. */
export type LimitOverrides = Partial<Record<LimitGroup, Partial<GroupLimit>>>;

/** The built-in table with overrides applied. */
export function applyLimitOverrides(overrides: LimitOverrides | undefined, base: LimitTable = DEFAULT_LIMITS): LimitTable {
  const out = {} as Record<LimitGroup, GroupLimit>;
  for (const g of LIMIT_GROUPS) out[g] = Object.freeze({ ...base[g], ...(overrides?.[g] ?? {}) });
  return Object.freeze(out);
}

// ---------------------------------------------------------------------------------------------
// Sliding windows

const SECONDS = 60; // the minute window: 60 one-second buckets
const MINUTES = 60; // the hour window: 60 one-minute buckets

/**
 * Calls of one tenant/app/group in the last minute (one-second buckets, exact to the second) and
 * the last hour (one-minute buckets: the current minute and the 59 before it). 496 bytes of
 * buckets plus a few numbers.
 */
export interface WindowState {
  readonly seconds: Uint32Array;
  readonly minutes: Uint32Array;
  /** Epoch second of the newest bucket; buckets older than the window have been zeroed. */
  second: number;
  minuteSum: number;
  hourSum: number;
  /** Until when (epoch ms) a warning for each window is not repeated. */
  warnedMinuteUntil: number;
  warnedHourUntil: number;
}

/** A window with no calls. */
export function createWindow(nowMs: number): WindowState {
  return { seconds: new Uint32Array(SECONDS), minutes: new Uint32Array(MINUTES), second: Math.floor(nowMs / 1000), minuteSum: 0, hourSum: 0, warnedMinuteUntil: 0, warnedHourUntil: 0 };
}

/** Moves the window to `nowMs`, zeroing the buckets that slid out. A clock that goes back counts in the newest bucket. */
export function advanceWindow(w: WindowState, nowMs: number): void {
  const now = Math.floor(nowMs / 1000);
  if (now <= w.second) return;
  if (now - w.second >= SECONDS) {
    w.seconds.fill(0);
    w.minuteSum = 0;
  } else {
    for (let s = w.second + 1; s <= now; s++) {
      const i = s % SECONDS;
      w.minuteSum -= w.seconds[i]!;
      w.seconds[i] = 0;
    }
  }
  const fromMinute = Math.floor(w.second / 60);
  const toMinute = Math.floor(now / 60);
  if (toMinute - fromMinute >= MINUTES) {
    w.minutes.fill(0);
    w.hourSum = 0;
  } else {
    for (let m = fromMinute + 1; m <= toMinute; m++) {
      const i = m % MINUTES;
      w.hourSum -= w.minutes[i]!;
      w.minutes[i] = 0;
    }
  }
  w.second = now;
}

/** Counts one call at `nowMs`; returns the window's counts including it. */
export function addCall(w: WindowState, nowMs: number): { minute: number; hour: number } {
  advanceWindow(w, nowMs);
  w.seconds[w.second % SECONDS]!++;
  w.minutes[Math.floor(w.second / 60) % MINUTES]!++;
  return { minute: ++w.minuteSum, hour: ++w.hourSum };
}

/** The counts the window would hold at `nowMs`, without changing it. */
export function windowCounts(w: WindowState, nowMs: number): { minute: number; hour: number } {
  const now = Math.floor(nowMs / 1000);
  if (now <= w.second) return { minute: w.minuteSum, hour: w.hourSum };
  let minute = 0;
  if (now - w.second < SECONDS) for (let s = now - SECONDS + 1; s <= w.second; s++) minute += w.seconds[s % SECONDS]!;
  let hour = 0;
  const fromMinute = Math.floor(w.second / 60);
  const toMinute = Math.floor(now / 60);
  if (toMinute - fromMinute < MINUTES) for (let m = toMinute - MINUTES + 1; m <= fromMinute; m++) hour += w.minutes[m % MINUTES]!;
  return { minute, hour };
}

/**
 * Which windows have just passed `warnAt` × their limit and were not warned about within their
 * own length (a minute, an hour): each crossing warns once per window. Marks them as warned.
 */
export function windowsToWarn(w: WindowState, counts: { minute: number; hour: number }, limit: GroupLimit, warnAt: number, nowMs: number): LimitWindow[] {
  const out: LimitWindow[] = [];
  if (counts.minute >= warnAt * limit.perMinute && nowMs >= w.warnedMinuteUntil) {
    w.warnedMinuteUntil = nowMs + 60_000;
    out.push('minute');
  }
  if (counts.hour >= warnAt * limit.perHour && nowMs >= w.warnedHourUntil) {
    w.warnedHourUntil = nowMs + 3_600_000;
    out.push('hour');
  }
  return out;
}

/** Use of a limit as a fraction (1 = at the limit); 0 for a limit of 0 or less. */
export function utilisation(count: number, limit: number): number {
  return limit > 0 ? count / limit : 0;
}
