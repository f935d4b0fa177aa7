// The SQL both usage store backends run: schema migrations, the staging of a batch, the statements
// that fold a batch into the tables, the queries and the pruning. One text per statement, written
// with $1-style placeholders; a Dialect turns those into SQLite's ?1 and supplies the few words
// that differ (table options). Nothing here does I/O: sqlite.ts and postgres.ts execute it.
//
// Tables (times are epoch ms, UTC):
//   usage_hour    counts per hour and every dimension (product, tenant, app, api, action, client)
//   usage_day     the same per UTC day; each row is the sum of the day's hour rows, written in the
//                 same transaction, so it stays exact after the hour rows are pruned
//   usage_callers non-compliant callers per UTC day, at most CALLERS_PER_PRODUCT rows per product
//                 and day plus one '(other)' row that sums the rest
//   usage_limits  per hour and tenant/app/limit group: the peak minute and hour windows, the limits
//                 in force, the 429s and the largest Retry-After
//   usage_meta    name → number; 'hour_horizon' is the day from which the hour tables are whole
import {
  CALLERS_PER_PRODUCT,
  DAY_MS,
  HOUR_MS,
  OTHER_CALLERS,
  USAGE_ACTIONS,
  USAGE_BY,
  type CallerCount,
  type CallerRow,
  type LimitPeak,
  type LimitRow,
  type TimeRange,
  type UsageBatch,
  type UsageBy,
  type UsageCount,
  type UsageQuery,
  type UsageRow,
  isoDay,
  isoHour,
} from './store.js';

/** What differs between the two SQL dialects we run. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** Appended to CREATE TABLE of the keyed tables (SQLite: WITHOUT ROWID, the key is the row). */
  readonly tableOptions: string;
}

export const SQLITE: Dialect = { name: 'sqlite', tableOptions: ' WITHOUT ROWID' };
export const POSTGRES: Dialect = { name: 'postgres', tableOptions: '' };

/**
 * The statement text for a dialect: PostgreSQL's $1, $2 … become SQLite's positional ? (better-sqlite3
 * binds an array to ? only). So every statement here uses $1, $2 … once each, in order.
 */
export function sqlFor(dialect: Dialect, text: string): string {
  if (dialect.name === 'postgres') return text;
  let next = 1;
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    if (Number(n) !== next++) throw new Error(`placeholder $${n} out of order in: ${text}`);
    return '?';
  });
}

/** One schema version: statements applied in one transaction, then recorded in schema_migrations. */
export interface Migration {
  readonly version: number;
  readonly statements: (d: Dialect) => readonly string[];
}

const COUNT_COLUMNS = `product TEXT NOT NULL, tenant TEXT NOT NULL, app TEXT NOT NULL, api TEXT NOT NULL,
  action TEXT NOT NULL, client TEXT NOT NULL,
  calls BIGINT NOT NULL, throttled BIGINT NOT NULL, errors BIGINT NOT NULL`;

/** The migrations, oldest first. A version, once released, never changes: add a new one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: (d) => [
      `CREATE TABLE usage_hour (hour BIGINT NOT NULL, ${COUNT_COLUMNS},
        PRIMARY KEY (hour, product, tenant, app, api, action, client))${d.tableOptions}`,
      `CREATE TABLE usage_day (day BIGINT NOT NULL, ${COUNT_COLUMNS},
        PRIMARY KEY (day, product, tenant, app, api, action, client))${d.tableOptions}`,
      `CREATE TABLE usage_callers (day BIGINT NOT NULL, product TEXT NOT NULL, family TEXT NOT NULL,
        client TEXT NOT NULL, calls BIGINT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,
        PRIMARY KEY (day, product, family, client))${d.tableOptions}`,
      `CREATE TABLE usage_limits (hour BIGINT NOT NULL, product TEXT NOT NULL, tenant TEXT NOT NULL,
        app TEXT NOT NULL, grp TEXT NOT NULL, app_name TEXT NOT NULL, per_minute BIGINT NOT NULL,
        per_hour BIGINT NOT NULL, minute_limit BIGINT NOT NULL, hour_limit BIGINT NOT NULL,
        throttled BIGINT NOT NULL, max_retry_after BIGINT NOT NULL,
        PRIMARY KEY (hour, product, tenant, app, grp))${d.tableOptions}`,
      `CREATE TABLE usage_meta (name TEXT NOT NULL PRIMARY KEY, value BIGINT NOT NULL)`,
      // No other index: every query and every prune is a range on the time column, which leads
      // each table's key; a second index would cost every write and buy no query we run.
    ],
  },
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)`;
export const SELECT_VERSION = `SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations`;
export const INSERT_VERSION = `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`;

// ---------------------------------------------------------------------------------------------
// Writing a batch: the backend fills three staging tables (temporary, per connection), then runs
// FOLD_STATEMENTS in the same transaction. Duplicate keys inside one batch are summed by the GROUP BY.

/** A staging table: its name, columns and SQL types (PostgreSQL fills it from typed arrays). */
export interface Stage {
  readonly table: string;
  readonly columns: readonly { readonly name: string; readonly type: 'BIGINT' | 'TEXT' }[];
}

function stage(table: string, spec: string): Stage {
  return {
    table,
    columns: spec.split(/\s+/).map((c) => {
      const [name, type] = c.split(':');
      return { name: name!, type: type === 't' ? 'TEXT' : 'BIGINT' };
    }),
  };
}

export const STAGE_COUNTS = stage(
  'stage_counts',
  'hour:n product:t tenant:t app:t api:t action:t client:t calls:n throttled:n errors:n',
);
export const STAGE_CALLERS = stage('stage_callers', 'day:n product:t family:t client:t calls:n first_seen:n last_seen:n');
export const STAGE_PEAKS = stage(
  'stage_peaks',
  'hour:n product:t tenant:t app:t grp:t app_name:t per_minute:n per_hour:n minute_limit:n hour_limit:n throttled:n max_retry_after:n',
);
export const STAGES: readonly Stage[] = [STAGE_COUNTS, STAGE_CALLERS, STAGE_PEAKS];

/** CREATE TEMP TABLE for a stage; `suffix` is PostgreSQL's ON COMMIT DELETE ROWS or ''. */
export function createStage(s: Stage, suffix: string): string {
  return `CREATE TEMP TABLE IF NOT EXISTS ${s.table} (${s.columns.map((c) => `${c.name} ${c.type} NOT NULL`).join(', ')})${suffix}`;
}

/** The rows of a batch, one array of values per stage row, in the stage's column order. */
export function stageRows(batch: UsageBatch): { counts: unknown[][]; callers: unknown[][]; peaks: unknown[][] } {
  return {
    counts: batch.counts.map((c: UsageCount) => [
      c.hour - (c.hour % HOUR_MS),
      c.product,
      c.tenant,
      c.app,
      c.api,
      c.action,
      c.client,
      c.calls,
      c.throttled,
      c.errors,
    ]),
    callers: batch.callers.map((c: CallerCount) => [
      c.firstSeen - (c.firstSeen % DAY_MS),
      c.product,
      c.family,
      c.client,
      c.calls,
      c.firstSeen,
      c.lastSeen,
    ]),
    peaks: batch.peaks.map((p: LimitPeak) => [
      p.hour - (p.hour % HOUR_MS),
      p.product,
      p.tenant,
      p.app,
      p.group,
      p.appName,
      p.perMinute,
      p.perHour,
      p.minuteLimit,
      p.hourLimit,
      p.throttled,
      p.maxRetryAfter,
    ]),
  };
}

const COUNT_KEYS = 'product, tenant, app, api, action, client';
const ADD_COUNTS = `calls = $T.calls + excluded.calls, throttled = $T.throttled + excluded.throttled,
  errors = $T.errors + excluded.errors`;
// "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
const SAME_CALLER = `c.day = s.day AND c.product = s.product AND c.family = s.family AND c.client = s.client`;

/**
 * The statements that fold the staged batch into the tables, in order. Callers: rows already kept
 * are added to; new (family, client) pairs take the free places of their product and day, most
 * calls first; the rest are summed into the '(other)' row.
 */
export const FOLD_STATEMENTS: readonly string[] = [
  `INSERT INTO usage_hour (hour, ${COUNT_KEYS}, calls, throttled, errors)
   SELECT hour, ${COUNT_KEYS}, SUM(calls), SUM(throttled), SUM(errors) FROM stage_counts WHERE true
   GROUP BY hour, ${COUNT_KEYS}
   ON CONFLICT (hour, ${COUNT_KEYS}) DO UPDATE SET ${ADD_COUNTS.replaceAll('$T', 'usage_hour')}`,
  `INSERT INTO usage_day (day, ${COUNT_KEYS}, calls, throttled, errors)
   SELECT hour - hour % ${DAY_MS}, ${COUNT_KEYS}, SUM(calls), SUM(throttled), SUM(errors) FROM stage_counts WHERE true
   GROUP BY hour - hour % ${DAY_MS}, ${COUNT_KEYS}
   ON CONFLICT (day, ${COUNT_KEYS}) DO UPDATE SET ${ADD_COUNTS.replaceAll('$T', 'usage_day')}`,
  // 1. Pairs already kept for their day: add.
  `INSERT INTO usage_callers (day, product, family, client, calls, first_seen, last_seen)
   SELECT s.day, s.product, s.family, s.client, SUM(s.calls), MIN(s.first_seen), MAX(s.last_seen)
   FROM stage_callers s
   WHERE EXISTS (SELECT 1 FROM usage_callers c WHERE ${SAME_CALLER})
   GROUP BY s.day, s.product, s.family, s.client
   ON CONFLICT (day, product, family, client) DO UPDATE SET calls = usage_callers.calls + excluded.calls,
     first_seen = CASE WHEN excluded.first_seen < usage_callers.first_seen THEN excluded.first_seen ELSE usage_callers.first_seen END,
     last_seen = CASE WHEN excluded.last_seen > usage_callers.last_seen THEN excluded.last_seen ELSE usage_callers.last_seen END`,
  // 2. New pairs, while their product and day have free places.
  `INSERT INTO usage_callers (day, product, family, client, calls, first_seen, last_seen)
   SELECT day, product, family, client, calls, first_seen, last_seen FROM (
     SELECT n.*, ROW_NUMBER() OVER (PARTITION BY n.day, n.product ORDER BY n.calls DESC, n.family, n.client) AS place,
       (SELECT COUNT(*) FROM usage_callers c WHERE c.day = n.day AND c.product = n.product
          AND NOT (c.family = '${OTHER_CALLERS}' AND c.client = '')) AS taken
     FROM (SELECT s.day, s.product, s.family, s.client, SUM(s.calls) AS calls, MIN(s.first_seen) AS first_seen,
             MAX(s.last_seen) AS last_seen
           FROM stage_callers s
           WHERE NOT EXISTS (SELECT 1 FROM usage_callers c WHERE ${SAME_CALLER})
             AND NOT (s.family = '${OTHER_CALLERS}' AND s.client = '')
           GROUP BY s.day, s.product, s.family, s.client) n
   ) ranked
   WHERE place + taken <= ${CALLERS_PER_PRODUCT}`,
  // 3. The rest: summed into the product's '(other)' row of that day.
  `INSERT INTO usage_callers (day, product, family, client, calls, first_seen, last_seen)
   SELECT s.day, s.product, '${OTHER_CALLERS}', '', SUM(s.calls), MIN(s.first_seen), MAX(s.last_seen)
   FROM stage_callers s
   WHERE NOT EXISTS (SELECT 1 FROM usage_callers c WHERE ${SAME_CALLER})
   GROUP BY s.day, s.product
   ON CONFLICT (day, product, family, client) DO UPDATE SET calls = usage_callers.calls + excluded.calls,
     first_seen = CASE WHEN excluded.first_seen < usage_callers.first_seen THEN excluded.first_seen ELSE usage_callers.first_seen END,
     last_seen = CASE WHEN excluded.last_seen > usage_callers.last_seen THEN excluded.last_seen ELSE usage_callers.last_seen END`,
  // Peaks: the highest windows and Retry-After, the 429s summed, the latest limits and name.
  `INSERT INTO usage_limits (hour, product, tenant, app, grp, app_name, per_minute, per_hour, minute_limit,
     hour_limit, throttled, max_retry_after)
   SELECT hour, product, tenant, app, grp, MAX(app_name), MAX(per_minute), MAX(per_hour), MIN(minute_limit),
     MIN(hour_limit), SUM(throttled), MAX(max_retry_after)
   FROM stage_peaks WHERE true
   GROUP BY hour, product, tenant, app, grp
   ON CONFLICT (hour, product, tenant, app, grp) DO UPDATE SET
     app_name = CASE WHEN excluded.app_name <> '' THEN excluded.app_name ELSE usage_limits.app_name END,
     per_minute = CASE WHEN excluded.per_minute > usage_limits.per_minute THEN excluded.per_minute ELSE usage_limits.per_minute END,
     per_hour = CASE WHEN excluded.per_hour > usage_limits.per_hour THEN excluded.per_hour ELSE usage_limits.per_hour END,
     minute_limit = excluded.minute_limit, hour_limit = excluded.hour_limit,
     throttled = usage_limits.throttled + excluded.throttled,
     max_retry_after = CASE WHEN excluded.max_retry_after > usage_limits.max_retry_after
       THEN excluded.max_retry_after ELSE usage_limits.max_retry_after END`,
];

// ---------------------------------------------------------------------------------------------
// Queries. Each builder returns the text and its parameters; the backend runs it and hands the raw
// rows (numbers may come back as strings from PostgreSQL) to the matching reader.

export interface Statement {
  readonly text: string;
  readonly params: readonly unknown[];
}

export const SELECT_HORIZON: Statement = {
  text: `SELECT value FROM usage_meta WHERE name = 'hour_horizon'`,
  params: [],
};

const ACTION_SUMS = USAGE_ACTIONS.map((a) => `SUM(CASE WHEN action = '${a}' THEN calls ELSE 0 END) AS ${a}`).join(', ');
const KEY_EXPR: Readonly<Record<UsageBy, string>> = {
  product: 'product',
  tenant: 'tenant',
  app: 'app',
  api: 'api',
  action: 'action',
  client: 'client',
  day: `t - t % ${DAY_MS}`,
  hour: 't',
};

function isWholeDay(ms: number): boolean {
  return ms % DAY_MS === 0;
}

/** The `by` keys in a stable order without repeats; unknown keys are refused. */
export function normaliseBy(by: readonly string[]): UsageBy[] {
  const out: UsageBy[] = [];
  for (const k of by) {
    if (!(USAGE_BY as readonly string[]).includes(k)) throw new RangeError(`unknown usage key '${k}'`);
    if (!out.includes(k as UsageBy)) out.push(k as UsageBy);
  }
  return out;
}

/** Which tables answer a usage query (see UsageStore.usage): 'day', 'hour', or both split at the horizon. */
export function usageSource(q: TimeRange & { by: readonly UsageBy[] }, horizon: number | undefined): 'day' | 'hour' | 'split' {
  if (q.by.includes('hour')) return 'hour';
  if (isWholeDay(q.from) && isWholeDay(q.to)) return 'day';
  if (horizon === undefined || q.from >= horizon) return 'hour';
  return 'split';
}

/** The usage query for a range, its keys and the hour-table horizon (undefined when never pruned). */
export function usageStatement(q: UsageQuery, horizon: number | undefined): Statement {
  const by = normaliseBy(q.by);
  const source = usageSource({ ...q, by }, horizon);
  const cols = `${COUNT_KEYS}, calls, throttled, errors`;
  let from: string;
  let params: unknown[];
  if (source === 'day') {
    from = `SELECT day AS t, ${cols} FROM usage_day WHERE day >= $1 AND day < $2`;
    params = [q.from, q.to];
  } else if (source === 'hour') {
    from = `SELECT hour AS t, ${cols} FROM usage_hour WHERE hour >= $1 AND hour < $2`;
    params = [q.from, q.to];
  } else {
    // Before the horizon only whole days exist: take the days that overlap [from, horizon).
    from = `SELECT hour AS t, ${cols} FROM usage_hour WHERE hour >= $1 AND hour < $2
      UNION ALL SELECT day AS t, ${cols} FROM usage_day WHERE day > $3 AND day < $4`;
    params = [horizon!, q.to, q.from - DAY_MS, Math.min(horizon!, q.to)];
  }
  const keys = by.map((k, i) => `${KEY_EXPR[k]} AS k${i}`);
  const groups = by.map((_, i) => `${i + 1}`);
  const timeOrder = by.flatMap((k, i) => (k === 'day' || k === 'hour' ? [`k${i}`] : []));
  const otherOrder = by.flatMap((k, i) => (k === 'day' || k === 'hour' ? [] : [`k${i}`]));
  const order = [...timeOrder, 'calls DESC', ...otherOrder];
  const text = `SELECT ${[...keys, `SUM(calls) AS calls`, ACTION_SUMS, 'SUM(throttled) AS throttled', 'SUM(errors) AS errors'].join(', ')}
    FROM (${from}) s
    ${groups.length > 0 ? `GROUP BY ${groups.join(', ')}` : ''}
    HAVING COUNT(*) > 0
    ORDER BY ${order.join(', ')}
    LIMIT $${params.length + 1}`;
  return { text, params: [...params, q.limit + 1] };
}

/** The first `limit` raw rows converted, and whether there were more (each query asks for limit + 1). */
function readPage<T>(raw: readonly Record<string, unknown>[], limit: number, toRow: (r: Record<string, unknown>) => T): { rows: T[]; truncated: boolean } {
  return { rows: raw.slice(0, limit).map(toRow), truncated: raw.length > limit };
}

/** Turns the raw rows of usageStatement into UsageRows (ISO day/hour keys, numbers). */

export function readUsage(by: readonly UsageBy[], raw: readonly Record<string, unknown>[], limit: number): { rows: UsageRow[]; truncated: boolean } {
  const keys = normaliseBy(by);
  return readPage(raw, limit, (r) => {
    const row: Record<string, string | number> = {};
    keys.forEach((k, i) => {
      const v = r[`k${i}`];
      row[k] = k === 'day' ? isoDay(Number(v)) : k === 'hour' ? isoHour(Number(v)) : String(v);
    });
    for (const c of ['calls', ...USAGE_ACTIONS, 'throttled', 'errors']) row[c] = Number(r[c] ?? 0);
    return row as UsageRow;
  });
}

/** The limits query: the hours that overlap the range, worst utilisation first. */
export function limitsStatement(range: TimeRange & { readonly limit: number }): Statement {
  const text = `WITH r AS (
      SELECT l.*,
        ROW_NUMBER() OVER (PARTITION BY product, tenant, app, grp ORDER BY per_minute DESC, hour DESC) AS rm,
        ROW_NUMBER() OVER (PARTITION BY product, tenant, app, grp ORDER BY per_hour DESC, hour DESC) AS rh
      FROM usage_limits l WHERE hour > $1 AND hour < $2),
    a AS (
      SELECT product, tenant, app, grp, MAX(app_name) AS app_name,
        MAX(per_minute) AS per_minute, MAX(CASE WHEN rm = 1 THEN minute_limit END) AS minute_limit,
        MAX(per_hour) AS per_hour, MAX(CASE WHEN rh = 1 THEN hour_limit END) AS hour_limit,
        SUM(throttled) AS throttled, MAX(max_retry_after) AS max_retry_after
      FROM r GROUP BY product, tenant, app, grp)
    SELECT a.*,
      CASE WHEN per_minute * 1.0 / CASE WHEN minute_limit > 0 THEN minute_limit ELSE 1 END
             >= per_hour * 1.0 / CASE WHEN hour_limit > 0 THEN hour_limit ELSE 1 END
           THEN per_minute * 1.0 / CASE WHEN minute_limit > 0 THEN minute_limit ELSE 1 END
           ELSE per_hour * 1.0 / CASE WHEN hour_limit > 0 THEN hour_limit ELSE 1 END END AS worst
    FROM a
    ORDER BY worst DESC, throttled DESC, product, tenant, app, grp
    LIMIT $3`;
  return { text, params: [range.from - HOUR_MS, range.to, range.limit + 1] };
}

/** Turns the raw rows of limitsStatement into LimitRows. */
export function readLimits(raw: readonly Record<string, unknown>[], limit: number): { rows: LimitRow[]; truncated: boolean } {
  return readPage(
    raw,
    limit,
    (r): LimitRow => ({
      product: String(r.product),
      tenant: String(r.tenant),
      app: String(r.app),
      appName: String(r.app_name),
      group: String(r.grp) as LimitRow['group'],
      perMinute: { peak: Number(r.per_minute), limit: Number(r.minute_limit) },
      perHour: { peak: Number(r.per_hour), limit: Number(r.hour_limit) },
      throttled: Number(r.throttled),
      maxRetryAfter: Number(r.max_retry_after),
    }),
  );
}

/** The callers query: the days that overlap the range, top CALLERS_PER_PRODUCT per product, the rest as '(other)'. */
export function callersStatement(range: TimeRange & { readonly limit: number }): Statement {
  const other = `family = '${OTHER_CALLERS}' AND client = ''`;
  const text = `WITH a AS (
      SELECT product, family, client, SUM(calls) AS calls, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
      FROM usage_callers WHERE day > $1 AND day < $2 GROUP BY product, family, client),
    r AS (
      SELECT a.*, ROW_NUMBER() OVER (PARTITION BY product
        ORDER BY CASE WHEN ${other} THEN 1 ELSE 0 END, calls DESC, family, client) AS place
      FROM a),
    k AS (
      SELECT product,
        CASE WHEN place <= ${CALLERS_PER_PRODUCT} AND NOT (${other}) THEN family ELSE '${OTHER_CALLERS}' END AS family,
        CASE WHEN place <= ${CALLERS_PER_PRODUCT} AND NOT (${other}) THEN client ELSE '' END AS client,
        calls, first_seen, last_seen
      FROM r)
    SELECT product, family, client, SUM(calls) AS calls, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
    FROM k GROUP BY product, family, client
    ORDER BY product, CASE WHEN ${other} THEN 1 ELSE 0 END, calls DESC, family, client
    LIMIT $3`;
  return { text, params: [range.from - DAY_MS, range.to, range.limit + 1] };
}

/** Turns the raw rows of callersStatement into CallerRows. */
export function readCallers(raw: readonly Record<string, unknown>[], limit: number): { rows: CallerRow[]; truncated: boolean } {
  return readPage(
    raw,
    limit,
    (r): CallerRow => ({
      product: String(r.product),
      family: String(r.family),
      client: String(r.client),
      calls: Number(r.calls),
      firstSeen: Number(r.first_seen),
      lastSeen: Number(r.last_seen),
    }),
  );
}

/** The prune statements for `now` and retention (in days), to run in one transaction. */
export function pruneStatements(now: number, retention: { hours: number; days: number }): Statement[] {
  const hourCut = floorDay(now - retention.hours * DAY_MS);
  const dayCut = floorDay(now - retention.days * DAY_MS);
  return [
    { text: `DELETE FROM usage_hour WHERE hour < $1`, params: [hourCut] },
    { text: `DELETE FROM usage_limits WHERE hour < $1`, params: [hourCut] },
    { text: `DELETE FROM usage_day WHERE day < $1`, params: [dayCut] },
    { text: `DELETE FROM usage_callers WHERE day < $1`, params: [dayCut] },
    {
      text: `INSERT INTO usage_meta (name, value) VALUES ('hour_horizon', $1)
        ON CONFLICT (name) DO UPDATE SET value = CASE WHEN excluded.value > usage_meta.value THEN excluded.value ELSE usage_meta.value END`,
      params: [hourCut],
    },
  ];
}

function floorDay(ms: number): number {
  return ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
}
