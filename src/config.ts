// YAML → schema (zod) → frozen Config with a compiled Policy. Every error names the field's path.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve as resolvePath, dirname } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { CLOUDS, createCatalogue, hostKind, isTokenHost, normaliseHostPattern, type Catalogue, type Cloud } from './catalogue.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';
import { OTHER_HOSTS, POLICY_MODES, REWRITE_STYLES, createProduct, type Policy, type PolicyMode, type Product } from './policy.js';
import { parseAbsoluteTarget, parseAuthority, formatAuthority, type Authority } from './target.js';
import { isHeaderValueText, parseIdentityString, validateIdentity } from './user-agent.js';
import { appsSchema, buildUsageConfig, describeStore, usageSchema, type UsageConfig } from './usage/usage-config.js';

/** A configuration fault: the path of the offending field and what is wrong with it. */
export class ConfigError extends Error {
  readonly path: string;
  /** Every fault found in the same pass (the schema reports all at once); this error is the first. */
  readonly all: readonly { readonly path: string; readonly message: string }[];
  constructor(path: string, message: string, all?: readonly { readonly path: string; readonly message: string }[]) {
    super(`${path}: ${message}`);
    this.name = 'ConfigError';
    this.path = path;
    this.all = all ?? [{ path, message }];
  }
}

export interface ListenAddress { readonly host: string; readonly port: number }

export interface ReverseRoute {
  readonly listen: ListenAddress;
  /** Fixed upstream origin, always https. */
  readonly upstream: { readonly host: string; readonly port: number };
  readonly product: Product;
}

export interface Timeouts {
  readonly connect: number;
  readonly upstream: number;
  readonly headers: number;
  readonly idle: number;
  readonly drain: number;
}

/** Bounds on what one client may hold: request-head fields and bytes, and open connections per listener. */
export interface Limits {
  readonly maxHeaderCount: number;
  readonly maxHeaderBytes: number;
  /** undefined: derived from the process's descriptor limit when the listeners open. */
  readonly maxConnections: number | undefined;
}

export interface Config {
  /** Where this config came from: a file path or 'embedded default'. */
  readonly source: string;
  readonly listen: ListenAddress;
  readonly admin: ListenAddress | undefined;
  readonly stateDir: string;
  readonly policy: Policy;
  readonly ca: { readonly cert?: string; readonly key?: string };
  readonly upstream: {
    readonly proxy?: { readonly host: string; readonly port: number };
    readonly noProxy: readonly string[];
    /** Extra trusted roots (PEM text) for upstream TLS, on top of the system trust. */
    readonly ca: readonly string[];
    readonly caFiles: readonly string[];
  };
  readonly reverse: readonly ReverseRoute[];
  readonly timeouts: Timeouts;
  readonly limits: Limits;
  /** access.allowedClients as written (CIDRs), for messages. */
  readonly allowedClients: readonly string[];
  /** access.allowedClients compiled once: each new client connection is checked against it. */
  readonly clientAllowList: BlockList;
  readonly log: { readonly level: LogLevel };
  /** True when the identity is Microsoft's documented example, not a real product. */
  readonly exampleIdentity: boolean;
  /** Usage evidence: the store, flushing, retention, limits (usage/usage-config.ts). */
  readonly usage: UsageConfig;
}

/** Microsoft's documented example identity, used when nothing else names a product. */
export const EXAMPLE_USER_AGENT = 'MdePartner-Contoso-ContosoCognito/1.0.0';

export const DEFAULT_TIMEOUTS: Timeouts = Object.freeze({ connect: 10_000, upstream: 120_000, headers: 30_000, idle: 60_000, drain: 30_000 });

/** Request-head defaults: Apache's 100 fields (LimitRequestFields); 32 KiB leaves room for large bearer tokens. */
export const DEFAULT_LIMITS: Limits = Object.freeze({ maxHeaderCount: 100, maxHeaderBytes: 32_768, maxConnections: undefined });

/** Values from the command line or MDE_PARTNER_PROXY_* variables; they win over the file. */
export interface ConfigOverrides {
  readonly listen?: string;
  readonly admin?: string;
  readonly mode?: string;
  readonly userAgent?: string;
  readonly logLevel?: string;
  readonly stateDir?: string;
  /** `usage.store`: none, a postgres:// URL or a SQLite file. */
  readonly usageStore?: string;
}

const headerText = (what: string) => z.string().min(1).refine(isHeaderValueText, `${what} must be valid header text (no CR, LF, NUL or other control characters, Latin-1 only, no surrounding spaces)`);

const credentials = z.union([
  z.strictObject({ username: headerText('username'), password: z.string().min(1) }),
  z.strictObject({ username: headerText('username'), passwordFile: z.string().min(1) }),
  z.strictObject({ username: headerText('username'), passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name') }),
]);

const productSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 letters, digits, "_", "." or "-"').refine((s) => s !== 'unregistered' && s !== 'other', 'is reserved'),
  company: headerText('company'),
  product: headerText('product'),
  version: headerText('version'),
  credentials: credentials.optional(),
  apps: appsSchema,
});

const hostPattern = z.string()
  .refine((h) => normaliseHostPattern(h) !== undefined, 'must be a host name or *.domain (no IP literals, no *.tld)')
  .refine((h) => !isTokenHost(h.replace(/^\*\./, '')), 'token endpoints are never intercepted');
const ms = z.int().min(1).max(86_400_000);

const schema = z.strictObject({
  version: z.literal(1),
  listen: z.string().optional(),
  admin: z.string().optional(),
  stateDir: z.string().min(1).optional(),
  products: z.array(productSchema).min(1).optional(),
  policy: z.strictObject({
    mode: z.enum(POLICY_MODES).default('rewrite'),
    rewrite: z.enum(REWRITE_STYLES).default('replace'),
  }).default({ mode: 'rewrite', rewrite: 'replace' }),
  clouds: z.array(z.enum(CLOUDS as unknown as [Cloud, ...Cloud[]])).min(1).default(['commercial']),
  extraHosts: z.array(hostPattern).default([]),
  otherHosts: z.enum(OTHER_HOSTS).default('tunnel'),
  ca: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  upstream: z.strictObject({
    proxy: z.string().optional(),
    noProxy: z.array(z.string().min(1)).default([]),
    ca: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
    resolve: z.record(z.string(), z.string()).default({}),
  }).default({ noProxy: [], resolve: {} }),
  reverse: z.array(z.strictObject({ listen: z.string(), upstream: z.string(), product: z.string().optional() })).default([]),
  timeouts: z.strictObject({ connect: ms.optional(), upstream: ms.optional(), headers: ms.optional(), idle: ms.optional(), drain: ms.optional() }).default({}),
  limits: z.strictObject({
    maxHeaderCount: z.int().min(8).max(10_000).optional(),
    maxHeaderBytes: z.int().min(1024).max(1_048_576).optional(),
    maxConnections: z.int().min(1).max(1_000_000).optional(),
  }).default({}),
  access: z.strictObject({
    allowedClients: z.array(z.string()).optional(),
    allowPrivateDestinations: z.boolean().default(false),
    connectPorts: z.array(z.int().min(1).max(65535)).min(1).default([443]),
  }).default({ allowPrivateDestinations: false, connectPorts: [443] }),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).default({ level: 'info' }),
  usage: usageSchema,
});

type RawConfig = z.infer<typeof schema>;

/** The zod schema of a config file: the source of config/mde-partner-proxy.schema.json and docs/configuration.md. */
export const configSchema: z.ZodType = schema;

/** Formats a zod issue path as `products[0].company`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '(root)' : out;
}

/** Parses `host:port` for a listener; port 0 picks a free port, and `:port` alone listens on every IPv4 address. */
export function parseListen(value: string, field: string): ListenAddress {
  const text = value.trim();
  const listen = parseAuthority(text.startsWith(':') ? `0.0.0.0${text}` : text, undefined, { allowZero: true });
  if (listen === undefined) throw new ConfigError(field, `must be host:port (e.g. 127.0.0.1:3128 or [::1]:3128), got ${JSON.stringify(value)}`);
  return listen;
}

/** Parses a destination `host:port` (port 1-65535). */
function parseHostPort(value: string, field: string): Authority {
  const authority = parseAuthority(value.trim());
  if (authority === undefined) throw new ConfigError(field, `must be host:port, got ${JSON.stringify(value)}`);
  return authority;
}

function readSecretFile(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError(field, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The default state directory: $XDG_STATE_HOME/mde-partner-proxy, else ~/.local/state/mde-partner-proxy. */
export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const base = env['XDG_STATE_HOME'] !== undefined && env['XDG_STATE_HOME'] !== '' ? env['XDG_STATE_HOME'] : join(homedir(), '.local', 'state');
  return join(base, 'mde-partner-proxy');
}

/** True when value is one of a closed set of words. */
const isOneOf = <T extends string>(set: readonly T[], value: string): value is T => (set as readonly string[]).includes(value);

/** What every section builder may need besides its own part of the document. */
interface BuildContext {
  readonly overrides: ConfigOverrides;
  readonly env: NodeJS.ProcessEnv;
  /** Resolves a path in the document against the config file's directory. */
  readonly fromBase: (p: string) => string;
  /** config check --offline: secrets that live elsewhere (passwordFile, passwordEnv, upstream.ca) are not read. */
  readonly offline: boolean;
  /** Records a fault and lets the build go on, so one pass reports every fault it can find. */
  readonly problem: (path: string, message: string) => void;
  /** Runs fn; a ConfigError it throws is recorded and fallback returned instead. */
  readonly attempt: <T>(fn: () => T, fallback: T) => T;
}

/** Validates the document against the schema; every issue is in the ConfigError (paths included), the first is its message. */
function parseRaw(doc: unknown): RawConfig {
  const parsed = schema.safeParse(doc ?? { version: 1 });
  if (parsed.success) return parsed.data;
  // Every issue of the pass, so `config check` can name them all; the first is the error's own.
  const all = parsed.error.issues.flatMap((issue) => issue.code === 'unrecognized_keys'
    ? issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown key' }))
    : [{ path: formatPath(issue.path), message: issue.message }]);
  throw new ConfigError(all[0]!.path, all[0]!.message, all);
}

/** A product's proxy credentials, the password read from the file, the environment or the document. */
function buildCredentials(c: NonNullable<RawConfig['products']>[number]['credentials'] & object, i: number, usernames: Set<string>, ctx: BuildContext): Product['credentials'] {
  if (usernames.has(c.username)) ctx.problem(`products[${i}].credentials.username`, 'duplicate username');
  usernames.add(c.username);
  if (c.username.includes(':')) ctx.problem(`products[${i}].credentials.username`, 'must not contain ":" (RFC 7617)');
  let password: string;
  if ('password' in c) password = c.password;
  else if (ctx.offline) password = OFFLINE_SECRET;
  else if ('passwordFile' in c) {
    const file = ctx.fromBase(c.passwordFile);
    password = ctx.attempt(() => readSecretFile(file, `products[${i}].credentials.passwordFile`), OFFLINE_SECRET);
    // An empty password lets in any caller who knows the user name; inline and environment passwords cannot be empty either.
    if (password === '') ctx.problem(`products[${i}].credentials.passwordFile`, `${file} is empty: it must hold the password`);
  } else {
    const v = ctx.env[c.passwordEnv];
    if (v === undefined || v === '') ctx.problem(`products[${i}].credentials.passwordEnv`, `environment variable ${c.passwordEnv} is not set`);
    password = v ?? OFFLINE_SECRET;
  }
  return { username: c.username, password };
}

/** Products: the one named by --user-agent, else the file's, else Microsoft's example. */
function buildProducts(raw: RawConfig, ctx: BuildContext): { products: Product[]; exampleIdentity: boolean } {
  const ua = ctx.overrides.userAgent;
  if (ua !== undefined) {
    const identity = parseIdentityString(ua);
    const problem = identity === undefined ? 'must be a partner User-Agent like MdePartner-Contoso-ContosoCognito/1.0.0' : validateIdentity(identity);
    if (!isHeaderValueText(ua)) throw new ConfigError('--user-agent', 'must be valid header text (no CR, LF, NUL or other control characters, Latin-1 only)');
    if (problem !== undefined || identity === undefined) throw new ConfigError('--user-agent', problem ?? 'invalid');
    return { products: [createProduct('default', identity)], exampleIdentity: false };
  }
  if (raw.products === undefined) return { products: [createProduct('default', parseIdentityString(EXAMPLE_USER_AGENT)!)], exampleIdentity: true };
  const ids = new Set<string>();
  const usernames = new Set<string>();
  // One application id binds to one product: the same id in two products would make binding depend on order.
  const appOwner = new Map<string, string>();
  const products = raw.products.map((p, i) => {
    const problem = validateIdentity(p);
    // Every identity problem starts with the field it is about.
    if (problem !== undefined) ctx.problem(`products[${i}].${problem.split(' ')[0]}`, problem);
    if (ids.has(p.id)) ctx.problem(`products[${i}].id`, `duplicate id ${JSON.stringify(p.id)}`);
    ids.add(p.id);
    const creds = p.credentials === undefined ? undefined : buildCredentials(p.credentials, i, usernames, ctx);
    const apps = (p.apps ?? []).map((a) => a.toLowerCase());
    apps.forEach((app, j) => {
      const owner = appOwner.get(app);
      if (owner === p.id) ctx.problem(`products[${i}].apps[${j}]`, `application ${app} is listed twice`);
      else if (owner !== undefined) ctx.problem(`products[${i}].apps[${j}]`, `application ${app} is listed by products ${JSON.stringify(owner)} and ${JSON.stringify(p.id)}; an application binds to one product`);
      else appOwner.set(app, p.id);
    });
    return createProduct(p.id, p, creds, apps);
  });
  return { products, exampleIdentity: false };
}

/** upstream.resolve: `host:port` (keyed as the proxy formats authorities) → where to connect. */
function buildResolve(raw: RawConfig['upstream']['resolve'], ctx: BuildContext): Map<string, Authority> {
  const resolve = new Map<string, Authority>();
  for (const [key, value] of Object.entries(raw)) {
    ctx.attempt(() => {
      const from = parseHostPort(key, `upstream.resolve.${key}`);
      resolve.set(formatAuthority(from), parseHostPort(value, `upstream.resolve.${key}`));
    }, undefined);
  }
  return resolve;
}

/**
 * Reverse routes, each bound to its product (the first product when it names none). The upstream
 * must be a host the catalogue enforces: on any other the policy would silently never apply.
 */
function buildReverse(raw: RawConfig['reverse'], products: readonly Product[], catalogue: Catalogue, ctx: BuildContext): ReverseRoute[] {
  const byId = new Map(products.map((p) => [p.id, p]));
  return raw.flatMap((r, i): ReverseRoute[] => {
    const target = parseAbsoluteTarget(r.upstream);
    const upstreamOk = target !== undefined && target.scheme === 'https' && (target.path === '/' || target.path === '');
    if (!upstreamOk) ctx.problem(`reverse[${i}].upstream`, `must be an https:// origin without a path, got ${JSON.stringify(r.upstream)}`);
    const kind = upstreamOk ? hostKind(catalogue, target.host) : undefined;
    const enforced = kind === 'api' || kind === 'graph';
    if (upstreamOk && !enforced) {
      ctx.problem(`reverse[${i}].upstream`, `${target.host} is not a Microsoft security API host of clouds [${catalogue.clouds.join(', ')}] or extraHosts, so the policy would never apply to this route`);
    }
    const product = r.product === undefined ? products[0] : byId.get(r.product);
    if (product === undefined) ctx.problem(`reverse[${i}].product`, `no product with id ${JSON.stringify(r.product)}`);
    const listen = ctx.attempt(() => parseListen(r.listen, `reverse[${i}].listen`), undefined);
    if (!upstreamOk || !enforced || target === undefined || product === undefined || listen === undefined) return [];
    return [{ listen, upstream: { host: target.host, port: target.port }, product }];
  });
}

/** The outbound side: an optional upstream proxy, noProxy, and extra trusted roots read from their files. */
function buildUpstream(raw: RawConfig['upstream'], ctx: BuildContext): Config['upstream'] {
  let proxy: Config['upstream']['proxy'];
  if (raw.proxy !== undefined) {
    const t = parseAbsoluteTarget(raw.proxy);
    if (t === undefined || t.scheme !== 'http') ctx.problem('upstream.proxy', 'must be an http:// proxy URL, e.g. http://proxy.corp:3128');
    else proxy = { host: t.host, port: t.port };
  }
  const caFiles = raw.ca === undefined ? [] : (Array.isArray(raw.ca) ? raw.ca : [raw.ca]).map(ctx.fromBase);
  const ca = ctx.offline ? [] : caFiles.flatMap((f, i) => {
    const field = Array.isArray(raw.ca) ? `upstream.ca[${i}]` : 'upstream.ca';
    const text = ctx.attempt(() => readSecretFile(f, field), undefined);
    if (text === undefined) return [];
    if (!text.includes('-----BEGIN CERTIFICATE-----')) {
      ctx.problem(field, `${f} holds no PEM certificate`);
      return [];
    }
    return [text];
  });
  return { ...(proxy ? { proxy } : {}), noProxy: raw.noProxy, ca, caFiles };
}

/** The policy mode, --mode winning over policy.mode. */
function buildMode(raw: RawConfig, ctx: BuildContext): PolicyMode {
  const mode = ctx.overrides.mode ?? raw.policy.mode;
  if (isOneOf(POLICY_MODES, mode)) return mode;
  ctx.problem('--mode', `must be ${POLICY_MODES.slice(0, -1).join(', ')} or ${POLICY_MODES.at(-1)!}, got ${JSON.stringify(mode)}`);
  return raw.policy.mode;
}

/** The log section, --log-level winning over log.level. */
function buildLog(raw: RawConfig, ctx: BuildContext): Config['log'] {
  const level = ctx.overrides.logLevel ?? raw.log.level;
  if (isOneOf(LOG_LEVELS, level)) return { level };
  ctx.problem('--log-level', `must be one of ${LOG_LEVELS.join(', ')}`);
  return raw.log;
}

/** access.allowedClients (default: loopback only), each checked as a CIDR and compiled into one BlockList. */
function buildAllowedClients(raw: RawConfig['access'], ctx: BuildContext): Pick<Config, 'allowedClients' | 'clientAllowList'> {
  const allowedClients = raw.allowedClients ?? ['127.0.0.0/8', '::1/128'];
  const clientAllowList = new BlockList();
  allowedClients.forEach((c, i) => {
    const [addr = '', bits = ''] = c.split('/');
    const family = isIP(addr);
    if (family === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) {
      ctx.problem(`access.allowedClients[${i}]`, `must be a CIDR like 10.0.0.0/8 or fd00::/8, got ${JSON.stringify(c)}`);
      return;
    }
    clientAllowList.addSubnet(addr, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
  });
  return { allowedClients, clientAllowList };
}

/** The timeouts section over the defaults. */
function buildTimeouts(raw: RawConfig['timeouts']): Timeouts {
  return { ...DEFAULT_TIMEOUTS, ...Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)) };
}

/** The limits section over the defaults. */
function buildLimits(raw: RawConfig['limits']): Limits {
  return {
    maxHeaderCount: raw.maxHeaderCount ?? DEFAULT_LIMITS.maxHeaderCount,
    maxHeaderBytes: raw.maxHeaderBytes ?? DEFAULT_LIMITS.maxHeaderBytes,
    maxConnections: raw.maxConnections,
  };
}

/** The proxy and admin listen addresses, the command line winning over the file. */
function buildListeners(raw: RawConfig, ctx: BuildContext): Pick<Config, 'listen' | 'admin'> {
  const { overrides } = ctx;
  const fallback = { host: '127.0.0.1', port: 0 };
  const listen = ctx.attempt(() => parseListen(overrides.listen ?? raw.listen ?? '127.0.0.1:3128', overrides.listen !== undefined ? '--listen' : 'listen'), fallback);
  const adminValue = overrides.admin ?? raw.admin ?? '127.0.0.1:9464';
  const admin = adminValue === 'off' ? undefined : ctx.attempt(() => parseListen(adminValue, overrides.admin !== undefined ? '--admin' : 'admin'), fallback);
  return { listen, admin };
}

/**
 * Turns a document (already parsed from YAML) plus overrides into a validated, frozen Config: one
 * builder per section, called in a fixed order so the first fault reported is always the same.
 */
export function buildConfig(doc: unknown, opts: { source: string; baseDir: string; overrides?: ConfigOverrides; env?: NodeJS.ProcessEnv; offline?: boolean }): Config {
  // The schema pass stops the build when it fails; after it, every builder records its faults and
  // goes on, so `config check` reports them all at once.
  const problems: { path: string; message: string }[] = [];
  const problem = (path: string, message: string): void => void problems.push({ path, message });
  const attempt = <T>(fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(...e.all);
      return fallback;
    }
  };
  const ctx: BuildContext = { overrides: opts.overrides ?? {}, env: opts.env ?? process.env, fromBase: (p) => resolvePath(opts.baseDir, p), offline: opts.offline === true, problem, attempt };
  const raw = parseRaw(doc);
  const { products, exampleIdentity } = attempt(() => buildProducts(raw, ctx), { products: [createProduct('default', parseIdentityString(EXAMPLE_USER_AGENT)!)], exampleIdentity: true });
  const resolve = buildResolve(raw.upstream.resolve, ctx);
  const catalogue = createCatalogue(raw.clouds, raw.extraHosts);
  const reverse = buildReverse(raw.reverse, products, catalogue, ctx);
  const upstream = buildUpstream(raw.upstream, ctx);
  const mode = buildMode(raw, ctx);
  const log = buildLog(raw, ctx);
  const policy: Policy = Object.freeze({
    mode,
    rewrite: raw.policy.rewrite,
    catalogue,
    otherHosts: raw.otherHosts,
    products: Object.freeze(products),
    defaultProduct: products.some((p) => p.credentials !== undefined) ? undefined : products[0],
    allowPrivateDestinations: raw.access.allowPrivateDestinations,
    connectPorts: new Set(raw.access.connectPorts),
    resolve,
    appProducts: new Map(products.flatMap((p) => (p.apps ?? []).map((app): [string, Product] => [app, p]))),
  });
  const access = buildAllowedClients(raw.access, ctx);
  const stateDir = ctx.overrides.stateDir ?? (raw.stateDir !== undefined ? ctx.fromBase(raw.stateDir) : defaultStateDir(ctx.env));
  const usage = attempt(() => buildUsageConfig(raw.usage, { stateDir, baseDir: opts.baseDir, storeOverride: ctx.overrides.usageStore,
    fail: (field, message) => { throw new ConfigError(field, message); } }), undefined);
  const listeners = buildListeners(raw, ctx);
  if (problems.length > 0 || usage === undefined) {
    const first = problems[0] ?? { path: 'usage', message: 'invalid' };
    throw new ConfigError(first.path, first.message, problems);
  }
  return Object.freeze({
    source: opts.source,
    ...listeners,
    stateDir,
    policy,
    ca: raw.ca === undefined ? {} : { cert: ctx.fromBase(raw.ca.cert), key: ctx.fromBase(raw.ca.key) },
    upstream,
    reverse,
    timeouts: buildTimeouts(raw.timeouts),
    limits: buildLimits(raw.limits),
    ...access,
    log,
    exampleIdentity,
    usage,
  });
}

/** The password a credential gets when `config check --offline` does not read its file or variable. */
export const OFFLINE_SECRET = '<not read: --offline>';

/** Reads and validates a YAML config file (or the embedded default when file is undefined); offline skips secrets kept elsewhere. */
export function loadConfig(file: string | undefined, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env, opts: { offline?: boolean } = {}): Config {
  if (file === undefined) return buildConfig({ version: 1 }, { source: 'embedded default', baseDir: process.cwd(), overrides, env, ...opts });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const all = doc.errors.map((e) => ({
      path: `(yaml${e.linePos?.[0] ? ` line ${e.linePos[0].line}, column ${e.linePos[0].col}` : ''})`,
      message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
    }));
    throw new ConfigError(all[0]!.path, all[0]!.message, all);
  }
  return buildConfig(doc.toJS(), { source: resolvePath(file), baseDir: dirname(resolvePath(file)), overrides, env, ...opts });
}

/**
 * The Config as a config file again (`config check` prints it): every default filled in, paths
 * absolute, passwords replaced by '<redacted>', and valid against the schema, so the output passes
 * `config check` itself.
 */
export function normaliseConfig(config: Config): Record<string, unknown> {
  const described: Record<string, unknown> = { ...describeConfig(config) };
  delete described['source'];
  if (config.ca.cert === undefined) delete described['ca'];
  return {
    ...described,
    products: config.policy.products.map((x) => ({
      id: x.id, company: x.company, product: x.product, version: x.version,
      ...(x.credentials ? { credentials: { username: x.credentials.username, password: '<redacted>' } } : {}),
      ...(x.apps && x.apps.length > 0 ? { apps: [...x.apps] } : {}),
    })),
    limits: { ...config.limits },
  };
}

/** A plain, secret-free view of a Config for `config check` and `explain`. */
export function describeConfig(config: Config): Record<string, unknown> {
  const p = config.policy;
  return {
    version: 1,
    source: config.source,
    listen: formatAuthority(config.listen),
    admin: config.admin === undefined ? 'off' : formatAuthority(config.admin),
    stateDir: config.stateDir,
    products: p.products.map((x) => ({ id: x.id, userAgent: x.userAgent, ...(x.credentials ? { credentials: { username: x.credentials.username, password: '<redacted>' } } : {}), ...(x.apps ? { apps: x.apps } : {}) })),
    policy: { mode: p.mode, rewrite: p.rewrite },
    clouds: p.catalogue.clouds,
    extraHosts: p.catalogue.extraHosts,
    otherHosts: p.otherHosts,
    ca: config.ca,
    upstream: {
      proxy: config.upstream.proxy ? `http://${formatAuthority(config.upstream.proxy)}` : undefined,
      noProxy: config.upstream.noProxy,
      ca: config.upstream.caFiles,
      resolve: Object.fromEntries([...p.resolve].map(([from, to]) => [from, formatAuthority(to)])),
    },
    reverse: config.reverse.map((r) => ({ listen: formatAuthority(r.listen), upstream: `https://${formatAuthority(r.upstream)}`, product: r.product.id })),
    timeouts: config.timeouts,
    limits: { ...config.limits, maxConnections: config.limits.maxConnections ?? 'from the descriptor limit' },
    access: { allowedClients: config.allowedClients, allowPrivateDestinations: p.allowPrivateDestinations, connectPorts: [...p.connectPorts] },
    log: config.log,
    usage: {
      store: describeStore(config.usage.store),
      flushMs: config.usage.flushMs,
      retentionDays: config.usage.retention,
      warnAt: config.usage.warnAt,
      metricTenants: config.usage.metricTenants,
      maxTracked: config.usage.maxTracked,
      limits: config.usage.limits,
    },
  };
}
