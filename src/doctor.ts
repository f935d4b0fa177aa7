// `doctor`: checks that only look (no file written, no CA created), each a value with its status
// and, when it is not ok, the fix. The network checks take the proxy's own outbound path
// (upstream.resolve, the DNS guard, upstream.proxy and noProxy, the upstream trust store) and each
// stage is bounded by a timeout, so the doctor never hangs. cli.ts prints the checks.
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureContext, type TLSSocket } from 'node:tls';
import { isNativeError } from 'node:util/types';
import { classifyHost } from './address.js';
import { CaError, caPermits, loadOrCreateCa } from './ca.js';
import { nameConstraintDomains } from './catalogue.js';
import type { Config } from './config.js';
import { guardedLookup } from './dns-guard.js';
import { resolveDestination } from './policy.js';
import { formatAuthority } from './target.js';
import { createUpstreamTrust } from './trust.js';
import { connectViaProxy, matchesNoProxy } from './upstream-proxy.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** One line of the doctor's report. `fix` says what to do when the status is warn or fail. */
export interface Check {
  readonly name: string;
  readonly status: CheckStatus;
  readonly message: string;
  readonly fix: string | null;
}

export interface DoctorOptions {
  /** The environment a client would run in: its trust variables are checked. */
  readonly env: NodeJS.ProcessEnv;
  /** Skip the network checks (DNS, TCP, TLS, clock). */
  readonly offline: boolean;
  /** Bound on each network stage of each host, in milliseconds. */
  readonly timeoutMs: number;
  /** Hosts to reach instead of every exact host of the catalogue. */
  readonly hosts?: readonly string[];
  readonly now?: () => number;
}

/** The variables through which common clients take extra or replacement trust. NODE_EXTRA_CA_CERTS adds to Node's roots; the others replace the store. */
export const TRUST_VARIABLES = ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'] as const;

/** Days before expiry from which the CA check warns (the PrometheusRule alerts at the same point). */
const EXPIRY_WARN_DAYS = 30;
/** Clock difference from Microsoft's Date beyond which tokens and certificates start to misbehave. */
const CLOCK_WARN_SECONDS = 60;
/** Hosts reached at once. */
const NETWORK_CONCURRENCY = 4;
const DAY_MS = 86_400_000;

const check = (name: string, status: CheckStatus, message: string, fix: string | null = null): Check => ({ name, status, message, fix });

/** The certificates of a PEM file, each as its base64 body (comparable without whitespace). */
function pemBodies(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => pem.replace(/-----[A-Z ]+-----|\s+/g, ''));
}

const ROTATE = 'rotate the CA with overlap (docs/operations.md): mde-partner-proxy ca init --force, then trust the new CA everywhere';

/**
 * What to do about a CA that does not load. Only a state directory without a CA certificate is
 * fixed by a plain `ca init`: it loads (and so refuses) whatever CA is there.
 */
function caFix(config: Config, e: unknown): string {
  if (config.ca.cert !== undefined) return 'check ca.cert and ca.key in the config';
  if (!existsSync(join(config.stateDir, 'ca.pem'))) return 'mde-partner-proxy ca init';
  if (e instanceof CaError && e.code === 'CaExpired') return ROTATE;
  return 'restore the CA files from a backup, or replace them: mde-partner-proxy ca init --force, then trust the new CA everywhere';
}

/** The interception CA: present, within its validity, and allowed to sign for every enforced host. */
async function checkCa(config: Config, now: number): Promise<{ checks: Check[]; caPem?: string; caFile?: string; bundleFile?: string }> {
  let loaded;
  try {
    // Look only: a doctor that created a CA would hide the missing one it is asked about.
    loaded = await loadOrCreateCa({ stateDir: config.stateDir, permittedDomains: nameConstraintDomains(config.policy.catalogue), create: false,
      ...(config.ca.cert !== undefined ? { certFile: config.ca.cert, keyFile: config.ca.key } : {}) });
  } catch (e) {
    return { checks: [check('interception CA', 'fail', (e as Error).message, caFix(config, e))] };
  }
  const checks = [check('interception CA', 'ok', loaded.certFile)];
  const cert = new X509Certificate(loaded.ca.certPem);
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  const daysLeft = Math.floor((notAfter - now) / DAY_MS);
  const until = new Date(notAfter).toISOString().slice(0, 10);
  if (now < notBefore) checks.push(check('CA validity', 'fail', `not valid before ${new Date(notBefore).toISOString()}`, 'check this machine\'s clock'));
  else if (now >= notAfter) checks.push(check('CA validity', 'fail', `expired on ${until}`, ROTATE));
  else if (daysLeft < EXPIRY_WARN_DAYS) checks.push(check('CA validity', 'warn', `expires on ${until}, in ${daysLeft} days`, ROTATE));
  else checks.push(check('CA validity', 'ok', `valid until ${until} (${daysLeft} days)`));
  // Every enforced host of the configured clouds and extraHosts: each exact host, and a name below each '*.suffix' rule.
  const hosts = [...doctorHosts(config), ...[...config.policy.catalogue.suffixes.keys()].map((suffix) => `x.${suffix}`)];
  const uncovered = hosts.filter((h) => !caPermits(loaded.ca.certPem, h));
  checks.push(uncovered.length === 0
    ? check('CA name constraints', 'ok', `cover every enforced host (${hosts.length} names under ${nameConstraintDomains(config.policy.catalogue).join(', ')})`)
    : check('CA name constraints', 'fail', `do not cover ${uncovered.join(', ')} (CaHostNotPermitted)`, 'a CA from ca init covers the configured hosts: recreate it after changing clouds or extraHosts (docs/troubleshooting.md)'));
  return { checks, caPem: loaded.ca.certPem, caFile: loaded.certFile, bundleFile: `${config.stateDir}/ca-bundle.pem` };
}

/** Each trust variable set in env must hold the interception CA; one that replaces the trust store needs public roots too. */
function checkTrustVariables(env: NodeJS.ProcessEnv, ca: { caPem?: string; caFile?: string; bundleFile?: string }): Check[] {
  const set = TRUST_VARIABLES.filter((name) => (env[name] ?? '') !== '');
  if (set.length === 0) return [check('trust variables', 'skip', `none of ${TRUST_VARIABLES.join(', ')} is set: clients use their own trust store, which must hold the CA (docs/trust.md)`)];
  const fix = `eval "$(mde-partner-proxy env)" sets them all${ca.bundleFile !== undefined ? `; or point it at ${ca.bundleFile}` : ''}`;
  return set.map((name) => {
    const file = env[name]!;
    if (ca.caPem === undefined) return check(name, 'skip', `${file}: no interception CA to look for`);
    let bodies: string[];
    try {
      bodies = pemBodies(readFileSync(file, 'utf8'));
    } catch (e) {
      return check(name, 'fail', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, fix);
    }
    const caBody = pemBodies(ca.caPem)[0];
    if (caBody === undefined || !bodies.includes(caBody)) return check(name, 'fail', `${file} does not contain the interception CA${ca.caFile !== undefined ? ` (${ca.caFile})` : ''}`, fix);
    if (name !== 'NODE_EXTRA_CA_CERTS' && bodies.length === 1) {
      return check(name, 'warn', `${file} holds only the interception CA: tunnelled hosts (login.microsoftonline.com) will fail certificate checks`, `use ca-bundle.pem (public roots plus the CA)${ca.bundleFile !== undefined ? `: ${ca.bundleFile}` : ''}`);
    }
    return check(name, 'ok', `${file} contains the interception CA (${bodies.length} certificates)`);
  });
}

/** The proxy listener's reach: open to everyone is an open relay. */
function checkListeners(config: Config): Check[] {
  const openToAll = config.allowedClients.some((c) => /^(0\.0\.0\.0|::)\/0$/.test(c));
  const listen = check('proxy listener', openToAll ? 'fail' : 'ok', `${formatAuthority(config.listen)}, allowed clients ${config.allowedClients.join(', ')}${openToAll ? ': an open proxy' : ''}`,
    openToAll ? 'restrict access.allowedClients to the callers\' networks' : null);
  if (config.admin === undefined) return [listen, check('admin listener', 'ok', 'off')];
  const cls = classifyHost(config.admin.host);
  const where = formatAuthority(config.admin);
  // The admin listener has no authentication: /usage and /report name tenants and applications.
  const exposed = cls !== 'loopback';
  return [listen, check('admin listener', exposed ? 'warn' : 'ok',
    exposed ? `${where} is reachable beyond this host and has no authentication (/metrics, /usage, /report name tenants and applications)` : `${where} (loopback only)`,
    exposed ? 'bind admin to 127.0.0.1, or let only the scraper reach it (NetworkPolicy, firewall)' : null)];
}

/** Rejects with `${what} timed out after ms` unless promise settles first; onTimeout releases what the stage holds. */
function within<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void = () => undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what} timed out after ${ms} ms`));
    }, ms);
    promise.then((v) => {
      clearTimeout(timer);
      resolve(v);
    }, (e: unknown) => {
      clearTimeout(timer);
      // isNativeError, not instanceof: an error from another realm (a vm context) keeps its message and code.
      reject(isNativeError(e) ? e : new Error(String(e)));
    });
  });
}

/** The addresses the proxy would connect to for host: DNS through the same guard as the request path. */
function lookupGuarded(host: string, allowPrivate: boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    guardedLookup(allowPrivate)(host, { all: true }, (err, addresses) => {
      if (err) return reject(err);
      resolve((addresses as { address: string }[]).map((a) => a.address));
    });
  });
}

function tcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  const socket = netConnect({ host, port });
  return within(new Promise<Socket>((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  }), timeoutMs, `TCP to ${formatAuthority({ host, port })}`, () => socket.destroy());
}

function tls(socket: Socket, servername: string, context: SecureContext, timeoutMs: number): Promise<TLSSocket> {
  const secure = tlsConnect({ socket, servername, secureContext: context, ALPNProtocols: ['http/1.1'] });
  return within(new Promise<TLSSocket>((resolve, reject) => {
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', reject);
  }), timeoutMs, 'TLS handshake', () => secure.destroy());
}

/** Sends `HEAD /` and returns the response's Date header (undefined when it has none). */
function dateOf(secure: TLSSocket, host: string, userAgent: string, timeoutMs: number): Promise<string | undefined> {
  return within(new Promise<string | undefined>((resolve, reject) => {
    let head = '';
    secure.setEncoding('latin1');
    secure.on('data', (chunk: string) => {
      head += chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length < 65_536) return;
      resolve(/^date:[ \t]*(.+?)[ \t]*$/im.exec(head.slice(0, end < 0 ? head.length : end))?.[1]);
    });
    secure.once('error', reject);
    secure.once('end', () => resolve(undefined));
    secure.write(`HEAD / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${userAgent}\r\nConnection: close\r\n\r\n`);
  }), timeoutMs, 'HTTP response');
}

const FIXES = {
  dns: 'check this machine\'s DNS for the host, or reach it through upstream.proxy',
  tcp: 'allow egress to the host on port 443 (firewall, NetworkPolicy), or set upstream.proxy',
  proxy: 'check upstream.proxy: it must accept CONNECT to the host on port 443',
  tls: 'a TLS-inspecting proxy on the way? add its root to upstream.ca (docs/troubleshooting.md)',
} as const;

/** DNS, TCP and TLS to one Microsoft host by the proxy's outbound path; the Date of its answer and this machine's clock when it arrived. */
async function checkHost(config: Config, host: string, context: SecureContext, userAgent: string, timeoutMs: number, now: () => number): Promise<{ check: Check; date?: string | undefined; at?: number }> {
  const port = 443;
  const dest = resolveDestination(config.policy, host, port);
  const proxy = config.upstream.proxy !== undefined && !matchesNoProxy(config.upstream.noProxy, host) ? config.upstream.proxy : undefined;
  const done: string[] = [];
  let stage: keyof typeof FIXES = 'dns';
  let socket: Socket | undefined;
  try {
    let address = dest.host;
    if (dest.overridden) done.push(`upstream.resolve → ${formatAuthority(dest)}`);
    else if (proxy !== undefined) done.push('DNS left to the upstream proxy');
    else {
      const addresses = await within(lookupGuarded(host, config.policy.allowPrivateDestinations), timeoutMs, 'DNS lookup');
      address = addresses[0]!;
      done.push(`DNS ${addresses.join(' ')}`);
    }
    stage = proxy !== undefined ? 'proxy' : 'tcp';
    socket = proxy !== undefined
      ? await within(connectViaProxy(proxy, formatAuthority(dest), timeoutMs), timeoutMs, `CONNECT through ${formatAuthority(proxy)}`)
      : await tcp(address, dest.port, timeoutMs);
    done.push(proxy !== undefined ? `TCP through upstream proxy ${formatAuthority(proxy)}` : 'TCP');
    stage = 'tls';
    const secure = await tls(socket, host, context, timeoutMs);
    socket = secure;
    const issuer = secure.getPeerX509Certificate()?.issuer.split('\n').find((l) => l.startsWith('CN='))?.slice(3);
    done.push(`TLS ${secure.getProtocol() ?? ''}${issuer !== undefined ? ` (issuer ${issuer})` : ''}`);
    const date = await dateOf(secure, host, userAgent, timeoutMs).catch(() => undefined);
    return { check: check(host, 'ok', done.join(', ')), date, at: now() };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const cause = err.code === 'EDESTDENIED' ? `${err.message} (the proxy refuses them)` : err.message;
    return { check: check(host, 'fail', `${[...done, `${stage === 'proxy' ? 'CONNECT' : stage.toUpperCase()} failed: ${cause}`].join(', ')}`, FIXES[stage]) };
  } finally {
    socket?.destroy();
  }
}

/** Runs task over items with at most `limit` at once, keeping the order of items. */
async function mapBounded<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The enforced hosts a client may call: every exact host of the catalogue (suffix rules name no host to try). */
export function doctorHosts(config: Config): string[] {
  return [...config.policy.catalogue.exact.keys()];
}

/** Network checks: each enforced host, then the clock against the first Date a host answered with, as it stood when that answer arrived. */
async function checkNetwork(config: Config, opts: DoctorOptions, now: () => number): Promise<Check[]> {
  if (opts.offline) return [check('network', 'skip', 'DNS, TCP, TLS and clock checks skipped (--offline)')];
  const hosts = opts.hosts !== undefined && opts.hosts.length > 0 ? opts.hosts : doctorHosts(config);
  const context = createUpstreamTrust(config.upstream.ca);
  const userAgent = config.policy.products[0]!.userAgent;
  const results = await mapBounded(hosts, NETWORK_CONCURRENCY, (host) => checkHost(config, host, context, userAgent, opts.timeoutMs, now));
  const checks = results.map((r) => r.check);
  const dated = results.map((r, i) => ({ host: hosts[i]!, date: r.date === undefined ? NaN : Date.parse(r.date), at: r.at ?? NaN })).find((r) => !Number.isNaN(r.date));
  if (dated === undefined) return [...checks, check('clock', 'skip', 'no host answered with a Date header')];
  // The clock as it stood when the Date arrived: slower hosts after it must not count as skew.
  const skew = Math.round((dated.at - dated.date) / 1000);
  const text = `${Math.abs(skew)} s ${skew >= 0 ? 'ahead of' : 'behind'} the Date of ${dated.host}`;
  // Date has a resolution of one second, so a difference of a second or two is normal.
  checks.push(Math.abs(skew) > CLOCK_WARN_SECONDS
    ? check('clock', 'warn', text, 'synchronise this machine\'s clock (NTP): tokens and certificates are checked against it')
    : check('clock', 'ok', text));
  return checks;
}

/** Every check that needs a loaded configuration, in the order they are printed. */
export async function runDoctor(config: Config, opts: DoctorOptions): Promise<Check[]> {
  const now = opts.now ?? Date.now;
  const identity = config.exampleIdentity
    ? check('identity', 'fail', 'Microsoft\'s example, MdePartner-Contoso-ContosoCognito/1.0.0', 'set --user-agent or products in the config to your own product')
    : check('identity', 'ok', config.policy.products.map((p) => p.userAgent).join(', '));
  const ca = await checkCa(config, now());
  return [
    check('configuration', 'ok', config.source),
    identity,
    ...checkListeners(config),
    ...ca.checks,
    ...checkTrustVariables(opts.env, ca),
    ...await checkNetwork(config, opts, now),
  ];
}

/** The environment check: a stray MDE_PARTNER_PROXY_* variable stops every other command. */
export function environmentCheck(unknown: readonly string[], known: readonly string[]): Check {
  return unknown.length === 0
    ? check('environment', 'ok', 'no unknown MDE_PARTNER_PROXY_* variable')
    : check('environment', 'fail', `unknown variable ${unknown.join(', ')}`, `correct or unset it (for a Kubernetes service link: enableServiceLinks: false, or rename the Service); known: ${known.join(', ')}`);
}
