// The client trust bundle: public roots found as OpenSSL finds them (SSL_CERT_FILE, then the
// distribution bundles, then Node's own roots) plus the interception CA, never without public
// roots. Real files in temporary directories; the roots are real certificates from the test PKI.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { createCa } from '../../src/ca.js';
import { SYSTEM_BUNDLE_PATHS, findSystemRoots, writeTrustBundle } from '../../src/client-setup.js';
import { testPki } from '../helpers/pki.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'mpp-trust-'));
const blocks = (text: string): string[] => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

let caPem: string;
let rootA: string;
let rootB: string;

beforeAll(async () => {
  caPem = (await createCa({ commonName: 'Interception CA under test', permittedDomains: ['microsoft.com'] })).certPem;
  rootA = (await testPki()).msRoot.certPem.trim();
  rootB = (await createCa({ commonName: 'Second public root', permittedDomains: ['example.org'] })).certPem.trim();
});

describe('findSystemRoots and writeTrustBundle', () => {
  it('takes the roots from SSL_CERT_FILE first, as OpenSSL does', () => {
    const dir = tmp();
    const file = join(dir, 'roots.pem');
    writeFileSync(file, `${rootA}\n`);
    const bundle = writeTrustBundle(join(dir, 'state'), caPem, { env: { SSL_CERT_FILE: file }, paths: [] });
    expect(blocks(readFileSync(bundle, 'utf8'))).toEqual([rootA, caPem.trim()]);
    expect(findSystemRoots({ env: { SSL_CERT_FILE: file }, paths: [] })).toMatchObject({ source: 'SSL_CERT_FILE', from: file, count: 1 });
  });

  it('falls through a missing SSL_CERT_FILE, an absent path and a file without certificates to the first distribution bundle that has some', () => {
    const dir = tmp();
    const empty = join(dir, 'empty.crt');
    writeFileSync(empty, '# no certificates here\n');
    const rhel = join(dir, 'tls-ca-bundle.pem');
    writeFileSync(rhel, `# comment\n${rootA}\n${rootB}\n`);
    const roots = findSystemRoots({ env: { SSL_CERT_FILE: join(dir, 'missing.pem') }, paths: [join(dir, 'absent.crt'), empty, rhel] });
    expect(roots).toMatchObject({ source: 'system', from: rhel, count: 2 });
    const bundle = writeTrustBundle(join(dir, 'state'), caPem, { env: {}, paths: [join(dir, 'absent.crt'), empty, rhel] });
    expect(blocks(readFileSync(bundle, 'utf8'))).toEqual([rootA, rootB, caPem.trim()]);
  });

  it("falls back to Node's own roots where no distribution bundle exists (Alpine without ca-certificates, a distroless image)", () => {
    const dir = tmp();
    const bundle = writeTrustBundle(join(dir, 'state'), caPem, { env: {}, paths: [join(dir, 'absent.crt')] });
    const written = blocks(readFileSync(bundle, 'utf8'));
    expect(written.length).toBe(rootCertificates.length + 1);
    expect(written.slice(0, -1)).toEqual(rootCertificates.map((c) => c.trim()));
    expect(written.at(-1)).toBe(caPem.trim());
  });

  it('removes the half-written bundle of a writer killed before its rename, and leaves a running writer\'s alone', () => {
    const state = join(tmp(), 'state');
    mkdirSync(state);
    // 4194305 is above Linux's largest pid_max, so no process has it; the parent process runs.
    const dead = 'ca-bundle.pem.4194305.tmp';
    const live = `ca-bundle.pem.${process.ppid}.tmp`;
    writeFileSync(join(state, dead), 'partial');
    writeFileSync(join(state, live), 'partial');
    writeTrustBundle(state, caPem, { env: {}, paths: [], nodeRoots: [rootA] });
    expect(readdirSync(state).sort()).toEqual(['ca-bundle.pem', live]);
  });

  it('never writes a bundle without public roots, and leaves an earlier bundle in place', () => {
    const dir = tmp();
    const state = join(dir, 'state');
    const first = writeTrustBundle(state, caPem, { env: {}, paths: [], nodeRoots: [rootA] });
    const before = readFileSync(first, 'utf8');
    // The only "roots" left are the interception CA itself: that is no public root.
    const onlyCa = join(dir, 'ca-only.pem');
    writeFileSync(onlyCa, caPem);
    expect(() => writeTrustBundle(state, caPem, { env: { SSL_CERT_FILE: onlyCa }, paths: [], nodeRoots: [] })).toThrow(/no public root certificates/);
    expect(readFileSync(first, 'utf8')).toBe(before);
    expect(existsSync(join(dir, 'other'))).toBe(false);
    expect(() => writeTrustBundle(join(dir, 'other'), caPem, { env: {}, paths: [], nodeRoots: [] })).toThrow(/no public root certificates/);
    expect(existsSync(join(dir, 'other', 'ca-bundle.pem'))).toBe(false);
  });

  it('does not nest old copies when SSL_CERT_FILE already points at the bundle (after eval "$(mde-partner-proxy env)")', () => {
    const dir = tmp();
    const state = join(dir, 'state');
    const seed = join(dir, 'seed.pem');
    writeFileSync(seed, rootA);
    const bundle = writeTrustBundle(state, caPem, { env: {}, paths: [seed] });
    const once = readFileSync(bundle, 'utf8');
    writeTrustBundle(state, caPem, { env: { SSL_CERT_FILE: bundle }, paths: [seed] });
    expect(readFileSync(bundle, 'utf8')).toBe(once);
    // And a roots file that already carries the CA keeps one copy of it.
    const withCa = join(dir, 'with-ca.pem');
    writeFileSync(withCa, `${rootB}\n${caPem}`);
    const again = writeTrustBundle(join(dir, 'state2'), caPem, { env: { SSL_CERT_FILE: withCa }, paths: [] });
    expect(blocks(readFileSync(again, 'utf8'))).toEqual([rootB, caPem.trim()]);
  });

  it('knows the bundle paths of Debian, Fedora/RHEL, openSUSE, Alpine and macOS', () => {
    expect(SYSTEM_BUNDLE_PATHS).toEqual(expect.arrayContaining([
      '/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem',
      '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', '/etc/ssl/cert.pem',
    ]));
  });
});
