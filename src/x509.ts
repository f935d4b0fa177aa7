// DER (X.690) encoding and decoding of X.509 v3 certificates (RFC 5280) on node:crypto alone:
// the small builder the interception CA uses for both the CA and its leaves.
import { createHash, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';

// ---- DER writer and reader (X.690) --------------------------------------------------------------

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const lengthBytes: number[] = [];
  for (let n = body.length; n > 0; n = Math.floor(n / 256)) lengthBytes.unshift(n & 0xff);
  const header = body.length < 0x80 ? [tag, body.length] : [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  return Buffer.concat([Buffer.from(header), body]);
}
export const seq = (...content: Buffer[]): Buffer => tlv(0x30, ...content);
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
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);

export interface Tlv { readonly tag: number; readonly start: number; readonly contentStart: number; readonly end: number }

export function readTlv(buf: Buffer, offset: number): Tlv {
  const tag = buf.readUInt8(offset);
  let p = offset + 1;
  let length = buf.readUInt8(p++);
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf.readUInt8(p++);
  }
  if (p + length > buf.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart: p, end: p + length };
}

export function childrenOf(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end;) {
    const child = readTlv(buf, p);
    out.push(child);
    p = child.end;
  }
  return out;
}

export function nth(list: readonly Tlv[], i: number): Tlv {
  const item = list[i];
  if (item === undefined) throw new Error('missing DER element');
  return item;
}

export const content = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.contentStart, t.end);
export const whole = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

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

export function name(rdns: ReadonlyArray<readonly [Buffer, string]>): Buffer {
  return seq(...rdns.map(([type, value]) => tlv(0x31, seq(type, tlv(0x0c, Buffer.from(value, 'utf8'))))));
}

export function extension(type: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(type, TRUE, octets(value)) : seq(type, octets(value));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  const fields = childrenOf(spki, readTlv(spki, 0));
  return createHash('sha1').update(content(spki, nth(fields, 1)).subarray(1)).digest();
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

export function pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

export function pemBlocks(text: string): Buffer[] {
  const re = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;
  return [...text.matchAll(re)].map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}

export function generateEcKey(): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return new Promise((resolve, reject) =>
    generateKeyPair('ec', { namedCurve: 'prime256v1' }, (err, publicKey, privateKey) =>
      (err ? reject(err) : resolve({ privateKey, publicKey }))));
}

export const spkiOf = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });
export const pkcs8Pem = (key: KeyObject): string => String(key.export({ type: 'pkcs8', format: 'pem' }));
