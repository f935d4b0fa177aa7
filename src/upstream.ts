// Every outbound connection: `upstream.resolve` first, then the destination check on the address
// DNS returns, then an optional upstream proxy (CONNECT), then TLS that verifies the server
// against the system trust plus `upstream.ca`. One undici Pool per origin, reused across requests.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { connect as netConnect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import type { Pool as UndiciPool, buildConnector as UndiciBuildConnector } from 'undici';
// undici's index also loads fetch, WebSocket, caches and mocks; the proxy needs only Pool and the
// connector. Importing those two files directly takes ~60 ms instead of ~150-240 ms at start-up.
// They are not undici's documented entry points (src/undici-parts.d.ts types them; package.json
// pins undici to one minor; test/unit/undici-parts.test.ts fails if a release moves them).
import PoolClass from 'undici/lib/dispatcher/pool.js';
import buildConnectorFn from 'undici/lib/core/connect.js';
import type { Config } from './config.js';
import { ProxyError } from './errors.js';
import { decideDestination, denialText, resolveDestination } from './policy.js';
import { classifyHost, isRestricted, formatAuthority } from './target.js';

const Pool: typeof UndiciPool = PoolClass;
type Pool = UndiciPool;
const buildConnector: typeof UndiciBuildConnector = buildConnectorFn;

/** Debian's system bundle; Node's own store is Mozilla's, so the system trust is added to it. */
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const MAX_POOLS = 256;

export interface Upstream {
  /** The pool for an origin (`https://host:port` or `http://host:port`), created on first use. */
  pool(scheme: 'http' | 'https', host: string, port: number): Pool;
  /** A raw TCP connection to host:port for a blind tunnel. */
  dial(host: string, port: number): Promise<Socket>;
  /** Closes every pool after in-flight requests finish. */
  close(): Promise<void>;
}

function readSystemRoots(): string[] {
  try {
    const text = readFileSync(SYSTEM_BUNDLE, 'utf8');
    return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  } catch {
    return [];
  }
}

/** The trust for upstream TLS, built once: Node's roots, the system bundle and `upstream.ca`. */
export function createUpstreamTrust(extraPem: readonly string[]): SecureContext {
  // Most system roots are Node's too: parsing each root once saves ~40 ms of start-up (bench).
  const body = (pem: string): string => pem.replace(/-----[A-Z ]+-----|\s+/g, '');
  const known = new Set(rootCertificates.map(body));
  const extra = readSystemRoots().filter((pem) => !known.has(body(pem)));
  return createSecureContext({ ca: [...rootCertificates, ...extra, ...extraPem], minVersion: 'TLSv1.2' });
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A dns.lookup that refuses restricted addresses, so a public name cannot lead to a private host. */
function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const allowed = allowPrivate ? addresses : addresses.filter((a) => !isRestricted(classifyHost(a.address)));
      if (allowed.length === 0) {
        const denied = Object.assign(new Error(`${hostname} resolves only to restricted addresses`), { code: 'EDESTDENIED' });
        return callback(denied, '');
      }
      if (options.all) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

function matchesNoProxy(noProxy: readonly string[], host: string): boolean {
  return noProxy.some((p) => {
    const n = p.toLowerCase().replace(/^\*?\./, '');
    return n === '*' || host === n || host.endsWith(`.${n}`);
  });
}

/** Opens a CONNECT tunnel through the upstream proxy (RFC 9110 §9.3.6) and returns the raw socket. */
function connectViaProxy(proxy: { host: string; port: number }, target: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: proxy.host, port: proxy.port });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`upstream proxy did not answer CONNECT ${target}`), { code: 'ETIMEDOUT' })), timeoutMs);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buffered.length > 16384) socket.destroy(Object.assign(new Error('upstream proxy response head too large'), { code: 'UND_ERR_INFO' }));
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buffered.subarray(0, end).toString('latin1'))?.[1];
      if (status === undefined || status[0] !== '2') {
        socket.destroy();
        reject(Object.assign(new Error(`upstream proxy refused CONNECT ${target} with ${status ?? 'a malformed response'}`), { code: 'EUPSTREAMPROXY' }));
        return;
      }
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.on('data', onData);
    socket.once('error', onError);
    // A proxy that closes without an error or an answer must not leave the request waiting (a settled promise ignores this).
    socket.once('close', () => onError(Object.assign(new Error(`upstream proxy closed the connection before answering CONNECT ${target}`), { code: 'ECONNRESET' })));
    socket.once('connect', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
  });
}

/** Creates the outbound side for one Config. */
export function createUpstream(config: Config): Upstream {
  const policy = config.policy;
  const { timeouts } = config;
  const secureContext = createUpstreamTrust(config.upstream.ca);
  const guarded = guardedLookup(policy.allowPrivateDestinations);
  const pools = new Map<string, Pool>();
  const proxy = config.upstream.proxy;

  // Two connectors: names resolved by DNS pass the address guard; `upstream.resolve` targets are named by the operator.
  const base = { secureContext, timeout: timeouts.connect, keepAlive: true, maxCachedSessions: 256 };
  const guardedConnector = buildConnector({ ...base, lookup: guarded } as UndiciBuildConnector.BuildOptions);
  const plainConnector = buildConnector(base as UndiciBuildConnector.BuildOptions);

  const refuseDestination = (host: string, port: number): ProxyError | undefined => {
    const destination = decideDestination(policy, host, port);
    return destination.action === 'allow' ? undefined : new ProxyError('DestinationDenied', `${formatAuthority({ host, port })} refused: ${denialText(destination.reason, port)}`);
  };

  const viaProxy = (host: string): boolean => proxy !== undefined && !matchesNoProxy(config.upstream.noProxy, host);

  const connectFor = (host: string, port: number): UndiciBuildConnector.connector =>
    ((opts, callback) => {
      const refused = refuseDestination(host, port);
      if (refused) return callback(refused, null);
      const dest = resolveDestination(policy, host, port);
      const connector = dest.overridden ? plainConnector : guardedConnector;
      const servername = classifyHost(host) === 'name' ? host : undefined;
      if (!viaProxy(host)) {
        return connector({ ...opts, hostname: dest.host, host: formatAuthority(dest), port: String(dest.port), servername } as UndiciBuildConnector.Options, callback);
      }
      connectViaProxy(proxy!, formatAuthority(dest), timeouts.connect).then(
        (socket) => {
          if (opts.protocol !== 'https:') return callback(null, socket);
          connector({ ...opts, servername, httpSocket: socket } as UndiciBuildConnector.Options, callback);
        },
        (err: Error) => callback(err, null),
      );
    }) as UndiciBuildConnector.connector;

  return {
    pool(scheme, host, port) {
      const key = `${scheme}://${formatAuthority({ host, port })}`;
      let pool = pools.get(key);
      if (pool !== undefined) return pool;
      if (pools.size >= MAX_POOLS) {
        const [oldestKey, oldest] = pools.entries().next().value as [string, Pool];
        pools.delete(oldestKey);
        void oldest.close();
      }
      pool = new Pool(key, {
        connect: connectFor(host, port),
        headersTimeout: timeouts.upstream,
        bodyTimeout: timeouts.upstream,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: timeouts.idle,
      });
      pools.set(key, pool);
      return pool;
    },

    async dial(host, port) {
      const refused = refuseDestination(host, port);
      if (refused) throw refused;
      const dest = resolveDestination(policy, host, port);
      if (viaProxy(host)) return connectViaProxy(proxy!, formatAuthority(dest), timeouts.connect);
      return new Promise<Socket>((resolve, reject) => {
        const socket = netConnect({ host: dest.host, port: dest.port, ...(dest.overridden ? {} : { lookup: guarded }) });
        const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect to ${formatAuthority(dest)} timed out`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeouts.connect);
        const onError = (err: Error): void => {
          clearTimeout(timer);
          reject(err);
        };
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.off('error', onError);
          socket.setNoDelay(true);
          resolve(socket);
        });
        socket.once('error', onError);
      });
    },

    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled(all.map((p) => p.close()));
    },
  };
}
