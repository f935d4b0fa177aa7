// The usage store suite every backend passes (test/integration/usage/sqlite.test.ts and
// postgres.test.ts run it against a real SQLite file and a real PostgreSQL server): exact sums by
// every `by` key, the day and hour tables, limit peaks, the callers bound, truncation, pruning,
// migrations from two objects and from a second process, and concurrent writers on one database.
// Also the small helpers the backends' fault tests share.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CALLERS_PER_PRODUCT,
  DAY_MS,
  HOUR_MS,
  OTHER_CALLERS,
  USAGE_BY,
  type CallerCount,
  type LimitPeak,
  type StoreLog,
  type UsageBatch,
  type UsageBy,
  type UsageStore,
} from '../../src/usage/store.js';
import { cleanEnv } from './child.js';
import { DAY0, expectedUsage, inBatches, sorted, trafficCounts } from './usage-data.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EMPTY: UsageBatch = { counts: [], callers: [], peaks: [] };
const ALL_TIME = { from: DAY0 - 30 * DAY_MS, to: DAY0 + 30 * DAY_MS };

/** One backend under test: fresh databases, a second store on the same one, raw SQL for checks. */
export interface Backend {
  readonly name: 'sqlite' | 'postgres';
  setup(): void | Promise<void>;
  teardown(): void | Promise<void>;
  /** A new empty database; its target is a file path or a URL. */
  fresh(): string | Promise<string>;
  store(target: string): UsageStore;
  raw(target: string, sql: string): Record<string, unknown>[] | Promise<Record<string, unknown>[]>;
  /** Runs one statement that changes the database. */
  exec(target: string, sql: string): void | Promise<void>;
}

/** Runs test/helpers/store-child.ts in a second node process; resolves with its stdout. */
function childProcess(kind: string, target: string, batch?: UsageBatch): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['--import', join(ROOT, 'test/helpers/ts-register.mjs'), join(ROOT, 'test/helpers/store-child.ts'), kind, target];
    if (batch !== undefined) args.push(JSON.stringify(batch));
    const child = spawn(process.execPath, args, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`store child exited ${code}: ${err}`));
    });
  });
}

const peak = (p: Partial<LimitPeak>): LimitPeak => ({
  hour: DAY0,
  product: 'alpha',
  tenant: 't-1',
  app: 'app-a',
  appName: '',
  group: 'api',
  perMinute: 0,
  perHour: 0,
  minuteLimit: 100,
  hourLimit: 1500,
  throttled: 0,
  maxRetryAfter: 0,
  ...p,
});

const caller = (p: Partial<CallerCount>): CallerCount => ({
  product: 'alpha',
  family: 'python-requests',
  client: '10.0.0.1',
  calls: 1,
  firstSeen: DAY0 + 1000,
  lastSeen: DAY0 + 2000,
  ...p,
});

/** Registers the shared suite for one backend (inside the caller's describe). */
export function usageStoreSuite(backend: Backend): void {
  const open: UsageStore[] = [];
  const make = (target: string): UsageStore => {
    const s = backend.store(target);
    open.push(s);
    return s;
  };

  beforeAll(() => backend.setup(), 60_000);
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  afterAll(() => backend.teardown());

  describe('schema migrations', () => {
    it('migrates once, whether opened twice, by two objects at once or by a second process', async () => {
      const target = await backend.fresh();
      const a = make(target);
      const b = make(target);
      await Promise.all([a.open(), b.open()]);
      await a.open();
      expect(await childProcess(backend.name, target, { counts: trafficCounts().slice(0, 3), callers: [], peaks: [] })).toBe('ok\n');
      const versions = await backend.raw(target, 'SELECT version FROM schema_migrations');
      expect(versions.map((r) => Number(r.version))).toEqual([1]);
      // The second process's write is visible here.
      const page = await a.usage({ ...ALL_TIME, by: ['product'], limit: 10 });
      expect(page.rows.reduce((n, r) => n + r.calls, 0)).toBe(trafficCounts().slice(0, 3).reduce((n, r) => n + r.calls, 0));
    });

    it('refuses a database migrated by a newer version (StoreSchemaTooNew), without changing it', async () => {
      const target = await backend.fresh();
      const a = make(target);
      await a.open();
      await a.close();
      await backend.exec(target, 'INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)');
      const b = make(target);
      await expect(b.open()).rejects.toMatchObject({ name: 'UsageStoreError', code: 'StoreSchemaTooNew' });
      await expect(b.write({ ...EMPTY, counts: trafficCounts().slice(0, 1) })).rejects.toMatchObject({ code: 'StoreSchemaTooNew' });
    });
  });

  describe('counts', () => {
    const rows = trafficCounts(7);
    let target: string;
    let store: UsageStore;

    beforeAll(async () => {
      target = await backend.fresh();
      const writer = backend.store(target);
      for (const batch of inBatches(rows, 250)) await writer.write(batch);
      await writer.close();
    });
    beforeEach(() => {
      store = make(target);
    });

    const singles = USAGE_BY.map((k) => [[k]] as [UsageBy[]]);
    const pairs = USAGE_BY.flatMap((a, i) => USAGE_BY.slice(i + 1).map((b) => [[a, b]] as [UsageBy[]]));

    const wide: [UsageBy[]][] = [[['product', 'tenant', 'app', 'api', 'action', 'client', 'day']], [[...USAGE_BY]]];

    it.each([...singles, ...pairs, ...wide])(
      'sums exactly by %j over all time',
      async (by) => {
        const page = await store.usage({ ...ALL_TIME, by, limit: 100_000 });
        expect(page.truncated).toBe(false);
        expect(sorted(page.rows)).toEqual(sorted(expectedUsage(rows, by, ALL_TIME.from, ALL_TIME.to)));
      },
    );

    it('sums exactly over a range that is not whole days (the hour table)', async () => {
      const range = { from: DAY0 + 5 * HOUR_MS, to: DAY0 + DAY_MS + 13 * HOUR_MS };
      for (const by of [['tenant', 'app'], ['day'], ['product', 'action']] as UsageBy[][]) {
        const page = await store.usage({ ...range, by, limit: 10_000 });
        expect(sorted(page.rows)).toEqual(sorted(expectedUsage(rows, by, range.from, range.to)));
      }
    });

    it('writes day and hour keys as ISO 8601 strings, in time order', async () => {
      const page = await store.usage({ ...ALL_TIME, by: ['hour'], limit: 100 });
      expect(page.rows.map((r) => r.hour)).toEqual([
        '2026-11-28T00:00:00Z', '2026-11-28T05:00:00Z', '2026-11-28T13:00:00Z', '2026-11-28T23:00:00Z',
        '2026-11-29T00:00:00Z', '2026-11-29T05:00:00Z', '2026-11-29T13:00:00Z', '2026-11-29T23:00:00Z',
        '2026-11-30T00:00:00Z', '2026-11-30T05:00:00Z', '2026-11-30T13:00:00Z', '2026-11-30T23:00:00Z',
      ]);
      const days = await store.usage({ ...ALL_TIME, by: ['day'], limit: 100 });
      expect(days.rows.map((r) => r.day)).toEqual(['2026-11-28', '2026-11-29', '2026-11-30']);
    });

    it('keeps day rows equal to the sums of their hour rows', async () => {
      const sum = (table: string, t: string): string =>
        `SELECT ${t} AS t, product, tenant, app, api, action, client, SUM(calls) AS calls, SUM(throttled) AS throttled, SUM(errors) AS errors
         FROM ${table} GROUP BY ${t}, product, tenant, app, api, action, client`;
      const days = await backend.raw(target, sum('usage_day', 'day'));
      const fromHours = await backend.raw(target, sum('usage_hour', `hour - hour % ${DAY_MS}`));
      const norm = (rs: Record<string, unknown>[]): unknown[] => sorted(rs.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v]))));
      expect(days.length).toBeGreaterThan(0);
      expect(norm(days)).toEqual(norm(fromHours));
    });

    it('cuts an answer at `limit` and says truncated, largest first', async () => {
      const full = await store.usage({ ...ALL_TIME, by: ['tenant', 'app'], limit: 1000 });
      expect(full.rows).toHaveLength(6);
      expect(full.truncated).toBe(false);
      const cut = await store.usage({ ...ALL_TIME, by: ['tenant', 'app'], limit: 4 });
      expect(cut.truncated).toBe(true);
      expect(cut.rows).toEqual(full.rows.slice(0, 4));
      const calls = full.rows.map((r) => r.calls);
      expect(calls).toEqual([...calls].sort((x, y) => y - x));
      const exact = await store.usage({ ...ALL_TIME, by: ['tenant', 'app'], limit: 6 });
      expect(exact.truncated).toBe(false);
    });

    it('answers an empty range with no rows', async () => {
      const page = await store.usage({ from: DAY0 - 10 * DAY_MS, to: DAY0 - 5 * DAY_MS, by: ['product'], limit: 10 });
      expect(page).toEqual({ rows: [], truncated: false });
    });
  });

  describe('day and hour tables after pruning', () => {
    it('answers whole days from the day table and other ranges from whole days before the hour horizon', async () => {
      const rows = trafficCounts(11);
      const target = await backend.fresh();
      const store = make(target);
      for (const batch of inBatches(rows, 500)) await store.write(batch);
      // Keep hours for 2 days from DAY0 + 3.5 days: the cut-off is DAY0 + 1 day (rounded down to a day).
      await store.prune(DAY0 + 3 * DAY_MS + 12 * HOUR_MS, { hours: 2, days: 400 });
      const hourRows = await backend.raw(target, 'SELECT MIN(hour) AS h FROM usage_hour');
      expect(Number(hourRows[0]!.h)).toBe(DAY0 + DAY_MS);

      // Whole days: exact from the day table, including the day whose hours are gone.
      const whole = await store.usage({ from: DAY0, to: DAY0 + 3 * DAY_MS, by: ['tenant'], limit: 100 });
      expect(sorted(whole.rows)).toEqual(sorted(expectedUsage(rows, ['tenant'], DAY0, DAY0 + 3 * DAY_MS)));

      // From 13:00 on day 0: day 0 is before the horizon, so it counts whole; the rest by the hour.
      const from = DAY0 + 13 * HOUR_MS;
      const to = DAY0 + 2 * DAY_MS + 6 * HOUR_MS;
      const split = await store.usage({ from, to, by: ['day', 'api'], limit: 100 });
      expect(sorted(split.rows)).toEqual(sorted(expectedUsage(rows, ['day', 'api'], DAY0, to)));

      // By hour: only the hours kept.
      const hours = await store.usage({ ...ALL_TIME, by: ['hour'], limit: 100 });
      expect(hours.rows.map((r) => r.hour)[0]).toBe('2026-11-29T00:00:00Z');
      expect(hours.rows).toHaveLength(8);
    });

    it('prunes day rows and callers past retention.days, and hour rows and peaks past retention.hours', async () => {
      const target = await backend.fresh();
      const store = make(target);
      await store.write({
        counts: trafficCounts(3),
        callers: [caller({ firstSeen: DAY0 + 10, lastSeen: DAY0 + 20 }), caller({ firstSeen: DAY0 + 2 * DAY_MS, lastSeen: DAY0 + 2 * DAY_MS + 5 })],
        peaks: [peak({ hour: DAY0, perMinute: 5 }), peak({ hour: DAY0 + 2 * DAY_MS, perMinute: 7 })],
      });
      await store.prune(DAY0 + 4 * DAY_MS, { hours: 3, days: 3 }); // both cut-offs: DAY0 + 1 day
      const days = await store.usage({ ...ALL_TIME, by: ['day'], limit: 100 });
      expect(days.rows.map((r) => r.day)).toEqual(['2026-11-29', '2026-11-30']);
      const callers = await store.callers({ ...ALL_TIME, limit: 100 });
      expect(callers.rows.map((r) => r.firstSeen)).toEqual([DAY0 + 2 * DAY_MS]);
      const limits = await store.limits({ ...ALL_TIME, limit: 100 });
      expect(limits.rows.map((r) => r.perMinute.peak)).toEqual([7]);
      // Pruning again is harmless.
      await store.prune(DAY0 + 4 * DAY_MS, { hours: 3, days: 3 });
      expect((await store.usage({ ...ALL_TIME, by: ['day'], limit: 100 })).rows).toHaveLength(2);
    });
  });

  describe('limit peaks', () => {
    it('keeps the highest windows, sums 429s, and reports the limit in force at the peak, worst first', async () => {
      const store = make(await backend.fresh());
      const H1 = DAY0 + 10 * HOUR_MS;
      await store.write({
        ...EMPTY,
        peaks: [
          peak({ hour: H1, perMinute: 40, perHour: 300, throttled: 1, maxRetryAfter: 3 }),
          peak({ hour: H1, perMinute: 90, perHour: 200, throttled: 2, maxRetryAfter: 1, appName: 'Contoso Sync' }),
          peak({ hour: H1, group: 'hunting', perMinute: 10, perHour: 10, minuteLimit: 45 }),
          peak({ tenant: 't-2', hour: H1, perMinute: 1, perHour: 1 }),
        ],
      });
      await store.write({
        ...EMPTY,
        peaks: [
          peak({ hour: H1, perMinute: 60, perHour: 900, throttled: 4, maxRetryAfter: 30 }),
          peak({ hour: H1 + HOUR_MS, perMinute: 120, perHour: 700, minuteLimit: 150, throttled: 1, maxRetryAfter: 2 }),
        ],
      });
      const page = await store.limits({ ...ALL_TIME, limit: 10 });
      expect(page.truncated).toBe(false);
      expect(page.rows).toEqual([
        {
          product: 'alpha', tenant: 't-1', app: 'app-a', appName: 'Contoso Sync', group: 'api',
          perMinute: { peak: 120, limit: 150 }, perHour: { peak: 900, limit: 1500 }, throttled: 8, maxRetryAfter: 30,
        },
        {
          product: 'alpha', tenant: 't-1', app: 'app-a', appName: '', group: 'hunting',
          perMinute: { peak: 10, limit: 45 }, perHour: { peak: 10, limit: 1500 }, throttled: 0, maxRetryAfter: 0,
        },
        {
          product: 'alpha', tenant: 't-2', app: 'app-a', appName: '', group: 'api',
          perMinute: { peak: 1, limit: 100 }, perHour: { peak: 1, limit: 1500 }, throttled: 0, maxRetryAfter: 0,
        },
      ]);
      // Only the hours that overlap the range: the first hour alone.
      const first = await store.limits({ from: H1 + 1000, to: H1 + HOUR_MS, limit: 10 });
      expect(first.rows[0]).toMatchObject({ perMinute: { peak: 90, limit: 100 }, throttled: 7, maxRetryAfter: 30 });
      const cut = await store.limits({ ...ALL_TIME, limit: 2 });
      expect(cut.truncated).toBe(true);
      expect(cut.rows).toEqual(page.rows.slice(0, 2));
    });
  });

  describe('non-compliant callers', () => {
    it(`keeps ${CALLERS_PER_PRODUCT} callers per product and day, and sums the rest as '${OTHER_CALLERS}'`, async () => {
      const store = make(await backend.fresh());
      const many = Array.from({ length: 60 }, (_, i) =>
        caller({ client: `10.1.0.${i}`, calls: 100 - i, firstSeen: DAY0 + 1000 + i, lastSeen: DAY0 + 5000 + i }),
      );
      await store.write({ ...EMPTY, callers: [...many.slice(0, 30), caller({ product: 'beta', family: '(none)', calls: 3 })] });
      await store.write({ ...EMPTY, callers: many.slice(30) });
      // Later calls of kept callers add to them; a new one goes to '(other)'.
      await store.write({
        ...EMPTY,
        callers: [caller({ client: '10.1.0.0', calls: 5, lastSeen: DAY0 + 9000 }), caller({ family: 'Go-http-client', client: '10.9.9.9', calls: 1000, firstSeen: DAY0 + 10, lastSeen: DAY0 + 9999 })],
      });
      const page = await store.callers({ ...ALL_TIME, limit: 1000 });
      const alpha = page.rows.filter((r) => r.product === 'alpha');
      expect(alpha).toHaveLength(CALLERS_PER_PRODUCT + 1);
      expect(alpha[0]).toEqual({ product: 'alpha', family: 'python-requests', client: '10.1.0.0', calls: 105, firstSeen: DAY0 + 1000, lastSeen: DAY0 + 9000 });
      expect(alpha.slice(0, CALLERS_PER_PRODUCT).map((r) => r.client)).toEqual(many.slice(0, 50).map((c) => c.client));
      // The ten smallest (calls 50..41) and the late Go client: summed, first and last seen kept.
      expect(alpha[CALLERS_PER_PRODUCT]).toEqual({
        product: 'alpha', family: OTHER_CALLERS, client: '',
        calls: 1000 + [50, 49, 48, 47, 46, 45, 44, 43, 42, 41].reduce((a, b) => a + b, 0),
        firstSeen: DAY0 + 10, lastSeen: DAY0 + 9999,
      });
      expect(page.rows.filter((r) => r.product === 'beta')).toEqual([caller({ product: 'beta', family: '(none)', calls: 3 })]);
      expect(page.rows.map((r) => r.product)).toEqual([...Array<string>(CALLERS_PER_PRODUCT + 1).fill('alpha'), 'beta']);
      const cut = await store.callers({ ...ALL_TIME, limit: 10 });
      expect(cut).toEqual({ rows: page.rows.slice(0, 10), truncated: true });
    });

    it('ranks callers over a range of days and sums those past the top 50 into one row', async () => {
      const store = make(await backend.fresh());
      const day = (d: number, i: number, calls: number): CallerCount =>
        caller({ client: `10.2.${d}.${i}`, calls, firstSeen: DAY0 + d * DAY_MS + i, lastSeen: DAY0 + d * DAY_MS + 100 + i });
      // Day 0: 40 callers of 10 calls; day 1: 40 other callers of 20 calls. Over both: 80 callers.
      await store.write({ ...EMPTY, callers: Array.from({ length: 40 }, (_, i) => day(0, i, 10)) });
      await store.write({ ...EMPTY, callers: Array.from({ length: 40 }, (_, i) => day(1, i, 20)) });
      const page = await store.callers({ from: DAY0, to: DAY0 + 2 * DAY_MS, limit: 100 });
      expect(page.rows).toHaveLength(CALLERS_PER_PRODUCT + 1);
      expect(page.rows.slice(0, 40).every((r) => r.calls === 20)).toBe(true);
      expect(page.rows[CALLERS_PER_PRODUCT]).toMatchObject({ family: OTHER_CALLERS, client: '', calls: 30 * 10 });
      // One day alone: 40 callers, no '(other)'.
      const one = await store.callers({ from: DAY0, to: DAY0 + DAY_MS, limit: 100 });
      expect(one.rows).toHaveLength(40);
      expect(one.rows.every((r) => r.calls === 10)).toBe(true);
    });
  });

  describe('concurrent writers', () => {
    it('two store objects on one database, writing at once, lose nothing and keep the callers bound', async () => {
      const target = await backend.fresh();
      const a = make(target);
      const b = make(target);
      const rows = trafficCounts(21);
      const batches = inBatches(rows, 100);
      const callers = Array.from({ length: 80 }, (_, i) => caller({ client: `10.3.0.${i}`, calls: 1 + (i % 5) }));
      await Promise.all([
        (async () => {
          for (const [i, batch] of batches.entries()) if (i % 2 === 0) await a.write({ ...batch, callers: callers.slice(i * 7, i * 7 + 7) });
        })(),
        (async () => {
          for (const [i, batch] of batches.entries()) if (i % 2 === 1) await b.write({ ...batch, callers: callers.slice(i * 7, i * 7 + 7) });
        })(),
      ]);
      for (const by of [['tenant', 'app'], ['day', 'action'], ['hour', 'client']] as UsageBy[][]) {
        const page = await a.usage({ ...ALL_TIME, by, limit: 10_000 });
        expect(sorted(page.rows)).toEqual(sorted(expectedUsage(rows, by, ALL_TIME.from, ALL_TIME.to)));
      }
      const written = callers.slice(0, batches.length * 7);
      expect(written.length).toBeGreaterThan(CALLERS_PER_PRODUCT);
      const stored = await backend.raw(target, `SELECT COUNT(*) AS n, SUM(calls) AS calls FROM usage_callers`);
      expect(Number(stored[0]!.n)).toBe(Math.min(written.length, CALLERS_PER_PRODUCT + (written.length > CALLERS_PER_PRODUCT ? 1 : 0)));
      expect(Number(stored[0]!.calls)).toBe(written.reduce((n, c) => n + c.calls, 0));
    });
  });
}

// ---- shared by the backends' fault tests ------------------------------------------------------

export const RANGE = { from: DAY0 - DAY_MS, to: DAY0 + 10 * DAY_MS };
export const batchOf = (seed: number, n = 50): UsageBatch => ({ counts: trafficCounts(seed).slice(0, n), callers: [], peaks: [] });
export const callsIn = (b: UsageBatch): number => b.counts.reduce((n, c) => n + c.calls, 0);

export async function totalCalls(store: UsageStore): Promise<number> {
  const page = await store.usage({ ...RANGE, by: ['product'], limit: 100 });
  return page.rows.reduce((n, r) => n + r.calls, 0);
}

/** A log that keeps what it is told. */
export function memoryLog(): StoreLog & { lines: { fields: Record<string, unknown>; message: string }[] } {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  return { lines, warn: (fields, message) => lines.push({ fields, message }) };
}
