// The interception CA as clients see it: openssl parses and verifies what ca.ts writes, a real TLS
// handshake validates the leaves, and openssl (an independent encoder) forges the leaves the name
// constraints must reject.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { jest } from '@jest/globals';
import { CaError, caPermits, createCa, createLeafIssuer, loadOrCreateCa, type CaMaterial, type LeafIssuer } from '../../src/ca.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const DOMAINS = ['security.microsoft.com', 'graph.microsoft.com'];

let tmp: string;
let ca: CaMaterial;
let caFile: string;
let caKeyFile: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mde-ca-'));
  ca = await createCa({ permittedDomains: DOMAINS });
  caFile = write('ca.pem', ca.certPem);
  caKeyFile = write('ca-key.pem', ca.keyPem);
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, content: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, content);
  return file;
}

let fileCount = 0;
/** A name part no other file of this run has. */
function uniqueId(): string {
  return String(++fileCount);
}

/** openssl with a clean environment: this machine presets SSL_CERT_FILE and friends. */
function openssl(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function text(certPem: string): string {
  return openssl('x509', '-noout', '-text', '-in', write(`text-${uniqueId()}.pem`, certPem)).out;
}

function verify(caPem: string, leafPem: string, host?: string): { ok: boolean; out: string } {
  const hostArgs = host === undefined ? [] : ['-verify_hostname', host];
  return openssl('verify', '-no-CApath', '-no-CAstore', '-purpose', 'sslserver', ...hostArgs,
    '-CAfile', write(`verify-ca-${uniqueId()}.pem`, caPem), write(`verify-leaf-${uniqueId()}.pem`, leafPem));
}

/** A certificate signed by the CA key with openssl itself, bypassing ca.ts and its host check. */
function forgeLeaf(subjectCn: string, san: string): string {
  const id = uniqueId();
  const key = path.join(tmp, `forged-${id}.key`);
  const csr = path.join(tmp, `forged-${id}.csr`);
  const out = path.join(tmp, `forged-${id}.pem`);
  const ext = write(`forged-${id}.cnf`,
    `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  const req = openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${subjectCn}`, '-out', csr);
  expect(req.out).not.toMatch(/error/i);
  const sign = openssl('x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKeyFile, '-set_serial', '0x1234', '-days', '2', '-extfile', ext, '-out', out);
  expect(sign.ok).toBe(true);
  return fs.readFileSync(out, 'utf8');
}

/** A self-signed certificate and key made by openssl, for CAs that ca.ts did not create. */
function opensslSelfSigned(keyAlg: string[], ...addext: string[]): CaMaterial {
  const id = uniqueId();
  const key = path.join(tmp, `ss-${id}.key`);
  const cert = path.join(tmp, `ss-${id}.pem`);
  const r = openssl('req', '-x509', ...keyAlg, '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/O=Corp/CN=Corp root ${id}`,
    ...addext.flatMap((e) => ['-addext', e]));
  expect(r.ok).toBe(true);
  return { certPem: fs.readFileSync(cert, 'utf8'), keyPem: fs.readFileSync(key, 'utf8') };
}
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

/** A TLS server whose SNI callback asks the issuer, and a client that trusts only `caPem`. */
async function handshake(issuer: LeafIssuer, caPem: string, servername: string): Promise<X509Certificate> {
  const server = tls.createServer({
    SNICallback: (name, cb) => void issuer.secureContextFor(name).then((ctx) => cb(null, ctx), (err: Error) => cb(err)),
  }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as { port: number };
    return await new Promise<X509Certificate>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: caPem }, () => {
        const peer = socket.getPeerX509Certificate();
        socket.destroy();
        if (peer) resolve(peer); else reject(new Error('no peer certificate'));
      });
      socket.on('error', reject);
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

async function rejection(promise: Promise<unknown>): Promise<CaError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CaError);
    return err as CaError;
  }
  throw new Error('expected a CaError');
}

describe('createCa', () => {
  it.each([
    ['an ECDSA P-256 key', /ASN1 OID: prime256v1/],
    ['a SHA-256 signature', /Signature Algorithm: ecdsa-with-SHA256/],
    ['critical basicConstraints CA:TRUE with pathlen 0', /Basic Constraints: critical\s+CA:TRUE, pathlen:0/],
    ['critical keyUsage keyCertSign and cRLSign only', /Key Usage: critical\s+Certificate Sign, CRL Sign\n/],
    ['a subject key identifier', /Subject Key Identifier:\s+([0-9A-F]{2}:){19}[0-9A-F]{2}/],
    ['critical name constraints permitting the domains', /Name Constraints: critical\s+Permitted:\s+DNS:security\.microsoft\.com\s+DNS:graph\.microsoft\.com/],
    ['excluded subtrees covering every IPv4 and IPv6 address', /Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/],
    ['the default subject naming the host and date', /Subject: O = mde-partner-proxy, CN = "mde-partner-proxy interception CA \([^,]+, \d{4}-\d{2}-\d{2}\)"/],
  ])('creates a CA with %s', (_label, expected) => {
    expect(text(ca.certPem)).toMatch(expected);
  });

  it('is self-signed, backdated one hour, valid two years, with a positive serial', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(Math.abs(Date.parse(cert.validFrom) - (Date.now() - HOUR))).toBeLessThan(60_000);
    expect(Math.abs(Date.parse(cert.validTo) - (Date.now() + 730 * DAY))).toBeLessThan(60_000);
    expect(Number.parseInt(cert.serialNumber.slice(0, 1), 16)).toBeLessThan(8);
    expect(cert.serialNumber).not.toBe(new X509Certificate(forgeLeaf('x.security.microsoft.com', 'DNS:x.security.microsoft.com')).serialNumber);
  });

  it('dates its validity and default name from the clock it is given', async () => {
    const at = Date.UTC(2031, 0, 15, 12, 30, 0);
    const dated = await createCa({ permittedDomains: DOMAINS, validityDays: 10, now: () => at });
    const cert = new X509Certificate(dated.certPem);
    expect(Date.parse(cert.validFrom)).toBe(at - HOUR);
    expect(Date.parse(cert.validTo)).toBe(at + 10 * DAY);
    expect(cert.subject).toMatch(/CN=mde-partner-proxy interception CA \([^,]+, 2031-01-15\)/);
  });

  it('honours commonName and validityDays, and folds wildcard and covered domains', async () => {
    const custom = await createCa({ commonName: 'Contoso proxy CA', permittedDomains: ['*.securitycenter.windows.com', 'API.security.microsoft.com', 'security.microsoft.com'], validityDays: 30 });
    const cert = new X509Certificate(custom.certPem);
    expect(cert.subject).toContain('CN=Contoso proxy CA');
    expect(Math.abs(Date.parse(cert.validTo) - (Date.now() + 30 * DAY))).toBeLessThan(60_000);
    expect(text(custom.certPem)).toMatch(/Permitted:\s+DNS:securitycenter\.windows\.com\s+DNS:security\.microsoft\.com\s+Excluded/);
  });

  it.each([
    ['no permitted domains', { permittedDomains: [] }],
    ['an IP address as a domain', { permittedDomains: ['10.0.0.1'] }],
    ['a malformed domain', { permittedDomains: ['exa mple.com'] }],
    ['a zero validity', { permittedDomains: DOMAINS, validityDays: 0 }],
    ['a common name over 64 characters', { permittedDomains: DOMAINS, commonName: 'x'.repeat(65) }],
  ])('refuses %s', async (_label, opts) => {
    await expect(createCa(opts)).rejects.toThrow(RangeError);
  });
});

describe('leaf certificates', () => {
  const longHost = `${'a'.repeat(60)}.api.security.microsoft.com`;

  it.each([
    ['api.security.microsoft.com', 'api.security.microsoft.com'],
    ['graph.microsoft.com', 'graph.microsoft.com'],
    ['US.API.Security.Microsoft.com', 'us.api.security.microsoft.com'],
    [longHost, longHost],
  ])('serves %s a leaf that a real TLS client and openssl verify accept', async (servername, dnsName) => {
    const issuer = await createLeafIssuer(ca);
    const peer = await handshake(issuer, ca.certPem, servername);
    expect(peer.subjectAltName).toBe(`DNS:${dnsName}`);
    // A host longer than ub-common-name (64) gets an empty subject and a critical SAN (RFC 5280 §4.2.1.6).
    expect(peer.subject ?? '').toBe(dnsName.length <= 64 ? `CN=${dnsName}` : '');
    expect(/Subject Alternative Name: critical/.test(text(peer.toString()))).toBe(dnsName.length > 64);
    expect(peer.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    const result = verify(ca.certPem, peer.toString(), dnsName);
    expect(result.out).toContain(': OK');
  });

  it.each([
    ['critical basicConstraints CA:FALSE', /Basic Constraints: critical\s+CA:FALSE/],
    ['critical keyUsage digitalSignature only', /Key Usage: critical\s+Digital Signature\n/],
    ['extKeyUsage serverAuth', /Extended Key Usage:\s+TLS Web Server Authentication\n/],
    ['exactly one dNSName', /Subject Alternative Name:\s+DNS:api\.security\.microsoft\.com\n/],
    ['an ECDSA P-256 key', /ASN1 OID: prime256v1/],
  ])('mints a leaf with %s', async (_label, expected) => {
    const peer = await handshake(await createLeafIssuer(ca), ca.certPem, 'api.security.microsoft.com');
    expect(text(peer.toString())).toMatch(expected);
  });

  it('links the leaf to the CA by key identifier and makes it valid for 7 days from an hour ago', async () => {
    const peer = await handshake(await createLeafIssuer(ca), ca.certPem, 'api.security.microsoft.com');
    const caSki = /Subject Key Identifier:\s+(\S+)/.exec(text(ca.certPem))?.[1];
    expect(caSki).toBeDefined();
    expect(text(peer.toString())).toMatch(new RegExp(`Authority Key Identifier:\\s+(keyid:)?${caSki}`));
    expect(Math.abs(Date.parse(peer.validFrom) - (Date.now() - HOUR))).toBeLessThan(60_000);
    expect(Math.abs(Date.parse(peer.validTo) - (Date.now() + 7 * DAY))).toBeLessThan(60_000);
  });

  it.each([
    ['a permitted host (control)', 'api.security.microsoft.com', 'DNS:api.security.microsoft.com', true],
    ['a host outside the permitted domains', 'login.example.com', 'DNS:login.example.com', false],
    ['a look-alike suffix', 'evilsecurity.microsoft.com', 'DNS:evilsecurity.microsoft.com', false],
    ['a permitted name with an extra IPv4 SAN', 'api.security.microsoft.com', 'DNS:api.security.microsoft.com,IP:10.0.0.1', false],
    ['an IPv6 address', 'api.security.microsoft.com', 'IP:::1', false],
  ])('a leaf the CA key signs for %s %s openssl verify', (_label, cn, san, passes) => {
    const result = verify(ca.certPem, forgeLeaf(cn, san));
    if (passes) {
      expect(result.out).toContain(': OK');
    } else {
      expect(result.ok).toBe(false);
      expect(result.out).toMatch(/(permitted|excluded) subtree violation/);
    }
  });

  it.each(['login.example.com', '127.0.0.1', '2130706433', '[::1]', ''])('refuses to mint for %p and caches nothing', async (host) => {
    let issued = 0;
    const issuer = await createLeafIssuer(ca, { onIssued: () => issued++ });
    expect((await rejection(issuer.secureContextFor(host))).code).toBe('CaHostNotPermitted');
    await expect(issuer.secureContextFor(host)).rejects.toThrow(CaError);
    expect(issuer.size).toBe(0);
    expect(issued).toBe(0);
  });

  it('mints one leaf for 100 parallel requests for the same host', async () => {
    const issued: string[] = [];
    const issuer = await createLeafIssuer(ca, { onIssued: (host) => issued.push(host) });
    const contexts = await Promise.all(Array.from({ length: 100 }, (_, i) =>
      issuer.secureContextFor(i % 2 ? 'api.security.microsoft.com' : 'API.security.microsoft.com')));
    expect(issued).toEqual(['api.security.microsoft.com']);
    expect(new Set(contexts).size).toBe(1);
    expect(issuer.size).toBe(1);
  });

  it('keeps at most maxEntries contexts and evicts the least recently used', async () => {
    const issued: string[] = [];
    const issuer = await createLeafIssuer(ca, { maxEntries: 10, onIssued: (host) => issued.push(host) });
    for (let i = 0; i < 50; i++) {
      await issuer.secureContextFor(`h${i}.security.microsoft.com`);
      await issuer.secureContextFor('keep.security.microsoft.com');
      expect(issuer.size).toBeLessThanOrEqual(10);
    }
    expect(issuer.size).toBe(10);
    expect(issued.filter((h) => h === 'keep.security.microsoft.com')).toHaveLength(1);
    await issuer.secureContextFor('h49.security.microsoft.com');
    await issuer.secureContextFor('h0.security.microsoft.com');
    expect(issued).toHaveLength(52);
  });

  it('frees an evicted context at once, and a connection built on it still completes its handshake', async () => {
    const issuer = await createLeafIssuer(ca, { maxEntries: 1 });
    const first = await issuer.secureContextFor('a.security.microsoft.com');
    const close = jest.spyOn(first.context as { close(): void }, 'close');
    const sockets: net.Socket[] = [];
    const server = net.createServer();
    try {
      const served = new Promise<string>((resolve, reject) => {
        // The server side as intercept.ts builds it: the context at construction, an SNICallback that
        // checks the name and hands no context back.
        server.on('connection', (raw) => {
          const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: first, SNICallback: (_name, cb) => cb(null, undefined) });
          sockets.push(raw, socket);
          socket.on('error', reject);
          socket.once('data', (d: Buffer) => resolve(d.toString()));
        });
        server.listen(0, '127.0.0.1', () => {
          const raw = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => {
            // Evict (and free) the first context before the client says anything.
            issuer.secureContextFor('b.security.microsoft.com').then(() => {
              expect(close).toHaveBeenCalledTimes(1);
              const client = tls.connect({ socket: raw, servername: 'a.security.microsoft.com', ca: ca.certPem }, () => {
                expect(client.getPeerX509Certificate()?.subjectAltName).toBe('DNS:a.security.microsoft.com');
                client.write('client');
              });
              sockets.push(client);
              client.on('error', reject);
            }).catch(reject);
          });
          sockets.push(raw);
          raw.on('error', reject);
        });
      });
      expect(await served).toBe('client');
      expect(issuer.size).toBe(1);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it('re-mints a leaf once less than a day of validity remains', async () => {
    let clock = Date.now();
    const issued: string[] = [];
    const issuer = await createLeafIssuer(ca, { now: () => clock, onIssued: (host) => issued.push(host) });
    const first = await issuer.secureContextFor('api.security.microsoft.com');
    clock += 5 * DAY + 23 * HOUR;
    expect(await issuer.secureContextFor('api.security.microsoft.com')).toBe(first);
    clock += 2 * HOUR;
    const second = await issuer.secureContextFor('api.security.microsoft.com');
    expect(second).not.toBe(first);
    expect(issued).toHaveLength(2);
    expect(issuer.size).toBe(1);
  });

  it('issues leaves from an RSA CA that has no name constraints', async () => {
    const rsa = opensslSelfSigned(['-newkey', 'rsa:2048'], 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign');
    const peer = await handshake(await createLeafIssuer(rsa), rsa.certPem, 'www.example.org');
    expect(peer.subjectAltName).toBe('DNS:www.example.org');
    expect(verify(rsa.certPem, peer.toString(), 'www.example.org').out).toContain(': OK');
  });
});

describe('caPermits', () => {
  let unconstrained: CaMaterial;
  beforeAll(() => {
    unconstrained = opensslSelfSigned(EC, 'basicConstraints=critical,CA:TRUE');
  });

  it.each([
    ['api.security.microsoft.com', true],
    ['security.microsoft.com', true],
    ['us.api.security.microsoft.com', true],
    ['API.Security.Microsoft.COM', true],
    ['api.security.microsoft.com.', true],
    ['graph.microsoft.com', true],
    ['evilsecurity.microsoft.com', false],
    ['security.microsoft.com.evil.example', false],
    ['microsoft.com', false],
    ['login.microsoftonline.com', false],
    ['127.0.0.1', false],
    ['::1', false],
    ['', false],
  ])('the name-constrained CA permits %p: %p', (host, expected) => {
    expect(caPermits(ca.certPem, host)).toBe(expected);
  });

  it.each([
    ['www.example.org', true],
    ['api.security.microsoft.com', true],
    ['10.0.0.1', false],
  ])('a CA without name constraints permits %p: %p', (host, expected) => {
    expect(caPermits(unconstrained.certPem, host)).toBe(expected);
  });
});

describe('loadOrCreateCa', () => {
  it('creates the CA in a new 0700 state directory with a 0600 key, then loads the same CA', async () => {
    const stateDir = path.join(tmp, 'state', 'nested');
    const first = await loadOrCreateCa({ stateDir, permittedDomains: DOMAINS });
    expect(first.created).toBe(true);
    expect(first.certFile).toBe(path.join(stateDir, 'ca.pem'));
    expect(first.keyFile).toBe(path.join(stateDir, 'ca-key.pem'));
    expect(fs.statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(first.keyFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(first.certFile).mode & 0o077).toBe(0o044 & ~process.umask());
    expect(fs.readdirSync(stateDir).sort()).toEqual(['ca-key.pem', 'ca.pem']);
    expect(caPermits(first.ca.certPem, 'api.security.microsoft.com')).toBe(true);

    const second = await loadOrCreateCa({ stateDir, permittedDomains: DOMAINS });
    expect(second.created).toBe(false);
    expect(second.ca).toEqual(first.ca);
  });

  it.each([
    ['an empty state directory made by hand is made 0700', 'state-made-by-hand', [], 0o700],
    ['a directory holding other files (a state directory named by mistake) keeps its mode', 'a-project-directory', ['README.md'], 0o755],
  ])('creating the CA in an existing 0755 directory: %s', async (_what, name, files, mode) => {
    const stateDir = path.join(tmp, name);
    fs.mkdirSync(stateDir);
    fs.chmodSync(stateDir, 0o755);
    for (const f of files) fs.writeFileSync(path.join(stateDir, f), 'not the proxy\'s\n');
    const created = await loadOrCreateCa({ stateDir, permittedDomains: DOMAINS });
    expect(created.created).toBe(true);
    expect(fs.statSync(stateDir).mode & 0o777).toBe(mode);
    expect(fs.statSync(created.keyFile).mode & 0o777).toBe(0o600);
  });

  it('loads configured files and leaves the state directory alone', async () => {
    const stateDir = path.join(tmp, 'unused-state');
    const loaded = await loadOrCreateCa({ certFile: caFile, keyFile: caKeyFile, stateDir, permittedDomains: DOMAINS });
    expect(loaded).toEqual({ ca, certFile: caFile, keyFile: caKeyFile, created: false });
    expect(fs.existsSync(stateDir)).toBe(false);
  });

  it('refuses a state directory holding a certificate without its key, and keeps the certificate', async () => {
    const stateDir = fs.mkdtempSync(path.join(tmp, 'partial-'));
    fs.writeFileSync(path.join(stateDir, 'ca.pem'), ca.certPem);
    const err = await rejection(loadOrCreateCa({ stateDir, permittedDomains: DOMAINS }));
    expect(err.code).toBe('CaUnreadable');
    expect(err.file).toBe(path.join(stateDir, 'ca-key.pem'));
    expect(fs.readFileSync(path.join(stateDir, 'ca.pem'), 'utf8')).toBe(ca.certPem);
  });

  it('reports a state directory it cannot create, naming it', async () => {
    const blocker = write('a-file', 'not a directory');
    const err = await rejection(loadOrCreateCa({ stateDir: path.join(blocker, 'state'), permittedDomains: DOMAINS }));
    expect(err.code).toBe('CaUnwritable');
    expect(err.file).toBe(path.join(blocker, 'state'));
  });

  it('refuses an expired CA, naming its file', async () => {
    const expiredAt = Date.UTC(2020, 5, 1, 12);
    const shortLived = await createCa({ permittedDomains: DOMAINS, validityDays: 1, now: () => expiredAt - DAY });
    const err = await rejection(loadOrCreateCa({
      certFile: write('expired.pem', shortLived.certPem), keyFile: write('expired-key.pem', shortLived.keyPem), stateDir: tmp, permittedDomains: DOMAINS,
    }));
    expect(err.code).toBe('CaExpired');
    expect(err.message).toContain(path.join(tmp, 'expired.pem'));
    expect(err.message).toContain(new Date(expiredAt).toISOString());
  });

  type CaFiles = { certFile?: string; keyFile?: string };
  const cases: Array<[string, () => CaFiles | Promise<CaFiles>, string, 'cert' | 'key']> = [
    ['a missing certificate file', () => ({ certFile: path.join(tmp, 'absent.pem'), keyFile: caKeyFile }), 'CaUnreadable', 'cert'],
    ['a certificate without its key file', () => ({ certFile: caFile }), 'CaUnreadable', 'cert'],
    ['a corrupt certificate file', () => ({ certFile: write('corrupt.pem', '-----BEGIN CERTIFICATE-----\nMIIBnotreally\n-----END CERTIFICATE-----\n'), keyFile: caKeyFile }), 'CaInvalid', 'cert'],
    ['a file that is not PEM', () => ({ certFile: write('garbage.pem', 'hello'), keyFile: caKeyFile }), 'CaInvalid', 'cert'],
    ['an unparseable key', () => ({ certFile: caFile, keyFile: write('bad-key.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n') }), 'CaInvalid', 'key'],
    ['a key from another CA', async () => ({ certFile: caFile, keyFile: write('other-key.pem', (await createCa({ permittedDomains: DOMAINS })).keyPem) }), 'CaKeyMismatch', 'key'],
    ['a certificate that is not a CA', () => {
      const leaf = opensslSelfSigned(EC, 'basicConstraints=critical,CA:FALSE');
      return { certFile: write('not-ca.pem', leaf.certPem), keyFile: write('not-ca-key.pem', leaf.keyPem) };
    }, 'CaNotAuthority', 'cert'],
    ['a CA whose keyUsage lacks keyCertSign', () => {
      const leaf = opensslSelfSigned(EC, 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature');
      return { certFile: write('no-certsign.pem', leaf.certPem), keyFile: write('no-certsign-key.pem', leaf.keyPem) };
    }, 'CaNotAuthority', 'cert'],
  ];

  it.each(cases)('refuses %s with a CaError naming the file', async (_label, files, code, which) => {
    const opts = await files();
    const err = await rejection(loadOrCreateCa({ ...opts, stateDir: tmp, permittedDomains: DOMAINS }));
    const file = which === 'cert' ? opts.certFile : opts.keyFile;
    expect(err.code).toBe(code);
    expect(err.file).toBe(file);
    expect(err.message).toContain(file);
    expect(err.message).not.toContain('PRIVATE KEY');
  });
});
