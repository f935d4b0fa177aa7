// The fleet usage store: every replica writes to one PostgreSQL database through a small pg Pool.
// It runs the same SQL as the SQLite store (sql.ts); only the staging of a batch differs: one
// INSERT … SELECT FROM UNNEST of typed arrays per staging table, instead of a prepared insert per row.
//
// Faults: every failure rejects with a UsageStoreError (a server that is down, restarting or
// refusing is StoreUnavailable). The pool drops broken connections and connects anew at the next
// call, so a store object outlives a server restart. The schema is migrated lazily: a write after
// a failed open() opens first.
import pg from 'pg';
import { FOLD_STATEMENTS, INSERT_VERSION, MIGRATIONS, MIGRATIONS_TABLE, POSTGRES, SCHEMA_VERSION, SELECT_HORIZON,
  SELECT_VERSION, STAGES, callersStatement, createStage, limitsStatement, normaliseBy, pruneStatements, readCallers,
  readLimits, readUsage, stageRows, usageStatement, type Statement } from './sql.js';
import { UsageStoreError, lazyOpen, type CallerRow, type LimitRow, type Page, type Retention, type StoreLog, type TimeRange,
  type UsageBatch, type UsageQuery, type UsageRow, type UsageStore, type UsageStoreErrorCode } from './store.js';
import { redactStoreUrl } from './usage-config.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database (usage.store). */
  readonly url: string;
  /** Connections in the pool (default 4). */
  readonly poolSize?: number;
  /** How long a connection attempt or a lock wait may take before the call rejects (ms, default 5000). */
  readonly timeoutMs?: number;
  /**
   * How long one statement may go without an answer before the call rejects and its connection is
   * dropped (ms, default 30000): a server or network that stops answering mid-query is a fault
   * within that time, not after TCP gives up many minutes later.
   */
  readonly queryTimeoutMs?: number;
  /** Where the store reports connections lost while idle. */
  readonly log?: StoreLog;
}

// Any key; it only has to be the same in every replica: schema migrations take turns on it.
const MIGRATION_LOCK = 7_276_102_001;

/** Maps a pg / network error onto a UsageStoreError code (SQLSTATE classes, then errno). */
function classify(e: unknown): UsageStoreErrorCode {
  const { code: rawCode, message: rawMessage } = e as { code?: unknown; message?: unknown };
  const code = typeof rawCode === 'string' ? rawCode : '';
  if (code === '53100') return 'StoreFull'; // disk_full
  if (code === '25006') return 'StoreReadOnly'; // read_only_sql_transaction (a standby)
  if (code === '55P03' || code === '40P01' || code === '40001') return 'StoreLocked'; // lock timeout, deadlock, serialization
  if (code === 'XX001' || code === 'XX002') return 'StoreCorrupt';
  if (/^(08|57P|53300)/.test(code)) return 'StoreUnavailable'; // connection exceptions, shutdown, too many connections
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) return 'StoreUnavailable';
  const message = typeof rawMessage === 'string' ? rawMessage : '';
  if (/Connection terminated|connection timeout|Client has encountered a connection error|not queryable|Query read timeout/i.test(message)) return 'StoreUnavailable';
  return 'StoreFailed';
}

/** The PostgreSQL usage store; no connection is made until the first call. */
export function createPostgresStore(options: PostgresStoreOptions): UsageStore {
  const where = redactStoreUrl(options.url);
  const timeoutMs = options.timeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 4,
    connectionTimeoutMillis: timeoutMs,
    idleTimeoutMillis: 30_000,
    query_timeout: options.queryTimeoutMs ?? 30_000,
    // TCP keepalive on idle pooled connections, so a peer that vanished is found without traffic.
    keepAlive: true,
    options: `-c lock_timeout=${timeoutMs}`,
    application_name: 'mde-partner-proxy',
  });
  // A pooled connection that breaks while idle (server restart) is dropped by the pool; without a
  // listener the 'error' event would end the process.
  pool.on('error', (e) => options.log?.warn({ event: 'usage-store-connection-lost', store: where, cause: e.message }, 'usage store: an idle connection was lost'));

  const fail = (e: unknown): UsageStoreError =>
    e instanceof UsageStoreError ? e : new UsageStoreError(classify(e), `usage store ${where}: ${(e as Error).message ?? String(e)}`, { cause: e });

  /** Runs fn on one connection inside BEGIN … COMMIT. */
  const transaction = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    let client: pg.PoolClient | undefined;
    try {
      client = await pool.connect();
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      client.release();
      return out;
    } catch (e) {
      if (client !== undefined) {
        // A connection whose ROLLBACK fails is broken: release(error) makes the pool drop it.
        const broken = await client.query('ROLLBACK').then(
          () => undefined,
          (r: unknown) => r as Error,
        );
        client.release(broken ?? undefined);
      }
      throw fail(e);
    }
  };

  const doOpen = (): Promise<void> =>
    transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(MIGRATIONS_TABLE);
      const current = Number((await c.query<{ version: string | number }>(SELECT_VERSION)).rows[0]?.version ?? 0); // MAX() always yields one row
      if (current > SCHEMA_VERSION) {
        throw new UsageStoreError('StoreSchemaTooNew', `usage store ${where}: the database has schema version ${current}; this proxy knows up to ${SCHEMA_VERSION}`);
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        for (const sql of m.statements(POSTGRES)) await c.query(sql);
        await c.query(INSERT_VERSION, [m.version, Date.now()]);
      }
    });

  const opening = lazyOpen(doOpen, where);
  const ensureOpen = opening.ensure;

  const all = async (s: Statement): Promise<Record<string, unknown>[]> => {
    await ensureOpen();
    try {
      return (await pool.query(s.text, s.params as unknown[])).rows as Record<string, unknown>[];
    } catch (e) {
      throw fail(e);
    }
  };

  return {
    kind: 'postgres',
    open: () => ensureOpen(),
    write: async (batch: UsageBatch) => {
      await ensureOpen();
      if (batch.counts.length + batch.callers.length + batch.peaks.length === 0) return;
      const rows = stageRows(batch);
      const staged = [rows.counts, rows.callers, rows.peaks];
      await transaction(async (c) => {
        for (const [i, s] of STAGES.entries()) {
          await c.query(createStage(s, ' ON COMMIT DELETE ROWS'));
          const values = staged[i]!;
          if (values.length === 0) continue;
          const columns = s.columns.map((col, j) => values.map((r) => r[j]));
          const unnest = s.columns.map((col, j) => `$${j + 1}::${col.type === 'TEXT' ? 'text' : 'bigint'}[]`).join(', ');
          await c.query(`INSERT INTO ${s.table} SELECT * FROM UNNEST(${unnest})`, columns);
        }
        // Replicas take turns on the callers table, so the 50-per-product bound holds across them.
        if (batch.callers.length > 0) await c.query('LOCK TABLE usage_callers IN SHARE ROW EXCLUSIVE MODE');
        for (const sql of FOLD_STATEMENTS) await c.query(sql);
      });
    },
    usage: async (query: UsageQuery): Promise<Page<UsageRow>> => {
      const by = normaliseBy(query.by);
      const horizon = await all(SELECT_HORIZON);
      const h = horizon[0] === undefined ? undefined : Number(horizon[0].value);
      return readUsage(by, await all(usageStatement({ ...query, by }, h)), query.limit);
    },
    limits: async (range: TimeRange & { readonly limit: number }): Promise<Page<LimitRow>> =>
      readLimits(await all(limitsStatement(range)), range.limit),
    callers: async (range: TimeRange & { readonly limit: number }): Promise<Page<CallerRow>> =>
      readCallers(await all(callersStatement(range)), range.limit),
    prune: async (now: number, retention: Retention) => {
      await ensureOpen();
      await transaction(async (c) => {
        for (const s of pruneStatements(now, retention)) await c.query(s.text, s.params as unknown[]);
      });
    },
    close: async () => {
      if (!opening.markClosed()) return;
      await pool.end();
    },
  };
}
