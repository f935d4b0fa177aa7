// `node bench/usage.mjs`: the cost of usage evidence, measured on the recorder itself.
//
// 1. CPU per request added on the request path: token attribution (the digest-keyed cache) plus
//    the recorder's and the metrics' counting, against the metrics alone, for one kept-alive token
//    and for 10,000 tenant/app pairs. Main-thread CPU (process.cpuUsage) over 1,000,000 events.
// 2. The 10,000-pair row: 1,000,000 synthetic exchange events over 10,000 tenant/app pairs spread
//    over 24 hours of a synthetic clock, flushed to a real store (SQLite by default; set
//    BENCH_USAGE_STORE=postgres://… for PostgreSQL) every BENCH_USAGE_FLUSH_EVERY events (default
//    50,000) as the flush timer would; RSS is the whole process, the SQLite worker thread included;
//    then RSS, the store's size on disk, and how long the /usage routes take to answer by=tenant,app
//    and by=day (the admin route handler, without the HTTP hop).
//
// src/ is bundled with esbuild into bench/out/usage-lib.mjs first, as the proxy's own build does.
// Prints one JSON object; bench/results.md holds the figures of a run.
import { mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { URLSearchParams, fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
mkdirSync(OUT, { recursive: true });
const lib = join(OUT, 'usage-lib.mjs');
await build({
  absWorkingDir: ROOT,
  stdin: {
    contents: [
      "export { createRecorder } from './src/usage/recorder.ts';",
      "export { createAttributionCache } from './src/attribution-cache.ts';",
      "export { createMetrics } from './src/metrics.ts';",
      "export { buildConfig } from './src/config.ts';",
      "export { storeFactory } from './src/usage/open-store.ts';",
      "export { usageRoutes } from './src/usage/endpoints.ts';",
      "export { API_LABELS } from './src/catalogue.ts';",
    ].join('\n'),
    resolveDir: ROOT,
    loader: 'ts',
  },
  outfile: lib,
  bundle: true,
  splitting: false,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  logLevel: 'warning',
  packages: 'external',
});
const { createRecorder, createAttributionCache, createMetrics, buildConfig, storeFactory, usageRoutes, API_LABELS } = await import(lib);
const { Registry } = await import('prom-client');

const EVENTS = Number(process.env.BENCH_USAGE_EVENTS ?? 1_000_000);
const PAIRS = Number(process.env.BENCH_USAGE_PAIRS ?? 10_000);
const FLUSH_EVERY = Number(process.env.BENCH_USAGE_FLUSH_EVERY ?? 50_000);
const HOUR = 3_600_000;
const hex = (n, len) => n.toString(16).padStart(len, '0');
const guid = (kind, i) => `${hex(kind, 8)}-0000-4000-8000-${hex(i, 12)}`;
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** An Entra-ID-shaped token (~1.2 kB) for a tenant/app pair. */
const token = (i) => `Bearer ${b64({ typ: 'JWT', alg: 'RS256', kid: 'k'.repeat(27) })}.${b64({
  aud: 'https://api.securitycenter.microsoft.com', iss: `https://sts.windows.net/${guid(1, i % 1000)}/`, iat: 1764633600, exp: 1764637500,
  aio: 'E2RgYJg'.repeat(12), app_displayname: `Connector ${i % 7}`, appid: guid(2, i % 10), appidacr: '1', oid: guid(3, i), rh: '0.AAAA'.repeat(10),
  roles: ['Machine.Read.All', 'Alert.Read.All'], sub: guid(3, i), tid: guid(1, i), uti: 'x'.repeat(22), ver: '1.0',
})}.${'s'.repeat(342)}`;

const usageConfig = (store) => buildConfig({ version: 1, stateDir: mkdtempSync(join(tmpdir(), 'mpp-bench-usage-')), usage: { store, metricTenants: 200 } },
  { source: 'bench', baseDir: ROOT, env: {} }).usage;
/**
 * An exchange event as forward.ts builds it: one object literal per request. (Spreading a shared
 * template object into each event instead cost ~9 µs per event on Node 20 here, more than all the
 * work measured, so the bench builds events the way the proxy does.)
 */
const exchange = (over = {}) => ({
  product: 'cognito', api: over.api ?? 'machines', method: 'GET', status: over.status ?? 200, action: over.action ?? 'rewritten',
  reason: 'non-partner-user-agent', mode: 'intercept', host: 'api.security.microsoft.com', userAgent: 'python-requests/2.32.3',
  durationMs: 1, client: over.client ?? '10.0.0.1', tenant: over.tenant, app: over.app, appName: over.appName,
});
const baseEvent = exchange();

// ---- 1. CPU per request ------------------------------------------------------------------------

function cpuPerEvent(label, n, fn) {
  for (let i = 0; i < Math.min(n, 50_000); i++) fn(i); // warm up
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  return { label, events: n, cpuUsPerEvent: (c.user + c.system) / n, wallUsPerEvent: ((performance.now() - t0) * 1000) / n };
}

function cpuRows() {
  const rows = [];
  const tokens = Array.from({ length: PAIRS }, (_, i) => token(i));
  const one = token(0);
  // The metrics alone: what every request costs today.
  {
    const m = createMetrics({ registry: new Registry(), products: ['cognito'], apiLabels: API_LABELS, version: 'bench', collectDefault: false });
    rows.push(cpuPerEvent('metrics only (before)', EVENTS, () => m.observer.exchangeEnd(baseEvent)));
  }
  // A kept-alive client sends its token on one connection; 10,000 pairs here each come on a new one.
  const connection = {};
  for (const [label, pick, on] of [['one kept-alive token', () => one, () => connection], [`${PAIRS} tenant/app pairs`, (i) => tokens[i % PAIRS], () => ({})]]) {
    const recorder = createRecorder({ usage: usageConfig('none'), timers: false });
    const cache = createAttributionCache();
    const m = createMetrics({ registry: new Registry(), products: ['cognito'], apiLabels: API_LABELS, version: 'bench', collectDefault: false,
      usage: { metricTenants: 200, utilisation: (p) => recorder.utilisation(p) } });
    let k = 0;
    rows.push(cpuPerEvent(`attribution + recorder + metrics, ${label}`, EVENTS, (i) => {
      const a = cache.attribute(pick(i), on());
      const e = exchange({ tenant: a.tenant, app: a.app, appName: a.appName });
      m.observer.exchangeEnd(e);
      recorder.observer.exchangeEnd(e);
      if (++k === 250_000) { k = 0; void recorder.flush(); } // store none: drops the counts as a flush would
    }));
  }
  return rows;
}

// ---- 2. The 10,000-pair row ----------------------------------------------------------------------

function duBytes(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((a, f) => a + duBytes(join(path, f)), 0);
}

async function pairsRow() {
  const storeSpec = process.env.BENCH_USAGE_STORE ?? 'sqlite';
  const usage = usageConfig(storeSpec);
  const start = Date.UTC(2026, 10, 30, 0, 0, 0);
  let clock = start;
  const recorder = createRecorder({ usage, createStore: storeFactory(usage.store), timers: false, now: () => clock });
  await recorder.flush();
  if (recorder.store === undefined) throw new Error(`the store ${storeSpec} did not open`);
  const apis = ['machines', 'alerts', 'advancedhunting', 'incidents'];
  const rss0 = process.memoryUsage().rss;
  let peakRss = rss0;
  const t0 = performance.now();
  let flushMs = 0;
  for (let i = 0; i < EVENTS; i++) {
    const pair = i % PAIRS;
    clock = start + Math.floor((i / EVENTS) * 24 * HOUR);
    recorder.observer.exchangeEnd(exchange({ tenant: guid(1, pair), app: guid(2, pair % 10), appName: `Connector ${pair % 7}`,
      api: apis[Math.floor(i / PAIRS) % apis.length], action: i % 3 === 0 ? 'compliant' : 'rewritten', client: `10.0.${pair % 4}.1`, status: i % 997 === 0 ? 429 : 200 }));
    if ((i + 1) % FLUSH_EVERY === 0) {
      const f0 = performance.now();
      await recorder.flush();
      flushMs += performance.now() - f0;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      // BENCH_USAGE_TRACE=1 (with node --expose-gc): memory after each flush and a full collection.
      if (process.env.BENCH_USAGE_TRACE) { globalThis.gc?.(); const m = process.memoryUsage(); process.stderr.write(`${i + 1} rss ${(m.rss / 2 ** 20).toFixed(0)} heap ${(m.heapUsed / 2 ** 20).toFixed(0)}/${(m.heapTotal / 2 ** 20).toFixed(0)} ext ${(m.external / 2 ** 20).toFixed(0)} ab ${(m.arrayBuffers / 2 ** 20).toFixed(0)}\n`); }
    }
  }
  await recorder.flush();
  const recordSeconds = (performance.now() - t0) / 1000;
  const routes = usageRoutes(recorder, { now: () => start + 25 * HOUR });
  const time = async (query) => {
    const params = new URLSearchParams(query);
    await routes.get('/usage')(params); // once to warm the statement cache
    const q0 = performance.now();
    const r = await routes.get('/usage')(params);
    const ms = performance.now() - q0;
    const body = JSON.parse(r.body);
    return { query, ms: Math.round(ms), rows: body.rows.length, truncated: body.truncated, bytes: r.body.length };
  };
  const from = new Date(start).toISOString();
  const to = new Date(start + 24 * HOUR).toISOString();
  const queries = [await time(`by=tenant,app&from=${from}&to=${to}`), await time(`by=day&from=${from}&to=${to}`)];
  const storeBytes = usage.store.kind === 'sqlite' ? duBytes(dirname(usage.store.file)) : undefined;
  await recorder.close();
  return {
    store: usage.store.kind, events: EVENTS, pairs: PAIRS, flushEvery: FLUSH_EVERY, recordSeconds: Number(recordSeconds.toFixed(1)), flushMsTotal: Math.round(flushMs),
    rssMiB: Number((peakRss / 2 ** 20).toFixed(1)), rssGrowthMiB: Number(((peakRss - rss0) / 2 ** 20).toFixed(1)),
    storeMiB: storeBytes === undefined ? undefined : Number((storeBytes / 2 ** 20).toFixed(1)), queries,
  };
}

const only = new Set((process.env.BENCH_USAGE_ONLY ?? 'cpu,pairs').split(','));
const result = { node: process.version };
if (only.has('cpu')) result.cpu = cpuRows();
if (only.has('pairs')) result.pairs = await pairsRow();
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
