// What a client needs to use the proxy: the CA bundle to trust and the environment lines to set.
import { mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { running } from './ca.js';
import type { Config } from './config.js';
import { formatAuthority } from './target.js';

/**
 * Where distributions keep their PEM bundle of public roots, in the order OpenSSL-based tools and
 * Go's crypto/x509 look: Debian/Ubuntu/Alpine/Gentoo, Fedora/RHEL, openSUSE, OpenELEC,
 * RHEL 7+/CentOS (extracted trust), Alpine/macOS/FreeBSD (cert.pem).
 */
export const SYSTEM_BUNDLE_PATHS: readonly string[] = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** Where the public roots in a client bundle came from. */
export type RootsSource = 'SSL_CERT_FILE' | 'system' | 'node';

export interface SystemRoots {
  readonly pem: string;
  readonly source: RootsSource;
  /** The file read, or 'node:tls rootCertificates'. */
  readonly from: string;
  readonly count: number;
}

export interface RootsOptions {
  /** The environment to read SSL_CERT_FILE from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Distribution bundle paths to try in order; default SYSTEM_BUNDLE_PATHS. */
  paths?: readonly string[];
  /** Node's own roots; default tls.rootCertificates. */
  nodeRoots?: readonly string[];
  /** A file never to read roots from (the bundle being written: reading it would nest old copies). */
  exclude?: string;
  /** A certificate (PEM) that does not count as a public root: the interception CA itself. */
  notRoot?: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificate blocks in a text (anything between them, comments included, is dropped). */
function certBlocks(text: string): string[] {
  return text.match(CERT_BLOCK) ?? [];
}

const sameFile = (a: string, b: string | undefined): boolean => {
  if (b === undefined) return false;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
};

/**
 * The public roots a client bundle starts from, found as OpenSSL does: SSL_CERT_FILE when it names
 * a readable file with certificates, else the first distribution bundle that holds any, else Node's
 * own roots (tls.rootCertificates). A file that exists but holds no certificate is skipped, so the
 * result always has public roots; throws only when even Node has none.
 */
export function findSystemRoots(opts: RootsOptions = {}): SystemRoots {
  const env = opts.env ?? process.env;
  const notRoot = opts.notRoot?.trim();
  const tried: { source: RootsSource; file: string }[] = [];
  const fromEnv = env['SSL_CERT_FILE'];
  if (fromEnv !== undefined && fromEnv !== '') tried.push({ source: 'SSL_CERT_FILE', file: fromEnv });
  for (const file of opts.paths ?? SYSTEM_BUNDLE_PATHS) tried.push({ source: 'system', file });
  for (const { source, file } of tried) {
    if (sameFile(file, opts.exclude)) continue;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // absent or unreadable: try the next place, as OpenSSL does
    }
    const blocks = certBlocks(text).filter((block) => block !== notRoot);
    if (blocks.length > 0) return { pem: blocks.join('\n'), source, from: file, count: blocks.length };
  }
  const node = [...(opts.nodeRoots ?? rootCertificates)].flatMap(certBlocks).filter((block) => block !== notRoot);
  if (node.length === 0) throw new Error('no public root certificates found: not in SSL_CERT_FILE, the distribution bundles, nor Node.js');
  return { pem: node.join('\n'), source: 'node', from: 'node:tls rootCertificates', count: node.length };
}

/** The proxy URL clients use: the listen address, with 0.0.0.0/:: shown as loopback. */
export function proxyUrl(config: Config, port = config.listen.port): string {
  const host = config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host === '::' ? '::1' : config.listen.host;
  return `http://${formatAuthority({ host, port })}`;
}

/**
 * Writes `ca-bundle.pem` beside the CA: the public roots (findSystemRoots) plus the interception CA,
 * for clients whose variable replaces the trust store (curl, Python requests, Go) so other HTTPS,
 * token requests included, keeps verifying. Never writes a bundle without public roots.
 */
export function writeTrustBundle(stateDir: string, caCertPem: string, opts: RootsOptions = {}): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, 'ca-bundle.pem');
  const ca = caCertPem.trim();
  // A roots file that already carries the CA (SSL_CERT_FILE pointing at an earlier bundle) keeps one copy.
  const roots = findSystemRoots({ ...opts, exclude: opts.exclude ?? file, notRoot: ca });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `# Public roots from ${roots.from}, then the mde-partner-proxy interception CA\n${roots.pem}\n${ca}\n`, { mode: 0o644 });
  renameSync(tmp, file);
  removeStaleBundles(stateDir);
  return file;
}

const BUNDLE_TMP = /^ca-bundle\.pem\.(\d+)\.tmp$/;

/** Removes the half-written bundles of processes killed between write and rename (a live writer's file is left alone). */
function removeStaleBundles(stateDir: string): void {
  for (const name of readdirSync(stateDir)) {
    const m = BUNDLE_TMP.exec(name);
    if (m !== null && !running(Number(m[1]))) rmSync(join(stateDir, name), { force: true });
  }
}

/** Shell lines that point curl, Python, Node, Go, Java and others at the proxy and its CA. */
export function envLines(opts: { proxyUrl: string; caFile: string; bundleFile: string }): string[] {
  const { proxyUrl: url, caFile, bundleFile } = opts;
  return [
    `export HTTPS_PROXY=${url} https_proxy=${url}`,
    `export NO_PROXY=localhost,127.0.0.1,::1 no_proxy=localhost,127.0.0.1,::1`,
    `# curl, Python requests, Go, OpenSSL-based tools: system roots plus the interception CA`,
    `export CURL_CA_BUNDLE=${bundleFile} REQUESTS_CA_BUNDLE=${bundleFile} SSL_CERT_FILE=${bundleFile}`,
    `# Node.js: adds the CA to its roots; Node >= 24 also honours HTTPS_PROXY with NODE_USE_ENV_PROXY=1`,
    `export NODE_EXTRA_CA_CERTS=${caFile} NODE_USE_ENV_PROXY=1`,
    `# Java: keytool -importcert -noprompt -alias mde-partner-proxy -file ${caFile} -cacerts -storepass changeit`,
    `#       and run with -Dhttps.proxyHost=<host> -Dhttps.proxyPort=<port>`,
  ];
}

/** Human steps printed at start-up and by `ca init`: where the CA is and how to trust it. */
export function trustSteps(opts: { proxyUrl: string; caFile: string; bundleFile: string }): string {
  return [
    `Interception CA: ${opts.caFile}`,
    `Trust it in a client, for example:`,
    `  curl --proxy ${opts.proxyUrl} --cacert ${opts.caFile} https://api.security.microsoft.com/api/machines`,
    `  eval "$(mde-partner-proxy env)"     # HTTPS_PROXY plus CA variables for curl, Python, Node, Go`,
    `System-wide (Debian/Ubuntu): cp ${opts.caFile} /usr/local/share/ca-certificates/mde-partner-proxy.crt && update-ca-certificates`,
  ].join('\n');
}
