// The SQL both store backends run, checked without a backend: placeholder rewriting, which table
// answers a query, the parameters of each statement, the staging rows and the readers' conversions.
// Every statement is also prepared (not run) by SQLite in memory, so a syntax slip fails here first;
// the backends' own tests (sqlite, postgres) run them against real databases.
import Database from 'better-sqlite3';
import {
  FOLD_STATEMENTS, INSERT_VERSION, MIGRATIONS, MIGRATIONS_TABLE, POSTGRES, SCHEMA_VERSION, SELECT_HORIZON, SELECT_VERSION, SQLITE, STAGES,
  callersStatement, createStage, limitsStatement, normaliseBy, pruneStatements, readCallers, readLimits, readUsage, sqlFor, stageRows,
  usageSource, usageStatement,
} from '../../../src/usage/sql.js';
import { DAY_MS, HOUR_MS, USAGE_BY, type UsageBy } from '../../../src/usage/store.js';

const DAY0 = Date.UTC(2026, 11, 2); // a Wednesday, 00:00 UTC

describe('sqlFor', () => {
  it.each([
    ['no placeholder', 'SELECT 1', 'SELECT 1'],
    ['three in order', 'SELECT $1, $2, $3', 'SELECT ?, ?, ?'],
    ['ten and more', 'VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)', `VALUES (${Array(11).fill('?').join(',')})`],
  ])('rewrites %s for SQLite', (_what, text, sqlite) => {
    expect(sqlFor(SQLITE, text)).toBe(sqlite);
    expect(sqlFor(POSTGRES, text)).toBe(text);
  });

  it.each([
    ['out of order', 'SELECT $2, $1'],
    ['repeated', 'SELECT $1 WHERE x = $1'],
    ['starting past one', 'SELECT $2'],
  ])('refuses placeholders %s for SQLite, naming the statement', (_what, text) => {
    expect(() => sqlFor(SQLITE, text)).toThrow(`out of order in: ${text}`);
  });
});

describe('normaliseBy', () => {
  it.each<[readonly string[], UsageBy[]]>([
    [[], []],
    [['tenant', 'product'], ['tenant', 'product']],
    [['day', 'day', 'api', 'day'], ['day', 'api']],
    [USAGE_BY, [...USAGE_BY]],
  ])('%j → %j', (by, expected) => {
    expect(normaliseBy(by)).toEqual(expected);
  });

  it.each(['Product', 'week', '', 'calls'])('refuses the unknown key %p', (key) => {
    expect(() => normaliseBy(['product', key])).toThrow(new RangeError(`unknown usage key '${key}'`));
  });
});

describe('usageSource', () => {
  const horizon = DAY0 - 2 * DAY_MS;
  it.each<[string, number, number, UsageBy[], number | undefined, 'day' | 'hour' | 'split']>([
    ['whole days', DAY0 - 7 * DAY_MS, DAY0, ['product'], horizon, 'day'],
    ['whole days, by day', DAY0 - 7 * DAY_MS, DAY0, ['day'], horizon, 'day'],
    ['whole days, by hour', DAY0 - 7 * DAY_MS, DAY0, ['hour'], horizon, 'hour'],
    ['a part day after the horizon', DAY0 - HOUR_MS, DAY0 + HOUR_MS, ['product'], horizon, 'hour'],
    ['a part day, never pruned', DAY0 - 30 * DAY_MS + HOUR_MS, DAY0, ['product'], undefined, 'hour'],
    ['a part day reaching before the horizon', DAY0 - 7 * DAY_MS + HOUR_MS, DAY0, ['product'], horizon, 'split'],
    ['from exactly the horizon, not whole days', horizon, DAY0 + HOUR_MS, ['tenant'], horizon, 'hour'],
  ])('%s → %s', (_what, from, to, by, h, expected) => {
    expect(usageSource({ from, to, by }, h)).toBe(expected);
  });
});

describe('statement parameters', () => {
  it('reads the day table for whole days, asking one row more than the limit', () => {
    const s = usageStatement({ from: DAY0 - DAY_MS, to: DAY0, by: ['product'], limit: 10 }, undefined);
    expect(s.text).toContain('FROM usage_day WHERE day >= $1 AND day < $2');
    expect(s.text).not.toContain('usage_hour');
    expect(s.params).toEqual([DAY0 - DAY_MS, DAY0, 11]);
  });

  it('splits at the horizon: hours from it on, the whole days that overlap the range before it', () => {
    const horizon = DAY0 - DAY_MS;
    const from = DAY0 - 3 * DAY_MS + 5 * HOUR_MS;
    const s = usageStatement({ from, to: DAY0 + HOUR_MS, by: ['api'], limit: 1 }, horizon);
    expect(s.params).toEqual([horizon, DAY0 + HOUR_MS, from - DAY_MS, horizon, 2]);
  });

  it('groups and orders by the keys asked, time keys first, then calls', () => {
    const s = usageStatement({ from: DAY0, to: DAY0 + DAY_MS, by: ['tenant', 'day'], limit: 5 }, undefined);
    expect(s.text).toMatch(/GROUP BY 1, 2/);
    expect(s.text).toMatch(/ORDER BY k1, calls DESC, k0/);
  });

  it('reads limits from the hours that overlap the range and callers from the days that do', () => {
    expect(limitsStatement({ from: DAY0, to: DAY0 + DAY_MS, limit: 3 }).params).toEqual([DAY0 - HOUR_MS, DAY0 + DAY_MS, 4]);
    expect(callersStatement({ from: DAY0, to: DAY0 + DAY_MS, limit: 3 }).params).toEqual([DAY0 - DAY_MS, DAY0 + DAY_MS, 4]);
  });

  it.each([
    ['at midnight', DAY0, { hours: 7, days: 400 }, DAY0 - 7 * DAY_MS, DAY0 - 400 * DAY_MS],
    ['in the afternoon: cut-offs rounded down to the day', DAY0 + 15 * HOUR_MS + 123, { hours: 7, days: 400 }, DAY0 - 7 * DAY_MS, DAY0 - 400 * DAY_MS],
    ['one day of each', DAY0 + 1, { hours: 1, days: 1 }, DAY0 - DAY_MS, DAY0 - DAY_MS],
  ])('prunes %s', (_what, now, retention, hourCut, dayCut) => {
    const s = pruneStatements(now, retention);
    expect(s.map((x) => [x.text.split(/\s+/).slice(0, 3).join(' '), x.params])).toEqual([
      ['DELETE FROM usage_hour', [hourCut]],
      ['DELETE FROM usage_limits', [hourCut]],
      ['DELETE FROM usage_day', [dayCut]],
      ['DELETE FROM usage_callers', [dayCut]],
      ['INSERT INTO usage_meta', [hourCut]],
    ]);
  });
});

describe('stageRows', () => {
  it('floors hours and caller days and keeps each stage\'s column order', () => {
    const rows = stageRows({
      counts: [{ hour: DAY0 + HOUR_MS + 59_000, product: 'p', tenant: 't', app: 'a', api: 'machines', action: 'rewritten', client: '10.0.0.1', calls: 3, throttled: 1, errors: 0 }],
      callers: [{ product: 'p', family: 'curl', client: '10.0.0.1', calls: 2, firstSeen: DAY0 + 5 * HOUR_MS, lastSeen: DAY0 + 6 * HOUR_MS }],
      peaks: [{ hour: DAY0 + 7, product: 'p', tenant: 't', app: 'a', appName: 'App', group: 'hunting', perMinute: 40, perHour: 90, minuteLimit: 45, hourLimit: 1500, throttled: 2, maxRetryAfter: 30 }],
    });
    expect(rows).toEqual({
      counts: [[DAY0 + HOUR_MS, 'p', 't', 'a', 'machines', 'rewritten', '10.0.0.1', 3, 1, 0]],
      callers: [[DAY0, 'p', 'curl', '10.0.0.1', 2, DAY0 + 5 * HOUR_MS, DAY0 + 6 * HOUR_MS]],
      peaks: [[DAY0, 'p', 't', 'a', 'hunting', 'App', 40, 90, 45, 1500, 2, 30]],
    });
    // The rows fill the stages column for column.
    expect(STAGES.map((s) => s.columns.length)).toEqual([rows.counts[0]!.length, rows.callers[0]!.length, rows.peaks[0]!.length]);
  });
});

describe('readers', () => {
  it('turns usage rows into ISO day and hour keys and numbers, and says when it cut them', () => {
    const raw = [
      { k0: DAY0 + 13 * HOUR_MS, k1: String(DAY0), k2: 'cognito', calls: '5', compliant: 2, rewritten: '3', throttled: 0, errors: '1' },
      { k0: DAY0, k1: DAY0, k2: 'other', calls: 1 },
    ];
    expect(readUsage(['hour', 'day', 'product'], raw, 1)).toEqual({
      rows: [{ hour: '2026-12-02T13:00:00Z', day: '2026-12-02', product: 'cognito', calls: 5, compliant: 2, rewritten: 3, rejected: 0, audited: 0, throttled: 0, errors: 1 }],
      truncated: true,
    });
    expect(readUsage(['product'], [], 10)).toEqual({ rows: [], truncated: false });
  });

  it('turns limit and caller rows from strings (as PostgreSQL gives BIGINT) into numbers', () => {
    const limit = { product: 'p', tenant: 't', app: 'a', app_name: 'App', grp: 'api', per_minute: '90', minute_limit: '100', per_hour: '1200', hour_limit: '1500', throttled: '0', max_retry_after: '0' };
    expect(readLimits([limit, limit], 2)).toEqual({
      rows: [limit, limit].map(() => ({ product: 'p', tenant: 't', app: 'a', appName: 'App', group: 'api', perMinute: { peak: 90, limit: 100 }, perHour: { peak: 1200, limit: 1500 }, throttled: 0, maxRetryAfter: 0 })),
      truncated: false,
    });
    const caller = { product: 'p', family: 'curl', client: '::1', calls: '7', first_seen: String(DAY0), last_seen: String(DAY0 + 1) };
    expect(readCallers([caller, caller, caller], 2)).toEqual({
      rows: [caller, caller].map(() => ({ product: 'p', family: 'curl', client: '::1', calls: 7, firstSeen: DAY0, lastSeen: DAY0 + 1 })),
      truncated: true,
    });
  });
});

describe('migrations and every statement, prepared by SQLite', () => {
  it('numbers migrations from 1 without gaps, the last being SCHEMA_VERSION', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(Array.from({ length: MIGRATIONS.length }, (_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('prepares each statement on a migrated in-memory database', () => {
    const db = new Database(':memory:');
    try {
      db.exec(MIGRATIONS_TABLE);
      for (const m of MIGRATIONS) for (const s of m.statements(SQLITE)) db.exec(s);
      for (const s of STAGES) db.exec(createStage(s, ''));
      const texts = [
        SELECT_VERSION, INSERT_VERSION, SELECT_HORIZON.text, ...FOLD_STATEMENTS,
        usageStatement({ from: DAY0, to: DAY0 + DAY_MS, by: [...USAGE_BY], limit: 5 }, undefined).text,
        usageStatement({ from: DAY0 - 3 * DAY_MS + HOUR_MS, to: DAY0, by: ['product', 'day'], limit: 5 }, DAY0 - DAY_MS).text,
        limitsStatement({ from: DAY0, to: DAY0 + DAY_MS, limit: 5 }).text,
        callersStatement({ from: DAY0, to: DAY0 + DAY_MS, limit: 5 }).text,
        ...pruneStatements(DAY0, { hours: 7, days: 400 }).map((s) => s.text),
      ];
      const failures: string[] = [];
      for (const text of texts) {
        try {
          db.prepare(sqlFor(SQLITE, text));
        } catch (e) {
          failures.push(`${(e as Error).message}: ${text.slice(0, 80)}`);
        }
      }
      expect(failures).toEqual([]);
    } finally {
      db.close();
    }
  });
});
