// PURE. `explain <url>`: what the proxy would do with one request, computed by the very decisions
// the request path runs, in the same order (tunnel.ts for CONNECT, forward.ts for the request).
import { apiLabel, hostKind, type HostKind } from './catalogue.js';
import { ERRORS, identityError, type ErrorCode } from './errors.js';
import { decideBinding, decideConnect, decideIdentity, decidePlain, decideRequest, denialText, resolveDestination, type BindingSource, type Policy } from './policy.js';
import { formatAuthority, parseAbsoluteTarget } from './target.js';
import { attributeToken, guidOrUnknown, type Attribution } from './attribution.js';

/** What the client would send: the URL and the request facts that change the outcome. */
export interface ExplainInput {
  readonly url: string;
  readonly userAgent?: string | undefined;
  readonly proxyAuthorization?: string | undefined;
  /** The application id of the caller's token (wins over the token's own). */
  readonly app?: string | undefined;
  /** The caller's bearer token, with or without the `Bearer ` prefix; only its payload is read. */
  readonly token?: string | undefined;
}

/** A response the proxy writes itself instead of forwarding. */
export interface ProxyAnswer {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * The outcome, as `explain --json` prints it. Every key is always present (null when the step was
 * not reached or does not apply), so scripts can rely on the shape.
 */
export interface Explanation {
  readonly url: string;
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  readonly hostKind: HostKind;
  /** https: the CONNECT the client sends first. */
  readonly connect: { readonly action: 'intercept' | 'tunnel' | 'deny'; readonly reason: string } | null;
  /** http: the destination check of an absolute-form request. */
  readonly destination: { readonly action: 'allow' | 'deny'; readonly reason: string } | null;
  /** Tenant and application read from the token (the token itself is never kept). */
  readonly token: Attribution | null;
  /** The product the caller is bound to and how; `app` is the application id that was considered ('unknown' when none). */
  readonly identity: { readonly product: string; readonly userAgent: string; readonly boundBy: BindingSource; readonly app: string } | { readonly error: string } | null;
  readonly decision: { readonly action: string; readonly reason: string } | null;
  /** The `api` metric label, for a Microsoft API call. */
  readonly api: string | null;
  /** The User-Agent sent upstream when the proxy changes it. */
  readonly userAgentSent: string | null;
  /** The proxy's own answer (a refusal); null when the request goes on. */
  readonly response: ProxyAnswer | null;
  /** Where the proxy connects (after upstream.resolve); null when it connects nowhere. */
  readonly connectsTo: { readonly host: string; readonly port: number; readonly overridden: boolean } | null;
}

const answer = (code: ErrorCode, message: string): ProxyAnswer => ({ status: ERRORS[code].status, code, message });

/** Explains a request to input.url, or returns undefined when it is not an absolute http(s) URL. */
export function explainRequest(policy: Policy, input: ExplainInput): Explanation | undefined {
  const target = parseAbsoluteTarget(input.url);
  if (target === undefined) return undefined;
  const kind = hostKind(policy.catalogue, target.host);
  let e: Explanation = {
    url: input.url, scheme: target.scheme, host: target.host, port: target.port, hostKind: kind,
    connect: null, destination: null, token: null, identity: null, decision: null, api: null, userAgentSent: null, response: null, connectsTo: null,
  };
  if (target.scheme === 'https') {
    // tunnel.ts: the CONNECT's credentials are checked first, then the destination.
    const id = decideIdentity(policy, input.proxyAuthorization);
    if (id.error !== undefined) {
      const refusal = identityError(id.error);
      return { ...e, identity: { error: id.error }, response: answer(refusal.code, refusal.message) };
    }
    const c = decideConnect(policy, target.host, target.port);
    e = { ...e, connect: { action: c.action, reason: c.reason } };
    if (c.action === 'deny') {
      const code = c.error ?? 'DestinationDenied';
      return { ...e, response: answer(code, `CONNECT ${formatAuthority(target)} refused: ${denialText(c.reason, target.port)}`) };
    }
    if (c.action === 'tunnel') return { ...e, connectsTo: resolveDestination(policy, target.host, target.port) };
  } else {
    // forward.ts: an absolute-form request's destination is checked before its caller is bound.
    const d = decidePlain(policy, target.host, target.port);
    e = { ...e, destination: { action: d.action, reason: d.reason } };
    if (d.action === 'deny') {
      return { ...e, response: answer(d.error ?? 'DestinationDenied', `${formatAuthority(target)} refused: ${denialText(d.reason, target.port)}`) };
    }
  }
  // The token is read as the proxy reads it (payload only, no signature check) and only for Microsoft API hosts.
  const enforcedHost = kind === 'api' || kind === 'graph';
  const fromToken = enforcedHost && input.token !== undefined ? attributeToken(input.token.replace(/^bearer\s+/i, '')) : undefined;
  if (fromToken !== undefined) e = { ...e, token: fromToken };
  const app = !enforcedHost ? 'unknown' : input.app !== undefined ? guidOrUnknown(input.app) : fromToken?.app ?? 'unknown';
  const bound = decideBinding(policy, undefined, input.proxyAuthorization, app);
  if (bound.error !== undefined) {
    const refusal = identityError(bound.error);
    return { ...e, identity: { error: bound.error }, response: answer(refusal.code, refusal.message) };
  }
  e = { ...e, identity: { product: bound.product.id, userAgent: bound.product.userAgent, boundBy: bound.by, app } };
  const d = decideRequest(policy, { product: bound.product, host: target.host, path: target.path, userAgent: input.userAgent });
  e = { ...e, decision: { action: d.action, reason: d.reason }, userAgentSent: d.userAgent ?? null, api: d.action === 'passed' ? null : apiLabel(kind, target.path) };
  if (d.action === 'rejected') {
    return { ...e, response: answer('PartnerUserAgentRequired', `Calls to Microsoft security APIs must send User-Agent: ${bound.product.userAgent} (${d.reason.replace(/-/g, ' ')})`) };
  }
  return { ...e, connectsTo: resolveDestination(policy, target.host, target.port) };
}
