// The config file's JSON Schema and its Markdown reference, both generated from the zod schema in
// config.ts (z.toJSONSchema) plus the words below, so the schema editors use, the reference people
// read and the validation the proxy runs cannot drift apart. `npm run config:schema` writes
// config/mde-partner-proxy.schema.json and docs/configuration.md; a test fails when either is stale.
import { z } from 'zod';
import { configSchema } from './config.js';

/** Where the generated JSON Schema lives, relative to the package root. */
export const SCHEMA_FILE = 'config/mde-partner-proxy.schema.json';
/** Where the generated reference lives, relative to the package root. */
export const REFERENCE_FILE = 'docs/configuration.md';

interface FieldDoc {
  /** The default as people should read it, when the schema's own default does not say it. */
  readonly default?: string;
  readonly text: string;
}

/** What each key does, by path (`products[].id`: a key of every item of products). */
export const FIELD_DOCS: Readonly<Record<string, FieldDoc>> = {
  version: { default: 'required', text: 'Always `1`.' },
  listen: { default: '`127.0.0.1:3128`', text: 'Proxy listener, `host:port` (`[::1]:3128` for IPv6, port `0` for any free port).' },
  admin: { default: '`127.0.0.1:9464`', text: 'Admin listener (`/metrics`, `/livez`, `/readyz`, `/healthz`), or `off`.' },
  stateDir: { default: '`$XDG_STATE_HOME/mde-partner-proxy`, else `~/.local/state/mde-partner-proxy`', text: 'Holds the generated CA (`ca.pem`, `ca-key.pem` mode 0600, directory 0700) and `ca-bundle.pem`. Must be writable: the bundle is rewritten at every start.' },
  products: { default: "Microsoft's example identity, with a warning", text: 'The products enforced. Omit when `--user-agent` gives the one product.' },
  'products[].id': { default: 'required', text: 'Metric label and reverse-route reference: 1-63 of `A-Z a-z 0-9 _ . -`, unique; `other` and `unregistered` are reserved.' },
  'products[].company': { default: 'required', text: 'Token characters, no `-`.' },
  'products[].product': { default: 'required', text: 'Token characters; `-` allowed.' },
  'products[].version': { default: 'required', text: 'Token characters.' },
  'products[].credentials': { default: 'none', text: '`{username, password}`, `{username, passwordFile}` or `{username, passwordEnv}`. The user name is header text without `:` and unique. When any product has credentials, every caller must authenticate with Basic proxy credentials. `config check --offline` does not read `passwordFile` or `passwordEnv`.' },
  'products[].credentials.username': { default: 'required', text: 'The proxy user name a caller of this product presents.' },
  'products[].credentials.password': { text: 'The password inline (tests and examples only).' },
  'products[].credentials.passwordFile': { text: 'A file holding the password (one trailing newline is dropped); relative to the config file.' },
  'products[].credentials.passwordEnv': { text: 'An environment variable holding the password.' },
  'products[].apps': { default: '`[]`', text: "Azure AD application ids (GUIDs) of this product: a caller that no credential or reverse route binds is bound to the product whose `apps` holds its token's application id (`appid`, else `azp`). An application belongs to one product." },
  policy: { text: 'What happens to a non-compliant request.' },
  'policy.mode': { text: '`rewrite` (set the compliant User-Agent), `reject` (403, Microsoft is not contacted) or `audit` (forward unchanged, count).' },
  'policy.rewrite': { text: '`replace` or `prepend` (keep the caller\'s own tokens after the partner token); rewrite mode only.' },
  clouds: { text: 'The Microsoft clouds whose API hosts are enforced.' },
  extraHosts: { text: 'More hosts to enforce on every path: names or `*.domain` (no IP literals, no `*.tld`, no token endpoints). Added to the name constraints of a CA created afterwards.' },
  otherHosts: { text: 'CONNECT or `http://` to a host outside the catalogue: `tunnel` (blind, unchanged) or `deny` (403 `DestinationDenied`).' },
  ca: { default: 'none (use or create `stateDir/ca.pem` and `ca-key.pem`)', text: 'A CA of your own. Both keys or neither.' },
  'ca.cert': { default: 'required', text: 'PEM CA certificate (optionally followed by its chain): `CA:TRUE`, `keyCertSign` if it has key usage, unexpired, matching the key.' },
  'ca.key': { default: 'required', text: 'Unencrypted PEM key (EC P-256/P-384/P-521 or RSA).' },
  upstream: { text: 'How the proxy reaches Microsoft.' },
  'upstream.proxy': { default: 'none', text: 'Send outbound connections through this HTTP proxy with CONNECT: `http://host:port`, no credentials.' },
  'upstream.noProxy': { text: 'Hosts that bypass `upstream.proxy`: names or domain suffixes (`corp.example`, `.corp.example`, `*.corp.example`), or `*` for all.' },
  'upstream.ca': { default: 'none', text: 'One PEM file or a list with extra roots for upstream TLS, on top of the system roots (for a TLS-inspecting corporate proxy). Read at load time.' },
  'upstream.resolve': { text: '`"host:port": "address:port"`: where an outbound connection to `host:port` really goes (intercepted, plain and tunnelled traffic), applied before `upstream.proxy`. A destination named here may be a private address. For private endpoints and tests.' },
  reverse: { text: 'Reverse routes: plain HTTP in, HTTPS out to one fixed origin, bound to one product.' },
  'reverse[].listen': { default: 'required', text: '`host:port` of the plain-HTTP listener.' },
  'reverse[].upstream': { default: 'required', text: 'An `https://` origin without a path, on a host the catalogue enforces (of `clouds` or `extraHosts`).' },
  'reverse[].product': { default: 'the first product', text: 'A `products[].id`.' },
  timeouts: { text: 'All in milliseconds, integers from 1 to 86400000.' },
  'timeouts.connect': { default: '`10000`', text: 'To open a connection to the upstream or to `upstream.proxy`; then 504.' },
  'timeouts.upstream': { default: '`120000`', text: "To wait for the upstream's response headers, and between response body chunks; then 504." },
  'timeouts.headers': { default: '`30000`', text: 'For a client to send its request head; then 408.' },
  'timeouts.idle': { default: '`60000`', text: 'Before idle keep-alive connections and idle blind tunnels are closed.' },
  'timeouts.drain': { default: '`30000`', text: 'That in-flight exchanges get to finish after SIGTERM.' },
  limits: { text: 'Bounds on what one client may send.' },
  'limits.maxHeaderCount': { default: '`100`', text: 'Header fields a request head may carry; one more is refused with 431 `RequestHeaderFieldsTooLarge` and nothing is forwarded.' },
  'limits.maxHeaderBytes': { default: '`32768`', text: 'Bytes a request head (request line and fields) may take; more is refused with 431. Room for large bearer tokens.' },
  'limits.maxConnections': { default: 'unlimited', text: 'Client connections open at once on each listener; more are closed at once.' },
  access: { text: 'Who may use the proxy, and where it may connect.' },
  'access.allowedClients': { default: '`[127.0.0.0/8, ::1/128]`', text: 'CIDRs of clients allowed on the proxy and reverse listeners; others get 403 `ClientDenied`.' },
  'access.allowPrivateDestinations': { text: 'Allow loopback, private, link-local and disguised destinations.' },
  'access.connectPorts': { text: 'Ports a CONNECT may name.' },
  usage: { text: 'The usage evidence: the store, flushing, retention, the warning level for Microsoft\'s limits, metric series per tenant.' },
  'usage.store': { default: '`usage.db` in `stateDir` (SQLite)', text: '`none`, a `postgres://` URL (one database for every replica), or a SQLite file path.' },
  'usage.flushMs': { default: '`5000`', text: 'At most this many milliseconds of counts are held in memory before a write (and can be lost to a crash; none to SIGTERM).' },
  'usage.retentionDays': { default: '`{days: 400, hours: 35}`', text: 'Days of rows kept: one number for both, or `days` (day rows) and `hours` (hour rows).' },
  'usage.retentionDays.days': { default: '`400`', text: 'Days that day rows are kept.' },
  'usage.retentionDays.hours': { default: '`35`', text: 'Days that hour rows are kept.' },
  'usage.warnAt': { default: '`0.8`', text: 'Fraction of a Microsoft limit at which `rate-limit-near` is logged (once per window).' },
  'usage.metricTenants': { default: '`200`', text: 'Tenant/app pairs with their own `tenant_requests_total` series; the rest are `tenant="other"`, `app="other"`.' },
  'usage.maxTracked': { default: '`20000`', text: 'Tenant/app/limit-group windows held in memory (least recently used dropped beyond it).' },
  'usage.limits': { default: "Microsoft's published limits", text: 'Overrides of the limit table, per limit group.' },
  'usage.limits.api': { text: 'Most MDE API calls.' },
  'usage.limits.api.perMinute': { default: '`100`', text: 'Calls per minute per tenant and application.' },
  'usage.limits.api.perHour': { default: '`1500`', text: 'Calls per hour per tenant and application.' },
  'usage.limits.hunting': { text: 'Advanced hunting queries.' },
  'usage.limits.hunting.perMinute': { default: '`45`', text: 'Calls per minute per tenant and application.' },
  'usage.limits.hunting.perHour': { default: '`1500`', text: 'Calls per hour per tenant and application.' },
  'usage.limits.incidents': { text: 'The Defender XDR incidents API.' },
  'usage.limits.incidents.perMinute': { default: '`50`', text: 'Calls per minute per tenant and application.' },
  'usage.limits.incidents.perHour': { default: '`1500`', text: 'Calls per hour per tenant and application.' },
  log: { text: 'Logging.' },
  'log.level': { text: 'Least severe level written.' },
};

type Json = Record<string, unknown>;

/** Calls fn for every property schema under `node`, with its documentation path. */
function walk(node: Json, path: string, fn: (path: string, node: Json) => void): void {
  const props = node['properties'] as Record<string, Json> | undefined;
  for (const [key, child] of Object.entries(props ?? {})) {
    const childPath = path === '' ? key : `${path}.${key}`;
    fn(childPath, child);
    walk(child, childPath, fn);
    const items = child['items'] as Json | undefined;
    if (items !== undefined) walk(items, `${childPath}[]`, fn);
    for (const alt of (child['anyOf'] ?? child['oneOf'] ?? []) as Json[]) walk(alt, childPath, fn);
  }
  const items = node['items'] as Json | undefined;
  if (path === '' && items !== undefined) walk(items, '[]', fn);
}

/** The JSON Schema (draft 2020-12) of a config file, with a description on every documented key. */
export function configJsonSchema(): Json {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json;
  walk(schema, '', (path, node) => {
    const doc = FIELD_DOCS[path];
    if (doc !== undefined) node['description'] = doc.text.replace(/`/g, '');
  });
  return { ...schema, title: 'mde-partner-proxy configuration (version 1)' };
}

/** The JSON Schema file's text. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

/** A schema value as written in the docs: strings bare, everything else as JSON. */
const scalar = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v) ?? '');

const typeOf = (node: Json): string => {
  if (Array.isArray(node['enum'])) return (node['enum'] as unknown[]).map((v) => `\`${scalar(v)}\``).join(' \\| ');
  if (node['const'] !== undefined) return `\`${scalar(node['const'])}\``;
  const alts = (node['anyOf'] ?? node['oneOf']) as Json[] | undefined;
  if (alts !== undefined) return [...new Set(alts.map(typeOf))].join(' or ');
  const type = node['type'];
  if (type === 'array') return `list of ${typeOf((node['items'] ?? {}) as Json)}`;
  if (type === 'object' && node['properties'] === undefined && node['additionalProperties'] !== undefined) return 'map';
  return typeof type === 'string' ? type : 'any';
};

const bounds = (node: Json): string => {
  const min = node['minimum'];
  const max = node['maximum'];
  return min !== undefined && max !== undefined ? ` (${scalar(min)}-${scalar(max)})` : '';
};

/** docs/configuration.md: one table row per key, from the JSON Schema and FIELD_DOCS. */
export function configReference(): string {
  const schema = configJsonSchema();
  const rows: string[] = [];
  walk(schema, '', (path, node) => {
    const doc = FIELD_DOCS[path];
    const d = node['default'];
    const fallback = d === undefined || (typeof d === 'object' && d !== null && !Array.isArray(d)) ? '' : `\`${typeof d === 'string' ? d : JSON.stringify(d)}\``;
    const def = doc?.default ?? fallback;
    const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
    rows.push(`| \`${path}\` | ${typeOf(node)}${bounds(node)} | ${cell(def)} | ${cell(doc?.text ?? '')} |`);
  });
  const unique = [...new Set(rows)];
  return [
    '<!-- Generated from the zod schema in src/config.ts by `npm run config:schema` (src/config-doc.ts). Do not edit: a test fails when this file is stale. -->',
    '# Configuration reference',
    '',
    'A YAML file with `version: 1`; the proxy refuses unknown keys, duplicate keys and bad values',
    'with the path of the field, at start (exit 2), at reload (the old configuration keeps serving)',
    'and in `mde-partner-proxy config check FILE`, which reports every mistake at once. Relative',
    "paths are resolved against the config file's directory. Command-line options and",
    '`MDE_PARTNER_PROXY_*` variables (`--listen`, `--admin`, `--mode`, `--user-agent`, `--log-level`,',
    '`--state-dir`) win over the file.',
    '',
    `Editors check and complete a file against [\`${SCHEMA_FILE}\`](../${SCHEMA_FILE}) (JSON Schema`,
    '2020-12): the examples in `config/` start with',
    '`# yaml-language-server: $schema=./mde-partner-proxy.schema.json`, which the YAML language',
    'server (VS Code, Neovim, JetBrains) reads.',
    '',
    '| Key | Type | Default | What it does |',
    '|-----|------|---------|--------------|',
    ...unique,
    '',
  ].join('\n');
}
