// handleRequest: ONE path for plain forward, reverse and intercepted requests.
// Facts in → policy decision → headers → undici dispatch → response streamed back → one event.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { apiLabel, hostKind } from './catalogue.js';
import type { Config } from './config.js';
import { ProxyError, sendError, toProxyError } from './errors.js';
import type { ProxyObserver, RequestAction, RequestMode } from './events.js';
import { buildRequestHeaders, buildResponseHeaders, countHeader, decideHead, getHeader } from './headers.js';
import { decideIdentity, decidePlain, decideRequest, denialText, type Product } from './policy.js';
import { formatAuthority, parseAbsoluteTarget, parseAuthority } from './target.js';
import type { Upstream } from './upstream.js';

/** Responses with a Content-Length up to this size are relayed in one write (fewer TLS records and syscalls). */
const COALESCE_LIMIT = 64 * 1024;

/** What serves requests now; swapped whole on reload, read once per request. */
export interface Runtime {
  readonly config: Config;
  readonly upstream: Upstream;
  readonly observer: ProxyObserver;
}

/** How the request arrived: intercepted and reverse requests have a fixed origin and product. */
export interface RequestContext {
  readonly mode: RequestMode;
  readonly origin?: { readonly scheme: 'http' | 'https'; readonly host: string; readonly port: number };
  readonly product?: Product;
}

const IDENTITY_MESSAGES = {
  'missing-credentials': 'This proxy requires Proxy-Authorization: Basic with a product\'s user name and password',
  'invalid-credentials': 'The proxy credentials are not valid for any configured product',
  'unsupported-scheme': 'Only the Basic scheme is supported for Proxy-Authorization',
} as const;

/** The 407 every identity failure becomes (RFC 9110 §15.5.8 requires Proxy-Authenticate). */
export function identityError(reason: keyof typeof IDENTITY_MESSAGES): ProxyError {
  return new ProxyError('ProxyAuthenticationRequired', IDENTITY_MESSAGES[reason], {
    headers: { 'proxy-authenticate': 'Basic realm="mde-partner-proxy", charset="UTF-8"' },
  });
}

interface Target { scheme: 'http' | 'https'; host: string; port: number; path: string }

/** Works out where a request goes, or the ProxyError that refuses it. */
function resolveTarget(rt: Runtime, ctx: RequestContext, req: IncomingMessage): Target | ProxyError {
  const url = req.url ?? '/';
  const raw = req.rawHeaders;
  const fault = decideHead(raw, rt.config.limits.maxHeaderCount);
  // The rest of a refused head's message is never read: close after the answer.
  if (fault !== undefined) return new ProxyError(fault.code, fault.message, { headers: { connection: 'close' } });
  if (ctx.origin === undefined) {
    const t = parseAbsoluteTarget(url);
    if (t === undefined) {
      return new ProxyError('BadRequest', 'This is a forward proxy: send absolute-form requests (http://host/path) or CONNECT host:443');
    }
    const denied = decidePlain(rt.config.policy, t.host, t.port);
    if (denied !== undefined) return new ProxyError('DestinationDenied', `${formatAuthority(t)} refused: ${denialText(denied.reason, t.port)}`);
    return t;
  }
  const origin = ctx.origin;
  let path = url;
  if (url[0] !== '/') {
    // Absolute-form inside a tunnel or on a reverse route must still name the fixed origin.
    const t = parseAbsoluteTarget(url);
    if (t === undefined || t.host !== origin.host || t.port !== origin.port) {
      return new ProxyError('MisdirectedRequest', `This connection serves only ${formatAuthority(origin)}`);
    }
    path = t.path;
  }
  if (ctx.mode === 'intercept') {
    // RFC 9110 §7.4: a request for another authority on this connection is misdirected (421).
    if (countHeader(raw, 'host') !== 1) return new ProxyError('BadRequest', 'Exactly one Host header is required (RFC 9112 §3.2)');
    const host = parseAuthority(getHeader(raw, 'host')!, origin.port);
    if (host === undefined || host.host !== origin.host || host.port !== origin.port) {
      return new ProxyError('MisdirectedRequest', `This connection was opened for ${formatAuthority(origin)}; the Host header names another authority`);
    }
  }
  return { scheme: origin.scheme, host: origin.host, port: origin.port, path };
}

/** Serves one HTTP request through the policy to its upstream. Never throws. */
export function handleRequest(rt: Runtime, ctx: RequestContext, req: IncomingMessage, res: ServerResponse): void {
  const start = performance.now();
  const { policy } = rt.config;
  const raw = req.rawHeaders;
  const uaCount = countHeader(raw, 'user-agent');
  // Several User-Agent fields are joined, which never parses as a single compliant token.
  const userAgent = uaCount <= 1 ? getHeader(raw, 'user-agent') : raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'user-agent').join(', ');

  let product: Product | undefined = ctx.product;
  let host = ctx.origin?.host ?? '';
  let api = 'other';
  let action: RequestAction | 'passed' = 'passed';
  let reason = 'refused';
  let error: string | undefined;
  let abort: ((err?: Error) => void) | undefined;
  let finished = false;

  res.once('close', () => {
    finished = true;
    const aborted = !res.writableFinished;
    if (aborted) abort?.();
    rt.observer.exchangeEnd?.({
      product: product?.id ?? 'unregistered',
      api, method: req.method ?? '', status: res.headersSent ? res.statusCode : 0, action, reason,
      mode: ctx.mode, host, userAgent, durationMs: performance.now() - start,
      ...(error !== undefined ? { error } : {}),
      ...(aborted ? { aborted } : {}),
    });
  });

  const fail = (err: ProxyError): void => {
    error = err.code;
    sendError(res, err);
  };

  try {
    const target = resolveTarget(rt, ctx, req);
    if (target instanceof ProxyError) return fail(target);
    host = target.host;
    if (product === undefined) {
      const id = decideIdentity(policy, getHeader(raw, 'proxy-authorization'));
      if (id.error !== undefined) {
        reason = id.error;
        return fail(identityError(id.error));
      }
      product = id.product;
    }
    const kind = hostKind(policy.catalogue, target.host);
    const decision = decideRequest(policy, { product, host: target.host, path: target.path, userAgent });
    action = decision.action;
    reason = decision.reason;
    if (action !== 'passed') api = apiLabel(kind, target.path);
    if (action === 'rejected') {
      return fail(new ProxyError('PartnerUserAgentRequired',
        `Calls to Microsoft security APIs must send User-Agent: ${product.userAgent} (${reason.replace(/-/g, ' ')})`, { target: 'User-Agent' }));
    }
    const headers = buildRequestHeaders(raw, decision.userAgent);
    const hasBody = getHeader(raw, 'transfer-encoding') !== undefined || Number(getHeader(raw, 'content-length') ?? 0) > 0;
    const pool = rt.upstream.pool(target.scheme, target.host, target.port);
    // A small response with a known length is held and sent as one write: head and body together.
    let held: { statusCode: number; statusText: string; headers: string[]; chunks: Buffer[] } | undefined;
    const handler: Dispatcher.DispatchHandler = {
      onConnect(abortFn: (err?: Error) => void) {
        abort = abortFn;
        if (finished) abortFn();
      },
      onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string) {
        if (statusCode < 200) return true; // 1xx interim responses are not relayed.
        const headers = buildResponseHeaders(rawHeaders);
        const length = Number(getHeader(headers, 'content-length') ?? NaN);
        if (length <= COALESCE_LIMIT) {
          held = { statusCode, statusText, headers, chunks: [] };
          return true;
        }
        res.writeHead(statusCode, statusText, headers);
        res.on('drain', resume);
        return true;
      },
      onData(chunk: Buffer) {
        if (held !== undefined) {
          held.chunks.push(chunk);
          return true;
        }
        return res.write(chunk);
      },
      onComplete(trailers: Buffer[] | null) {
        if (held !== undefined) {
          res.writeHead(held.statusCode, held.statusText, held.headers);
          res.end(held.chunks.length === 1 ? held.chunks[0] : Buffer.concat(held.chunks));
          return;
        }
        if (trailers && trailers.length > 0 && res.chunkedEncoding) res.addTrailers(buildResponseHeaders(trailers) as unknown as [string, string][]);
        res.end();
      },
      onError(err: Error) {
        if (finished) return;
        const perr = toProxyError(err, `upstream ${formatAuthority(target)}`);
        rt.observer.upstreamError?.(perr.code);
        fail(perr);
      },
    } as unknown as Dispatcher.DispatchHandler;
    pool.dispatch({ path: target.path, method: req.method ?? 'GET', headers, body: hasBody ? req : null }, handler);
  } catch (err) {
    fail(err instanceof ProxyError ? err : new ProxyError('InternalError', `internal error: ${(err as Error).message}`, { cause: err }));
  }
}
