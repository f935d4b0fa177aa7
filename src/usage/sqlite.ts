// The embedded usage store: one SQLite file (usage.db in stateDir) through better-sqlite3, in WAL
// mode so readers never wait for the writer and a second proxy on the same file can write too.
//
// better-sqlite3 is synchronous, so every statement runs in a worker thread: a write of 5,000
// count rows held the event loop for 67-360 ms (median 218 ms) on this 2-core machine, and a
// /usage query over a year of rows takes longer; on the main thread either would stall the proxy's
// traffic, and so would a busy wait on a lock. The worker runs from the source text of
// sqliteWorker() (eval), so it needs no file of its own next to the bundle; the SQL comes from
// sql.ts with each request.
//
// Faults: every failure rejects with a UsageStoreError naming its cause; nothing throws
// synchronously and a dead worker is replaced at the next call. The store opens lazily: a
// write() after a failed open() tries again, so it resumes once the cause is gone. A file that is
// not a database (or fails its integrity check after a corruption error) is moved aside as
// usage.db.corrupt-<time> with its -wal, logged, and a new file is started.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { FOLD_STATEMENTS, MIGRATIONS, MIGRATIONS_TABLE, INSERT_VERSION, SCHEMA_VERSION, SELECT_HORIZON, SELECT_VERSION,
  SQLITE, STAGES, callersStatement, createStage, limitsStatement, normaliseBy, pruneStatements, readCallers,
  readLimits, readUsage, sqlFor, stageRows, usageStatement, type Statement } from './sql.js';
import { UsageStoreError, lazyOpen, type CallerRow, type LimitRow, type Page, type Retention, type StoreLog, type TimeRange,
  type UsageBatch, type UsageQuery, type UsageRow, type UsageStore, type UsageStoreErrorCode } from './store.js';

export interface SqliteStoreOptions {
  /** The database file, usage.db in stateDir. Its directory is created when missing. */
  readonly path: string;
  /** How long a statement waits for another connection's lock before StoreLocked (ms, default 5000). */
  readonly busyTimeoutMs?: number;
  /** Where the store reports a corrupt file moved aside. */
  readonly log?: StoreLog;
}

/** The messages the worker answers. */
type Request =
  | {
      op: 'open';
      path: string;
      busyTimeoutMs: number;
      checkIntegrity: boolean;
      migrationsTable: string;
      selectVersion: string;
      insertVersion: string;
      schemaVersion: number;
      migrations: { version: number; statements: readonly string[] }[];
      stages: { create: string; clear: string; insert: string }[];
    }
  | { op: 'write'; stages: unknown[][][]; fold: readonly string[] }
  | { op: 'all'; sql: string; params: readonly unknown[] }
  | { op: 'run'; statements: { sql: string; params: readonly unknown[] }[] }
  | { op: 'close' };

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { code: UsageStoreErrorCode; message: string } };

/**
 * The worker thread's program. It runs from its own source text, so it may use only `load`, the
 * worker's globals and its messages; nothing from this module's scope.
 */
function sqliteWorker(load: NodeJS.Require): void {
  // `load` is the worker's require(), passed in so that a bundler leaves these calls alone.
  const threads = load('node:worker_threads') as typeof import('node:worker_threads');
  const parentPort = threads.parentPort;
  const workerData = threads.workerData as { driver: string };
  const fs = load('node:fs') as typeof import('node:fs');
  const nodePath = load('node:path') as typeof import('node:path');
  const Database = load(workerData.driver) as typeof import('better-sqlite3');
  type Db = import('better-sqlite3').Database;
  type Stmt = import('better-sqlite3').Statement;
  let db: Db | undefined;
  let cache = new Map<string, Stmt>();
  let stages: { clear: Stmt; insert: Stmt }[] = [];

  const prepared = (sql: string): Stmt => {
    let s = cache.get(sql);
    if (s === undefined) {
      s = db!.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  };
  const shut = (): void => {
    try {
      db?.close();
    } catch {
      // Closing a connection that failed half-way may fail again; it is gone either way.
    }
    db = undefined;
    cache = new Map();
    stages = [];
  };
  const classify = (e: unknown): { code: string; message: string } => {
    const err = e as { code?: unknown; message?: unknown };
    const code = typeof err.code === 'string' ? err.code : '';
    const message = `${code ? `${code}: ` : ''}${String(err.message ?? e)}`;
    if (code === 'StoreSchemaTooNew') return { code, message: String(err.message) };
    if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) return { code: 'StoreCorrupt', message };
    if (/^SQLITE_(BUSY|LOCKED)/.test(code)) return { code: 'StoreLocked', message };
    if (/^SQLITE_FULL/.test(code) || code === 'ENOSPC') return { code: 'StoreFull', message };
    if (/^SQLITE_(READONLY|CANTOPEN|PERM|AUTH)/.test(code) || code === 'EROFS' || code === 'EACCES' || code === 'EPERM')
      return { code: 'StoreReadOnly', message };
    if (/^SQLITE_IOERR/.test(code)) return { code: /ENOSPC|full/i.test(message) ? 'StoreFull' : 'StoreFailed', message };
    return { code: 'StoreFailed', message };
  };

  const ops = {
    open(m: Extract<Request, { op: 'open' }>): number {
      shut();
      fs.mkdirSync(nodePath.dirname(m.path), { recursive: true });
      db = new Database(m.path, { timeout: m.busyTimeoutMs });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('temp_store = MEMORY');
      // 32 MiB of page cache (the default is 2 MiB): a batch lands on random pages of the hour and day
      // keys, and with the default most of them were read back from the file at every write.
      db.pragma('cache_size = -32768');
      if (m.checkIntegrity) {
        const result = db.pragma('quick_check', { simple: true });
        if (result !== 'ok') throw Object.assign(new Error(`integrity check: ${String(result)}`), { code: 'SQLITE_CORRUPT' });
      }
      const migrate = db.transaction(() => {
        db!.exec(m.migrationsTable);
        const current = Number((db!.prepare(m.selectVersion).get() as { version: number }).version);
        if (current > m.schemaVersion) {
          throw Object.assign(new Error(`the database has schema version ${current}; this proxy knows up to ${m.schemaVersion}`), {
            code: 'StoreSchemaTooNew',
          });
        }
        for (const mig of m.migrations) {
          if (mig.version <= current) continue;
          for (const sql of mig.statements) db!.exec(sql);
          db!.prepare(m.insertVersion).run(mig.version, Date.now());
        }
        return current;
      });
      // IMMEDIATE: two processes opening at once take turns instead of both reading version 0.
      migrate.immediate();
      stages = m.stages.map((s) => {
        db!.exec(s.create);
        return { clear: db!.prepare(s.clear), insert: db!.prepare(s.insert) };
      });
      return Number((db.prepare(m.selectVersion).get() as { version: number }).version);
    },
    write(m: Extract<Request, { op: 'write' }>): null {
      const tx = db!.transaction(() => {
        m.stages.forEach((rows, i) => {
          const s = stages[i]!;
          s.clear.run();
          for (const row of rows) s.insert.run(row);
        });
        for (const sql of m.fold) prepared(sql).run();
        for (const s of stages) s.clear.run();
      });
      tx.immediate();
      return null;
    },
    all(m: Extract<Request, { op: 'all' }>): unknown[] {
      return prepared(m.sql).all(...m.params);
    },
    run(m: Extract<Request, { op: 'run' }>): null {
      db!.transaction(() => {
        for (const s of m.statements) prepared(s.sql).run(...s.params);
      }).immediate();
      return null;
    },
    close(): null {
      shut();
      return null;
    },
  };

  // SQLite answers SQLITE_BUSY at once, without its busy handler, in a few cases (two connections
  // switching a new file to WAL together, a WAL recovery in progress). Such a call is tried again
  // until the busy timeout has passed; a transaction that failed was rolled back, so a retry is safe.
  let busyTimeoutMs = 5000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const withRetry = <T>(fn: () => T): T => {
    const deadline = Date.now() + busyTimeoutMs;
    for (;;) {
      try {
        return fn();
      } catch (e) {
        const raw = (e as { code?: unknown }).code;
        const code = typeof raw === 'string' ? raw : '';
        if (!code.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw e;
        Atomics.wait(pause, 0, 0, 25); // the worker's own thread: nothing else waits on it
      }
    }
  };

  parentPort!.on('message', (m: Request & { id: number }) => {
    try {
      if (db === undefined && m.op !== 'open' && m.op !== 'close') {
        throw Object.assign(new Error('the database is not open'), { code: 'StoreFailed' });
      }
      if (m.op === 'open') busyTimeoutMs = m.busyTimeoutMs;
      const result = withRetry(() => (ops[m.op] as (r: typeof m) => unknown)(m));
      parentPort!.postMessage({ id: m.id, ok: true, result });
    } catch (e) {
      const error = classify(e);
      // A connection that failed to open, or found corruption, is dropped: the next open starts clean.
      if (m.op === 'open' || error.code === 'StoreCorrupt') shut();
      parentPort!.postMessage({ id: m.id, ok: false, error });
    }
  });
}

/** The SQLite usage store; nothing happens until the first call. */
export function createSqliteStore(options: SqliteStoreOptions): UsageStore {
  const path = options.path;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, { op: string; resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let suspectCorrupt = false;

  const failAll = (error: UsageStoreError): void => {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };

  const start = (): Worker => {
    const w = new Worker(`(${sqliteWorker.toString()})(require)`, { eval: true, workerData: { driver } });
    w.unref();
    w.on('message', (reply: Reply) => {
      const p = pending.get(reply.id);
      if (p === undefined) return;
      pending.delete(reply.id);
      if (pending.size === 0) w.unref();
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new UsageStoreError(reply.error.code, `usage store ${path} (${p.op}): ${reply.error.message}`));
    });
    const gone = (cause: unknown): void => {
      if (worker !== w) return;
      worker = undefined;
      opening.forget();
      failAll(new UsageStoreError('StoreFailed', `usage store ${path}: the SQLite worker stopped`, { cause }));
    };
    w.on('error', gone);
    w.on('exit', gone);
    return w;
  };

  const call = <T>(req: Request): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      worker ??= start();
      const id = nextId++;
      pending.set(id, { op: req.op, resolve: resolve as (v: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ ...req, id });
    });

  const openRequest = (checkIntegrity: boolean): Request => ({
    op: 'open',
    path,
    busyTimeoutMs,
    checkIntegrity,
    migrationsTable: MIGRATIONS_TABLE,
    selectVersion: SELECT_VERSION,
    insertVersion: sqlFor(SQLITE, INSERT_VERSION),
    schemaVersion: SCHEMA_VERSION,
    migrations: MIGRATIONS.map((m) => ({ version: m.version, statements: m.statements(SQLITE) })),
    stages: STAGES.map((s) => ({
      create: createStage(s, ''),
      clear: `DELETE FROM ${s.table}`,
      insert: `INSERT INTO ${s.table} VALUES (${s.columns.map(() => '?').join(', ')})`,
    })),
  });

  const moveAside = (cause: unknown): void => {
    const to = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(path, to);
    if (existsSync(`${path}-wal`)) renameSync(`${path}-wal`, `${to}-wal`);
    rmSync(`${path}-shm`, { force: true });
    options.log?.warn(
      { event: 'usage-store-corrupt', path, movedTo: to, cause: cause instanceof Error ? cause.message : String(cause) },
      'usage store: the database file was corrupt; moved it aside and started a new one',
    );
  };

  const doOpen = async (): Promise<void> => {
    try {
      await call({ ...openRequest(suspectCorrupt) });
    } catch (e) {
      if (!(e instanceof UsageStoreError) || e.code !== 'StoreCorrupt' || !existsSync(path)) throw e;
      try {
        moveAside(e);
      } catch (moveError) {
        throw new UsageStoreError('StoreCorrupt', `usage store ${path}: corrupt, and it could not be moved aside`, { cause: moveError });
      }
      await call(openRequest(false));
    }
    suspectCorrupt = false;
  };

  const opening = lazyOpen(doOpen, path);
  const ensureOpen = opening.ensure;

  /** Runs op once the store is open; a corruption error makes the next call reopen with a check. */
  const withOpen = async <T>(op: () => Promise<T>): Promise<T> => {
    await ensureOpen();
    try {
      return await op();
    } catch (e) {
      if (e instanceof UsageStoreError && e.code === 'StoreCorrupt') {
        suspectCorrupt = true;
        opening.forget();
      }
      throw e;
    }
  };

  const all = (s: Statement): Promise<Record<string, unknown>[]> => call({ op: 'all', sql: sqlFor(SQLITE, s.text), params: s.params });

  return {
    kind: 'sqlite',
    open: () => ensureOpen(),
    write: (batch: UsageBatch) =>
      withOpen(async () => {
        if (batch.counts.length + batch.callers.length + batch.peaks.length === 0) return;
        const rows = stageRows(batch);
        await call({ op: 'write', stages: [rows.counts, rows.callers, rows.peaks], fold: FOLD_STATEMENTS });
      }),
    usage: (query: UsageQuery): Promise<Page<UsageRow>> =>
      withOpen(async () => {
        const by = normaliseBy(query.by);
        const horizon = await all(SELECT_HORIZON);
        const h = horizon[0] === undefined ? undefined : Number(horizon[0].value);
        return readUsage(by, await all(usageStatement({ ...query, by }, h)), query.limit);
      }),
    limits: (range: TimeRange & { readonly limit: number }): Promise<Page<LimitRow>> =>
      withOpen(async () => readLimits(await all(limitsStatement(range)), range.limit)),
    callers: (range: TimeRange & { readonly limit: number }): Promise<Page<CallerRow>> =>
      withOpen(async () => readCallers(await all(callersStatement(range)), range.limit)),
    prune: (now: number, retention: Retention) =>
      withOpen(async () => {
        const statements = pruneStatements(now, retention).map((s) => ({ sql: sqlFor(SQLITE, s.text), params: s.params }));
        await call({ op: 'run', statements });
      }),
    close: async () => {
      if (!opening.markClosed()) return;
      const w = worker;
      if (w === undefined) return;
      try {
        await call({ op: 'close' });
      } finally {
        worker = undefined;
        opening.forget();
        await w.terminate();
      }
    },
  };
}
