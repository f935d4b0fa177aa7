// handleRequest: ONE path for plain forward, reverse and intercepted requests.
// Facts in → policy decision → headers → undici dispatch → response streamed back → one event.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientAddress } from './address.js';
import { apiLabel, hostKind } from './catalogue.js';
import type { RequestContext, Runtime } from './context.js';
import { ProxyError, identityError, sendError, toProxyError } from './errors.js';
import type { RequestAction } from './events.js';
import { buildRequestHeaders, buildResponseHeaders, countHeader, decideHead, getHeader, parseRetryAfter } from './headers.js';
import { decideBinding, decidePlain, decideRequest, denialText, productForApp, type Product } from './policy.js';
import { formatAuthority, parseAbsoluteTarget, parseAuthority } from './target.js';
import { UNKNOWN_ATTRIBUTION, type Attribution } from './attribution.js';
import { createAttributionCache } from './attribution-cache.js';

/** Token attributions of this process, keyed by a digest of the token (attribution-cache.ts). */
const attributions = createAttributionCache();

/** Responses with a Content-Length up to this size are relayed in one write (fewer TLS records and syscalls). */
const COALESCE_LIMIT = 64 * 1024;

interface Target { scheme: 'http' | 'https'; host: string; port: number; path: string }

/** Where a request goes, or the refusal with its fixed reason. */
type TargetDecision =
  | { readonly target: Target; readonly refusal?: undefined }
  | { readonly target?: undefined; readonly reason: string; readonly refusal: ProxyError; readonly host?: string };

const refuse = (reason: string, refusal: ProxyError, host?: string): TargetDecision => (host === undefined ? { reason, refusal } : { reason, refusal, host });

/** Works out where a request goes, or why it is refused. */
function resolveTarget(rt: Runtime, ctx: RequestContext, req: IncomingMessage): TargetDecision {
  const url = req.url ?? '/';
  const raw = req.rawHeaders;
  const fault = decideHead(raw, req.httpVersionMajor, rt.config.limits.maxHeaderCount);
  // The rest of a refused head's message is never read: close after the answer.
  if (fault !== undefined) {
    return refuse(fault.reason, new ProxyError(fault.code, fault.message, { headers: { connection: 'close' }, ...(fault.field !== undefined ? { target: fault.field } : {}) }));
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400 (inside a tunnel, below: exactly one).
  if (ctx.mode !== 'intercept' && req.httpVersionMinor >= 1 && countHeader(raw, 'host') === 0) {
    return refuse('host-header-count', new ProxyError('BadRequest', 'An HTTP/1.1 request needs a Host header (RFC 9112 §3.2)'));
  }
  if (ctx.origin === undefined) {
    const t = parseAbsoluteTarget(url);
    if (t === undefined) {
      return refuse('not-absolute-form', new ProxyError('BadRequest', 'This is a forward proxy: send absolute-form requests (http://host/path) or CONNECT host:443'));
    }
    const decision = decidePlain(rt.config.policy, t.host, t.port);
    if (decision.action === 'deny') {
      return refuse(decision.reason, new ProxyError(decision.error ?? 'DestinationDenied', `${formatAuthority(t)} refused: ${denialText(decision.reason, t.port)}`), t.host);
    }
    return { target: t };
  }
  const origin = ctx.origin;
  let path = url;
  if (url[0] !== '/') {
    // Absolute-form inside a tunnel or on a reverse route must still name the fixed origin.
    const t = parseAbsoluteTarget(url);
    if (t === undefined || t.host !== origin.host || t.port !== origin.port) {
      return refuse('misdirected-request', new ProxyError('MisdirectedRequest', `This connection serves only ${formatAuthority(origin)}`));
    }
    path = t.path;
  }
  if (ctx.mode === 'intercept') {
    // RFC 9110 §7.4: a request for another authority on this connection is misdirected (421).
    if (countHeader(raw, 'host') !== 1) return refuse('host-header-count', new ProxyError('BadRequest', 'Exactly one Host header is required (RFC 9112 §3.2)'));
    const host = parseAuthority(getHeader(raw, 'host')!, origin.port);
    if (host === undefined || host.host !== origin.host || host.port !== origin.port) {
      return refuse('misdirected-request', new ProxyError('MisdirectedRequest', `This connection was opened for ${formatAuthority(origin)}; the Host header names another authority`));
    }
  }
  return { target: { scheme: origin.scheme, host: origin.host, port: origin.port, path } };
}

/** undici's raw header list for a response head or trailers ([] when it has none or gives an object). */
function rawPairs(raw: Dispatcher.DispatchController['rawHeaders']): readonly (Buffer | string)[] {
  return Array.isArray(raw) ? raw : [];
}

/** A flat [name, value, …] list as the [name, value] pairs res.addTrailers takes. */
export function toPairs(flat: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
  return pairs;
}

/** Serves one HTTP request through the policy to its upstream. Never throws. */
export function handleRequest(rt: Runtime, ctx: RequestContext, req: IncomingMessage, res: ServerResponse): void {
  const start = performance.now();
  const { policy } = rt.config;
  const client = ctx.client ?? clientAddress(req.socket);
  const raw = req.rawHeaders;
  const uaCount = countHeader(raw, 'user-agent');
  // Several User-Agent fields are joined, which never parses as a single compliant token.
  const declared = getHeader(raw, 'content-length');
  const requestBodyBytes = declared !== undefined && /^\d{1,15}$/.test(declared) ? Number(declared) : undefined;
  const userAgent = uaCount <= 1 ? getHeader(raw, 'user-agent') : raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'user-agent').join(', ');

  let product: Product | undefined = ctx.product;
  let host = ctx.origin?.host ?? '';
  let port: number | undefined;
  let path: string | undefined;
  let responseBodyBytes: number | undefined;
  let api = 'other';
  let action: RequestAction | 'passed' = 'passed';
  let reason = 'refused';
  let error: string | undefined;
  let attribution: Attribution = UNKNOWN_ATTRIBUTION;
  let retryAfter: number | undefined;
  let controller: Dispatcher.DispatchController | undefined;
  let finished = false;

  // 'close' is emitted once per response: on() spares once()'s wrapper. Optional fields not known are undefined.
  res.on('close', () => {
    finished = true;
    const aborted = !res.writableFinished;
    if (aborted) controller?.abort(new Error('the client closed the connection'));
    rt.observer.exchangeEnd?.({
      product: product?.id ?? 'unregistered',
      api, method: req.method ?? '', status: res.headersSent ? res.statusCode : 0, action, reason,
      mode: ctx.mode, host, port, path, userAgent, durationMs: performance.now() - start, client,
      tenant: attribution.tenant, app: attribution.app, appName: attribution.appName,
      retryAfter, requestBodyBytes, responseBodyBytes, error, aborted: aborted || undefined,
    });
  });

  const fail = (err: ProxyError): void => {
    error = err.code;
    sendError(res, err);
  };

  try {
    const resolved = resolveTarget(rt, ctx, req);
    if (resolved.refusal !== undefined) {
      reason = resolved.reason;
      if (resolved.host !== undefined) host = resolved.host;
      return fail(resolved.refusal);
    }
    const { target } = resolved;
    host = target.host;
    port = target.port;
    path = target.path;
    const kind = hostKind(policy.catalogue, target.host);
    // The bearer token names the tenant and application of a Microsoft API call (never stored or changed).
    const attributed = kind === 'api' || kind === 'graph' ? attributions.attribute(getHeader(raw, 'authorization'), req.socket) : UNKNOWN_ATTRIBUTION;
    if (ctx.mode === 'intercept' && product !== undefined) {
      // Bound at CONNECT: by its credentials, or to the default product, which the token's application may refine.
      if (policy.defaultProduct !== undefined) product = productForApp(policy, attributed.app) ?? product;
    } else if (product === undefined) {
      const bound = decideBinding(policy, undefined, getHeader(raw, 'proxy-authorization'), attributed.app);
      if (bound.error !== undefined) {
        reason = bound.error;
        return fail(identityError(bound.error));
      }
      product = bound.product;
    }
    const decision = decideRequest(policy, { product, host: target.host, path: target.path, userAgent });
    action = decision.action;
    reason = decision.reason;
    if (action !== 'passed') {
      api = apiLabel(kind, target.path);
      attribution = attributed;
    }
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
      onRequestStart(c) {
        controller = c;
        if (finished) c.abort(new Error('the client closed the connection'));
      },
      onResponseStart(c, statusCode, _headers, statusText) {
        if (statusCode < 200) return; // 1xx interim responses are not relayed.
        responseBodyBytes = 0;
        // The raw pairs keep the origin's header names and order; the parsed object is not used.
        const responseHeaders = buildResponseHeaders(rawPairs(c.rawHeaders));
        if (statusCode === 429) retryAfter = parseRetryAfter(getHeader(responseHeaders, 'retry-after'), Date.now());
        const length = Number(getHeader(responseHeaders, 'content-length') ?? NaN);
        if (length <= COALESCE_LIMIT) {
          held = { statusCode, statusText: statusText ?? '', headers: responseHeaders, chunks: [] };
          return;
        }
        res.writeHead(statusCode, statusText, responseHeaders);
        res.on('drain', () => c.resume());
      },
      onResponseData(c, chunk) {
        responseBodyBytes = (responseBodyBytes ?? 0) + chunk.length;
        if (held !== undefined) {
          held.chunks.push(chunk);
          return;
        }
        if (!res.write(chunk)) c.pause();
      },
      onResponseEnd(c) {
        if (held !== undefined) {
          res.writeHead(held.statusCode, held.statusText, held.headers);
          res.end(held.chunks.length === 1 ? held.chunks[0] : Buffer.concat(held.chunks));
          return;
        }
        const trailers = rawPairs(c.rawTrailers);
        if (trailers.length > 0 && res.chunkedEncoding) res.addTrailers(toPairs(buildResponseHeaders(trailers)));
        res.end();
      },
      onResponseError(_c, err) {
        if (finished) return;
        const perr = toProxyError(err, `upstream ${formatAuthority(target)}`);
        rt.observer.upstreamError?.(perr.code);
        fail(perr);
      },
    };
    pool.dispatch({ path: target.path, method: req.method ?? 'GET', headers, body: hasBody ? req : null }, handler);
  } catch (err) {
    fail(err instanceof ProxyError ? err : new ProxyError('InternalError', `internal error: ${(err as Error).message}`, { cause: err }));
  }
}
