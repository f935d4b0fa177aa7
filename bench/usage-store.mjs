// `npm run bench:store`: the usage store under a year's worth of a busy partner's week, without the
// proxy. One million requests across 10,000 tenant/app pairs (2 products, 2,000 tenants × 5 apps,
// 5 APIs, 4 actions, 20 client addresses), spread over 7 UTC days, merged per hour and key as the
// recorder merges them, and written in 200 batches of 5,000 requests (what one 5 s flush holds at
// 1,000 requests/s). Then the two questions of the issue: /usage?by=tenant,app and /usage?by=day
// over the last 30 days. Runs on SQLite (a file in a temporary directory) and on PostgreSQL (a
// server started as the tests start it). Reports write time per batch, the main thread's event
// loop delay while writing (the SQLite store writes in a worker thread), store size and query times.
//
// The store code is bundled from src/ with esbuild first, the way dist/ is built, so the bench runs
// what ships. BENCH_STORE=sqlite or =postgres runs one backend.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out', 'usage-store');
const HOUR = 3_600_000;
const DAY = 86_400_000;
const REQUESTS = 1_000_000;
const BATCHES = 200;
const PER_BATCH = REQUESTS / BATCHES;
const DAYS = 7;
const END = Date.UTC(2026, 11, 1); // the week ends at midnight UTC, so the last 30 days are whole days
const START = END - DAYS * DAY;
const ONLY = process.env.BENCH_STORE;

mkdirSync(OUT, { recursive: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: ['src/usage/sqlite.ts', 'src/usage/postgres.ts', 'test/helpers/postgres.ts'],
  outdir: OUT,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  packages: 'external',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
const load = (p) => import(pathToFileURL(join(OUT, p)).href);
const { createSqliteStore } = await load('src/usage/sqlite.js');
const { createPostgresStore } = await load('src/usage/postgres.js');
const { startPostgres } = await load('test/helpers/postgres.js');

/** Deterministic pseudo-random numbers (LCG), so every run writes the same rows. */
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const APIS = ['machines', 'alerts', 'security.alerts_v2', 'advancedqueries', 'other'];
const ACTIONS = ['compliant', 'rewritten', 'rejected', 'audited'];

/** The 200 batches, each the recorder's merge of 5,000 requests (time runs forward across batches). */
function batches() {
  const rnd = random(42);
  const out = [];
  for (let b = 0; b < BATCHES; b++) {
    const merged = new Map();
    for (let i = 0; i < PER_BATCH; i++) {
      const n = b * PER_BATCH + i;
      const at = START + Math.floor((n / REQUESTS) * DAYS * DAY);
      const hour = at - (at % HOUR);
      const pair = Math.floor(rnd() * 10_000);
      const tenant = `tenant-${String(pair % 2000).padStart(4, '0')}-0000-0000-0000-000000000000`;
      const app = `app-${Math.floor(pair / 2000)}-0000-0000-0000-000000000000`;
      const product = pair % 2 === 0 ? 'alpha' : 'beta';
      const r = rnd();
      const api = APIS[r < 0.5 ? 0 : r < 0.75 ? 1 : r < 0.9 ? 2 : r < 0.97 ? 3 : 4];
      const a = rnd();
      const action = ACTIONS[a < 0.6 ? 0 : a < 0.95 ? 1 : a < 0.98 ? 2 : 3];
      const client = `10.0.${pair % 20}.1`;
      const key = `${hour}|${product}|${tenant}|${app}|${api}|${action}|${client}`;
      let row = merged.get(key);
      if (row === undefined) {
        row = { hour, product, tenant, app, api, action, client, calls: 0, throttled: 0, errors: 0 };
        merged.set(key, row);
      }
      row.calls++;
      if (rnd() < 0.01) row.throttled++;
      if (rnd() < 0.005) row.errors++;
    }
    out.push({ counts: [...merged.values()], callers: [], peaks: [] });
  }
  return out;
}

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const f1 = (x) => x.toFixed(1);
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);

async function measure(name, store, sizeOf) {
  const all = batches();
  const rows = all.reduce((n, b) => n + b.counts.length, 0);
  await store.open();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const times = [];
  const t0 = performance.now();
  for (const batch of all) {
    const t = performance.now();
    await store.write(batch);
    times.push(performance.now() - t);
  }
  const total = performance.now() - t0;
  loop.disable();
  const query = async (by) => {
    const t = [];
    let page;
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      page = await store.usage({ from: END - 30 * DAY, to: END, by, limit: 100_000 });
      t.push(performance.now() - s);
    }
    return { ms: t, rows: page.rows.length, calls: page.rows.reduce((n, r) => n + r.calls, 0) };
  };
  const byPair = await query(['tenant', 'app']);
  const byDay = await query(['day']);
  const size = await sizeOf();
  const result = {
    name,
    rows,
    totalS: total / 1000,
    batch: { min: Math.min(...times), median: quantile(times, 0.5), p95: quantile(times, 0.95), max: Math.max(...times) },
    loopMaxMs: loop.max / 1e6,
    loopP99Ms: loop.percentile(99) / 1e6,
    size,
    byPair,
    byDay,
  };
  if (byPair.calls !== REQUESTS || byDay.calls !== REQUESTS) throw new Error(`${name}: counted ${byPair.calls} / ${byDay.calls} calls, wrote ${REQUESTS}`);
  return result;
}

// The same event-loop monitor on an idle main thread: the floor that this machine's scheduler sets.
const idle = monitorEventLoopDelay({ resolution: 1 });
idle.enable();
await new Promise((r) => setTimeout(r, 10_000));
idle.disable();

const results = [];
if (ONLY === undefined || ONLY === 'sqlite') {
  const dir = mkdtempSync(join(tmpdir(), 'mpp-bench-store-'));
  const path = join(dir, 'usage.db');
  const store = createSqliteStore({ path });
  try {
    results.push(
      await measure('SQLite', store, async () => {
        await store.close();
        // Closing checkpoints the WAL into the file; what is left is the store's size at rest.
        return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
      }),
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
if (ONLY === undefined || ONLY === 'postgres') {
  const server = await startPostgres();
  try {
    const url = await server.createDatabase();
    const store = createPostgresStore({ url });
    try {
      results.push(
        await measure('PostgreSQL', store, async () => {
          await server.query('t1', 'VACUUM');
          return Number((await server.query('t1', 'SELECT pg_database_size(current_database()) AS b'))[0].b);
        }),
      );
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
}

const lines = [
  `1,000,000 requests, 10,000 tenant/app pairs, ${DAYS} days; ${BATCHES} batches of ${PER_BATCH} requests (recorder-merged).`,
  `Event loop delay of an idle main thread over 10 s, for reference: p99 ${f1(idle.percentile(99) / 1e6)} ms, max ${f1(idle.max / 1e6)} ms.`,
  '',
  '| store | count rows written | write time per batch (min / median / p95 / max) | whole write | main-thread event loop delay while writing (p99 / max) | size on disk | usage(by tenant,app), 30 days | usage(by day), 30 days |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map(
    (r) =>
      `| ${r.name} | ${r.rows.toLocaleString('en')} | ${f1(r.batch.min)} / ${f1(r.batch.median)} / ${f1(r.batch.p95)} / ${f1(r.batch.max)} ms | ${f1(r.totalS)} s | ${f1(r.loopP99Ms)} / ${f1(r.loopMaxMs)} ms | ${mib(r.size)} MiB | ${r.byPair.ms.map(f1).join(' / ')} ms (${r.byPair.rows.toLocaleString('en')} rows) | ${r.byDay.ms.map(f1).join(' / ')} ms (${r.byDay.rows} rows) |`,
  ),
];
console.log(lines.join('\n'));
