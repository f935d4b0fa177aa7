// The load generator, in its own process: N connections, each sending one request at a time
// (HTTP/1.1, no pipelining), directly, as absolute-form to a forward proxy, or through a CONNECT
// tunnel with TLS inside (which common load generators cannot do). Keep-alive, or a new connection
// (and a full TLS handshake, no session resumption) per request. Bounded by time and by count.
//
// argv[2] is a JSON object (see run.mjs). stdout gets JSON lines: {"event":"measure-start"} when
// the warm-up ends, {"event":"measure-end"} when the window closes (the runner reads the proxy's
// CPU time at both), {"event":"progress"} in host-list runs, then {"event":"result", ...}.
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setInterval } from 'node:timers';
import { connect as tlsConnect, createSecureContext } from 'node:tls';

const o = JSON.parse(process.argv[2]);
// One context for every connection: a `ca` option per tls.connect would build a context each time.
const secureContext = createSecureContext({ ca: o.caFile ? readFileSync(o.caFile) : undefined });
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const HARD_CAP_MS = o.maxMs ?? 120_000;

// ---- what each request is ------------------------------------------------------------------------

/** The host names of a host-list run, in order: ranges [from, to) of the template. */
const hostSequence = o.hosts ? o.hosts.passes.flatMap(([from, to]) => Array.from({ length: to - from }, (_, k) => o.hosts.template.replace('{i}', String(from + k)))) : undefined;
let nextHostIndex = 0;

function requestBytes(host) {
  const target = o.via === 'absolute' ? `http://${host}${o.path}` : o.path;
  const lines = [`GET ${target} HTTP/1.1`, `Host: ${o.hostHeader ?? host}`, `User-Agent: ${o.ua}`, 'Accept: application/json'];
  if (o.authorization) lines.push(`Authorization: ${o.authorization}`);
  if (!o.keepAlive) lines.push('Connection: close');
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}
const fixedRequest = requestBytes(o.host);

// ---- opening a connection ---------------------------------------------------------------------------

function tcp() {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: o.connectTo.host, port: o.connectTo.port });
    s.setNoDelay(true);
    s.once('connect', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

/** Sends CONNECT authority and resolves once a 2xx head has been read (RFC 9110 §9.3.6). */
function tunnel(socket, authority) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('error', reject);
      socket.pause();
      const head = buf.toString('latin1', 0, end);
      if (!/^HTTP\/1\.[01] 2\d\d/.test(head)) {
        socket.destroy();
        return reject(new Error(`CONNECT ${authority}: ${head.split('\r\n')[0]}`));
      }
      if (buf.length > end + 4) socket.unshift(buf.subarray(end + 4));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

/** With o.resume, the last TLS session ticket per server name, offered on the next connection. */
const sessions = new Map();

function handshake(socket, servername) {
  return new Promise((resolve, reject) => {
    const opts = { servername, secureContext, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2', ...(o.resume && sessions.has(servername) ? { session: sessions.get(servername) } : {}) };
    const t = socket ? tlsConnect({ ...opts, socket }) : tlsConnect({ ...opts, host: o.connectTo.host, port: o.connectTo.port });
    if (o.resume) t.on('session', (session) => sessions.set(servername, session));
    t.once('secureConnect', () => { t.off('error', reject); t.setNoDelay?.(true); resolve(t); });
    t.once('error', reject);
  });
}

async function open(host) {
  if (o.via === 'connect') {
    const raw = await tunnel(await tcp(), o.connectAuthority ?? `${host}:443`);
    return handshake(raw, host);
  }
  if (o.tls) return handshake(undefined, o.servername ?? host);
  return tcp();
}

// ---- reading one response ---------------------------------------------------------------------------

const CRLF2 = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** Accumulates one response; feed() returns true once it is complete (Content-Length or chunked). */
function createReader() {
  let acc = null;
  let need = -1;
  let chunked = false;
  const r = {
    status: 0,
    close: false,
    body: '',
    reset() { acc = null; need = -1; chunked = false; r.status = 0; r.close = false; },
    feed(chunk) {
      acc = acc === null ? chunk : Buffer.concat([acc, chunk]);
      if (need < 0 && !chunked) {
        const end = acc.indexOf(CRLF2);
        if (end < 0) return false;
        const head = acc.toString('latin1', 0, end);
        r.status = Number(head.slice(9, 12));
        r.close = /\r\nconnection:\s*close/i.test(head);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (cl) need = end + 4 + Number(cl[1]);
        else if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) chunked = true;
        else need = end + 4; // no body (204/304 or a bodiless error)
        r.bodyStart = end + 4;
      }
      const complete = chunked ? acc.length >= 5 && acc.subarray(acc.length - 5).equals(LAST_CHUNK) : acc.length >= need;
      if (complete && sampleBody === undefined) sampleBody = acc.toString('latin1', r.bodyStart);
      return complete;
    },
  };
  return r;
}

// ---- the run --------------------------------------------------------------------------------------

let sampleBody;
let measuring = o.warmupMs === 0 || o.warmupMs === undefined;
let stopped = false;
let issued = 0;
let completed = 0;
let errors = 0;
let connectionsOpened = 0;
const errorKinds = new Map();
const statuses = new Map();
const latencies = [];
let windowStart = measuring ? performance.now() : 0;
let windowEnd = 0;
let windowCompleted = 0;
const sockets = new Set();
const t0 = performance.now();

if (measuring) emit({ event: 'measure-start' });

const mayIssue = () => !stopped && (o.maxRequests === undefined || issued < o.maxRequests) && (hostSequence === undefined || nextHostIndex < hostSequence.length);

function noteError(err) {
  errors++;
  const key = String(err?.code ?? err?.message ?? err).slice(0, 120);
  errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1);
}

/** Milliseconds between two requests on one connection in a paced run; 0 sends back to back. */
const interval = o.rate ? (1000 * o.connections) / o.rate : 0;

let active = 0;
function startSlot() {
  if (!mayIssue()) return slotDone();
  active++;
  const host = hostSequence ? hostSequence[nextHostIndex++] : o.host;
  const req = hostSequence ? requestBytes(host) : fixedRequest;
  const startedAt = performance.now();
  issued++;
  open(host).then((sock) => {
    connectionsOpened++;
    sockets.add(sock);
    const reader = createReader();
    let sentAt = startedAt;
    let nextAt = startedAt;
    let done = false;
    const finish = (reopen) => {
      if (done) return;
      done = true;
      sockets.delete(sock);
      sock.destroy();
      active--;
      if (reopen) startSlot(); else slotDone();
    };
    sock.on('data', (chunk) => {
      if (!reader.feed(chunk)) return;
      const now = performance.now();
      completed++;
      statuses.set(reader.status, (statuses.get(reader.status) ?? 0) + 1);
      if (reader.status !== 200) noteError(new Error(`status ${reader.status}`));
      if (measuring && !stopped) {
        latencies.push(now - sentAt);
        windowCompleted++;
      }
      if (o.keepAlive && !reader.close && mayIssue()) {
        reader.reset();
        issued++;
        const send = () => {
          if (done) return;
          sentAt = performance.now();
          sock.write(req);
        };
        // Paced runs (o.rate, requests per second over all connections) wait for their next slot.
        // The schedule is kept even after a late response (a late connection catches up), so the
        // connections keep the phases they started with instead of bunching up after each stall.
        if (interval > 0) {
          nextAt += interval;
          if (nextAt - now > 0.05) return void setTimeout(send, nextAt - now);
        }
        send();
      } else {
        finish(mayIssue());
      }
    });
    sock.on('error', (err) => { noteError(err); finish(false); setTimeout(startSlot, 20); });
    sock.on('close', () => { if (!done) { noteError(new Error('closed mid-response')); finish(false); setTimeout(startSlot, 20); } });
    sock.write(req);
  }, (err) => {
    noteError(err);
    active--;
    setTimeout(startSlot, 20); // a refused connection is retried, slowly: the run stays bounded by time
  });
}

function slotDone() {
  if (active === 0 && !mayIssue()) end();
}

let ended = false;
function end() {
  if (ended) return;
  ended = true;
  if (!stopped) stopWindow();
  for (const s of sockets) s.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)] : NaN;
  const seconds = (windowEnd - windowStart) / 1000;
  emit({
    event: 'result',
    requests: windowCompleted,
    seconds,
    rps: windowCompleted / seconds,
    p50: q(0.5), p90: q(0.9), p99: q(0.99), max: latencies.length ? latencies[latencies.length - 1] : NaN,
    completed, issued, errors, connectionsOpened,
    errorKinds: Object.fromEntries(errorKinds),
    statuses: Object.fromEntries(statuses),
    sampleBody: sampleBody?.slice(0, 400),
  });
  setTimeout(() => process.exit(0), 50);
}

function stopWindow() {
  stopped = true;
  windowEnd = performance.now();
  emit({ event: 'measure-end', requests: windowCompleted });
  // In-flight requests finish (uncounted) or are cut after a short grace.
  setTimeout(end, 2000).unref();
}

if (!measuring) {
  setTimeout(() => {
    measuring = true;
    windowStart = performance.now();
    emit({ event: 'measure-start' });
  }, o.warmupMs);
}
if (o.durationMs !== undefined) setTimeout(stopWindow, (o.warmupMs ?? 0) + o.durationMs);
setTimeout(() => { if (!stopped) stopWindow(); }, HARD_CAP_MS).unref();
if (hostSequence) {
  const timer = setInterval(() => emit({ event: 'progress', done: completed, hosts: nextHostIndex, elapsedMs: Math.round(performance.now() - t0) }), 1000);
  timer.unref();
}
// The last completion of a count-bounded run ends it.
const check = setInterval(() => { if (!mayIssue() && active === 0) end(); }, 50);
check.unref();
process.stdin.on('end', () => process.exit(1)).resume();

for (let i = 0; i < o.connections; i++) {
  if (interval > 0) setTimeout(startSlot, (i * interval) / o.connections);
  else startSlot();
}
