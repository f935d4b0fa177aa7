// Reads a V8 .cpuprofile (node --cpu-prof) into self-time totals per function and per area,
// mapping positions in the dist/ bundle back to src/*.ts and node_modules/ through its source maps.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const maps = new Map();
function sourceMapFor(file) {
  if (!maps.has(file)) {
    const mapFile = `${file}.map`;
    maps.set(file, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : undefined);
  }
  return maps.get(file);
}

/** src/file.ts:line for a position in dist/, else the shortened script URL and line. */
function location(url, line, column, root) {
  if (url === '') return '';
  if (url.startsWith('node:')) return `${url}:${line + 1}`;
  let file = url;
  try { file = url.startsWith('file:') ? fileURLToPath(url) : url; } catch { /* keep the URL */ }
  if (file.includes(`${root}/dist/`)) {
    const entry = sourceMapFor(file)?.findEntry(line, column);
    if (entry?.originalSource) {
      // The bundle maps to src/*.ts and to the dependencies' own files under node_modules/.
      const src = entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : join(dirname(file), entry.originalSource);
      const dep = src.lastIndexOf('node_modules/');
      return dep >= 0 ? `${src.slice(dep + 13)}:${entry.originalLine + 1}` : `${relative(root, src)}:${entry.originalLine + 1}`;
    }
    return `${relative(root, file)}:${line + 1}`;
  }
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) return `${file.slice(nm + 13)}:${line + 1}`;
  return `${basename(file)}:${line + 1}`;
}

/** The area a function belongs to, for the summary; where is its location() (source-mapped). */
function area(url, name, where) {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8/native (program)';
  if (url === '') return 'native (C++ bindings: TLS, crypto, sockets, HTTP parser)';
  if (where.startsWith('src/')) return 'proxy (src/)';
  if (url.includes('/dist/')) return `dependency: ${/^((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ?? 'bundled'}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `dependency: ${nm[1]}`;
  if (url.startsWith('node:internal/deps/undici')) return 'node internal: bundled undici';
  const internal = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
  if (internal) {
    const m = internal[1];
    if (['streams', 'stream'].includes(m)) return 'node: streams';
    if (['tls', '_tls_wrap', '_tls_common'].includes(m)) return 'node: tls';
    if (['http', '_http_server', '_http_outgoing', '_http_incoming', '_http_common'].includes(m)) return 'node: http';
    if (['net', 'stream_base_commons'].includes(m)) return 'node: net';
    if (['timers', 'process'].includes(m)) return 'node: timers/ticks';
    return `node: ${m}`;
  }
  return 'other';
}

/**
 * Self time by function and by area, in ms and % of the non-idle samples. window: [from, to] in
 * microseconds of CLOCK_MONOTONIC (V8's profile clock, the same as process.hrtime), so start-up is left out.
 */
export function summariseProfile(file, root, top = 15, window = undefined) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (window !== undefined && (t < window[0] || t > window[1])) continue;
    const dt = prof.timeDeltas[i + 1] ?? 0; // the delta after a sample is the time it stood for
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const areas = new Map();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const { functionName, url, lineNumber, columnNumber } = n.callFrame;
    if (functionName === '(idle)') { idle += us; continue; }
    busy += us;
    const name = functionName || '(anonymous)';
    const where = location(url, lineNumber, columnNumber, root);
    const key = `${name}\t${where}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const a = area(url, functionName, where);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const pct = (us) => (100 * us) / busy;
  const ranked = [...fns].sort((a, b) => b[1] - a[1]).map(([k, us]) => {
    const [name, where] = k.split('\t');
    return { name, where, ms: us / 1000, pct: pct(us) };
  });
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    functions: ranked.slice(0, top),
    ownFunctions: ranked.filter((f) => f.where.startsWith('src/')).slice(0, top),
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: us / 1000, pct: pct(us) })),
  };
}
