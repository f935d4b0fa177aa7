// The admin listener: /metrics for Prometheus, /livez /readyz /healthz for orchestrators.
// A plain node:http server on its own port, separate from the proxy listeners, reading only the
// injected Registry and two flags.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pino from 'pino';
import type { Registry } from 'prom-client';

export interface AdminServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
  /** True once the proxy listeners accept connections. */
  setReady(ready: boolean): void;
  /** True from SIGTERM on: readiness fails so load balancers stop sending new work. */
  setDraining(draining: boolean): void;
}

/** An admin route's answer. */
export interface RouteResponse {
  readonly status: number;
  readonly type: string;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

/** One extra admin route (GET and HEAD): the query string in, a whole response out. */
export type AdminRoute = (query: URLSearchParams) => Promise<RouteResponse>;

export interface AdminOptions {
  registry: Registry;
  logger?: pino.Logger;
  /** More GET routes by exact path (/usage, /usage/limits, /report …); the built-in ones cannot be replaced. */
  routes?: ReadonlyMap<string, AdminRoute>;
  /** Connections the admin listener holds at once (default ADMIN_MAX_CONNECTIONS); later ones are closed unread. */
  maxConnections?: number;
}

/**
 * Connections the admin listener accepts at once: Prometheus keeps one per scraper, probes open one
 * each; a client that opens hundreds (a broken scraper, a port scan) must not use up the file
 * descriptors the proxy listeners need.
 */
export const ADMIN_MAX_CONNECTIONS = 64;

type ReadyStatus = 'starting' | 'ready' | 'draining';

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/** Path of a request target: origin-form or absolute-form, query dropped; undefined when unparseable. */
export function targetPath(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  if (url.startsWith('/')) return url.split('?', 1)[0];
  try {
    return new URL(url).pathname; // absolute-form, RFC 9112 §3.2.2
  } catch {
    return undefined;
  }
}

/** The query string of a request target (origin-form or absolute-form); empty when there is none or it is unparseable. */
export function queryOf(url: string | undefined): URLSearchParams {
  if (url === undefined) return new URLSearchParams();
  try {
    return new URL(url, 'http://admin.invalid').searchParams;
  } catch {
    return new URLSearchParams();
  }
}

/** Creates the admin HTTP server (not yet listening). */
export function createAdminServer(opts: AdminOptions): AdminServer {
  const { registry, logger } = opts;
  const extraRoutes = new Map([...(opts.routes ?? new Map<string, AdminRoute>())].filter(([path]) => !ROUTES.has(path)));
  const known = [...ROUTES, ...extraRoutes.keys()].join(', ');
  const startedAt = Date.now();
  let ready = false;
  let draining = false;
  const readyStatus = (): ReadyStatus => (draining ? 'draining' : ready ? 'ready' : 'starting');

  const send = (res: http.ServerResponse, status: number, type: string, body: string, headers: http.OutgoingHttpHeaders = {}): void => {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      ...headers,
    });
    res.end(body); // Node drops the body of a HEAD response and keeps the Content-Length
  };
  const sendJson = (res: http.ServerResponse, status: number, value: unknown, headers?: http.OutgoingHttpHeaders): void =>
    send(res, status, JSON_TYPE, `${JSON.stringify(value)}\n`, headers);
  const sendError = (res: http.ServerResponse, status: number, code: string, message: string, headers?: http.OutgoingHttpHeaders): void =>
    sendJson(res, status, { error: { code, message } }, headers);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = targetPath(req.url);
    if (path === undefined) return sendError(res, 400, 'BadRequest', 'Malformed request target.');
    const route = ROUTES.has(path) || extraRoutes.has(path) ? path : undefined;
    if (route === undefined) return sendError(res, 404, 'NotFound', `Admin endpoints: ${known}.`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, 405, 'MethodNotAllowed', 'Use GET or HEAD.', { Allow: 'GET, HEAD' });
    }
    const handler = extraRoutes.get(route);
    if (handler !== undefined) {
      const r = await handler(queryOf(req.url));
      return send(res, r.status, r.type, r.body, r.headers);
    }
    switch (route) {
      case '/metrics': {
        // prom-client's text format 0.0.4 with its exact Content-Type: Prometheus 3 refuses a scrape
        // whose Content-Type it cannot parse unless the job sets fallback_scrape_protocol.
        const body = await registry.metrics();
        return send(res, 200, registry.contentType, body);
      }
      case '/livez':
        return send(res, 200, TEXT_TYPE, 'ok\n');
      case '/readyz': {
        const status = readyStatus();
        return sendJson(res, status === 'ready' ? 200 : 503, { status });
      }
      default:
        return sendJson(res, 200, {
          status: 'ok',
          readiness: readyStatus(),
          uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
        });
    }
  };

  const server = http.createServer((req, res) => {
    // The request body is never read; drain it so a keep-alive connection stays usable.
    req.resume();
    handle(req, res).catch((err: unknown) => {
      logger?.error({ err }, 'admin request failed');
      if (!res.headersSent) sendError(res, 500, 'InternalError', 'The admin endpoint failed; see the proxy log.');
      else res.destroy();
    });
  });
  // Scrapes and probes are small and quick; do not let a slow client hold a socket for minutes.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.maxConnections = opts.maxConnections ?? ADMIN_MAX_CONNECTIONS;
  // One warning per episode: 'drop' fires for each refused connection until one is accepted again.
  let refusing = false;
  server.on('drop', () => {
    if (refusing) return;
    refusing = true;
    logger?.warn({ event: 'admin-connections-refused', limit: server.maxConnections },
      `the admin listener holds ${server.maxConnections} connections: new ones are closed until one ends`);
  });
  server.on('connection', () => {
    refusing = false;
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  return {
    listen(port: number, host: string): Promise<AddressInfo> {
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          server.on('error', (err) => logger?.error({ err }, 'admin listener error'));
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections(); // Prometheus keeps its scrape connection alive
        // A half-sent request would hold close() open until headersTimeout; a second is enough grace.
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
    },
    setReady(value: boolean): void {
      ready = value;
    },
    setDraining(value: boolean): void {
      draining = value;
    },
  };
}

const ROUTES: ReadonlySet<string> = new Set(['/metrics', '/livez', '/readyz', '/healthz']);
