// The interception CA: create or load it, and mint the short-lived leaf certificates the proxy
// terminates TLS with. The CA is name-constrained (RFC 5280 §4.2.1.10) to the Microsoft API
// domains and excludes every IP address, so its key cannot impersonate any other site.
//
// Certificates are encoded by the small DER writer in x509.ts: one builder serves the CA and the
// leaves, and most of a new host's cost is OpenSSL decoding PEM in tls.createSecureContext. Tests
// check every shape with openssl and node.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  buildCertificate, childAt, childrenOf, contentOf, DER_TRUE, distinguishedName, elementOf, extension, generateEcKey, keyIdentifier, octets,
  OID, pem, pemBlocks, pkcs8Pem, readTlv, seq, signerFor, spkiOf, tlv, type Signer,
} from './x509.js';
import { dnsNameOf, isWithinDomain } from './address.js';

/** A CA certificate (PEM; the issuing CA first, then any chain above it) and its private key (PEM). */
export interface CaMaterial { readonly certPem: string; readonly keyPem: string }

/** The CA in use and where it lives; `created` is true when this call generated it. */
export interface LoadedCa {
  readonly ca: CaMaterial;
  readonly certFile: string;
  readonly keyFile: string;
  readonly created: boolean;
  /** Where a key found without its certificate was moved before a new CA was created. */
  readonly setAside?: string;
}

/** Mints and caches one TLS server context per host name. */
export interface LeafIssuer {
  secureContextFor(host: string): Promise<tls.SecureContext>;
  /** Cached contexts (in-flight mints are not counted). */
  readonly size: number;
}

/** Stable CA fault codes (listed in the README; never renamed). */
export type CaErrorCode = 'CaUnreadable' | 'CaUnwritable' | 'CaInvalid' | 'CaKeyMismatch' | 'CaNotAuthority' | 'CaExpired' | 'CaHostNotPermitted';

/** A CA fault with a stable code; `file` (also in the message) names the CA file at fault, if any. */
export class CaError extends Error {
  override readonly name = 'CaError';
  constructor(readonly code: CaErrorCode, message: string, readonly file?: string, options?: ErrorOptions) {
    super(file === undefined ? message : `${file}: ${message}`, options);
  }
}

/**
 * Leaf contexts kept: each holds native memory outside the JS heap, and a partner talks to a few
 * dozen Microsoft hosts, so 256 bounds memory without re-minting in practice.
 */
const DEFAULT_LEAF_CACHE = 256;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Two years: long enough that trust is not re-established often, short enough to rotate. */
const CA_VALIDITY_DAYS = 730;
const LEAF_VALIDITY_DAYS = 7;
/** notBefore is backdated so clients with a slow clock accept a fresh certificate. */
const BACKDATE_MS = HOUR;

// ---- host names and name constraints -----------------------------------------------------------

/** RFC 5280 §4.2.1.10 dNSName: adding labels on the left satisfies the constraint; '.x' means subdomains only. */
function dnsWithin(host: string, base: string): boolean {
  if (base === '') return true;
  if (base.startsWith('.')) return host.endsWith(base);
  return isWithinDomain(host, base);
}

interface DnsConstraints {
  /** undefined: dNSNames are not restricted by a permitted subtree. */
  readonly permitted: readonly string[] | undefined;
  readonly excluded: readonly string[];
  /** A permitted directoryName subtree exists: our leaf subject (CN=host) lies outside any sensible one. */
  readonly restrictsSubject: boolean;
}

function parseNameConstraints(value: Buffer): DnsConstraints {
  let permitted: string[] | undefined;
  const excluded: string[] = [];
  let directory = false;
  for (const subtrees of childrenOf(value, readTlv(value, 0))) {
    for (const subtree of childrenOf(value, subtrees)) {
      const base = childAt(childrenOf(value, subtree), 0);
      const text = contentOf(value, base).toString('latin1').toLowerCase();
      if (subtrees.tag === 0xa0 && base.tag === 0x82) (permitted ??= []).push(text);
      else if (subtrees.tag === 0xa0 && base.tag === 0xa4) directory = true;
      else if (subtrees.tag === 0xa1 && base.tag === 0x82) excluded.push(text);
    }
  }
  return { permitted, excluded, restrictsSubject: directory };
}

function permits(constraints: DnsConstraints | undefined, host: string): boolean {
  if (constraints === undefined) return true;
  if (constraints.restrictsSubject) return false;
  if (constraints.permitted !== undefined && !constraints.permitted.some((base) => dnsWithin(host, base))) return false;
  return !constraints.excluded.some((base) => dnsWithin(host, base));
}

/** permittedDomains → distinct bare domains; '*.x' and '.x' become 'x' (which also permits x itself). */
function normalizeDomains(domains: readonly string[]): string[] {
  const names = domains.map((d) => {
    const n = dnsNameOf(d.replace(/^\*?\./, ''));
    if (n === undefined) throw new RangeError(`permittedDomains: '${d}' is not a DNS name`);
    return n;
  });
  const distinct = [...new Set(names)];
  const kept = distinct.filter((d) => !distinct.some((other) => other !== d && dnsWithin(d, other)));
  if (kept.length === 0) throw new RangeError('permittedDomains must name at least one domain: an unconstrained CA could impersonate any site');
  return kept;
}

/** RFC 5280 §4.2.1.10: permit the domains and their subdomains; exclude 0.0.0.0/0 and ::/0. */
function nameConstraintsValue(domains: readonly string[]): Buffer {
  return seq(
    tlv(0xa0, ...domains.map((d) => seq(tlv(0x82, Buffer.from(d, 'ascii'))))),
    tlv(0xa1, seq(tlv(0x87, Buffer.alloc(8))), seq(tlv(0x87, Buffer.alloc(32)))),
  );
}

// ---- parsing and checking a CA -----------------------------------------------------------------

interface ParsedCert {
  readonly subject: Buffer;
  readonly spki: Buffer;
  readonly extensions: ReadonlyMap<string, { readonly critical: boolean; readonly value: Buffer }>;
}

/** The raw subject, SPKI and extensions of a DER certificate (RFC 5280 §4.1). */
function parseCertificate(der: Buffer): ParsedCert {
  const tbs = childAt(childrenOf(der, readTlv(der, 0)), 0);
  const fields = childrenOf(der, tbs);
  const v = childAt(fields, 0).tag === 0xa0 ? 1 : 0;
  const subject = childAt(fields, v + 4);
  const spki = childAt(fields, v + 5);
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  const wrapper = fields.slice(v + 6).find((f) => f.tag === 0xa3);
  if (wrapper) {
    for (const ext of childrenOf(der, childAt(childrenOf(der, wrapper), 0))) {
      const parts = childrenOf(der, ext);
      const critical = parts.length === 3 && der.readUInt8(childAt(parts, 1).contentStart) !== 0;
      const type = elementOf(der, childAt(parts, 0)).toString('hex');
      extensions.set(type, { critical, value: contentOf(der, childAt(parts, parts.length - 1)) });
    }
  }
  return { subject: elementOf(der, subject), spki: elementOf(der, spki), extensions };
}

const extOf = (cert: ParsedCert, type: Buffer) => cert.extensions.get(type.toString('hex'));

function constraintsOf(cert: ParsedCert): DnsConstraints | undefined {
  const ext = extOf(cert, OID.nameConstraints);
  return ext === undefined ? undefined : parseNameConstraints(ext.value);
}

interface PreparedCa {
  readonly material: CaMaterial;
  readonly cert: ParsedCert;
  readonly keyId: Buffer;
  readonly notAfter: number;
  readonly constraints: DnsConstraints | undefined;
  readonly signer: Signer;
}

/** Parse and check CA material; errors name `files` when the material came from disk. */
function prepareCa(certPem: string | Buffer, keyPem: string | Buffer, files: { cert?: string; key?: string } = {}): PreparedCa {
  const blocks = pemBlocks(certPem.toString());
  const first = blocks[0];
  if (first === undefined) throw new CaError('CaInvalid', 'no PEM certificate found (expected -----BEGIN CERTIFICATE-----)', files.cert);
  let nodeCert: X509Certificate;
  let cert: ParsedCert;
  try {
    nodeCert = new X509Certificate(first);
    cert = parseCertificate(first);
  } catch (cause) {
    throw new CaError('CaInvalid', `the CA certificate does not parse: ${(cause as Error).message}`, files.cert, { cause });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (cause) {
    // Node's message never contains key material; encrypted keys land here too.
    throw new CaError('CaInvalid', `the CA key does not parse as an unencrypted PEM private key: ${(cause as Error).message}`, files.key, { cause });
  }
  const signer = signerFor(key);
  if (signer === undefined) throw new CaError('CaInvalid', `unsupported CA key type ${key.asymmetricKeyType ?? '?'} (use EC P-256/P-384/P-521 or RSA)`, files.key);
  if (!nodeCert.checkPrivateKey(key)) throw new CaError('CaKeyMismatch', `the key does not belong to the certificate ${files.cert ?? ''}`.trimEnd(), files.key ?? files.cert);
  // RFC 5280 §4.2.1.9 and §4.2.1.3: an issuer needs CA:TRUE and, when keyUsage is present, keyCertSign.
  const usage = extOf(cert, OID.keyUsage);
  const usageBits = usage && contentOf(usage.value, readTlv(usage.value, 0)); // [unused-bit count, bits...]
  const canSign = usageBits === undefined || ((usageBits[1] ?? 0) & 0x04) !== 0; // keyCertSign is bit 5
  if (!nodeCert.ca || !canSign) throw new CaError('CaNotAuthority', 'the certificate is not a CA (needs basicConstraints CA:TRUE and keyUsage keyCertSign)', files.cert);
  const notAfter = Date.parse(nodeCert.validTo);
  if (notAfter <= Date.now()) throw new CaError('CaExpired', `the CA certificate expired on ${new Date(notAfter).toISOString()}`, files.cert);
  const ski = extOf(cert, OID.subjectKeyIdentifier);
  return {
    material: { certPem: blocks.map(pem).join(''), keyPem: pkcs8Pem(key) },
    cert,
    keyId: ski ? contentOf(ski.value, readTlv(ski.value, 0)) : keyIdentifier(cert.spki),
    notAfter,
    constraints: constraintsOf(cert),
    signer,
  };
}

function positive(field: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${field} must be a positive number`);
  return value;
}

// ---- the CA ------------------------------------------------------------------------------------

function defaultCommonName(now: number): string {
  const prefix = 'mde-partner-proxy interception CA (';
  const suffix = `, ${new Date(now).toISOString().slice(0, 10)})`;
  const host = (os.hostname().split('.')[0] ?? '').slice(0, 64 - prefix.length - suffix.length);
  return `${prefix}${host || 'localhost'}${suffix}`;
}

/**
 * Create a name-constrained ECDSA P-256 root CA (RFC 5280 §4.2.1.9, §4.2.1.3, §4.2.1.10); its validity
 * starts at opts.now() (epoch ms, the real clock by default) less the backdating.
 */
export async function createCa(opts: { commonName?: string; permittedDomains: readonly string[]; validityDays?: number; now?: () => number }): Promise<CaMaterial> {
  const domains = normalizeDomains(opts.permittedDomains);
  const now = (opts.now ?? Date.now)();
  const commonName = opts.commonName ?? defaultCommonName(now);
  if (commonName.length === 0 || commonName.length > 64) throw new RangeError('commonName must be 1 to 64 characters (RFC 5280 ub-common-name)');
  const validityDays = positive('validityDays', opts.validityDays ?? CA_VALIDITY_DAYS);
  const { privateKey, publicKey } = await generateEcKey();
  const signer = signerFor(privateKey);
  if (signer === undefined) throw new Error('unreachable: P-256 key without a signer');
  const spki = spkiOf(publicKey);
  const subject = distinguishedName([[OID.organization, 'mde-partner-proxy'], [OID.commonName, commonName]]);
  const der = await buildCertificate({
    issuer: subject,
    subject,
    spki,
    notBefore: now - BACKDATE_MS,
    notAfter: now + validityDays * DAY,
    extensions: [
      extension(OID.basicConstraints, true, seq(DER_TRUE, tlv(0x02, Buffer.from([0])))), // CA:TRUE, pathLen 0
      extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x01, 0x06]))), // keyCertSign, cRLSign
      extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(spki))),
      extension(OID.nameConstraints, true, nameConstraintsValue(domains)),
    ],
  }, signer);
  return { certPem: pem(der), keyPem: pkcs8Pem(privateKey) };
}

/** caPermits runs per CONNECT: parse each CA certificate once (a process holds one or two). */
const constraintsCache = new Map<string, DnsConstraints | undefined>();

/** Whether the CA's name constraints (RFC 5280 §4.2.1.10), if any, permit a leaf for host; false for an IP or a malformed CA. */
export function caPermits(caCertPem: string, host: string): boolean {
  const name = dnsNameOf(host);
  if (name === undefined) return false; // leaves carry only a dNSName, never an IP address
  if (!constraintsCache.has(caCertPem)) {
    const der = pemBlocks(caCertPem)[0];
    let constraints: DnsConstraints | undefined;
    try {
      if (der === undefined) return false;
      constraints = constraintsOf(parseCertificate(der));
    } catch {
      return false; // no leaf can be minted from a certificate that does not parse
    }
    if (constraintsCache.size >= 8) constraintsCache.clear();
    constraintsCache.set(caCertPem, constraints);
  }
  return permits(constraintsCache.get(caCertPem), name);
}

async function readCaFile(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (cause) {
    throw new CaError('CaUnreadable', `cannot read: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, file, { cause });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw new CaError('CaUnreadable', `cannot stat: ${code ?? ''}`, file, { cause });
  }
}

const CERT_NAME = 'ca.pem';
const KEY_NAME = 'ca-key.pem';
/** A first start writes the pair here (pid of the writer), then links both into place. */
const STAGING = /^ca\.new\.(\d+)$/;
/** Temporary files of earlier versions, which wrote each file beside its final name. */
const STALE_TMP = /^ca(-key)?\.pem\.\d+\.[0-9a-f]+\.tmp$/;

/** Whether another process with this pid runs; our own pid in a file name is a previous run's (a restarted container is pid 1 again). */
export function running(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (cause) {
    return (cause as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes a new file with `mode` from the moment it exists and flushes it to disk. */
async function writeSynced(file: string, data: string, mode: number): Promise<void> {
  const handle = await fs.open(file, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a directory's entries (the links just made) to disk; a no-op where directories cannot be opened. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort: some file systems refuse fsync on a directory
  }
}

/** Places a staged file at its final name; link() refuses to replace a file another process created meanwhile, rename() would not. */
async function place(from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CaError('CaUnwritable', 'appeared while this process was creating the CA; restart to load it', to, { cause });
    }
    await fs.rename(from, to); // file systems without hard links
  }
}

/**
 * Brings a state directory that a killed first start left behind back to a loadable state: stale
 * temporary files go; a staged pair from a writer that is gone is installed when it is whole
 * (whatever it had not yet linked into place), else discarded.
 */
async function recoverStateDir(dir: string, certFile: string, keyFile: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return; // no directory yet (or unreadable: the stat that follows names the fault)
  }
  for (const n of names) if (STALE_TMP.test(n)) await fs.rm(path.join(dir, n), { force: true });
  for (const n of names) {
    const m = STAGING.exec(n);
    if (m === null) continue;
    const staging = path.join(dir, n);
    if (running(Number(m[1]))) {
      throw new CaError('CaUnwritable', `process ${m[1]} is creating the CA here; start again once it is done, or delete this directory if that process is not mde-partner-proxy`, staging);
    }
    const stagedCert = path.join(staging, CERT_NAME);
    const stagedKey = path.join(staging, KEY_NAME);
    let whole: boolean;
    try {
      prepareCa(await fs.readFile(stagedCert), await fs.readFile(stagedKey));
      whole = true;
    } catch {
      whole = false;
    }
    if (whole) {
      if (!(await exists(keyFile))) await place(stagedKey, keyFile);
      if (!(await exists(certFile))) await place(stagedCert, certFile);
      await syncDir(dir);
    }
    await fs.rm(staging, { recursive: true, force: true });
  }
}

/**
 * Writes a new CA as one step: both files into a staging directory, flushed, then linked into
 * place key first (the certificate's presence marks a complete CA), then the staging removed.
 * A kill at any point leaves a state recoverStateDir completes or undoes on the next start.
 */
async function installCa(dir: string, certFile: string, keyFile: string, ca: CaMaterial): Promise<void> {
  const staging = path.join(dir, `ca.new.${process.pid}`);
  try {
    await fs.mkdir(staging, { mode: 0o700 });
    await writeSynced(path.join(staging, KEY_NAME), ca.keyPem, 0o600);
    await writeSynced(path.join(staging, CERT_NAME), ca.certPem, 0o644);
    await syncDir(staging);
  } catch (cause) {
    await fs.rm(staging, { recursive: true, force: true });
    throw new CaError('CaUnwritable', `cannot write: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, staging, { cause });
  }
  try {
    await place(path.join(staging, KEY_NAME), keyFile);
    await place(path.join(staging, CERT_NAME), certFile);
    await syncDir(dir);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

/**
 * Load the configured CA files, or the state directory's CA, creating it (0700 dir, 0600 key) on
 * first use. With `create` false (doctor) it only looks: no file is created, completed, renamed or removed.
 */
export async function loadOrCreateCa(opts: { certFile?: string; keyFile?: string; stateDir: string; permittedDomains: readonly string[]; create?: boolean }): Promise<LoadedCa> {
  if (opts.certFile !== undefined || opts.keyFile !== undefined) {
    const { certFile, keyFile } = opts;
    if (certFile === undefined || keyFile === undefined) {
      throw new CaError('CaUnreadable', 'a CA certificate and its key must be configured together (ca.cert and ca.key)', certFile ?? keyFile);
    }
    return { ca: await loadCa(certFile, keyFile), certFile, keyFile, created: false };
  }
  const certFile = path.join(opts.stateDir, CERT_NAME);
  const keyFile = path.join(opts.stateDir, KEY_NAME);
  // Only a caller that may create the CA completes or clears what an interrupted one left.
  const onlyLook = opts.create === false;
  if (!onlyLook) await recoverStateDir(opts.stateDir, certFile, keyFile);
  const [haveCert, haveKey] = await Promise.all([exists(certFile), exists(keyFile)]);
  if (haveCert && haveKey) return { ca: await loadCa(certFile, keyFile), certFile, keyFile, created: false };
  if (haveCert) {
    throw new CaError('CaUnreadable', `missing, but ${certFile} exists; restore it, or delete ${certFile} to create a new CA`, keyFile);
  }
  if (onlyLook && haveKey) {
    throw new CaError('CaUnreadable', `missing, but its key ${keyFile} is there (an interrupted first start, or a deleted certificate); \`mde-partner-proxy ca init\` completes or replaces it`, certFile);
  }
  let setAside: string | undefined;
  if (haveKey) {
    // A key without its certificate cannot serve (clients trust the certificate): what an earlier
    // version left when killed between its two writes. Kept under another name, never deleted.
    setAside = `${keyFile}.orphaned-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await fs.rename(keyFile, setAside);
  }
  if (opts.create === false) throw new CaError('CaUnreadable', 'no interception CA yet; `mde-partner-proxy ca init` (or the first start) creates it', certFile);
  try {
    await fs.mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
    // mkdir leaves an existing directory's mode alone, and the key belongs in a 0700 directory. An
    // empty one was made for the proxy and is tightened; one that holds other files (--state-dir .
    // or /tmp by mistake) is not the proxy's to change, nor is one another user owns (EPERM).
    if ((await fs.readdir(opts.stateDir)).length === 0) {
      await fs.chmod(opts.stateDir, 0o700).catch((cause: NodeJS.ErrnoException) => {
        if (cause.code !== 'EPERM') throw cause;
      });
    }
  } catch (cause) {
    throw new CaError('CaUnwritable', `cannot create the state directory: ${(cause as NodeJS.ErrnoException).code ?? ''}`, opts.stateDir, { cause });
  }
  const ca = await createCa({ permittedDomains: opts.permittedDomains });
  await installCa(opts.stateDir, certFile, keyFile, ca);
  return { ca, certFile, keyFile, created: true, ...(setAside !== undefined ? { setAside } : {}) };
}

async function loadCa(certFile: string, keyFile: string): Promise<CaMaterial> {
  const [cert, key] = await Promise.all([readCaFile(certFile), readCaFile(keyFile)]);
  return prepareCa(cert, key, { cert: certFile, key: keyFile }).material;
}

// ---- leaves ------------------------------------------------------------------------------------

interface CachedContext { readonly context: tls.SecureContext; readonly renewAt: number }

/**
 * Frees an evicted leaf's OpenSSL context now instead of at some later major GC: V8 does not see
 * the native memory behind each context, so without this RSS grows with the hosts seen until a
 * major GC runs. Safe for connections already using it: their SSL holds its own
 * OpenSSL reference to the context (SSL_new) and never asks Node's SecureContext for it again,
 * because intercept.ts sets the context when it creates the TLSSocket and its SNICallback does not
 * hand one back. The evicted entry is the least recently used: a context just returned by
 * secureContextFor is the newest, and intercept.ts uses it in the same tick.
 */
function release(context: tls.SecureContext): void {
  (context.context as { close?: () => void }).close?.();
}

/** A leaf minter with an LRU of SecureContexts keyed by lowercase host, and single-flight minting. */
export async function createLeafIssuer(ca: CaMaterial, opts: { maxEntries?: number; validityDays?: number; onIssued?: (host: string) => void; now?: () => number } = {}): Promise<LeafIssuer> {
  const issuer = prepareCa(ca.certPem, ca.keyPem);
  const chainPem = issuer.material.certPem;
  const maxEntries = Math.max(1, Math.floor(positive('maxEntries', opts.maxEntries ?? DEFAULT_LEAF_CACHE)));
  const validityMs = positive('validityDays', opts.validityDays ?? LEAF_VALIDITY_DAYS) * DAY;
  const renewBeforeMs = Math.min(DAY, validityMs / 2);
  const now = opts.now ?? Date.now;
  // One leaf key for every leaf of this issuer, as mitmproxy does: it lives in the same memory as the
  // CA key, so a key per leaf adds no isolation, and it would triple the cost of a mint.
  const leafKey = await generateEcKey();
  const leafKeyPem = pkcs8Pem(leafKey.privateKey);
  const leafSpki = spkiOf(leafKey.publicKey);
  const fixedExtensions = [
    extension(OID.basicConstraints, true, seq()), // CA:FALSE (RFC 5280 §4.2.1.9)
    extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x07, 0x80]))), // digitalSignature (§4.2.1.3)
    extension(OID.extKeyUsage, false, seq(OID.serverAuth)), // §4.2.1.12
    extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(leafSpki))), // §4.2.1.2
    extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, issuer.keyId))), // §4.2.1.1
  ];
  const cache = new Map<string, CachedContext>();
  const inflight = new Map<string, Promise<tls.SecureContext>>();

  async function mint(host: string): Promise<CachedContext> {
    const dnsName = dnsNameOf(host);
    if (dnsName === undefined) throw new CaError('CaHostNotPermitted', `'${host.slice(0, 260)}' is not a DNS name; leaves are minted for host names only`);
    if (!permits(issuer.constraints, dnsName)) throw new CaError('CaHostNotPermitted', `the CA's name constraints do not permit ${dnsName}`);
    const issuedAt = now();
    const expiresAt = Math.min(issuedAt + validityMs, issuer.notAfter);
    // ub-common-name is 64 (RFC 5280 Appendix A); a longer host gets an empty subject and a critical SAN (§4.2.1.6).
    const fitsCn = dnsName.length <= 64;
    const der = await buildCertificate({
      issuer: issuer.cert.subject,
      subject: fitsCn ? distinguishedName([[OID.commonName, dnsName]]) : seq(),
      spki: leafSpki,
      notBefore: issuedAt - BACKDATE_MS,
      notAfter: expiresAt,
      extensions: [...fixedExtensions, extension(OID.subjectAltName, !fitsCn, seq(tlv(0x82, Buffer.from(dnsName, 'ascii'))))],
    }, issuer.signer);
    const context = tls.createSecureContext({ cert: pem(der) + chainPem, key: leafKeyPem, minVersion: 'TLSv1.2' });
    // When the CA expires first, a new leaf cannot outlive it, so keep this one to the end.
    const renewAt = expiresAt === issuer.notAfter ? expiresAt : expiresAt - renewBeforeMs;
    return { context, renewAt };
  }

  return {
    get size() {
      return cache.size;
    },
    secureContextFor(host: string): Promise<tls.SecureContext> {
      const key = (host.endsWith('.') ? host.slice(0, -1) : host).toLowerCase();
      const hit = cache.get(key);
      if (hit !== undefined && now() < hit.renewAt) {
        cache.delete(key); // most recently used moves to the end
        cache.set(key, hit);
        return Promise.resolve(hit.context);
      }
      const pending = inflight.get(key);
      if (pending !== undefined) return pending;
      const minting = mint(key)
        .then((entry) => {
          cache.delete(key);
          cache.set(key, entry);
          for (const [oldest, evicted] of cache) {
            if (cache.size <= maxEntries) break;
            cache.delete(oldest);
            release(evicted.context);
          }
          opts.onIssued?.(key);
          return entry.context;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, minting);
      return minting;
    },
  };
}
