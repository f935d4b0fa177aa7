// DER (X.690) encoding and decoding of X.509 v3 certificates (RFC 5280) on node:crypto alone:
// the small builder the interception CA uses for both the CA and its leaves.
import { createHash, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';

// ---- DER writer and reader (X.690) --------------------------------------------------------------

/** One DER element (X.690 §8.1): tag, the minimal definite length (§10.1), then the contents. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const lengthBytes: number[] = [];
  for (let n = body.length; n > 0; n = Math.floor(n / 256)) lengthBytes.unshift(n & 0xff);
  const header = body.length < 0x80 ? [tag, body.length] : [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  return Buffer.concat([Buffer.from(header), body]);
}
/** A DER SEQUENCE of the given elements. */
export const seq = (...content: Buffer[]): Buffer => tlv(0x30, ...content);
/** A DER OCTET STRING holding the given bytes. */
export const octets = (content: Buffer): Buffer => tlv(0x04, content);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** The object identifiers the CA writes and reads, DER-encoded. */
export const OID = {
  commonName: oid('2.5.4.3'),
  organization: oid('2.5.4.10'),
  subjectKeyIdentifier: oid('2.5.29.14'),
  keyUsage: oid('2.5.29.15'),
  subjectAltName: oid('2.5.29.17'),
  basicConstraints: oid('2.5.29.19'),
  nameConstraints: oid('2.5.29.30'),
  authorityKeyIdentifier: oid('2.5.29.35'),
  extKeyUsage: oid('2.5.29.37'),
  serverAuth: oid('1.3.6.1.5.5.7.3.1'),
};
/** The DER BOOLEAN TRUE (X.690 §11.1: the single byte 0xff). */
export const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** Where one DER element sits in a buffer: its tag, its first byte, its contents' first byte and its end. */
export interface Tlv { readonly tag: number; readonly start: number; readonly contentStart: number; readonly end: number }

/**
 * Reads the DER element at offset (X.690 §8.1, §10.1). Throws on truncation, on the indefinite or a
 * non-minimal length, on lengths over four bytes and on high tag numbers (multi-byte tags), none of
 * which a certificate this proxy reads contains.
 */
export function readTlv(buf: Buffer, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('unsupported DER tag');
  let p = offset + 1;
  let length = buf[p++]!;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    if (p + count > limit) throw new Error('truncated DER');
    if (buf[p] === 0) throw new Error('non-minimal DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[p++]!;
    if (length < 0x80) throw new Error('non-minimal DER length');
  }
  if (p + length > limit) throw new Error('truncated DER');
  return { tag, start: offset, contentStart: p, end: p + length };
}

/** The elements inside a constructed element, each bounded by its parent. */
export function childrenOf(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end;) {
    const child = readTlv(buf, p, parent.end);
    out.push(child);
    p = child.end;
  }
  return out;
}

/** The i-th element of a list read by childrenOf; throws when the structure is shorter than expected. */
export function childAt(list: readonly Tlv[], i: number): Tlv {
  const item = list[i];
  if (item === undefined) throw new Error('missing DER element');
  return item;
}

/** An element's contents (after its tag and length). */
export const contentOf = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.contentStart, t.end);
/** An element's whole encoding, tag and length included. */
export const elementOf = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

// ---- certificate building ----------------------------------------------------------------------

export interface Signer { readonly key: KeyObject; readonly hash: string; readonly algorithm: Buffer }

/** The signature algorithm matching a CA key (RFC 5758 §3.2 for ECDSA, RFC 4055 §5 for RSA). */
export function signerFor(key: KeyObject): Signer | undefined {
  if (key.asymmetricKeyType === 'rsa') {
    return { key, hash: 'sha256', algorithm: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) };
  }
  if (key.asymmetricKeyType === 'ec') {
    const byCurve: Record<string, [string, string]> = {
      prime256v1: ['sha256', '1.2.840.10045.4.3.2'],
      secp384r1: ['sha384', '1.2.840.10045.4.3.3'],
      secp521r1: ['sha512', '1.2.840.10045.4.3.4'],
    };
    const match = byCurve[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (match) return { key, hash: match[0], algorithm: seq(oid(match[1])) };
  }
  return undefined;
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(ms: number): Buffer {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // 2025-01-31T12:00:00.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = Number(iso.slice(0, 4));
  return year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

/** A random positive 126-bit serial of fixed length (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function serialNumber(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return tlv(0x02, bytes);
}

/** An X.501 Name (RFC 5280 §4.1.2.4): one single-valued RDN per (attribute type, UTF8String value), in order. */
export function distinguishedName(rdns: ReadonlyArray<readonly [Buffer, string]>): Buffer {
  return seq(...rdns.map(([type, value]) => tlv(0x31, seq(type, tlv(0x0c, Buffer.from(value, 'utf8'))))));
}

/** A certificate Extension (RFC 5280 §4.1.2.9); critical is written only when true (DER omits the default). */
export function extension(type: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(type, DER_TRUE, octets(value)) : seq(type, octets(value));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  const fields = childrenOf(spki, readTlv(spki, 0));
  return createHash('sha1').update(contentOf(spki, childAt(fields, 1)).subarray(1)).digest();
}

export interface CertSpec {
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly spki: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly extensions: readonly Buffer[];
}

function signAsync(signer: Signer, data: Buffer): Promise<Buffer> {
  // The callback form signs on the thread pool, so a large RSA CA key does not stall the event loop.
  return new Promise((resolve, reject) =>
    sign(signer.hash, data, { key: signer.key, dsaEncoding: 'der' }, (err, sig) => (err ? reject(err) : resolve(sig))));
}

/** RFC 5280 §4.1: a v3 Certificate signed by `signer`. */
export async function buildCertificate(spec: CertSpec, signer: Signer): Promise<Buffer> {
  const tbs = seq(
    Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]), // [0] EXPLICIT version v3
    serialNumber(),
    signer.algorithm,
    spec.issuer,
    seq(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spec.spki,
    tlv(0xa3, seq(...spec.extensions)),
  );
  const signature = await signAsync(signer, tbs);
  return seq(tbs, signer.algorithm, tlv(0x03, Buffer.from([0x00]), signature));
}

/** A DER certificate as PEM text (RFC 7468 §5). */
export function pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** The DER of every CERTIFICATE block in PEM text, in order. */
export function pemBlocks(text: string): Buffer[] {
  const re = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;
  return [...text.matchAll(re)].map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}

/** A new P-256 key pair (the CA's and the leaves' key type). */
export function generateEcKey(): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return new Promise((resolve, reject) =>
    generateKeyPair('ec', { namedCurve: 'prime256v1' }, (err, publicKey, privateKey) =>
      (err ? reject(err) : resolve({ privateKey, publicKey }))));
}

/** A public key's SubjectPublicKeyInfo, DER. */
export const spkiOf = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });
/** A private key as PKCS #8 PEM (the CA key file's format). */
export const pkcs8Pem = (key: KeyObject): string => String(key.export({ type: 'pkcs8', format: 'pem' }));
