// `npm run bench`: the proxy against a direct connection, on this machine, in one run.
//
// Three kinds of process, each its own: the TLS/plain echo origin (bench/origin.mjs), the proxy
// (`node dist/cli.js start --config <generated>`, log level warn, the real CLI with metrics and
// logger observers), and the load generator (bench/load.mjs). With taskset, the proxy (or Squid)
// has core 1 to itself and the origin and the load generator share core 0, in the direct runs too,
// so a ratio compares the same client and origin with and without the proxy in between.
// Set BENCH_PIN=0 to run unpinned, BENCH_SECONDS to change the measured window (default 10).
//
// Every loop is bounded by count and time, the whole run by a watchdog; traffic stays on 127.0.0.1.
// Writes bench/results.md (between its generated-section markers) and bench/out/results.json.
import { execFileSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setInterval, clearInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  accepts, cpuSeconds, fdCount, freePort, httpGet, machineBusySeconds, mainThreadCpuSeconds, median, readJsonLine, resetPeakRss, spawnPinned, statusKiB, stopChild, treeCpuSeconds, waitFor,
  jsonLines,
} from './lib.mjs';
import { makePki } from './pki.mjs';
import { summariseProfile } from './profile.mjs';
import { prepareSquid, squidVersion } from './squid.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
const RESULTS = join(ROOT, 'bench', 'results.md');
const NODE = process.execPath;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_MS = 2000;
const CONNECTIONS = 16;
const PACED_RATE = 2000;
/** Each scenario: ROUNDS of (direct slice, proxied slice), SECONDS measured per side in all. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SLICE_MS = Math.round((SECONDS * 1000) / ROUNDS);
const SLICE_WARMUP_MS = 1500;
/** Unmeasured load through a freshly started proxy (and Squid) before a scenario's first round. */
const PROXY_WARMUP_MS = 3000;
const HOSTS = Number(process.env.BENCH_HOSTS ?? 10_000);
const SOAK_REQUESTS = Number(process.env.BENCH_SOAK ?? 100_000);
const SOAK_WARMUP_REQUESTS = 30_000;
const STARTUP_TRIALS = 5;
/**
 * BENCH_ONLY=A,B,startup,hosts,soak,profile runs just those parts (scenario ids, or the named
 * measures), prints what they measured and leaves bench/results.md alone: for trying a change.
 */
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((x) => x.trim())) : undefined;
const wanted = (part) => ONLY === undefined || ONLY.has(part);
/**
 * The Node flags the proxy runs with: those of dist/cli.js's shebang (`#!/usr/bin/env -S node …`,
 * what npm start, the bin and the container use), then BENCH_PROXY_FLAGS='--flag …' for trying one.
 */
const proxyFlags = (root = ROOT) => [
  ...(/^#!\S*env -S node(.*)$/.exec(readFileSync(join(root, 'dist', 'cli.js'), 'utf8').split('\n', 1)[0] ?? '')?.[1] ?? '').split(' '),
  ...(process.env.BENCH_PROXY_FLAGS ?? '').split(' '),
].filter(Boolean);
/**
 * BENCH_BASELINE=<dir>: another checkout of this project with dist/ built (for example
 * `git worktree add --detach /tmp/base <commit> && cd /tmp/base && npm ci && npm run build`). Its
 * proxy takes the same load in the same rounds as this one's, A to E, so a change is compared with
 * its baseline on the same machine at the same moment; the order of the two turns every round.
 */
const BASELINE = process.env.BENCH_BASELINE ? process.env.BENCH_BASELINE.replace(/\/+$/, '') : undefined;
/** The scenarios `profile` runs under --cpu-prof: BENCH_PROFILE=D,E, else A and B (the report's two). */
const PROFILED = (process.env.BENCH_PROFILE ?? 'A,B').split(',').map((x) => x.trim()).filter(Boolean);
const WATCHDOG_MS = (BASELINE ? 25 : 9.5) * 60_000;
const PARTNER_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const CALLER_UA = 'python-requests/2.32.3';
const API = 'api.security.microsoft.com';
const PROXY_CPU = 1;
const CLIENT_CPU = 0;
const MiB = 1024;

const started = performance.now();
const log = (s) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)}s] ${s}\n`);

// ---- children: tracked so that none outlives the runner ----------------------------------------

const children = new Set();
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
setTimeout(() => { log('watchdog: the run exceeded its time budget'); process.exit(3); }, WATCHDOG_MS).unref();

// ---- the proxy -----------------------------------------------------------------------------------

/** Writes a proxy config (JSON is YAML) and returns its path and ports. */
async function writeProxyConfig(name, { originPorts, stateDir, extra = {}, resolveExtra = {} }) {
  const ports = { proxy: await freePort(), admin: await freePort(), reverse: await freePort() };
  const doc = {
    version: 1,
    listen: `127.0.0.1:${ports.proxy}`,
    admin: `127.0.0.1:${ports.admin}`,
    stateDir,
    products: [{ id: 'bench', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' }],
    upstream: {
      ca: pki.rootCert,
      resolve: {
        [`${API}:443`]: `127.0.0.1:${originPorts.tls}`,
        [`${API}:80`]: `127.0.0.1:${originPorts.plain}`,
        'www.example.org:443': `127.0.0.1:${originPorts.tls}`,
        ...resolveExtra,
      },
    },
    reverse: [{ listen: `127.0.0.1:${ports.reverse}`, upstream: `https://${API}`, product: 'bench' }],
    timeouts: { drain: 1000 },
    log: { level: 'warn' },
    ...extra,
  };
  const file = join(OUT, `${name}.yaml`);
  writeFileSync(file, `${JSON.stringify(doc, null, 1)}\n`);
  return { file, ports, stateDir };
}

/** Starts `node dist/cli.js start` (of this checkout, or root's) pinned to the proxy core and waits for /readyz. */
async function startProxy(cfg, { root = ROOT, nodeFlags = proxyFlags(root), readyTimeoutMs = 20_000 } = {}) {
  const t0 = performance.now();
  const child = track(spawnPinned(PROXY_CPU, NODE, [...nodeFlags, join(root, 'dist', 'cli.js'), 'start', '--config', cfg.file], { cwd: root }));
  child.stdout.resume(); // warn-level JSON lines, if any
  let acceptedMs;
  const ready = await waitFor(async () => {
    if (child.exitCode !== null) return true;
    if (acceptedMs === undefined && (await accepts(cfg.ports.proxy))) acceptedMs = performance.now() - t0;
    return acceptedMs !== undefined && (await httpGet(cfg.ports.admin, '/readyz', 500)).status === 200;
  }, readyTimeoutMs, 2);
  if (!ready || child.exitCode !== null) {
    await stopChild(child, 1000);
    throw new Error(`the proxy did not become ready: ${child.stderrText.slice(-2000)}`);
  }
  return { child, pid: child.pid, cfg, acceptedMs, readyMs: performance.now() - t0 };
}

// ---- waiting for a quiet machine ---------------------------------------------------------------------

let quietBudgetMs = 60_000;

/**
 * This machine is shared with other work (builds, test runs): before a measurement, wait up to
 * maxMs (and 60 s over the whole run) for the CPU used outside the benchmark to drop below 0.25 core.
 */
async function awaitQuiet(maxMs = 15_000) {
  const t0 = performance.now();
  while (quietBudgetMs > 0 && performance.now() - t0 < maxMs) {
    const ours = () => cpuSeconds(process.pid) + cpuSeconds(origin.pid);
    const b0 = machineBusySeconds();
    const o0 = ours();
    await sleep(1000);
    const other = machineBusySeconds() - b0 - (ours() - o0);
    if (other < 0.25) return;
    quietBudgetMs -= 1000;
  }
  if (performance.now() - t0 >= 1500) log(`waited ${((performance.now() - t0) / 1000).toFixed(0)} s for other load to settle`);
}

// ---- one load run ------------------------------------------------------------------------------

/**
 * Runs the load generator and reads CPU time of the watched processes at the window's edges.
 * watch: {name: {pid, tree?}}; onProgress gets the generator's progress lines.
 */
async function runLoad(loadOpts, watch = {}, { onProgress, timeoutMs = 180_000 } = {}) {
  const child = track(spawnPinned(CLIENT_CPU, NODE, [join(ROOT, 'bench', 'load.mjs'), JSON.stringify(loadOpts)]));
  const cpuOf = (w) => (w.tree ? treeCpuSeconds(w.pid) : cpuSeconds(w.pid));
  /** The clocks read at each edge of the measured window. */
  const reading = () => ({
    us: process.hrtime.bigint() / 1000n,
    busy: machineBusySeconds(),
    ours: cpuSeconds(child.pid) + cpuSeconds(process.pid),
    cpu: Object.fromEntries(Object.entries(watch).map(([k, w]) => [k, cpuOf(w)])),
    main: Object.fromEntries(Object.entries(watch).map(([k, w]) => [k, mainThreadCpuSeconds(w.pid)])),
  });
  let r0;
  let r1;
  let windowRequests = 0;
  const result = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`load generator timed out: ${child.stderrText.slice(-1000)}`)); }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', jsonLines((ev) => {
      if (ev.event === 'measure-start') {
        r0 = reading();
        for (const w of Object.values(watch)) if (w.resetPeak) void resetPeakRss(w.pid);
      } else if (ev.event === 'measure-end') {
        r1 = reading();
        windowRequests = ev.requests;
      } else if (ev.event === 'progress') {
        onProgress?.(ev);
      } else if (ev.event === 'result') {
        clearTimeout(timer);
        resolve(ev);
      }
    }));
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`load generator exited ${code}: ${child.stderrText.slice(-1000)}`)); });
  });
  r0 ??= reading();
  r1 ??= r0;
  const perRequest = (field) => Object.fromEntries(Object.keys(watch).map((k) => [k, windowRequests > 0 ? ((r1[field][k] - r0[field][k]) * 1e6) / windowRequests : NaN]));
  const peak = {};
  for (const [k, w] of Object.entries(watch)) peak[k] = statusKiB(w.pid, 'VmHWM');
  // CPU the rest of the machine used in the window (other sessions' builds and tests), in cores.
  let watched = 0;
  for (const k of Object.keys(watch)) watched += r1.cpu[k] - r0.cpu[k];
  const windowS = Number(r1.us - r0.us) / 1e6;
  const otherCores = windowS > 0 ? Math.max(0, r1.busy - r0.busy - (r1.ours - r0.ours) - watched) / windowS : NaN;
  return { ...result, cpuUsPerRequest: perRequest('cpu'), mainUsPerRequest: perRequest('main'), peakKiB: peak, windowUs: [Number(r0.us), Number(r1.us)], otherCores };
}

// ---- scenarios -----------------------------------------------------------------------------------

/**
 * A bearer token shaped like Microsoft's (header.payload.signature, ~1.2 kB, tid/appid/app_displayname),
 * sent with every request when BENCH_TOKEN=1: the proxy decodes it for usage attribution. Unsigned
 * test data; the origin ignores it.
 */
function benchToken() {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const payload = {
    aud: 'https://api.securitycenter.microsoft.com', iss: 'https://sts.windows.net/8f2c1a7e-3b4d-4c5e-9f60-718293a4b5c6/',
    iat: 1764633600, nbf: 1764633600, exp: 1764637500, aio: 'E2RgYJg'.repeat(12), app_displayname: 'Contoso Cognito Connector',
    appid: '0c5a9b1e-2d3f-4a6b-8c7d-9e0f1a2b3c4d', appidacr: '1', idp: 'https://sts.windows.net/8f2c1a7e-3b4d-4c5e-9f60-718293a4b5c6/',
    oid: '5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e', rh: '0.AAAA'.repeat(10), roles: ['Machine.Read.All', 'Alert.Read.All', 'AdvancedQuery.Read.All'],
    sub: '5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e', tid: '8f2c1a7e-3b4d-4c5e-9f60-718293a4b5c6', uti: 'x'.repeat(22), ver: '1.0',
  };
  return `Bearer ${b64({ typ: 'JWT', alg: 'RS256', x5t: 'k'.repeat(27), kid: 'k'.repeat(27) })}.${b64(payload)}.${'s'.repeat(342)}`;
}
const base = { connections: CONNECTIONS, keepAlive: true, warmupMs: WARMUP_MS, durationMs: SECONDS * 1000, path: '/api/machines', ua: CALLER_UA, maxMs: (SECONDS + 30) * 1000,
  ...(process.env.BENCH_TOKEN === '1' ? { authorization: benchToken() } : {}) };
const directTls = (host = API) => ({ ...base, via: 'direct', tls: true, connectTo: { host: '127.0.0.1', port: originPorts.tls }, host, servername: host, caFile: pki.rootCert });

/** The five scenarios: the proxied load and the same load sent directly to the origin. */
function scenarios(cfg) {
  const proxyCa = join(cfg.stateDir, 'ca.pem');
  const viaProxy = { host: '127.0.0.1', port: cfg.ports.proxy };
  return [
    { id: 'A', title: 'CONNECT intercepted, keep-alive', expectUa: PARTNER_UA,
      direct: directTls(), proxied: { ...base, via: 'connect', connectTo: viaProxy, connectAuthority: `${API}:443`, host: API, caFile: proxyCa } },
    { id: 'A-paced', title: `A at ${PACED_RATE} req/s (added latency)`, expectUa: PARTNER_UA,
      direct: { ...directTls(), rate: PACED_RATE }, proxied: { ...base, rate: PACED_RATE, via: 'connect', connectTo: viaProxy, connectAuthority: `${API}:443`, host: API, caFile: proxyCa } },
    { id: 'B', title: 'CONNECT intercepted, new connection per request', expectUa: PARTNER_UA,
      direct: { ...directTls(), keepAlive: false }, proxied: { ...base, keepAlive: false, via: 'connect', connectTo: viaProxy, connectAuthority: `${API}:443`, host: API, caFile: proxyCa } },
    { id: 'B-resume', title: 'B, the client resuming its TLS session', expectUa: PARTNER_UA,
      direct: { ...directTls(), keepAlive: false, resume: true }, proxied: { ...base, keepAlive: false, resume: true, via: 'connect', connectTo: viaProxy, connectAuthority: `${API}:443`, host: API, caFile: proxyCa } },
    { id: 'C', title: 'blind tunnel (www.example.org), keep-alive', expectUa: CALLER_UA,
      direct: directTls('www.example.org'), proxied: { ...base, via: 'connect', connectTo: viaProxy, connectAuthority: 'www.example.org:443', host: 'www.example.org', caFile: pki.rootCert } },
    { id: 'C-paced', title: `C at ${PACED_RATE} req/s (added latency of a blind relay, reference)`, expectUa: CALLER_UA,
      direct: { ...directTls('www.example.org'), rate: PACED_RATE }, proxied: { ...base, rate: PACED_RATE, via: 'connect', connectTo: viaProxy, connectAuthority: 'www.example.org:443', host: 'www.example.org', caFile: pki.rootCert } },
    { id: 'D', title: 'plain http:// absolute-form forward, rewrite', expectUa: PARTNER_UA,
      direct: { ...base, via: 'direct', tls: false, connectTo: { host: '127.0.0.1', port: originPorts.plain }, host: API },
      proxied: { ...base, via: 'absolute', tls: false, connectTo: viaProxy, host: API } },
    { id: 'E', title: 'reverse route (plain in, https out)', expectUa: PARTNER_UA,
      direct: directTls(), proxied: { ...base, via: 'direct', tls: false, connectTo: { host: '127.0.0.1', port: cfg.ports.reverse }, host: API, hostHeader: `127.0.0.1:${cfg.ports.reverse}` } },
  ];
}

/** Merges the slices of one side of a scenario: rates and CPU summed, latency percentiles as medians. */
function combine(slices) {
  const requests = slices.reduce((a, r) => a + r.requests, 0);
  const seconds = slices.reduce((a, r) => a + r.seconds, 0);
  const perRequest = (field) => {
    const out = {};
    for (const k of Object.keys(slices[0][field])) out[k] = slices.reduce((a, r) => a + r[field][k] * r.requests, 0) / requests;
    return out;
  };
  const peakKiB = {};
  for (const k of Object.keys(slices[0].peakKiB)) peakKiB[k] = Math.max(...slices.map((r) => r.peakKiB[k]));
  const errorKinds = {};
  for (const r of slices) for (const [k, v] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + v;
  return {
    requests, seconds, rps: requests / seconds,
    p50: median(slices.map((r) => r.p50)), p99: median(slices.map((r) => r.p99)), max: Math.max(...slices.map((r) => r.max)),
    errors: slices.reduce((a, r) => a + r.errors, 0), errorKinds, sampleBody: slices[0].sampleBody,
    cpuUsPerRequest: perRequest('cpuUsPerRequest'), mainUsPerRequest: perRequest('mainUsPerRequest'), peakKiB,
    bestCpuUsPerRequest: Object.fromEntries(Object.keys(slices[0].cpuUsPerRequest).map((k) => [k, Math.min(...slices.map((r) => r.cpuUsPerRequest[k]))])),
    otherCores: Math.max(...slices.map((r) => r.otherCores)),
    slices: slices.map((r) => ({ rps: r.rps, p50: r.p50, p99: r.p99, cpuUsPerRequest: r.cpuUsPerRequest, otherCores: r.otherCores })),
  };
}

/**
 * Runs a scenario as ROUNDS alternating slices, direct then proxied, against one proxy process:
 * drift of this shared machine then hits both sides alike. The ratio is the median of the rounds'.
 * Peers (Squid, the baseline build) take the same load in the same rounds, against the same direct
 * slices; the proxied sides' order turns by one each round so none always runs first.
 */
async function alternate(id, direct, proxied, proxyWatch, peers = {}) {
  const d = [];
  const sides = [{ key: 'proxy', opts: proxied, watch: proxyWatch, slices: [] },
    ...Object.entries(peers).map(([key, peer]) => ({ key, opts: peer.opts, watch: peer.watch, slices: [] }))];
  const slice = { warmupMs: SLICE_WARMUP_MS, durationMs: SLICE_MS };
  // The origin has been serving since the start of the run; a proxy just started has not compiled
  // its connection paths yet (B's first round used to cost ~1.5x the others). Warm it up unmeasured.
  for (const side of sides) await runLoad({ ...side.opts, warmupMs: 0, durationMs: PROXY_WARMUP_MS }, {});
  for (let r = 0; r < ROUNDS; r++) {
    await awaitQuiet();
    d.push(await runLoad({ ...direct, ...slice }, { origin: { pid: origin.pid } }));
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(i + r) % sides.length];
      side.slices[r] = await runLoad({ ...side.opts, ...slice }, { proxy: { ...side.watch, resetPeak: r === 0 }, origin: { pid: origin.pid } });
    }
    log(`${id} round ${r + 1}: direct ${d[r].rps.toFixed(0)} req/s, ` +
      sides.map((x) => `${x.key === 'proxy' ? 'proxied' : x.key} ${x.slices[r].rps.toFixed(0)} req/s, ${x.slices[r].cpuUsPerRequest.proxy.toFixed(1)} µs CPU/req`).join('; '));
  }
  const ratioOf = (xs) => {
    const ratios = xs.map((x, i) => x.rps / d[i].rps);
    return { ratio: median(ratios), ratioRange: [Math.min(...ratios), Math.max(...ratios)] };
  };
  const directResult = combine(d);
  const [own, ...others] = sides;
  const out = { directResult, proxiedResult: combine(own.slices), ...ratioOf(own.slices) };
  for (const side of others) {
    // Against a peer: this proxy's req/s over the peer's, round by round (same direct slice).
    const vs = side.slices.map((x, i) => own.slices[i].rps / x.rps);
    out[side.key] = { directResult, proxiedResult: combine(side.slices), ...ratioOf(side.slices), versus: median(vs), versusRange: [Math.min(...vs), Math.max(...vs)] };
  }
  return out;
}

/** Runs one scenario through a fresh proxy (its own peak RSS), and through the baseline's when there is one. */
async function runScenario(s, cfg, squid, baseline) {
  await awaitQuiet();
  const proxy = await startProxy(cfg);
  const base = baseline ? await startProxy(baseline.cfg, { root: BASELINE }) : undefined;
  try {
    const peers = {};
    const sq = squidLoad(s.id, squid);
    if (sq) peers.squid = sq;
    if (base) peers.baseline = { opts: baseline.scenarios.find((x) => x.id === s.id).proxied, watch: { pid: base.pid } };
    const r = await alternate(s.id, s.direct, s.proxied, { pid: proxy.pid }, peers);
    for (const key of Object.keys(peers)) r[key].check = checkBody(r[key].proxiedResult, s.expectUa);
    return { ...s, ...r, check: checkBody(r.proxiedResult, s.expectUa) };
  } finally {
    await stopChild(proxy.child);
    if (base) await stopChild(base.child);
  }
}

/** What reached the origin: the User-Agent it saw, and no failed requests. */
function checkBody(r, expectUa) {
  let ua;
  try { ua = JSON.parse(r.sampleBody ?? '{}').userAgent; } catch { ua = undefined; }
  const ok = ua === expectUa && r.errors === 0;
  return { ok, ua, errors: r.errors, errorKinds: r.errorKinds };
}

// ---- Squid --------------------------------------------------------------------------------------

/** Starts Squid (ssl_bump) pinned to the proxy core, or returns why it cannot. */
async function startSquid() {
  const version = squidVersion();
  if (version === undefined) {
    log('Squid with OpenSSL is not installed (apt-get install squid-openssl): skipping the reference peer');
    return { version: undefined };
  }
  const port = await freePort();
  const sq = prepareSquid(join(OUT, 'squid'), { port, caCert: pki.squidCaCert, caKey: pki.squidCaKey, originRoot: pki.rootCert, userAgent: PARTNER_UA });
  const child = track(spawnPinned(PROXY_CPU, sq.cmd, sq.args));
  child.stdout.resume();
  if (!(await waitFor(() => accepts(port), 15_000, 20))) {
    await stopChild(child, 2000);
    log(`Squid did not start, skipping it: ${child.stderrText.slice(-300)}`);
    return { version: `${version} (did not start)` };
  }
  return { version, child, port };
}

/** The Squid side of scenario A or C: the same request through Squid (it connects to the CONNECT's port itself, so clients name the origin's). */
function squidLoad(id, squid) {
  if (squid.child === undefined || (id !== 'A' && id !== 'C')) return undefined;
  const host = id === 'A' ? API : 'www.example.org';
  const authority = `${host}:${originPorts.tls}`;
  return {
    opts: { ...base, via: 'connect', connectTo: { host: '127.0.0.1', port: squid.port }, connectAuthority: authority, hostHeader: authority, host, caFile: id === 'A' ? pki.squidCaCert : pki.rootCert },
    watch: { pid: squid.child.pid, tree: true },
  };
}

// ---- the baseline build --------------------------------------------------------------------------

/** Checks BENCH_BASELINE's build and writes its config: the same as this proxy's, on other ports. */
async function prepareBaseline(stateDir) {
  if (!existsSync(join(BASELINE, 'dist', 'cli.js'))) throw new Error(`BENCH_BASELINE=${BASELINE} has no dist/cli.js: npm ci && npm run build there first`);
  let commit = '?';
  try { commit = execFileSync('git', ['-C', BASELINE, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { /* not a git checkout */ }
  const cfg = await writeProxyConfig('baseline', { originPorts, stateDir });
  log(`baseline: ${BASELINE} at ${commit}`);
  return { cfg, commit, scenarios: scenarios(cfg) };
}

// ---- start-to-ready and idle memory -------------------------------------------------------------------

async function runStartup(cfg) {
  const trials = [];
  for (let i = 0; i < STARTUP_TRIALS; i++) {
    await awaitQuiet(5000);
    const p = await startProxy(cfg);
    await sleep(2500);
    trials.push({ acceptedMs: p.acceptedMs, readyMs: p.readyMs, idleRssKiB: statusKiB(p.pid, 'VmRSS'), fds: fdCount(p.pid) });
    await stopChild(p.child);
  }
  log(`start→ready median ${median(trials.map((t) => t.readyMs)).toFixed(0)} ms, idle RSS ${(median(trials.map((t) => t.idleRssKiB)) / MiB).toFixed(1)} MiB`);
  return trials;
}

// ---- memory over time: many host names, and a soak ----------------------------------------------

/** Samples RSS and open descriptors of pid every second until stop() (bounded by the run). */
function sampler(pid) {
  const samples = [];
  const t0 = performance.now();
  const take = () => samples.push({ t: (performance.now() - t0) / 1000, rssKiB: statusKiB(pid, 'VmRSS'), fds: fdCount(pid), cpu: cpuSeconds(pid) });
  take();
  const timer = setInterval(take, 1000);
  let stopped = false;
  return {
    samples,
    stop() {
      if (!stopped) { stopped = true; clearInterval(timer); take(); }
      return samples;
    },
  };
}

async function metricValue(port, name) {
  const { body } = await httpGet(port, '/metrics');
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(body);
  return m ? Number(m[1]) : NaN;
}

async function runManyHosts() {
  const resolve = {};
  for (let i = 0; i < HOSTS; i++) resolve[`h${i}.bench.test:443`] = `127.0.0.1:${originPorts.tls}`;
  // A fresh state directory: the CA is created now, with bench.test in its name constraints.
  const cfg = await writeProxyConfig('hosts', { originPorts, stateDir: join(OUT, 'state-hosts'), extra: { extraHosts: ['*.bench.test'] }, resolveExtra: resolve });
  await awaitQuiet();
  const proxy = await startProxy(cfg, { readyTimeoutMs: 60_000 });
  const s = sampler(proxy.pid);
  const progress = [];
  const revisit = Math.min(200, HOSTS);
  let r;
  let issued;
  try {
    r = await runLoad({
      connections: CONNECTIONS, keepAlive: false, warmupMs: 0, via: 'connect', connectTo: { host: '127.0.0.1', port: cfg.ports.proxy },
      host: 'h0.bench.test', path: '/api/machines', ua: CALLER_UA, caFile: join(cfg.stateDir, 'ca.pem'),
      hosts: { template: 'h{i}.bench.test', passes: [[0, HOSTS], [0, revisit]] }, maxMs: 150_000,
    }, { proxy: { pid: proxy.pid } }, {
      timeoutMs: 170_000,
      onProgress: (ev) => progress.push({ ...ev, rssKiB: statusKiB(proxy.pid, 'VmRSS'), fds: fdCount(proxy.pid) }),
    });
    issued = await metricValue(cfg.ports.admin, 'mde_partner_proxy_certificates_issued_total');
  } finally {
    s.stop();
    await stopChild(proxy.child);
  }
  const at = (hosts) => progress.find((p) => p.hosts >= hosts);
  const marks = [0.1, 0.2, 0.5, 0.75, 1].map((q) => Math.round(q * HOSTS)).map((h) => ({ hosts: h, rssKiB: (h === HOSTS ? at(h) ?? progress.at(-1) : at(h))?.rssKiB, fds: at(h)?.fds }));
  const peakKiB = Math.max(...s.samples.map((x) => x.rssKiB));
  log(`${HOSTS} hosts: ${r.rps.toFixed(0)} req/s, ${issued} certificates issued, peak RSS ${(peakKiB / MiB).toFixed(1)} MiB`);
  return { result: r, issued, revisit, marks, peakKiB, samples: s.samples, progress, check: checkBody(r, PARTNER_UA) };
}

async function runSoak(cfg) {
  await awaitQuiet();
  const proxy = await startProxy(cfg);
  const load = (maxRequests) => ({
    connections: CONNECTIONS, keepAlive: true, warmupMs: 0, maxRequests, maxMs: 240_000, via: 'connect',
    connectTo: { host: '127.0.0.1', port: cfg.ports.proxy }, connectAuthority: `${API}:443`, host: API, path: '/api/machines', ua: CALLER_UA,
    caFile: join(cfg.stateDir, 'ca.pem'),
  });
  // Until its first full collection V8 lets the heap fill the 64 MiB initial old space (the
  // shebang's flag): a leak check starts from the steady state, after that warm-up.
  await runLoad(load(SOAK_WARMUP_REQUESTS), {}, { timeoutMs: 120_000 });
  const s = sampler(proxy.pid);
  let r;
  let idle;
  try {
    r = await runLoad(load(SOAK_REQUESTS), { proxy: { pid: proxy.pid } }, { timeoutMs: 260_000 });
    s.stop();
    await sleep(3000);
    idle = { rssKiB: statusKiB(proxy.pid, 'VmRSS'), fds: fdCount(proxy.pid) };
  } finally {
    s.stop();
    await stopChild(proxy.child);
  }
  const busy = s.samples.filter((x) => x.t >= 1);
  const half = Math.floor(busy.length / 2);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const firstHalf = mean(busy.slice(0, half).map((x) => x.rssKiB));
  const secondHalf = mean(busy.slice(half).map((x) => x.rssKiB));
  const out = {
    result: r, samples: s.samples, idle,
    startKiB: busy[0]?.rssKiB, endKiB: busy[busy.length - 1]?.rssKiB, peakKiB: Math.max(...s.samples.map((x) => x.rssKiB)),
    startFds: busy[0]?.fds, endFds: busy[busy.length - 1]?.fds, firstHalfKiB: firstHalf, secondHalfKiB: secondHalf,
    check: checkBody(r, PARTNER_UA),
  };
  log(`soak: ${r.completed} requests at ${r.rps.toFixed(0)} req/s, RSS ${(out.startKiB / MiB).toFixed(1)} → ${(out.endKiB / MiB).toFixed(1)} MiB, fds ${out.startFds} → ${out.endFds}`);
  return out;
}

// ---- profiles ---------------------------------------------------------------------------------------

async function runProfile(id, cfg, { root = ROOT, label = 'this build' } = {}) {
  const dir = join(OUT, `profile-${id}${root === ROOT ? '' : '-baseline'}`);
  mkdirSync(dir, { recursive: true });
  const s = scenarios(cfg).find((x) => x.id === id);
  await awaitQuiet();
  const proxy = await startProxy(cfg, { root, nodeFlags: [...proxyFlags(root), '--cpu-prof', `--cpu-prof-dir=${dir}`] });
  let r;
  try {
    r = await runLoad(s.proxied, { proxy: { pid: proxy.pid } });
  } finally {
    await stopChild(proxy.child, 10_000);
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no profile written in ${dir}`);
  log(`profile ${id} (${label}): ${r.rps.toFixed(0)} req/s under the profiler`);
  return { id, label, file: join(dir, file), rps: r.rps, requests: r.requests, ...summariseProfile(join(dir, file), root, 15, r.windowUs) };
}

// ---- the report ---------------------------------------------------------------------------------------

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const mib = (kib) => (Number.isFinite(kib) ? (kib / MiB).toFixed(1) : '–');
const met = (ok) => (ok ? '**met**' : '**not met**');

function machine() {
  const cpu = (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? cpus()[0]?.model ?? '?';
  const nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  const pkg = (name) => { try { return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version; } catch { return '?'; } };
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  let commit = '?';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '') commit += ' (src/ has uncommitted changes)';
  } catch { /* not a git checkout */ }
  return {
    date: new Date().toISOString(), nproc, cpu, kernel: release(), node: process.version, openssl: process.versions.openssl, commit,
    packages: Object.keys(own.dependencies).map((n) => `${n} ${pkg(n)}`).join(', '), version: own.version,
  };
}

function report(d) {
  const L = [];
  const m = d.machine;
  L.push(`Run ${m.date} on ${m.nproc} cores (${m.cpu}), Linux ${m.kernel}, Node ${m.node} (OpenSSL ${m.openssl}), mde-partner-proxy ${m.version} at ${m.commit}.`);
  L.push(`Packages: ${m.packages}. Load generator: bench/load.mjs (raw sockets, TLS inside CONNECT). Squid: ${d.squid.version ?? 'not installed (skipped)'}.`);
  L.push(`Pinning: ${d.pinned ? 'the proxy (or Squid) on core 1; the origin and the load generator share core 0, in the direct runs too' : 'none (BENCH_PIN=0)'}.`);
  L.push(`Each scenario: ${ROUNDS} rounds of a direct slice then a proxied slice (one proxy process), each slice ${SLICE_WARMUP_MS / 1000} s warm-up and ${SLICE_MS / 1000} s measured (${SECONDS} s per side); ${CONNECTIONS} connections, one request at a time each; GET /api/machines with User-Agent ${CALLER_UA}; the origin answers ~110 bytes of JSON. Ratio: median of the rounds' ratios (range in brackets); req/s and CPU over all slices; p50/p99: median of the slices'.`);
  L.push('');
  L.push('| Scenario | Direct req/s | Proxy req/s | Ratio | Direct p50 / p99 ms | Proxy p50 / p99 ms | Proxy CPU / request, all slices (best slice) | Origin CPU / request, direct | Proxy peak RSS MiB | Origin saw | Other load, cores | Target | Result |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |');
  const row = (label, s, target, ok) => {
    const dr = s.directResult;
    const pr = s.proxiedResult;
    const us = (x) => (x >= 1000 ? `${f2(x / 1000)} ms` : `${f1(x)} µs`);
    const cpuText = `${us(pr.cpuUsPerRequest.proxy)} (${us(pr.bestCpuUsPerRequest.proxy)})`;
    const noise = `${f2(dr.otherCores)} / ${f2(pr.otherCores)}`;
    const saw = s.check.ok ? `${s.check.ua === PARTNER_UA ? 'partner UA' : 'caller UA'}, 0 errors` : `**CHECK FAILED** ua=${s.check.ua} errors=${s.check.errors}`;
    L.push(`| ${label} | ${f0(dr.rps)} | ${f0(pr.rps)} | ${f2(s.ratio)}x (${f2(s.ratioRange[0])}–${f2(s.ratioRange[1])}) | ${f2(dr.p50)} / ${f2(dr.p99)} | ${f2(pr.p50)} / ${f2(pr.p99)} | ${cpuText} | ${us(dr.cpuUsPerRequest.origin)} | ${mib(pr.peakKiB.proxy)} | ${saw} | ${noise} | ${target} | ${ok === undefined ? '' : met(ok)} |`);
  };
  const by = Object.fromEntries(d.scenarios.map((s) => [s.id, s]));
  const ratio = (s) => s.ratio;
  const t = {};
  t.A = ratio(by.A) >= 0.6 && by.A.check.ok;
  t.B = by.B.proxiedResult.cpuUsPerRequest.proxy <= 1000 && by.B.check.ok;
  t.C = by.C.proxiedResult.cpuUsPerRequest.proxy <= 45 && by.C.check.ok;
  t.D = ratio(by.D) >= 0.55 && by.D.check.ok;
  t.E = ratio(by.E) >= 0.65 && by.E.check.ok;
  const addedPaced = by['A-paced'].proxiedResult.p99 - by['A-paced'].directResult.p99;
  const addedSaturated = by.A.proxiedResult.p99 - by.A.directResult.p99;
  t.latency = addedPaced <= 1;
  row('A intercept, keep-alive', by.A, '≥ 0.60x', t.A);
  row(`A paced, ${PACED_RATE} req/s`, by['A-paced'], '+p99 ≤ 1 ms', t.latency);
  row('B intercept, new conn / req', by.B, '≤ 1.0 ms CPU', t.B);
  row('B, client resumes TLS session (reference)', by['B-resume'], '–', undefined);
  row('C blind tunnel, keep-alive', by.C, '≤ 45 µs CPU', t.C);
  row(`C paced, ${PACED_RATE} req/s (reference: a relay in the same topology)`, by['C-paced'], '–', undefined);
  row('D plain forward, rewrite', by.D, '≥ 0.55x', t.D);
  row('E reverse route', by.E, '≥ 0.65x', t.E);
  for (const s of d.squid.rows) row(`${s.id} **Squid** ssl_bump, same rounds (reference)`, s, s.id === 'A' ? 'issue: 0.55x, ~100 µs' : '–', undefined);
  L.push('');
  if (d.baseline) {
    L.push(`Against the baseline build (BENCH_BASELINE, ${d.baseline.commit}), its proxy taking the same load in the same rounds: this build's req/s over the baseline's, median of the rounds (range), and each one's proxy CPU per request over all slices (best slice).`);
    L.push('');
    L.push('| Scenario | This build / baseline req/s | Ratio to direct, this build / baseline | CPU / request, this build | CPU / request, baseline |');
    L.push('| --- | ---: | ---: | ---: | ---: |');
    for (const b of d.baseline.rows) {
      const own = by[b.id];
      L.push(`| ${b.id} | ${f2(b.versus)} (${f2(b.versusRange[0])}–${f2(b.versusRange[1])}) | ${f2(own.ratio)}x / ${f2(b.ratio)}x | ${f1(own.proxiedResult.cpuUsPerRequest.proxy)} µs (${f1(own.proxiedResult.bestCpuUsPerRequest.proxy)}) | ${f1(b.proxiedResult.cpuUsPerRequest.proxy)} µs (${f1(b.proxiedResult.bestCpuUsPerRequest.proxy)}) |`);
    }
    L.push('');
  }
  L.push('Direct baselines: A, A-paced, C, C-paced and E against the TLS origin with keep-alive (C to www.example.org), B with a new TLS connection per request, D against the plain HTTP origin. CPU is utime+stime of the proxy process (all threads, /proc/<pid>/stat) over the measured window divided by the requests completed in it; peak RSS is VmHWM, reset at the start of the window. Squid\'s CPU includes its certificate helper processes; its slices run in the same rounds as the proxy\'s, against the same direct slices. Origin CPU / request in the direct slices shows how fast the machine was: the same work costs more when the host is busy. Other load: CPU that processes outside the benchmark used during the direct / proxied window (this machine is shared with builds and tests), in cores; a run with more than ~0.2 is noisy.');
  L.push('');
  L.push(`B: of the proxy's ${f2(by.B.proxiedResult.cpuUsPerRequest.proxy / 1000)} ms per connection, ${f2(by.B.proxiedResult.mainUsPerRequest.proxy / 1000)} ms is the main thread and the rest V8's GC helper threads. For B, the floor: the origin, a bare Node HTTPS server on the same Node and OpenSSL, spent ${f2(by.B.directResult.cpuUsPerRequest.origin / 1000)} ms of CPU per new TLS connection and request in the direct B run (vs ${f1(by.A.directResult.cpuUsPerRequest.origin)} µs per request on kept-alive connections in A); through the proxy the origin saw ${f1(by.B.proxiedResult.cpuUsPerRequest.origin)} µs per request, the upstream connections being pooled.`);
  L.push('');
  const st = d.startup;
  const readyMed = median(st.map((x) => x.readyMs));
  const acceptMed = median(st.map((x) => x.acceptedMs));
  const idleMed = median(st.map((x) => x.idleRssKiB));
  t.ready = readyMed <= 500;
  t.idle = idleMed <= 70 * MiB;
  L.push('| Measure | Value | Target | Result |');
  L.push('| --- | --- | --- | --- |');
  L.push(`| p99 added latency at ${CONNECTIONS} connections, paced at ${PACED_RATE} req/s (A) | +${f2(addedPaced)} ms (${f2(by['A-paced'].directResult.p99)} → ${f2(by['A-paced'].proxiedResult.p99)}) | ≤ 1 ms | ${met(t.latency)} |`);
  L.push(`| p99 added latency at ${CONNECTIONS} connections, paced at ${PACED_RATE} req/s, blind tunnel (C, reference: the extra hop alone) | +${f2(by['C-paced'].proxiedResult.p99 - by['C-paced'].directResult.p99)} ms (${f2(by['C-paced'].directResult.p99)} → ${f2(by['C-paced'].proxiedResult.p99)}) | – | – |`);
  L.push(`| p99 added latency at ${CONNECTIONS} connections, saturated (A, for reference) | +${f2(addedSaturated)} ms (${f2(by.A.directResult.p99)} → ${f2(by.A.proxiedResult.p99)}) | – | – |`);
  L.push(`| start → /readyz 200, CA exists (median of ${st.length}; port accepting at ${f0(acceptMed)} ms) | ${f0(readyMed)} ms (max ${f0(Math.max(...st.map((x) => x.readyMs)))} ms) | ≤ 500 ms | ${met(t.ready)} |`);
  L.push(`| idle RSS, 2.5 s after ready (median of ${st.length}) | ${mib(idleMed)} MiB | ≤ 70 MiB | ${met(t.idle)} |`);
  const h = d.hosts;
  const growth = h.peakKiB - h.marks[1].rssKiB; // the highest RSS seen, not just the last
  t.hosts = h.check.ok && h.issued === HOSTS + h.revisit && growth < 16 * MiB;
  L.push(`| ${HOSTS} distinct intercepted hosts (new connection each), RSS after ${h.marks.map((x) => x.hosts).join(' / ')} hosts | ${h.marks.map((x) => mib(x.rssKiB)).join(' / ')} MiB (peak ${mib(h.peakKiB)}; ${f0(h.result.rps)} req/s, ${f2(h.result.cpuUsPerRequest.proxy / 1000)} ms proxy CPU per new host: mint + upstream handshake + client handshake) | flat (peak < 16 MiB above the RSS at ${h.marks[1].hosts} hosts) | ${met(growth < 16 * MiB && h.check.ok)} |`);
  L.push(`| leaf cache bounded: certificates minted for ${HOSTS} hosts, then the first ${h.revisit} again | ${h.issued} (${HOSTS} + ${h.issued - HOSTS} re-minted: evicted from the 256-entry LRU) | ${HOSTS + h.revisit} | ${met(h.issued === HOSTS + h.revisit)} |`);
  const k = d.soak;
  const soakOk = k.check.ok && k.secondHalfKiB <= k.firstHalfKiB * 1.1 && k.endFds <= k.startFds + 2;
  t.soak = soakOk;
  L.push(`| soak: ${k.result.completed} requests (A) after ${SOAK_WARMUP_REQUESTS} unmeasured, RSS start / end / peak, mean 1st → 2nd half | ${mib(k.startKiB)} / ${mib(k.endKiB)} / ${mib(k.peakKiB)} MiB, ${mib(k.firstHalfKiB)} → ${mib(k.secondHalfKiB)} MiB; ${f0(k.result.rps)} req/s | no growth (2nd half ≤ 1st + 10%) | ${met(k.secondHalfKiB <= k.firstHalfKiB * 1.1)} |`);
  L.push(`| soak: open descriptors start / end / 3 s idle after | ${k.startFds} / ${k.endFds} / ${k.idle?.fds} (idle RSS ${mib(k.idle?.rssKiB)} MiB) | no growth | ${met(k.endFds <= k.startFds + 2)} |`);
  L.push('');
  L.push('## Profile');
  L.push('');
  L.push('`node --cpu-prof` on the proxy process under A and B (a separate run each; the profiler slows it). Self time in the measured window (start-up left out), % of the non-idle samples; dist/ positions mapped back to src/ through the source maps. The profiler sees the main thread only: V8\'s GC helper threads and OpenSSL work started from libuv callbacks show as `(program)` / `(garbage collector)` or not at all.');
  for (const p of d.profiles) {
    L.push('');
    L.push(`### ${p.id}${p.label === 'this build' ? '' : ` (${p.label})`}: ${f0(p.rps)} req/s under the profiler; the measured window only: ${f0(p.busyMs)} ms busy, ${f0(p.idleMs)} ms idle (${f0((p.busyMs * 1000) / p.requests)} µs of main-thread samples per request)`);
    L.push('');
    L.push('| Area | Self ms | % |');
    L.push('| --- | ---: | ---: |');
    for (const a of p.areas.slice(0, 12)) L.push(`| ${a.name} | ${f0(a.ms)} | ${f1(a.pct)} |`);
    L.push('');
    L.push('| Function | Where | Self ms | % |');
    L.push('| --- | --- | ---: | ---: |');
    for (const fn of p.functions) L.push(`| \`${fn.name}\` | ${fn.where || '(native)'} | ${f0(fn.ms)} | ${f1(fn.pct)} |`);
    L.push('');
    L.push(`Top functions in src/ (self µs per request = self ms × 1000 / ${p.requests} requests):`);
    L.push('');
    L.push('| Function | Where | Self ms | % | µs / request |');
    L.push('| --- | --- | ---: | ---: | ---: |');
    for (const fn of p.ownFunctions.slice(0, 10)) L.push(`| \`${fn.name}\` | ${fn.where} | ${f0(fn.ms)} | ${f1(fn.pct)} | ${f2((fn.ms * 1000) / p.requests)} |`);
  }
  return { text: L.join('\n'), targets: t };
}

const BEGIN = '<!-- generated by `npm run bench`: begin -->';
const END = '<!-- generated by `npm run bench`: end -->';

/** Replaces the generated section of bench/results.md, keeping the hand-written text around it. */
function writeResults(generated) {
  const old = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const i = old.indexOf(BEGIN);
  const j = old.indexOf(END);
  const head = i >= 0 ? old.slice(0, i) : '# Benchmark results\n\nRerun with `npm run bench` (about 5 minutes). The section between the markers is rewritten by each run; the notes after it are written by hand.\n\n';
  const tail = j >= 0 ? old.slice(j + END.length) : '\n';
  writeFileSync(RESULTS, `${head}${BEGIN}\n${generated}\n${END}${tail}`);
}

// ---- main -------------------------------------------------------------------------------------------

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: npm run build first (npm run bench does)');
log('making the PKI and starting the origin');
const pki = makePki(join(OUT, 'pki'));
const origin = track(spawnPinned(CLIENT_CPU, NODE, [join(ROOT, 'bench', 'origin.mjs'), pki.originCert, pki.originKey]));
const originPorts = await readJsonLine(origin, 10_000);
const data = { machine: machine(), pinned: existsSync('/usr/bin/taskset') && process.env.BENCH_PIN !== '0' };

try {
  const cfg = await writeProxyConfig('proxy', { originPorts, stateDir: join(OUT, 'state') });
  // First start creates the CA; the timed starts below find it.
  const first = await startProxy(cfg);
  log(`proxy up in ${first.readyMs.toFixed(0)} ms (CA created)`);
  await stopChild(first.child);

  data.scenarios = [];
  const chosen = scenarios(cfg).filter((s) => wanted(s.id));
  const squid = chosen.some((s) => s.id === 'A' || s.id === 'C') ? await startSquid() : { version: 'not run' };
  // The baseline proxy shares the state directory (so the CA) and the origin, on ports of its own.
  const baseline = BASELINE ? await prepareBaseline(cfg.stateDir) : undefined;
  try {
    for (const s of chosen) data.scenarios.push(await runScenario(s, cfg, squid, baseline));
  } finally {
    if (squid.child) await stopChild(squid.child, 5000);
  }
  data.squid = { version: squid.version, rows: data.scenarios.filter((s) => s.squid).map((s) => ({ id: s.id, ...s.squid })) };
  if (baseline) data.baseline = { dir: BASELINE, commit: baseline.commit, rows: data.scenarios.filter((s) => s.baseline).map((s) => ({ id: s.id, ...s.baseline })) };
  if (wanted('startup')) data.startup = await runStartup(cfg);
  if (wanted('hosts')) data.hosts = await runManyHosts();
  if (wanted('soak')) data.soak = await runSoak(cfg);
  if (wanted('profile')) {
    data.profiles = [];
    for (const id of PROFILED) {
      data.profiles.push(await runProfile(id, cfg));
      if (baseline) data.profiles.push(await runProfile(id, baseline.cfg, { root: BASELINE, label: `baseline ${baseline.commit}` }));
    }
  }
} finally {
  origin.stdin.end();
  await stopChild(origin, 2000);
}

if (ONLY !== undefined) {
  writeFileSync(join(OUT, 'results.json'), JSON.stringify(data, null, 1));
  for (const s of data.scenarios) {
    const p = s.proxiedResult;
    log(`${s.id}: ratio ${s.ratio.toFixed(2)}x (${s.ratioRange.map((x) => x.toFixed(2)).join('–')}), proxy ${p.cpuUsPerRequest.proxy.toFixed(1)} µs CPU/req (best slice ${p.bestCpuUsPerRequest.proxy.toFixed(1)}), p99 ${s.directResult.p99.toFixed(2)} → ${p.p99.toFixed(2)} ms`);
    const b = s.baseline;
    if (b) log(`${s.id} baseline ${data.baseline.commit}: ratio ${b.ratio.toFixed(2)}x (${b.ratioRange.map((x) => x.toFixed(2)).join('–')}), ${b.proxiedResult.cpuUsPerRequest.proxy.toFixed(1)} µs CPU/req (best slice ${b.proxiedResult.bestCpuUsPerRequest.proxy.toFixed(1)}); this build's req/s over the baseline's ${b.versus.toFixed(3)} (rounds ${b.versusRange.map((x) => x.toFixed(3)).join('–')})`);
  }
  for (const p of data.profiles ?? []) {
    const perRequest = (ms) => ((ms * 1000) / p.requests).toFixed(2);
    log(`profile ${p.id} (${p.label}): ${perRequest(p.busyMs)} µs of main-thread samples per request; by area, µs per request: ${p.areas.slice(0, 12).map((a) => `${a.name} ${perRequest(a.ms)}`).join(', ')}`);
  }
  log(`BENCH_ONLY=${[...ONLY].join(',')}: ${RESULTS} left as it was; data in ${join(OUT, 'results.json')}`);
  process.exit(0);
}

writeFileSync(join(OUT, 'results.json'), JSON.stringify(data, null, 1));
const { text, targets } = report(data);
writeResults(text);
log(`wrote ${RESULTS} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
process.stdout.write(`${text.split('## Profile')[0]}\n`);
process.stdout.write(`targets: ${Object.entries(targets).map(([k, v]) => `${k} ${v ? 'met' : 'NOT met'}`).join(', ')}\n`);
process.exit(0);
