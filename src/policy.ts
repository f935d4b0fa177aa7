// PURE. Decisions as values: what to do with a CONNECT, a destination, a caller and a request.
// Reason strings are fixed; they appear in logs and in `explain`, never as metric labels.
import { timingSafeEqual, createHash } from 'node:crypto';
import { hostKind, isEnforced, type Catalogue } from './catalogue.js';
import { classifyHost, isRestricted } from './address.js';
import { formatAuthority, type Authority } from './target.js';
import { formatPartnerUserAgent, isCompliant, parsePartnerUserAgent, type PartnerIdentity } from './user-agent.js';
import type { ErrorCode, IdentityFailure } from './errors.js';
import type { RequestAction } from './events.js';
import { UNKNOWN } from './attribution.js';

/** Policy modes, rewrite styles and otherHosts values: the config schema and the CLI take these lists. */
export const POLICY_MODES = ['rewrite', 'reject', 'audit'] as const;
export const REWRITE_STYLES = ['replace', 'prepend'] as const;
export const OTHER_HOSTS = ['tunnel', 'deny'] as const;

export type PolicyMode = (typeof POLICY_MODES)[number];
export type RewriteStyle = (typeof REWRITE_STYLES)[number];
export type OtherHosts = (typeof OTHER_HOSTS)[number];

/** A configured product: the identity its callers are held to. */
export interface Product extends PartnerIdentity {
  readonly id: string;
  /** The compliant User-Agent, formatted once. */
  readonly userAgent: string;
  /** Proxy credentials that bind a caller to this product. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Azure AD application ids (lowercase GUIDs) whose tokens bind an otherwise unbound caller to this product. */
  readonly apps?: readonly string[];
}

/** Everything the decisions need, compiled once from the config. */
export interface Policy {
  readonly mode: PolicyMode;
  readonly rewrite: RewriteStyle;
  readonly catalogue: Catalogue;
  readonly otherHosts: OtherHosts;
  readonly products: readonly Product[];
  /** The product of callers that present no credentials (undefined when credentials are required). */
  readonly defaultProduct: Product | undefined;
  readonly allowPrivateDestinations: boolean;
  readonly connectPorts: ReadonlySet<number>;
  /** `host:port` (lowercase, IPv6 bracketed, as formatAuthority writes it) → where that destination really connects. */
  readonly resolve: ReadonlyMap<string, Authority>;
  /** Application id (lowercase GUID) → the product whose `apps` lists it (productForApp). */
  readonly appProducts?: ReadonlyMap<string, Product>;
}

export type ConnectAction = 'intercept' | 'tunnel' | 'deny';

export interface ConnectDecision {
  readonly action: ConnectAction;
  readonly reason: string;
  readonly error?: ErrorCode;
  /** For 'intercept': whether the tunnel carries TLS (terminated with a minted leaf) or plain HTTP. */
  readonly scheme?: 'https' | 'http';
}

/** Whether a destination may be reached at all, before the kind of host is considered. */
export interface DestinationDecision {
  readonly action: 'allow' | 'deny';
  readonly reason: string;
  readonly error?: ErrorCode;
}

export interface RequestDecision {
  /** 'passed': not a Microsoft security API call; forwarded unchanged and not counted. */
  readonly action: RequestAction | 'passed';
  readonly reason: string;
  /** The User-Agent to send upstream, when it changes. */
  readonly userAgent?: string;
}

export interface RequestFacts {
  readonly product: Product;
  readonly host: string;
  readonly path: string;
  readonly userAgent: string | undefined;
}

/** Where a destination connects: the `upstream.resolve` override, else itself. */
export function resolveDestination(policy: Policy, host: string, port: number): { host: string; port: number; overridden: boolean } {
  const mapped = policy.resolve.get(formatAuthority({ host, port }));
  return mapped === undefined ? { host, port, overridden: false } : { host: mapped.host, port: mapped.port, overridden: true };
}

/**
 * Refuses loopback, link-local, private and disguised addresses (`127.1`, `2130706433`, `[::1]`)
 * unless `upstream.resolve` names the destination or private destinations are allowed.
 */
export function decideDestination(policy: Policy, host: string, port: number): DestinationDecision {
  if (policy.resolve.has(formatAuthority({ host, port }))) return { action: 'allow', reason: 'resolve-override' };
  const cls = classifyHost(host);
  if (!isRestricted(cls)) return { action: 'allow', reason: 'public-destination' };
  if (policy.allowPrivateDestinations) return { action: 'allow', reason: 'private-destinations-allowed' };
  return { action: 'deny', reason: `${cls}-destination`, error: 'DestinationDenied' };
}

/** The caller-facing explanation of a deny reason. */
export function denialText(reason: string, port: number): string {
  if (reason === 'port-not-allowed') return `port ${port} is not in access.connectPorts`;
  if (reason === 'other-host-denied') return 'only Microsoft security API hosts are allowed (otherHosts: deny)';
  return `it is a ${reason.replace(/-destination$/, '')} address`;
}

/** Decides whether a plain absolute-form request may go to host:port: the destination check, then otherHosts. */
export function decidePlain(policy: Policy, host: string, port: number): DestinationDecision {
  const destination = decideDestination(policy, host, port);
  if (destination.action === 'deny') return destination;
  if (hostKind(policy.catalogue, host) !== 'other') return destination;
  if (policy.otherHosts === 'deny') return { action: 'deny', reason: 'other-host-denied', error: 'DestinationDenied' };
  return destination;
}

/** The port of plain http:// (RFC 9110 §4.2.1). */
const PLAIN_HTTP_PORT = 80;

/** Decides what a CONNECT to host:port becomes: intercepted (TLS or plain HTTP), tunnelled blind, or denied. */
export function decideConnect(policy: Policy, host: string, port: number): ConnectDecision {
  const kind = hostKind(policy.catalogue, host);
  const enforced = kind === 'api' || kind === 'graph';
  // Clients that tunnel plain http:// requests (undici's EnvHttpProxyAgent, Node's NODE_USE_ENV_PROXY)
  // send CONNECT host:80: for an enforced host that tunnel runs the HTTP layer without TLS, so port 80
  // needs no connectPorts entry there.
  const plainHttp = enforced && port === PLAIN_HTTP_PORT;
  if (!plainHttp && !policy.connectPorts.has(port)) return { action: 'deny', reason: 'port-not-allowed', error: 'DestinationDenied' };
  const destination = decideDestination(policy, host, port);
  if (destination.action === 'deny') return { action: 'deny', reason: destination.reason, ...(destination.error !== undefined ? { error: destination.error } : {}) };
  if (plainHttp) return { action: 'intercept', reason: 'plain-http-tunnel', scheme: 'http' };
  if (enforced) return { action: 'intercept', reason: 'catalogue-host', scheme: 'https' };
  if (kind === 'token') return { action: 'tunnel', reason: 'token-endpoint' };
  if (policy.otherHosts === 'deny') return { action: 'deny', reason: 'other-host-denied', error: 'DestinationDenied' };
  return { action: 'tunnel', reason: 'other-host' };
}

/** Why a User-Agent is not compliant, as a fixed reason string. */
function nonCompliantReason(ua: string | undefined): string {
  if (ua === undefined || ua.trim() === '') return 'missing-user-agent';
  const parsed = parsePartnerUserAgent(ua);
  if (parsed === undefined) return 'non-partner-user-agent';
  if (parsed.legacy) return 'legacy-user-agent';
  return 'other-product-user-agent';
}

/** Decides what happens to one request: compliant, rewritten, rejected, audited, or passed (not an API call). */
export function decideRequest(policy: Policy, facts: RequestFacts): RequestDecision {
  if (!isEnforced(policy.catalogue, facts.host, facts.path)) return { action: 'passed', reason: 'not-an-api-call' };
  const { product, userAgent } = facts;
  if (isCompliant(userAgent, product)) return { action: 'compliant', reason: 'compliant-user-agent' };
  const reason = nonCompliantReason(userAgent);
  switch (policy.mode) {
    case 'reject':
      return { action: 'rejected', reason };
    case 'audit':
      return { action: 'audited', reason };
    case 'rewrite':
      return { action: 'rewritten', reason, userAgent: rewrittenUserAgent(policy.rewrite, product, userAgent) };
  }
}

/**
 * The User-Agent rewrite sends. `prepend` keeps the caller's own product tokens after the partner
 * token (RFC 9110 §10.1.5 orders tokens by significance), minus a stale partner token of its own.
 */
export function rewrittenUserAgent(style: RewriteStyle, product: Product, original: string | undefined): string {
  if (style === 'replace' || original === undefined) return product.userAgent;
  const trimmed = original.trim();
  if (trimmed === '') return product.userAgent;
  const rest = parsePartnerUserAgent(trimmed)?.rest ?? trimmed;
  return rest === '' ? product.userAgent : `${product.userAgent} ${rest}`;
}

export type IdentityDecision =
  | { readonly product: Product; readonly error?: undefined }
  | { readonly product?: undefined; readonly error: IdentityFailure };

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Binds a caller to a product from its Proxy-Authorization (RFC 9110 §11.7.1, Basic per RFC 7617). */
export function decideIdentity(policy: Policy, proxyAuthorization: string | undefined): IdentityDecision {
  // defaultProduct exists exactly when no product requires credentials: every caller is it, whatever it sends.
  if (policy.defaultProduct !== undefined) return { product: policy.defaultProduct };
  if (proxyAuthorization === undefined) return { error: 'missing-credentials' };
  const m = /^\s*basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(proxyAuthorization);
  if (m === null) return { error: 'unsupported-scheme' };
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const username = colon < 0 ? decoded : decoded.slice(0, colon);
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  const product = policy.products.find((p) => p.credentials?.username === username);
  if (product?.credentials === undefined) return { error: 'invalid-credentials' };
  // Compare digests so the comparison takes the same time whatever the password's length.
  if (!timingSafeEqual(digest(password), digest(product.credentials.password))) return { error: 'invalid-credentials' };
  return { product };
}

/** Builds a Product from its identity, formatting the compliant User-Agent once. */
export function createProduct(id: string, identity: PartnerIdentity, credentials?: Product['credentials'], apps?: readonly string[]): Product {
  const base = { id, company: identity.company, product: identity.product, version: identity.version, userAgent: formatPartnerUserAgent(identity),
    ...(apps !== undefined && apps.length > 0 ? { apps: Object.freeze([...apps]) } : {}) };
  return Object.freeze(credentials === undefined ? base : { ...base, credentials: Object.freeze({ ...credentials }) });
}

/** How a request was bound to its product, in the order the binding is tried. */
export type BindingSource = 'reverse-route' | 'proxy-credentials' | 'token-application' | 'default-product';

/**
 * The product whose `apps` lists this application id, when the caller was not bound by a reverse
 * route or proxy credentials. Undefined when no product lists it.
 */
export function productForApp(policy: Pick<Policy, 'appProducts'>, app: string): Product | undefined {
  if (app === UNKNOWN || policy.appProducts === undefined || policy.appProducts.size === 0) return undefined;
  return policy.appProducts.get(app);
}

export type BindingDecision =
  | { readonly product: Product; readonly by: BindingSource; readonly error?: undefined }
  | { readonly product?: undefined; readonly by?: undefined; readonly error: NonNullable<IdentityDecision['error']> };

/**
 * Binds a caller to a product: its reverse route, else its proxy credentials, else the product
 * whose `apps` lists its token's application, else the default product. When credentials are
 * required they decide (a missing or wrong one is refused), so the application binds only callers
 * that no route or credential binds.
 */
export function decideBinding(policy: Policy, routeProduct: Product | undefined, proxyAuthorization: string | undefined, app: string): BindingDecision {
  if (routeProduct !== undefined) return { product: routeProduct, by: 'reverse-route' };
  const id = decideIdentity(policy, proxyAuthorization);
  if (id.error !== undefined) return { error: id.error };
  if (policy.defaultProduct === undefined) return { product: id.product, by: 'proxy-credentials' };
  const byApp = productForApp(policy, app);
  return byApp !== undefined ? { product: byApp, by: 'token-application' } : { product: id.product, by: 'default-product' };
}
