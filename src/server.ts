// createProxy(config, {observer}) → listeners wired to the one request path.
// The forward listener takes absolute-form requests and CONNECT; each reverse route has its own.
// runProxy(config, …) is the whole running proxy of `start`: observers, admin, reload and drain.
import { X509Certificate } from 'node:crypto';
import { readFileSync, watch } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { isIPv6, type BlockList, type AddressInfo, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { createAdminServer } from './admin.js';
import { boundUrl, exposureWarning } from './banner.js';
import { caPermits, createLeafIssuer, loadOrCreateCa, type LoadedCa } from './ca.js';
import { API_LABELS, nameConstraintDomains } from './catalogue.js';
import { proxyUrl, trustSteps, writeTrustBundle } from './client-setup.js';
import type { Config, ListenAddress, Limits, Timeouts } from './config.js';
import { ProxyError, handleClientError, writeRawError } from './errors.js';
import { combineObservers, guardObserver, type ProxyObserver } from './events.js';
import { createLogObserver, createLogger, flushLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { formatAuthority } from './target.js';
import type { RequestContext, Runtime } from './context.js';
import { handleRequest } from './forward.js';
import { createInterceptor } from './intercept.js';
import { handleConnect } from './tunnel.js';
import { createUpstream, reuseOrCreateUpstream } from './upstream.js';
import { usageRoutes } from './usage/endpoints.js';
import { createReportRoute, staticFacts } from './usage/evidence.js';
import { storeFactory } from './usage/open-store.js';
import { createRecorder } from './usage/recorder.js';
import { describeStore } from './usage/usage-config.js';

export interface ListeningAddresses {
  readonly proxy: AddressInfo;
  readonly reverse: readonly AddressInfo[];
}

export interface ProxyServer {
  /** Opens the forward listener and every reverse route. */
  listen(): Promise<ListeningAddresses>;
  /** Serves new requests with another config (listen addresses and CA stay as they are); says what became of the outbound side. */
  reload(config: Config): ReloadEffect;
  /** Stops accepting, lets in-flight exchanges finish for up to timeoutMs, then closes everything. */
  drain(timeoutMs: number): Promise<void>;
  /** Closes everything now. */
  close(): Promise<void>;
  readonly ca: LoadedCa;
  /** Connections each listener accepts at once (limits.maxConnections or its default). */
  readonly maxConnections: number;
}

/**
 * What a reload did to the outbound side. `kept` pools go on serving with their open connections and
 * TLS sessions (nothing the outbound side depends on changed); a `kept` trust store was built from
 * the same upstream.ca files.
 */
export interface ReloadEffect {
  readonly pools: 'kept' | 'rebuilt';
  readonly trustStore: 'kept' | 'rebuilt';
}

/** Descriptors kept for listeners, the CA, logs and the admin side before halving the rest. */
const RESERVED_DESCRIPTORS = 128;
/** The cap when the descriptor limit is unknown or unlimited. */
const FALLBACK_MAX_CONNECTIONS = 4096;
const MIN_MAX_CONNECTIONS = 64;

/**
 * The default limits.maxConnections from the soft "Max open files" of /proc/self/limits (Linux):
 * each proxied connection holds two descriptors (client and upstream), so half of what is left
 * after a reserve. 4096 where the limit is unknown or unlimited.
 */
export function defaultMaxConnections(limitsText?: string): number {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return FALLBACK_MAX_CONNECTIONS;
    }
  }
  const soft = /^Max open files\s+(\d+)\s/m.exec(text)?.[1];
  if (soft === undefined) return FALLBACK_MAX_CONNECTIONS;
  return Math.max(MIN_MAX_CONNECTIONS, Math.floor((Number(soft) - RESERVED_DESCRIPTORS) / 2));
}

/**
 * node:http server options for client connections: keep-alive idle from `timeouts.idle`, the
 * request head bounded by `timeouts.headers` (408), no whole-request limit (long uploads and
 * slow API calls are bounded by the upstream timeouts), checked every second. A missing Host is
 * refused by handleRequest, not by Node, whose bare 400 has neither the JSON body nor Proxy-Status.
 */
export function serverOptions(t: Timeouts): ServerOptions {
  return { keepAliveTimeout: t.idle, headersTimeout: t.headers, requestTimeout: 0, connectionsCheckingInterval: Math.min(1000, t.headers), requireHostHeader: false };
}

/**
 * The config's timeouts and head limits on a server, at start and on reload (Node reads them per
 * connection and per check). The parser keeps one field past maxHeaderCount, so a cut list is seen
 * as too long and refused, never forwarded.
 */
export function applyServerSettings(server: Server, c: { readonly timeouts: Timeouts; readonly limits: Limits }): void {
  server.keepAliveTimeout = c.timeouts.idle;
  server.headersTimeout = c.timeouts.headers;
  server.maxHeadersCount = c.limits.maxHeaderCount + 1;
  (server as Server & { maxHeaderSize: number }).maxHeaderSize = c.limits.maxHeaderBytes;
}

function clientAllowed(list: BlockList, socket: Socket): boolean {
  const addr = socket.remoteAddress;
  if (addr === undefined) return false;
  if (isIPv6(addr)) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
    return mapped ? list.check(mapped[1]!, 'ipv4') : list.check(addr, 'ipv6');
  }
  return list.check(addr, 'ipv4');
}

function listenOn(server: Server, at: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      // Accept failures (EMFILE under load) must not end the process: warn with the cause and go on.
      server.on('error', (err: NodeJS.ErrnoException) => process.emitWarning(`listener ${at.host}:${at.port}: ${err.code ?? err.message}`, 'ListenerError'));
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Loads the interception CA a config names (ca.cert/ca.key), or loads or creates the one under its state directory. */
export function loadInterceptionCa(config: Config): Promise<LoadedCa> {
  return loadOrCreateCa({
    ...(config.ca.cert !== undefined ? { certFile: config.ca.cert, keyFile: config.ca.key } : {}),
    stateDir: config.stateDir,
    permittedDomains: nameConstraintDomains(config.policy.catalogue),
  });
}

/** Creates the proxy for a config; nothing listens until listen(). */
export async function createProxy(config: Config, opts: { observer?: ProxyObserver } = {}): Promise<ProxyServer> {
  // The one guard: every event the proxy reports goes through it, so no observer fault reaches a request.
  const observer = guardObserver(opts.observer ?? {});
  const ca = await loadInterceptionCa(config);
  const issuer = await createLeafIssuer(ca.ca, { onIssued: (host) => observer.certificateIssued?.(host) });
  let runtime: Runtime = { config, upstream: createUpstream(config), observer };
  let draining = false;

  const inFlight = new Set<ServerResponse>();
  /** Exchanges not yet ended, per client connection (a listener's socket or an intercepted TLS socket). */
  const perSocket = new WeakMap<object, Set<ServerResponse>>();
  /** Connections that sent bytes the parser could not read behind an exchange: closed once it ends. */
  const refusing = new WeakSet<object>();
  const servers: Server[] = [];
  // The one internal server every intercepted connection is fed to; it never listens.
  const internal = createServer(serverOptions(config.timeouts));
  applyServerSettings(internal, config);
  const fallbackMaxConnections = defaultMaxConnections();
  let maxConnections = config.limits.maxConnections ?? fallbackMaxConnections;
  const interceptor = createInterceptor({
    server: internal,
    issuer: () => issuer,
    onRequest: (ctx, req, res) => {
      track(res);
      handleRequest(runtime, ctx, req, res);
    },
    onClientError: (err, socket) => clientError(err, socket),
  });
  const closeIdle = (): void => {
    for (const s of servers) s.closeIdleConnections();
    interceptor.closeIdle();
  };
  /** Every exchange on every listener: during a drain it says Connection: close and idle connections end as it finishes. */
  const track = (res: ServerResponse): void => {
    if (draining) res.shouldKeepAlive = false;
    inFlight.add(res);
    const socket = res.req.socket;
    let open = perSocket.get(socket);
    if (open === undefined) perSocket.set(socket, (open = new Set()));
    open.add(res);
    if (refusing.has(socket)) res.shouldKeepAlive = false;
    // 'close' is emitted once per response.
    res.on('close', () => {
      inFlight.delete(res);
      open.delete(res);
      // A plain tunnel's stream is a Duplex without destroySoon: end it, as Node itself does.
      if (open.size === 0 && refusing.has(socket)) {
        const s = socket as Duplex & { destroySoon?: () => void };
        if (typeof s.destroySoon === 'function') s.destroySoon();
        else s.end();
      }
      if (draining) setImmediate(closeIdle);
    });
  };
  /**
   * Bytes the parser cannot read. With no exchange open on the connection: the 400/408/431 answer.
   * Behind exchanges whose requests arrived whole: those are answered (with Connection: close if not
   * yet begun), nothing is written for the bad bytes, and the connection closes after the last one,
   * so a raw error never lands inside a body. A request cut by the error is never completed upstream:
   * the connection is destroyed, which aborts it.
   */
  const clientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const open = perSocket.get(socket);
    if (open === undefined || open.size === 0) return handleClientError(err, socket);
    refusing.add(socket);
    for (const res of open) {
      if (!res.req.complete) return void socket.destroy();
      if (!res.headersSent) res.shouldKeepAlive = false;
    }
  };
  const denied = new WeakSet<object>();
  const connectSockets = new Set<Duplex>();
  const makeServer = (onRequest: (req: IncomingMessage, res: ServerResponse) => void): Server => {
    const serve = (req: IncomingMessage, res: ServerResponse): void => {
      if (denied.has(req.socket)) return void req.socket.destroy();
      track(res);
      onRequest(req, res);
    };
    const server = createServer(serverOptions(config.timeouts), serve);
    // An Expect other than 100-continue comes here instead of 'request'; handleRequest answers it (417).
    server.on('checkExpectation', serve);
    // Past maxConnections Node closes a new connection at once and emits 'drop' (nothing is read from it).
    server.maxConnections = maxConnections;
    let full = false;
    server.on('drop', () => {
      const at = server.address() as AddressInfo | null;
      observer.connectionRefused?.({ listener: at ? formatAuthority({ host: at.address, port: at.port }) : '?', limit: server.maxConnections, firstInEpisode: !full });
      full = true;
    });
    server.on('connection', (socket: Socket) => {
      socket.once('close', () => (full = false));
      if (!clientAllowed(runtime.config.clientAllowList, socket)) {
        // The HTTP parser is already attached: mark the socket so no request it carries is served.
        denied.add(socket);
        writeRawError(socket, new ProxyError('ClientDenied', `Client ${socket.remoteAddress ?? '?'} is not in access.allowedClients`));
        socket.destroySoon();
        return;
      }
      socket.setNoDelay(true);
      observer.connectionOpen?.();
      socket.once('close', () => observer.connectionClose?.());
    });
    server.on('clientError', clientError);
    applyServerSettings(server, config);
    servers.push(server);
    return server;
  };

  const forwardCtx: RequestContext = { mode: 'forward' };
  const forward = makeServer((req, res) => handleRequest(runtime, forwardCtx, req, res));
  forward.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (denied.has(socket)) return void socket.destroy();
    // After 'connect' the HTTP server no longer tracks the socket: keep it so close and drain can end it.
    connectSockets.add(socket);
    socket.once('close', () => connectSockets.delete(socket));
    if (draining) return writeRawError(socket, new ProxyError('ServiceUnavailable', 'The proxy is shutting down'));
    handleConnect(runtime, interceptor, req, socket, head);
  });
  // Reverse contexts are rebuilt on reload so a changed product applies to the next request.
  const reverseContexts = (c: Config): RequestContext[] =>
    c.reverse.map((r) => ({ mode: 'reverse', origin: { scheme: 'https', host: r.upstream.host, port: r.upstream.port }, product: r.product }));
  let reverseCtx = reverseContexts(config);
  const reverse = config.reverse.map((route, i) => ({ route, server: makeServer((req, res) => handleRequest(runtime, reverseCtx[i]!, req, res)) }));
  // A reverse route is an origin, not a proxy: CONNECT gets 405 (RFC 9110 §15.5.6 requires Allow).
  for (const { server } of reverse) {
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      if (denied.has(socket)) return void socket.destroy();
      socket.on('error', () => socket.destroy());
      writeRawError(socket, new ProxyError('MethodNotAllowed', 'CONNECT is not served on a reverse route: send the request itself (GET /api/…)', {
        headers: { Allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
      }));
    });
  }

  const closeServers = (): Promise<void> =>
    Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())))).then(() => undefined);

  return {
    ca,
    get maxConnections() {
      return maxConnections;
    },
    async listen() {
      const proxy = await listenOn(forward, config.listen);
      const rev: AddressInfo[] = [];
      for (const r of reverse) rev.push(await listenOn(r.server, r.route.listen));
      return { proxy, reverse: rev };
    },
    reload(next) {
      const old = runtime.upstream;
      maxConnections = next.limits.maxConnections ?? fallbackMaxConnections;
      runtime = { config: next, upstream: reuseOrCreateUpstream(next, old), observer };
      for (const s of servers) s.maxConnections = maxConnections;
      for (const s of [...servers, internal]) applyServerSettings(s, next);
      // Each running reverse listener takes the new route with its listen address, wherever the list puts it;
      // a listener whose address is no longer configured keeps its route until the restart the reload warns about.
      const nextCtx = reverseContexts(next);
      reverseCtx = config.reverse.map((route, i) => {
        const at = formatAuthority(route.listen);
        const j = next.reverse.findIndex((r) => formatAuthority(r.listen) === at);
        return j >= 0 ? nextCtx[j]! : reverseCtx[i]!;
      });
      // A replaced outbound side serves its in-flight requests for up to the drain timeout.
      if (runtime.upstream !== old) setTimeout(() => void old.close(), next.timeouts.drain).unref();
      return { pools: runtime.upstream === old ? 'kept' : 'rebuilt', trustStore: runtime.upstream.trust === old.trust ? 'kept' : 'rebuilt' };
    },
    async drain(timeoutMs) {
      draining = true;
      // Responses not yet begun say Connection: close; the others' connections end when they finish.
      for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
      const closed = closeServers();
      closeIdle();
      const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
      await Promise.race([closed, timer]);
      for (const s of servers) s.closeAllConnections();
      interceptor.closeAll();
      for (const socket of connectSockets) socket.destroy();
      await runtime.upstream.close();
    },
    async close() {
      draining = true;
      for (const s of servers) s.closeAllConnections();
      interceptor.closeAll();
      for (const socket of connectSockets) socket.destroy();
      await closeServers();
      await runtime.upstream.close();
    },
  };
}

/** What runProxy needs besides the config: the version, how to read the config again, where messages go. */
export interface RunOptions {
  /** The proxy's version, for build_info and the start-up lines. */
  readonly version: string;
  /** Reads the configuration again (the file and the same overrides) for a reload; throws ConfigError. */
  readonly loadConfig: () => Config;
  /** The config file to watch for changes; undefined: reload on request only. */
  readonly watchFile?: string;
  /** One human-readable line for the operator (stderr in the CLI). */
  readonly say: (line: string) => void;
}

/** A running proxy: reload and drain are what SIGHUP and SIGTERM ask for. */
export interface RunningProxy {
  readonly addresses: ListeningAddresses;
  readonly admin: AddressInfo | undefined;
  /** Schedules a reload; SIGHUP and file changes share one debounce, so an edit followed by SIGHUP reloads once. */
  reload(trigger: string): void;
  /** Drains (readiness fails, in-flight exchanges finish within timeouts.drain), closes everything and flushes the log. */
  stop(signal: string): Promise<void>;
  /** Logs that a second signal cut the drain short and flushes the log, within a bounded wait. */
  abandon(signal: string): Promise<void>;
}

/** Names the listener, its address and the cause (EADDRINUSE, EACCES, …) of a failed listen. */
const listenFailure = (what: string) => (e: unknown): never => {
  const x = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = x.address !== undefined && x.port !== undefined ? ` on ${formatAuthority({ host: x.address, port: x.port })}` : '';
  throw new Error(`cannot open the ${what} listener${where}: ${x.code ?? x.message}`, { cause: e });
};

/**
 * Runs the proxy for a config as `mde-partner-proxy start` does: the log and metrics observers, the
 * proxy and admin listeners, the start-up lines, reloads (debounced, the last good config kept on
 * failure) and the drain. Rejects with one line naming the cause when a listener cannot open.
 */
export async function runProxy(config: Config, opts: RunOptions): Promise<RunningProxy> {
  const { say } = opts;
  const logger = createLogger({ level: config.log.level });
  const registry = new Registry();
  const metrics = createMetrics({ registry, products: config.policy.products.map((p) => p.id), apiLabels: API_LABELS, version: opts.version,
    usage: { metricTenants: config.usage.metricTenants, utilisation: (products) => recorder.utilisation(products) } });
  // Usage evidence: counted on the request path in memory, written to the store off it.
  const recorder = createRecorder({ usage: config.usage, createStore: storeFactory(config.usage.store, logger), logger,
    storeName: describeStore(config.usage.store), onStoreError: () => metrics.usageStoreError() });
  const observer = combineObservers(metrics.observer, createLogObserver(logger), recorder.observer);
  if (config.exampleIdentity) {
    const warning = `Using Microsoft's documented EXAMPLE identity ${config.policy.products[0]!.userAgent}: calls will be attributed to Contoso, not to your product. Set --user-agent or products in a config file.`;
    logger.warn({ event: 'example-identity' }, warning);
    say(`WARNING: ${warning}`);
  }
  const proxy = await createProxy(config, { observer });
  metrics.setCaExpiry(new Date(new X509Certificate(proxy.ca.ca.certPem).validTo));
  let current = config;
  const routes = usageRoutes(recorder, { logger });
  routes.set('/report', createReportRoute({ source: recorder, facts: () => staticFacts(current, proxy.ca.ca.certPem, opts.version) }));
  const admin = config.admin === undefined ? undefined : createAdminServer({ registry, logger, routes });
  const addresses = await proxy.listen().catch(listenFailure('proxy'));
  const adminAddress = admin && config.admin ? await admin.listen(config.admin.port, config.admin.host).catch(listenFailure('admin')) : undefined;
  admin?.setReady(true);

  const bundleFile = writeTrustBundle(config.stateDir, proxy.ca.ca.certPem);
  const url = proxyUrl(config, addresses.proxy.port);
  logger.info({ event: 'ready', listen: formatAuthority({ host: addresses.proxy.address, port: addresses.proxy.port }),
    admin: adminAddress ? formatAuthority({ host: adminAddress.address, port: adminAddress.port }) : 'off',
    reverse: addresses.reverse.map((a) => formatAuthority({ host: a.address, port: a.port })), ca: proxy.ca.certFile, caCreated: proxy.ca.created,
    products: config.policy.products.map((p) => p.userAgent), mode: config.policy.mode, config: config.source }, 'mde-partner-proxy ready');
  // The address the socket really binds (0.0.0.0 stays 0.0.0.0); the trust steps below use a URL clients on this host can open.
  const bound = { what: 'proxy', host: addresses.proxy.address, port: addresses.proxy.port };
  say(`mde-partner-proxy ${opts.version} listening on ${boundUrl(bound)} (mode ${config.policy.mode}, ${config.policy.products.length} product(s))`);
  const exposed = exposureWarning([bound, ...addresses.reverse.map((a) => ({ what: 'reverse route', host: a.address, port: a.port }))], config.allowedClients);
  if (exposed !== undefined) {
    logger.warn({ event: 'listener-exposure' }, exposed);
    say(`WARNING: ${exposed}`);
  }
  if (proxy.ca.created) say('Created a new interception CA.');
  if (proxy.ca.setAside !== undefined) {
    const warning = `Found ${proxy.ca.keyFile} without its certificate (an interrupted first start); moved it to ${proxy.ca.setAside} and created a new CA: clients must trust the new ca.pem`;
    logger.warn({ event: 'ca-recovered', setAside: proxy.ca.setAside }, warning);
    say(`WARNING: ${warning}`);
  }
  say(trustSteps({ proxyUrl: url, caFile: proxy.ca.certFile, bundleFile }));
  for (const domain of config.policy.catalogue.extraHosts) {
    const host = domain.replace(/^\*\./, 'x.');
    if (caPermits(proxy.ca.ca.certPem, host)) continue;
    const warning = `The interception CA's name constraints do not cover extra host ${domain}: CONNECTs to it get 500 CaHostNotPermitted. Run \`mde-partner-proxy ca init --force\`, restart, and trust the new CA in clients.`;
    logger.warn({ event: 'ca-constraint' }, warning);
    say(`WARNING: ${warning}`);
  }

  // A bad config is refused; the last good one keeps serving.
  // Reverse listeners are opened at start; a reload gives each the route of its own address (upstream, product).
  const reverseListeners = (c: Config): string => c.reverse.map((r) => formatAuthority(r.listen)).sort().join(' ');
  const adminAt = (c: Config): string => (c.admin === undefined ? 'off' : formatAuthority(c.admin));
  const caFiles = (c: Config): string => JSON.stringify([c.ca.cert, c.ca.key]);
  const reloadNow = (trigger: string): void => {
    try {
      const next = opts.loadConfig();
      if (formatAuthority(next.listen) !== formatAuthority(current.listen) || reverseListeners(next) !== reverseListeners(current)) {
        logger.warn({ event: 'config-reload' }, 'listen addresses or the set of reverse listeners changed: restart to apply them; the rest of the new configuration applies now');
      }
      // The admin listener and the interception CA are opened once, at start: say so rather than report a silent success.
      if (adminAt(next) !== adminAt(current)) logger.warn({ event: 'config-reload' }, 'admin changed: restart to apply it; the admin listener stays on its current address');
      if (caFiles(next) !== caFiles(current)) logger.warn({ event: 'config-reload' }, 'ca changed: restart to apply it; the current interception CA keeps signing');
      const effect = proxy.reload(next);
      metrics.setProducts(next.policy.products.map((p) => p.id));
      recorder.reload(next.usage);
      if (describeStore(next.usage.store) !== describeStore(current.usage.store)) logger.warn({ event: 'config-reload' }, 'usage.store changed: restart to apply it');
      logger.level = next.log.level;
      current = next;
      observer.configReload?.('success');
      logger.info({ event: 'config-reload', trigger, result: 'success', pools: effect.pools, trustStore: effect.trustStore }, 'configuration reloaded');
    } catch (e) {
      observer.configReload?.('failure');
      logger.error({ event: 'config-reload', trigger, result: 'failure', cause: (e as Error).message }, 'configuration refused; the last good one keeps serving');
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const reload = (trigger: string): void => {
    clearTimeout(timer);
    timer = setTimeout(() => reloadNow(trigger), 200);
  };
  if (opts.watchFile !== undefined) {
    try {
      // Watch the directory: editors replace the file and Kubernetes swaps a ConfigMap's ..data link.
      const name = basename(opts.watchFile);
      watch(dirname(opts.watchFile), (_event, file) => {
        if (file !== null && file !== name && file !== '..data') return;
        reload('file-change');
      }).unref();
    } catch (e) {
      logger.warn({ event: 'config-watch', cause: (e as Error).message }, 'cannot watch the config file; use SIGHUP to reload');
    }
  }

  return {
    addresses,
    admin: adminAddress,
    reload,
    async stop(signal) {
      clearTimeout(timer);
      admin?.setDraining(true);
      logger.info({ event: 'drain', signal, timeoutMs: current.timeouts.drain }, 'draining');
      await proxy.drain(current.timeouts.drain);
      // Every exchange has ended: the last counts go to the store before exit (bounded, so a dead store cannot hold the exit).
      await recorder.close(Math.max(1000, Math.min(current.timeouts.drain, 10_000)));
      await admin?.close();
      logger.info({ event: 'stopped' }, 'stopped');
      await flushLogger(logger);
    },
    async abandon(signal) {
      logger.warn({ event: 'stopped', signal }, 'second signal: exiting without waiting for the drain');
      await flushLogger(logger, 500);
    },
  };
}
