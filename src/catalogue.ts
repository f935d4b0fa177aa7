// PURE. Which hosts are Microsoft security APIs, per cloud, and which bounded metric label a
// request path maps to. Everything is compiled into Maps and Sets once, at createCatalogue or at
// module load; the per-request functions only walk strings and look up.
//
// Sources (Microsoft Learn): "Supported Microsoft Defender for Endpoint APIs" (base URI and geo
// hosts), "Microsoft Defender for Endpoint for US Government customers" (API section),
// "Microsoft Defender XDR for US Government customers", "Microsoft Graph national cloud
// deployments" (GCC uses the global graph.microsoft.com; GCC High graph.microsoft.us; DoD
// dod-graph.microsoft.us), and the Graph `security` resource type.

import { isDnsName, isWithinDomain, normaliseHost } from './address.js';

export type Cloud = 'commercial' | 'gcc' | 'gcc-high' | 'dod';

/** Every cloud, in the order the config documents them. */
export const CLOUDS: readonly Cloud[] = Object.freeze(['commercial', 'gcc', 'gcc-high', 'dod']);

export type HostKind = 'api' | 'graph' | 'token' | 'other';

/** One built-in catalogue entry: an exact host, or '*.suffix' for every name below suffix. */
export interface HostRule {
  readonly pattern: string;
  readonly kind: 'api' | 'graph';
}

export interface Catalogue {
  readonly clouds: readonly Cloud[];
  /** normalised: lowercase, no trailing dot; '*.suffix' kept as written */
  readonly extraHosts: readonly string[];
  readonly exact: ReadonlyMap<string, 'api' | 'graph'>;
  readonly suffixes: ReadonlyMap<string, 'api' | 'graph'>;
  readonly constraintDomains: readonly string[];
}

const api = (pattern: string): HostRule => ({ pattern, kind: 'api' });
const graph = (pattern: string): HostRule => ({ pattern, kind: 'graph' });

const COMMERCIAL: readonly HostRule[] = [
  // Defender XDR / MDE base URI and its documented geo hosts.
  api('api.security.microsoft.com'),
  ...['us', 'eu', 'uk', 'au', 'swa', 'ina', 'aea'].map((geo) => api(`${geo}.api.security.microsoft.com`)),
  // Any further geo Microsoft adds below the base URI is an API host too.
  api('*.api.security.microsoft.com'),
  ...['us', 'eu', 'uk'].map((geo) => api(`api-${geo}.security.microsoft.com`)),
  // The MDE API's earlier base URI and its geo hosts.
  api('api.securitycenter.microsoft.com'),
  ...['us', 'eu', 'uk', 'au'].map((geo) => api(`api-${geo}.securitycenter.microsoft.com`)),
  // Legacy WDATP hosts (api.securitycenter.windows.com, wdatp-alertexporter-*.…).
  api('*.securitycenter.windows.com'),
  graph('graph.microsoft.com'),
];

// api-gcc./api-gov.securitycenter.microsoft.us (MDE) and api-gcc./api-gov.security.microsoft.us
// (Defender XDR); suffix rules so every government host below them is covered.
const GOVERNMENT: readonly HostRule[] = [
  api('*.securitycenter.microsoft.us'),
  api('*.security.microsoft.us'),
  graph('graph.microsoft.us'),
  graph('dod-graph.microsoft.us'),
];

/** The built-in hosts of each cloud. GCC tenants call the global Graph service. */
export const CATALOGUE_HOSTS: Readonly<Record<Cloud, readonly HostRule[]>> = Object.freeze({
  commercial: COMMERCIAL,
  gcc: [...GOVERNMENT, graph('graph.microsoft.com')],
  'gcc-high': GOVERNMENT,
  dod: GOVERNMENT,
});

// DNS suffixes an interception CA must be allowed to sign for (RFC 5280 §4.2.1.10: a dNSName
// constraint covers the name and every name below it). A unit test checks they cover every rule.
const CONSTRAINT_DOMAINS: Readonly<Record<Cloud, readonly string[]>> = {
  commercial: ['security.microsoft.com', 'securitycenter.microsoft.com', 'securitycenter.windows.com', 'graph.microsoft.com'],
  gcc: ['security.microsoft.us', 'securitycenter.microsoft.us', 'graph.microsoft.us', 'dod-graph.microsoft.us', 'graph.microsoft.com'],
  'gcc-high': ['security.microsoft.us', 'securitycenter.microsoft.us', 'graph.microsoft.us', 'dod-graph.microsoft.us'],
  dod: ['security.microsoft.us', 'securitycenter.microsoft.us', 'graph.microsoft.us', 'dod-graph.microsoft.us'],
};

// Microsoft Entra ID token endpoints of every cloud: never intercepted, whatever is configured.
const TOKEN_HOSTS: ReadonlySet<string> = new Set([
  'login.microsoftonline.com',
  'login.microsoftonline.us',
  'login.windows.net',
  'login.microsoft.com',
]);

/** True for a Microsoft Entra ID token endpoint host, of any cloud. */
export function isTokenHost(host: string): boolean {
  return TOKEN_HOSTS.has(normaliseHost(host));
}

function hasLetterInLastLabel(name: string): boolean {
  for (let i = name.length - 1; i >= 0; i--) {
    const c = name.charCodeAt(i) | 0x20;
    if (c === 0x2e) return false;
    if (c >= 0x61 && c <= 0x7a) return true;
  }
  return false;
}

/** Normalise an extraHosts entry, or undefined when it is not a host name or '*.suffix' with two labels or more. */
export function normaliseHostPattern(pattern: string): string | undefined {
  const wildcard = pattern.startsWith('*.');
  const name = normaliseHost(wildcard ? pattern.slice(2) : pattern);
  if (!isDnsName(name) || !hasLetterInLastLabel(name)) return undefined; // IP literals are not hosts here
  if (wildcard && name.indexOf('.') < 0) return undefined; // '*.com' would claim a whole TLD
  return wildcard ? `*.${name}` : name;
}

/**
 * Compile the catalogue of the given clouds plus extra hosts (bare names or '*.suffix', kind 'api').
 * Throws RangeError on an unknown cloud, a malformed extra host, or a token endpoint as extra host.
 */
export function createCatalogue(clouds: readonly Cloud[], extraHosts: readonly string[] = []): Catalogue {
  const selected = [...new Set(clouds)];
  for (const c of selected) if (!CLOUDS.includes(c)) throw new RangeError(`unknown cloud "${String(c)}"`);

  const exact = new Map<string, 'api' | 'graph'>();
  const suffixes = new Map<string, 'api' | 'graph'>();
  const add = (pattern: string, kind: 'api' | 'graph'): void => {
    if (pattern.startsWith('*.')) suffixes.set(pattern.slice(2), kind);
    else exact.set(pattern, kind);
  };

  const extras: string[] = [];
  for (const raw of extraHosts) {
    const pattern = normaliseHostPattern(raw);
    if (pattern === undefined) throw new RangeError(`extra host "${raw}" is not a host name or "*.suffix"`);
    if (TOKEN_HOSTS.has(pattern)) throw new RangeError(`extra host "${raw}" is a token endpoint, which is never intercepted`);
    if (!extras.includes(pattern)) extras.push(pattern);
  }
  // Extra hosts first, so a built-in rule wins where both name a host (Graph keeps its path scope).
  for (const pattern of extras) add(pattern, 'api');
  for (const c of selected) for (const rule of CATALOGUE_HOSTS[c]) add(rule.pattern, rule.kind);

  const domains = [
    ...selected.flatMap((c) => CONSTRAINT_DOMAINS[c]),
    ...extras.map((p) => (p.startsWith('*.') ? p.slice(2) : p)),
  ];
  const unique = [...new Set(domains)];
  const minimal = unique.filter((d) => !unique.some((other) => other !== d && isWithinDomain(d, other))).sort();

  return Object.freeze({
    clouds: Object.freeze(selected),
    extraHosts: Object.freeze(extras),
    exact,
    suffixes,
    constraintDomains: Object.freeze(minimal),
  });
}

/** The last host asked about, per catalogue: a request asks two or three times about the same host. */
const lastKind = new WeakMap<Catalogue, { readonly host: string; readonly kind: HostKind }>();

/** The kind of a host under this catalogue; token endpoints are 'token' whatever is selected. */
export function hostKind(cat: Catalogue, host: string): HostKind {
  const last = lastKind.get(cat);
  if (last !== undefined && last.host === host) return last.kind;
  const kind = kindOf(cat, host);
  lastKind.set(cat, { host, kind });
  return kind;
}

function kindOf(cat: Catalogue, host: string): HostKind {
  const h = normaliseHost(host);
  if (TOKEN_HOSTS.has(h)) return 'token';
  const kind = cat.exact.get(h);
  if (kind !== undefined) return kind;
  // Longest suffix first: walk the dots left to right.
  for (let dot = h.indexOf('.'); dot >= 0; dot = h.indexOf('.', dot + 1)) {
    const k = cat.suffixes.get(h.slice(dot + 1));
    if (k !== undefined) return k;
  }
  return 'other';
}

/**
 * True when the policy applies: every path of an API host, and on a Graph host only
 * /v1.0/security and /beta/security and below (segment boundary, case-insensitive).
 */
export function isEnforced(cat: Catalogue, host: string, path: string): boolean {
  const kind = hostKind(cat, host);
  if (kind === 'api') return true;
  if (kind === 'graph') return graphSecurityCollection(path) !== undefined || ambiguousPath(path);
  return false;
}

/**
 * A path Graph might normalise into /v1.0/security (percent-encoding, dot-segments per RFC 3986
 * §5.2.4, ';' parameters) is enforced: fail closed rather than let a spelling bypass the policy.
 */
function ambiguousPath(path: string): boolean {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return p.includes('%') || p.includes(';') || p.includes('\\') || /(^|\/)\.{1,2}(\/|$)/.test(p);
}

/** DNS suffixes an interception CA must be allowed to sign for (RFC 5280 §4.2.1.10), minimal and sorted. */
export function nameConstraintDomains(cat: Catalogue): string[] {
  return [...cat.constraintDomains];
}

// ---------------------------------------------------------------------------------------------
// Metric labels

// MDE / Defender XDR collections: the first segment after /api/ in the documented endpoints.
const MDE_COLLECTIONS = [
  'advancedhunting',
  'advancedqueries',
  'alerts',
  'baselineconfigurations',
  'baselineprofiles',
  'browserextensions',
  'configurationscore',
  'deviceauthenticatedscanagents',
  'deviceauthenticatedscandefinitions',
  'deviceavinfo',
  'domains',
  'exposurescore',
  'files',
  'incidents',
  'indicators',
  'investigations',
  'ips',
  'libraryfiles',
  'machineactions',
  'machines',
  'recommendations',
  'remediationtasks',
  'software',
  'users',
  'vulnerabilities',
] as const;

// Graph `security` navigation properties and actions, in Graph's own spelling.
const GRAPH_COLLECTIONS = [
  'alerts',
  'alerts_v2',
  'attackSimulation',
  'auditLog',
  'cases',
  'collaboration',
  'dataDiscovery',
  'dataSecurityAndGovernance',
  'identities',
  'incidents',
  'informationProtection',
  'labels',
  'rules',
  'runHuntingQuery',
  'secureScoreControlProfiles',
  'secureScores',
  'securityActions',
  'subjectRightsRequests',
  'threatIntelligence',
  'threatSubmission',
  'tiIndicators',
  'triggerTypes',
  'triggers',
] as const;

const OTHER = 'other';
const GRAPH_ROOT = 'security';

const MDE_LABELS: ReadonlyMap<string, string> = new Map<string, string>([
  ...MDE_COLLECTIONS.map((c): [string, string] => [c, c]),
  ['avdeviceshealth', 'deviceavinfo'], // GET /api/public/avdeviceshealth, the device health export
]);

const GRAPH_LABELS: ReadonlyMap<string, string> = new Map<string, string>([
  ...GRAPH_COLLECTIONS.map((c): [string, string] => [c.toLowerCase(), `security.${c}`]),
  ['microsoft.graph.security.runhuntingquery', 'security.runHuntingQuery'],
]);

/** Every label apiLabel can return: the bounded set for the `api` metric label. */
export const API_LABELS: readonly string[] = Object.freeze([
  OTHER,
  ...MDE_COLLECTIONS,
  GRAPH_ROOT,
  ...GRAPH_COLLECTIONS.map((c) => `security.${c}`),
]);

// Paths are read segment by segment up to '?' or '#', skipping empty segments so that
// '//v1.0//security' (a base URL ending in '/' joined to '/v1.0/…') still counts.
function pathEnd(path: string): number {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x3f || c === 0x23) return i;
  }
  return path.length;
}

// The next non-empty segment starting at or after `from`, as [start, end], or undefined.
function nextSegment(path: string, from: number, end: number): [number, number] | undefined {
  let start = from;
  while (start < end && path.charCodeAt(start) === 0x2f) start++;
  if (start >= end) return undefined;
  let stop = start;
  while (stop < end && path.charCodeAt(stop) !== 0x2f) stop++;
  return [start, stop];
}

function segmentIs(path: string, seg: [number, number], lower: string): boolean {
  const [start, stop] = seg;
  if (stop - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = path.charCodeAt(start + i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

// The collection part of a segment: up to an OData key '(' ('alerts_v2(\'id\')'), lowercased.
function collectionKey(path: string, seg: [number, number]): string {
  const [start, stop] = seg;
  let end = start;
  while (end < stop && path.charCodeAt(end) !== 0x28) end++;
  return path.slice(start, end).toLowerCase();
}

// For a Graph path under /v1.0/security or /beta/security: '' for the root, else the lowercased
// collection. Undefined when the path is outside the security API.
function graphSecurityCollection(path: string): string | undefined {
  const end = pathEnd(path);
  const version = nextSegment(path, 0, end);
  if (version === undefined || !(segmentIs(path, version, 'v1.0') || segmentIs(path, version, 'beta'))) return undefined;
  const root = nextSegment(path, version[1], end);
  if (root === undefined || !segmentIs(path, root, 'security')) return undefined;
  const collection = nextSegment(path, root[1], end);
  return collection === undefined ? '' : collectionKey(path, collection);
}

// A version segment such as v1.0 or v2 (MDE accepts /api/{Version}/…).
function isVersionSegment(path: string, seg: [number, number]): boolean {
  const [start, stop] = seg;
  if (stop - start < 2 || (path.charCodeAt(start) | 0x20) !== 0x76) return false;
  for (let i = start + 1; i < stop; i++) {
    const c = path.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2e)) return false;
  }
  return true;
}

function mdeLabel(path: string): string {
  const end = pathEnd(path);
  const first = nextSegment(path, 0, end);
  if (first === undefined || !segmentIs(path, first, 'api')) return OTHER;
  let seg = nextSegment(path, first[1], end);
  if (seg !== undefined && isVersionSegment(path, seg)) seg = nextSegment(path, seg[1], end);
  if (seg !== undefined && segmentIs(path, seg, 'public')) seg = nextSegment(path, seg[1], end);
  if (seg === undefined) return OTHER;
  return MDE_LABELS.get(collectionKey(path, seg)) ?? OTHER;
}

function graphLabel(path: string): string {
  const collection = graphSecurityCollection(path);
  if (collection === undefined) return OTHER;
  if (collection === '') return GRAPH_ROOT;
  return GRAPH_LABELS.get(collection) ?? OTHER;
}

/**
 * The bounded `api` metric label of a request: the MDE collection after /api/ (version segment
 * skipped), or `security.<collection>` for Graph; 'other' for anything else. Always in API_LABELS.
 */
export function apiLabel(kind: HostKind, path: string): string {
  if (kind === 'api') return mdeLabel(path);
  if (kind === 'graph') return graphLabel(path);
  return OTHER;
}
