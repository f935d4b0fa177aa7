// The DER writer and reader (X.690 §8.1, §10.1) at their edges: length boundaries, truncation,
// the highest one-byte tags and the multi-byte (high tag number) forms the reader refuses, the limit, and the certificate builder's output read back by OpenSSL's parser.
import { X509Certificate } from 'node:crypto';
import { childAt, childrenOf, contentOf, elementOf, readTlv, tlv } from '../../src/x509.js';

describe('tlv → readTlv round trip', () => {
  it.each([
    [0, [0x04, 0x00]],
    [1, [0x04, 0x01]],
    [127, [0x04, 0x7f]],
    [128, [0x04, 0x81, 0x80]],
    [255, [0x04, 0x81, 0xff]],
    [256, [0x04, 0x82, 0x01, 0x00]],
    [65_535, [0x04, 0x82, 0xff, 0xff]],
    [65_536, [0x04, 0x83, 0x01, 0x00, 0x00]],
    [16_777_215, [0x04, 0x83, 0xff, 0xff, 0xff]],
    [16_777_216, [0x04, 0x84, 0x01, 0x00, 0x00, 0x00]],
  ])('encodes a %d-byte content with the minimal length header %j and reads it back', (n, header) => {
    const body = Buffer.alloc(n, 0xab);
    const der = tlv(0x04, body);
    expect([...der.subarray(0, header.length)]).toEqual(header);
    const t = readTlv(der, 0);
    expect(t).toEqual({ tag: 0x04, start: 0, contentStart: header.length, end: der.length });
    expect(contentOf(der, t).equals(body)).toBe(true);
    expect(elementOf(der, t).equals(der)).toBe(true);
  });

  it.each([
    ['the highest one-byte universal tag (30, BMPString)', 0x1e],
    ['a context-specific constructed tag [30]', 0xbe],
    ['a private primitive tag [30]', 0xde],
  ])('reads %s', (_what, tag) => {
    expect(readTlv(Buffer.from([tag, 0x01, 0x00]), 0)).toEqual({ tag, start: 0, contentStart: 2, end: 3 });
  });

  it('stops at the limit it is given, not at the end of the buffer', () => {
    const der = Buffer.concat([tlv(0x04, Buffer.from('abcd')), Buffer.alloc(10)]);
    expect(readTlv(der, 0, 6).end).toBe(6);
    expect(() => readTlv(der, 0, 5)).toThrow('truncated DER');
  });

  it('reads an element at an offset and walks its children', () => {
    const inner = [tlv(0x02, Buffer.from([1])), tlv(0x04, Buffer.from('ab')), tlv(0x05)];
    const der = Buffer.concat([Buffer.from([0xff, 0xff]), tlv(0x30, ...inner)]);
    const outer = readTlv(der, 2);
    expect(outer.start).toBe(2);
    expect(childrenOf(der, outer).map((c) => c.tag)).toEqual([0x02, 0x04, 0x05]);
    expect(childAt(childrenOf(der, outer), 1).end - childAt(childrenOf(der, outer), 1).contentStart).toBe(2);
    expect(() => childAt(childrenOf(der, outer), 3)).toThrow('missing DER element');
  });
});

describe('readTlv refuses what it cannot read', () => {
  it.each([
    ['an empty buffer', [], 0, 'truncated DER'],
    ['an offset past the end', [0x04, 0x00], 2, 'truncated DER'],
    ['a tag without a length', [0x04], 0, 'truncated DER'],
    ['a long length cut short', [0x04, 0x82, 0x01], 0, 'truncated DER'],
    ['content shorter than its length', [0x04, 0x03, 0x01, 0x02], 0, 'truncated DER'],
    ['a long-form length shorter than its content', [0x04, 0x81, 0x80, 0x00], 0, 'truncated DER'],
    ['a three-byte length with one byte missing', [0x04, 0x83, 0x01, 0x00], 0, 'truncated DER'],
    ['a four-byte length with one byte missing', [0x04, 0x84, 0x01, 0x00, 0x00], 0, 'truncated DER'],
    ['a four-byte length past the end', [0x04, 0x84, 0x01, 0x00, 0x00, 0x00, 0xab], 0, 'truncated DER'],
    ['the last byte of the buffer as a tag', [0x04, 0x00, 0x04], 2, 'truncated DER'],
    ['the indefinite length (BER only)', [0x30, 0x80, 0x00, 0x00], 0, 'unsupported DER length'],
    ['a length of five bytes', [0x04, 0x85, 0, 0, 0, 0, 1, 0], 0, 'unsupported DER length'],
    ['the reserved length byte 0xff (X.690 §8.1.3.5)', [0x04, 0xff, 0x00], 0, 'unsupported DER length'],
    ['a four-byte length with a leading zero byte', [0x04, 0x84, 0x00, 0x00, 0x00, 0x81, ...new Array<number>(0x81).fill(0)], 0, 'non-minimal DER length'],
    ['a long form for 127, the largest short length', [0x04, 0x81, 0x7f, ...new Array<number>(0x7f).fill(0)], 0, 'non-minimal DER length'],
    ['a long form for a short length', [0x04, 0x81, 0x05, 1, 2, 3, 4, 5], 0, 'non-minimal DER length'],
    ['a length with a leading zero byte', [0x04, 0x82, 0x00, 0x81, ...new Array<number>(0x81).fill(0)], 0, 'non-minimal DER length'],
    ['a high tag number (multi-byte tag)', [0x1f, 0x81, 0x00, 0x00], 0, 'unsupported DER tag'],
    ['a context-specific high tag number', [0xbf, 0x22, 0x00], 0, 'unsupported DER tag'],
    ['a constructed universal high tag number', [0x3f, 0x81, 0x80, 0x01, 0x00], 0, 'unsupported DER tag'],
    ['an application high tag number', [0x5f, 0x1f, 0x00], 0, 'unsupported DER tag'],
    ['a private high tag number', [0xff, 0x7f, 0x00], 0, 'unsupported DER tag'],
  ])('%s', (_what, bytes, offset, message) => {
    expect(() => readTlv(Buffer.from(bytes), offset)).toThrow(message);
  });

  it('refuses a child that runs past its parent', () => {
    // A SEQUENCE of 3 bytes whose one child claims 4; the buffer goes on, the parent does not.
    const der = Buffer.from([0x30, 0x03, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    expect(() => childrenOf(der, readTlv(der, 0))).toThrow('truncated DER');
  });
});

describe('readTlv on a real certificate', () => {
  it('walks the three parts of a Node-parsed certificate (TBSCertificate, algorithm, signature)', async () => {
    const { testPki } = await import('../helpers/pki.js');
    const der = new X509Certificate((await testPki()).msRoot.certPem).raw;
    const cert = readTlv(der, 0);
    expect(cert.end).toBe(der.length);
    expect(childrenOf(der, cert).map((c) => c.tag)).toEqual([0x30, 0x30, 0x03]);
  });
});
