// The pools: one undici Pool per origin, reused across requests and across reloads that leave
// the outbound settings alone. Every outbound connection goes `upstream.resolve` first, then the
// destination check (dns-guard.ts on the addresses DNS returns), then an optional upstream proxy
// (upstream-proxy.ts), then TLS verified against the trust store (trust.ts).
import { connect as netConnect, type Socket } from 'node:net';
import type { Pool as UndiciPool, buildConnector as UndiciBuildConnector } from 'undici';
// undici's index also loads fetch, WebSocket, caches and mocks; the proxy needs only Pool and the
// connector, so it imports those two files directly and starts faster. They are not undici's documented entry points (src/undici-parts.d.ts types them; package.json
// pins undici to one minor; test/unit/undici-parts.test.ts fails if a release moves them).
import PoolClass from 'undici/lib/dispatcher/pool.js';
import buildConnectorFn from 'undici/lib/core/connect.js';
import type { Config } from './config.js';
import { guardedLookup } from './dns-guard.js';
import { ProxyError } from './errors.js';
import { decideDestination, denialText, resolveDestination } from './policy.js';
import { classifyHost } from './address.js';
import { formatAuthority } from './target.js';
import { reuseOrCreateTrust, type UpstreamTrust } from './trust.js';
import { connectViaProxy, matchesNoProxy } from './upstream-proxy.js';

const Pool: typeof UndiciPool = PoolClass;
type Pool = UndiciPool;
const buildConnector: typeof UndiciBuildConnector = buildConnectorFn;

const MAX_POOLS = 256;

export interface Upstream {
  /** The pool for an origin (`https://host:port` or `http://host:port`), created on first use. */
  pool(scheme: 'http' | 'https', host: string, port: number): Pool;
  /** A raw TCP connection to host:port for a blind tunnel. */
  dial(host: string, port: number): Promise<Socket>;
  /** Closes every pool after in-flight requests finish. */
  close(): Promise<void>;
  /** The settings this side was built from (see outboundKey); equal keys mean it can keep serving. */
  readonly key: string;
  readonly trust: UpstreamTrust;
}

/**
 * Everything the outbound side depends on: the destination checks (private destinations,
 * `upstream.resolve`), the upstream proxy, the extra roots and the outbound timeouts. A reload
 * that changes none of these keeps the pools, their connections and TLS sessions.
 */
export function outboundKey(config: Config): string {
  const { policy, timeouts, upstream } = config;
  return JSON.stringify({
    allowPrivate: policy.allowPrivateDestinations,
    resolve: [...policy.resolve],
    proxy: upstream.proxy ?? null,
    noProxy: upstream.noProxy,
    ca: upstream.ca,
    timeouts: [timeouts.connect, timeouts.upstream, timeouts.idle],
  });
}

/** The outbound side for a config: previous itself when outboundKey is unchanged, else a new one that reuses previous's trust store when it can. */
export function reuseOrCreateUpstream(config: Config, previous: Upstream): Upstream {
  return previous.key === outboundKey(config) ? previous : createUpstream(config, previous.trust);
}

/** Creates the outbound side for one Config; the trust store is taken from previousTrust when built from the same roots. */
export function createUpstream(config: Config, previousTrust?: UpstreamTrust): Upstream {
  const policy = config.policy;
  const { timeouts } = config;
  const trust = reuseOrCreateTrust(config.upstream.ca, previousTrust);
  const secureContext = trust.context;
  const guarded = guardedLookup(policy.allowPrivateDestinations);
  const pools = new Map<string, Pool>();
  const proxy = config.upstream.proxy;

  // Two connectors: names resolved by DNS pass the address guard; `upstream.resolve` targets are named by the operator.
  const base = { secureContext, timeout: timeouts.connect, keepAlive: true, maxCachedSessions: 256 };
  const guardedConnector = buildConnector({ ...base, lookup: guarded });
  const plainConnector = buildConnector(base);

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
        return connector({ ...opts, hostname: dest.host, host: formatAuthority(dest), port: String(dest.port), servername }, callback);
      }
      connectViaProxy(proxy!, formatAuthority(dest), timeouts.connect).then(
        (socket) => {
          if (opts.protocol !== 'https:') return callback(null, socket);
          connector({ ...opts, servername, httpSocket: socket }, callback);
        },
        (err: Error) => callback(err, null),
      );
    });

  return {
    key: outboundKey(config),
    trust,
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
