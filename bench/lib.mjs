// Shared helpers for the benchmark: /proc readers, free ports, child processes pinned to a core,
// readiness polling, and percentiles. Everything here talks to 127.0.0.1 only.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Clock ticks per second for /proc/<pid>/stat utime and stime (sysconf(_SC_CLK_TCK), 100 on Linux). */
export const CLK_TCK = 100;

/** The environment for child processes: without the CA-bundle presets of this machine or the proxy's own variables. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('MDE_PARTNER_PROXY') || ['SSL_CERT_FILE', 'SSL_CERT_DIR', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy'].includes(k)) delete env[k];
  }
  return { ...env, ...extra };
}

/** User + system CPU seconds of one process (all its threads), from /proc/<pid>/stat. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state(0) ppid(1) ... utime(11) stime(12).
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** User + system CPU seconds of a process's main thread only (the event loop; not V8's GC helpers). */
export function mainThreadCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return (total - f[3] - f[4]) / CLK_TCK; // minus idle and iowait
}

/** Process ids whose parent is pid (one level). */
function childrenOf(pid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** CPU seconds of a process and its descendants (Squid's helpers run as children). */
export function treeCpuSeconds(pid, depth = 3) {
  let total = cpuSeconds(pid);
  if (depth > 0) for (const c of childrenOf(pid)) total += treeCpuSeconds(c, depth - 1);
  return total;
}

/** A field of /proc/<pid>/status in KiB (VmRSS, VmHWM). */
export function statusKiB(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors (sockets, pipes, files) of a process. */
export function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Resets VmHWM so the next reading is the peak from now on (Linux clear_refs, value 5). */
export async function resetPeakRss(pid) {
  const { writeFileSync } = await import('node:fs');
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Whether a TCP connection to 127.0.0.1:port is accepted. */
export function accepts(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** GET http://127.0.0.1:port/path → {status, body}, or status 0 on a connection error. */
export function httpGet(port, path, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

/** Polls until check() is true; false after timeoutMs. Bounded in time. */
export async function waitFor(check, timeoutMs, everyMs = 5) {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (await check()) return true;
    await sleep(everyMs);
  }
  return false;
}

/** Whether taskset exists, so children can be pinned to a core. */
let tasksetOk;
function haveTaskset() {
  if (tasksetOk === undefined) {
    try {
      readFileSync('/usr/bin/taskset');
      tasksetOk = process.env.BENCH_PIN !== '0';
    } catch {
      tasksetOk = false;
    }
  }
  return tasksetOk;
}

/**
 * Spawns a child, pinned to `cpu` with taskset when available (exec'd, so the pid is the program's).
 * stdin is a pipe: children watch it and exit when the runner goes away.
 */
export function spawnPinned(cpu, cmd, args, opts = {}) {
  const pinned = haveTaskset() && cpu !== undefined;
  const child = spawn(pinned ? 'taskset' : cmd, pinned ? ['-c', String(cpu), cmd, ...args] : args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: cleanEnv(opts.env),
    cwd: opts.cwd,
  });
  child.stderrText = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { if (child.stderrText.length < 20000) child.stderrText += d; });
  return child;
}

/** A 'data' listener that calls onValue with each complete line that parses as JSON (others are skipped); onValue returning true stops the line loop. */
export function jsonLines(onValue) {
  let buf = '';
  return (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let value;
      try { value = JSON.parse(line); } catch { continue; }
      if (onValue(value) === true) return;
    }
  };
}

/** Resolves with the first stdout line that parses as JSON and satisfies pick, or rejects on exit/timeout. */
export function readJsonLine(child, timeoutMs, pick = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no JSON line within ${timeoutMs} ms; stderr: ${child.stderrText.slice(-2000)}`)), timeoutMs);
    const onData = jsonLines((value) => {
      if (!pick(value)) return false;
      done(undefined, value);
      return true;
    });
    const onExit = (code) => done(new Error(`exited with ${code} before its JSON line; stderr: ${child.stderrText.slice(-2000)}`));
    function done(err, value) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err); else resolve(value);
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Sends SIGTERM, then SIGKILL after graceMs; resolves when the child has exited. */
export function stopChild(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

/** The q-quantile (0..1) of an ascending array. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export const median = (xs) => quantile([...xs].sort((a, b) => a - b), 0.5);
