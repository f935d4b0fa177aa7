// createProxy(config, {observer}) → listeners wired to the one request path.
// The forward listener takes absolute-form requests and CONNECT; each reverse route has its own.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BlockList, isIPv6, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createLeafIssuer, loadOrCreateCa, type LeafIssuer, type LoadedCa } from './ca.js';
import { nameConstraintDomains } from './catalogue.js';
import { applyServerLimits, applyServerTimeouts, serverOptions, type Config, type ListenAddress } from './config.js';
import { ProxyError, handleClientError, writeRawError } from './errors.js';
import { guardObserver, type ProxyObserver } from './events.js';
import { handleRequest, type RequestContext, type Runtime } from './forward.js';
import { createInterceptor } from './intercept.js';
import { handleConnect } from './tunnel.js';
import { formatAuthority } from './target.js';
import { createUpstream, reuseOrCreateUpstream } from './upstream.js';

export interface ListeningAddresses {
  readonly proxy: AddressInfo;
  readonly reverse: readonly AddressInfo[];
}

export interface ProxyServer {
  /** Opens the forward listener and every reverse route. */
  listen(): Promise<ListeningAddresses>;
  /** Serves new requests with another config (listen addresses and CA stay as they are). */
  reload(config: Config): void;
  /** Stops accepting, lets in-flight exchanges finish for up to timeoutMs, then closes everything. */
  drain(timeoutMs: number): Promise<void>;
  /** Closes everything now. */
  close(): Promise<void>;
  readonly ca: LoadedCa;
  readonly runtime: Runtime;
  /** Connections each listener accepts at once (limits.maxConnections or its default). */
  readonly maxConnections: number;
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

/** Builds the client allow-list from CIDRs (access.allowedClients). */
function allowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.split('/') as [string, string];
    list.addSubnet(addr, Number(bits), isIPv6(addr) ? 'ipv6' : 'ipv4');
  }
  return list;
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

/** Loads (or creates) the interception CA and builds the leaf issuer for a config. */
export async function loadInterceptionCa(config: Config, observer: ProxyObserver): Promise<{ ca: LoadedCa; issuer: LeafIssuer }> {
  const ca = await loadOrCreateCa({
    ...(config.ca.cert !== undefined ? { certFile: config.ca.cert, keyFile: config.ca.key } : {}),
    stateDir: config.stateDir,
    permittedDomains: nameConstraintDomains(config.policy.catalogue),
  });
  const issuer = await createLeafIssuer(ca.ca, { onIssued: (host) => observer.certificateIssued?.(host) });
  return { ca, issuer };
}

/** Creates the proxy for a config; nothing listens until listen(). */
export async function createProxy(config: Config, opts: { observer?: ProxyObserver } = {}): Promise<ProxyServer> {
  // The one guard: every event the proxy reports goes through it, so no observer fault reaches a request.
  const observer = guardObserver(opts.observer ?? {});
  const { ca, issuer } = await loadInterceptionCa(config, observer);
  let runtime: Runtime = { config, upstream: createUpstream(config), observer };
  let allowed = allowList(config.allowedClients);
  let draining = false;

  const inFlight = new Set<ServerResponse>();
  /** Exchanges not yet ended, per client connection (a listener's socket or an intercepted TLS socket). */
  const perSocket = new WeakMap<object, Set<ServerResponse>>();
  /** Connections that sent bytes the parser could not read behind an exchange: closed once it ends. */
  const refusing = new WeakSet<object>();
  const servers: Server[] = [];
  const fallbackMaxConnections = defaultMaxConnections();
  let maxConnections = config.limits.maxConnections ?? fallbackMaxConnections;
  const interceptor = createInterceptor({
    issuer: () => issuer,
    timeouts: config.timeouts,
    limits: config.limits,
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
    res.once('close', () => {
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
    const server = createServer(serverOptions(config.timeouts), (req, res) => {
      if (denied.has(req.socket)) return void req.socket.destroy();
      track(res);
      onRequest(req, res);
    });
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
      if (!clientAllowed(allowed, socket)) {
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
    applyServerLimits(server, config.limits);
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
    get runtime() {
      return runtime;
    },
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
      const nextAllowed = allowList(next.allowedClients);
      maxConnections = next.limits.maxConnections ?? fallbackMaxConnections;
      runtime = { config: next, upstream: reuseOrCreateUpstream(next, old), observer };
      allowed = nextAllowed;
      for (const s of servers) {
        applyServerTimeouts(s, next.timeouts);
        applyServerLimits(s, next.limits);
        s.maxConnections = maxConnections;
      }
      interceptor.setTimeouts(next.timeouts);
      interceptor.setLimits(next.limits);
      if (next.reverse.length === config.reverse.length) reverseCtx = reverseContexts(next);
      // A replaced outbound side serves its in-flight requests for up to the drain timeout.
      if (runtime.upstream !== old) setTimeout(() => void old.close(), next.timeouts.drain).unref();
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
