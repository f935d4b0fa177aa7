// Known traffic for the usage store tests: count rows over three UTC days from a fixed seed, and the
// answers computed here in plain JavaScript that the stores must match exactly.
import {
  DAY_MS,
  HOUR_MS,
  USAGE_ACTIONS,
  isoDay,
  isoHour,
  type UsageBatch,
  type UsageBy,
  type UsageCount,
  type UsageRow,
} from '../../src/usage/store.js';
import { createPrng } from './prng.js';

/** Midnight UTC of the first day of the test traffic. */
export const DAY0 = Date.UTC(2026, 10, 28);

/** Count rows over 3 days × 4 hours × 2 products × 3 tenants × 2 apps × 3 APIs × 4 actions × 2 clients (a random 30% of them). */
export function trafficCounts(seed = 1): UsageCount[] {
  const rnd = createPrng(seed).next;
  const out: UsageCount[] = [];
  for (let d = 0; d < 3; d++)
    for (const h of [0, 5, 13, 23])
      for (const product of ['alpha', 'beta'])
        for (const tenant of ['t-1', 't-2', 'unknown'])
          for (const app of ['app-a', 'app-b'])
            for (const api of ['machines', 'alerts', 'security.alerts_v2'])
              for (const action of USAGE_ACTIONS)
                for (const client of ['10.0.0.1', '::1']) {
                  if (rnd() > 0.3) continue;
                  const calls = 1 + Math.floor(rnd() * 20);
                  const throttled = Math.floor(rnd() * Math.min(3, calls));
                  const errors = rnd() < 0.2 ? 1 : 0;
                  out.push({ hour: DAY0 + d * DAY_MS + h * HOUR_MS, product, tenant, app, api, action, client, calls, throttled, errors });
                }
  return out;
}

/** Splits rows into batches of `size`, also splitting some rows' counts across two batches (same key twice). */
export function inBatches(rows: readonly UsageCount[], size: number): UsageBatch[] {
  const pieces: UsageCount[] = [];
  rows.forEach((r, i) => {
    if (i % 7 === 0 && r.calls > 1) {
      const half = Math.floor(r.calls / 2);
      pieces.push({ ...r, calls: half, throttled: 0, errors: 0 });
      pieces.push({ ...r, calls: r.calls - half, hour: r.hour + 1234 }); // a time inside the same hour
    } else pieces.push(r);
  });
  // Interleave so the two halves of a split row land in different batches.
  const ordered = [...pieces.filter((_, i) => i % 2 === 0), ...pieces.filter((_, i) => i % 2 === 1)];
  const out: UsageBatch[] = [];
  for (let i = 0; i < ordered.length; i += size) out.push({ counts: ordered.slice(i, i + size), callers: [], peaks: [] });
  return out;
}

/** The answer a store must give for usage({by, from, to}) over these rows (unordered). */
export function expectedUsage(rows: readonly UsageCount[], by: readonly UsageBy[], from: number, to: number): UsageRow[] {
  const groups = new Map<string, Record<string, string | number>>();
  for (const r of rows) {
    if (r.hour < from || r.hour >= to) continue;
    const keys: Record<string, string> = {};
    for (const k of by) keys[k] = k === 'day' ? isoDay(r.hour) : k === 'hour' ? isoHour(r.hour) : String(r[k]);
    const id = JSON.stringify(keys);
    let g = groups.get(id);
    if (g === undefined) {
      g = { ...keys, calls: 0, compliant: 0, rewritten: 0, rejected: 0, audited: 0, throttled: 0, errors: 0 };
      groups.set(id, g);
    }
    g.calls = (g.calls as number) + r.calls;
    g[r.action] = (g[r.action] as number) + r.calls;
    g.throttled = (g.throttled as number) + r.throttled;
    g.errors = (g.errors as number) + r.errors;
  }
  return [...groups.values()] as UsageRow[];
}

/** Rows in a canonical order, for comparing answers as sets. */
export function sorted<T>(rows: readonly T[]): T[] {
  return [...rows].map((r) => JSON.stringify(r, Object.keys(r as object).sort())).sort().map((s) => JSON.parse(s) as T);
}
