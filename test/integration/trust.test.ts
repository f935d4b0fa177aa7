// The upstream trust store, used as the outbound side uses it: the secure context of a real TLS
// client talking to the echo origin, whose certificates the test PKI's "Microsoft" root signs.
import { connect, type ConnectionOptions, type SecureContext } from 'node:tls';
import { createCa } from '../../src/ca.js';
import { createUpstreamTrust, reuseOrCreateTrust } from '../../src/trust.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';

let msOrigin: Origin;
let rogueOrigin: Origin;
let msRootPem: string;
let otherRootPem: string;

beforeAll(async () => {
  const pki = await testPki();
  msRootPem = pki.msRoot.certPem;
  otherRootPem = (await createCa({ commonName: 'Another root', permittedDomains: ['example.org'] })).certPem;
  msOrigin = await startOrigin(pki.msIssuer);
  rogueOrigin = await startOrigin(pki.rogueIssuer);
});
afterAll(async () => {
  await msOrigin.close();
  await rogueOrigin.close();
});

/** A TLS handshake with the given trust; resolves 'trusted' or the verification error's code. */
function handshake(port: number, secureContext: SecureContext, extra: Partial<ConnectionOptions> = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'api.security.microsoft.com', secureContext, ...extra }, () => {
      socket.destroy();
      resolve(socket.authorized ? 'trusted' : `unauthorized: ${String(socket.authorizationError)}`);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('createUpstreamTrust', () => {
  it('trusts an origin whose root is one of the extra roots', async () => {
    expect(await handshake(msOrigin.port, createUpstreamTrust([msRootPem]))).toBe('trusted');
  });

  it('refuses that origin without the extra root: the public roots do not cover it', async () => {
    expect(await handshake(msOrigin.port, createUpstreamTrust([]))).toBe('SELF_SIGNED_CERT_IN_CHAIN') // the origin sends its root; no trusted root signed it;
  });

  it('refuses an origin signed by another root, even with extra roots', async () => {
    expect(await handshake(rogueOrigin.port, createUpstreamTrust([msRootPem]))).toBe('SELF_SIGNED_CERT_IN_CHAIN') // the origin sends its root; no trusted root signed it;
  });
});

describe('reuseOrCreateTrust', () => {
  it('builds a trust store that carries the roots it was built from', async () => {
    const extra = [msRootPem];
    const trust = reuseOrCreateTrust(extra);
    extra.push('changed later');
    expect(trust.extraPem).toEqual([msRootPem]);
    expect(await handshake(msOrigin.port, trust.context)).toBe('trusted');
  });

  it('reuses the previous store for the same roots, given as a new list', () => {
    const first = reuseOrCreateTrust([msRootPem]);
    expect(reuseOrCreateTrust([`${msRootPem}`], first)).toBe(first);
  });

  it.each([
    ['no roots where there was one', []],
    ['another root', 'other'],
    ['one more root', 'both'],
  ] as const)('builds a new store for %s', (_what, roots) => {
    const first = reuseOrCreateTrust([msRootPem]);
    const next = reuseOrCreateTrust(roots === 'other' ? [otherRootPem] : roots === 'both' ? [msRootPem, otherRootPem] : roots, first);
    expect(next).not.toBe(first);
    expect(next.context).not.toBe(first.context);
  });
});
