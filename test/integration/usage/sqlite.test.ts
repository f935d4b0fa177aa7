// The SQLite usage store on real files: the shared store suite (test/helpers/store-suite.ts), then
// its faults, each with the real cause: a read-only file system, a full one (a small tmpfs, really
// full), a lock held by another connection, a corrupt file, and close(). Each time the promises
// reject with a named UsageStoreError (nothing throws synchronously, the process lives on) and the
// same store object works again once the cause is gone.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdtempSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../../../src/usage/sqlite.js';
import type { StoreLog, UsageBatch, UsageStore } from '../../../src/usage/store.js';
import { createPrng } from '../../helpers/prng.js';
import { RANGE, batchOf, callsIn, memoryLog, totalCalls, usageStoreSuite, type Backend } from '../../helpers/store-suite.js';
import { mountTmpfs, type Tmpfs } from '../../helpers/tmpfs.js';
import { trafficCounts } from '../../helpers/usage-data.js';

const suiteDirs: string[] = [];
const sqlite: Backend = {
  name: 'sqlite',
  setup: () => undefined,
  teardown: () => {
    for (const d of suiteDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  },
  fresh: () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-usage-'));
    suiteDirs.push(dir);
    return join(dir, 'usage.db');
  },
  store: (path) => createSqliteStore({ path }),
  raw: (path, sql) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare(sql).all() as Record<string, unknown>[];
    } finally {
      db.close();
    }
  },
  exec: (path, sql) => {
    const db = new Database(path);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  },
};

describe('the shared usage store suite', () => usageStoreSuite(sqlite));

describe('SQLite store faults', () => {
  const stores: UsageStore[] = [];
  const mounts: Tmpfs[] = [];
  const dirs: string[] = [];
  const store = (path: string, opts: { busyTimeoutMs?: number; log?: StoreLog } = {}): UsageStore => {
    const s = createSqliteStore({ path, ...opts });
    stores.push(s);
    return s;
  };
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'mpp-faults-'));
    dirs.push(d);
    return d;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const m of mounts.splice(0)) m.remove();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('rejects open() and write() with StoreReadOnly on a read-only file system, then works once it is writable', async () => {
    const fs = mountTmpfs(1024);
    mounts.push(fs);
    fs.readOnly(true);
    const s = store(join(fs.dir, 'usage.db'));
    await expect(s.open()).rejects.toMatchObject({ name: 'UsageStoreError', code: 'StoreReadOnly' });
    await expect(s.write(batchOf(1))).rejects.toMatchObject({ code: 'StoreReadOnly' });
    fs.readOnly(false);
    await s.write(batchOf(1));
    expect(await totalCalls(s)).toBe(callsIn(batchOf(1)));
  });

  it('rejects a write with StoreFull on a full disk, keeps none of that batch, and writes again once there is room', async () => {
    const fs = mountTmpfs(512);
    mounts.push(fs);
    const s = store(join(fs.dir, 'usage.db'));
    const first = batchOf(2);
    await s.write(first);
    // Fill what is left of the file system.
    const filler = join(fs.dir, 'filler');
    const fd = openSync(filler, 'w');
    const chunk = Buffer.alloc(16 * 1024, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    const big: UsageBatch = { counts: trafficCounts(3), callers: [], peaks: [] };
    await expect(s.write(big)).rejects.toMatchObject({ name: 'UsageStoreError', code: 'StoreFull' });
    // Reading still works, and shows only the first batch: a batch is written whole or not at all.
    expect(await totalCalls(s)).toBe(callsIn(first));
    rmSync(filler);
    await s.write(big);
    expect(await totalCalls(s)).toBe(callsIn(first) + callsIn(big));
  });

  it('rejects with StoreLocked while another connection holds an exclusive lock, without blocking the event loop, then writes', async () => {
    const path = join(tmp(), 'usage.db');
    const s = store(path, { busyTimeoutMs: 300 });
    await s.open();
    const other = new Database(path);
    other.exec('BEGIN EXCLUSIVE');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      await expect(s.write(batchOf(4))).rejects.toMatchObject({ name: 'UsageStoreError', code: 'StoreLocked' });
    } finally {
      clearInterval(timer);
    }
    // The busy wait ran in the worker: the main thread's timer kept firing meanwhile.
    expect(ticks).toBeGreaterThan(0);
    other.exec('ROLLBACK');
    other.close();
    await s.write(batchOf(4));
    expect(await totalCalls(s)).toBe(callsIn(batchOf(4)));
  });

  it('rejects open() with StoreLocked while the lock is held at start, then opens', async () => {
    const path = join(tmp(), 'usage.db');
    const first = store(path);
    await first.open();
    await first.close();
    const other = new Database(path);
    other.exec('BEGIN EXCLUSIVE');
    const s = store(path, { busyTimeoutMs: 200 });
    await expect(s.open()).rejects.toMatchObject({ code: 'StoreLocked' });
    other.exec('ROLLBACK');
    other.close();
    await s.open();
    await s.write(batchOf(5));
    expect(await totalCalls(s)).toBe(callsIn(batchOf(5)));
  });

  it('moves a file of garbage aside as usage.db.corrupt-<time>, logs it once and starts a new database', async () => {
    const dir = tmp();
    const path = join(dir, 'usage.db');
    const garbage = Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919) % 251));
    writeFileSync(path, garbage);
    const log = memoryLog();
    const s = store(path, { log });
    await s.open();
    const aside = readdirSync(dir).filter((f) => /^usage\.db\.corrupt-\d{4}-\d\d-\d\dT[\d-]+Z$/.test(f));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]!))).toEqual(garbage);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]!.fields).toMatchObject({ event: 'usage-store-corrupt', path, movedTo: join(dir, aside[0]!) });
    await s.write(batchOf(6));
    expect(await totalCalls(s)).toBe(callsIn(batchOf(6)));
    expect(statSync(path).size).toBeGreaterThan(0);
  });

  it('rejects with StoreCorrupt when the open file is damaged under it, then moves it aside and goes on', async () => {
    const dir = tmp();
    const path = join(dir, 'usage.db');
    const log = memoryLog();
    const s = store(path, { log });
    // Enough rows for several b-tree pages, checkpointed into the main file.
    await s.write({ counts: trafficCounts(7), callers: [], peaks: [] });
    const cp = new Database(path);
    cp.pragma('wal_checkpoint(TRUNCATE)');
    cp.close();
    // Keep the 100-byte header and page 1 (the schema); overwrite every later page with garbage.
    const size = statSync(path).size;
    const fd = openSync(path, 'r+');
    writeSync(fd, createPrng(99).bytes(size - 4096), 0, size - 4096, 4096);
    closeSync(fd);
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      outcomes.push(
        await s.usage({ ...RANGE, by: ['tenant'], limit: 100 }).then(
          () => 'ok',
          (e: { code?: string }) => String(e.code),
        ),
      );
      if (outcomes.at(-1) === 'ok') break;
    }
    expect(outcomes[0]).toBe('StoreCorrupt');
    expect(outcomes.at(-1)).toBe('ok');
    expect(log.lines.map((l) => l.fields.event)).toEqual(['usage-store-corrupt']);
    expect(readdirSync(dir).some((f) => f.startsWith('usage.db.corrupt-'))).toBe(true);
    await s.write(batchOf(8));
    expect(await totalCalls(s)).toBe(callsIn(batchOf(8)));
  });

  it('rejects every call with StoreClosed after close()', async () => {
    const s = store(join(tmp(), 'usage.db'));
    await s.write(batchOf(9));
    await s.close();
    await expect(s.write(batchOf(9))).rejects.toMatchObject({ code: 'StoreClosed' });
    await expect(s.usage({ ...RANGE, by: ['day'], limit: 1 })).rejects.toMatchObject({ code: 'StoreClosed' });
    expect(existsSync(join(dirs[0]!, 'usage.db'))).toBe(true);
  });
});
