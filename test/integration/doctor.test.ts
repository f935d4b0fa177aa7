// doctor.ts in-process: each check's outcomes (ok, warn, fail, skip) with its message and fix, from
// configs built here and a CA made with createCa's clock. The network checks dial real loopback
// servers through upstream.resolve: the TLS echo origin, a closed port, a peer that never answers,
// an origin whose certificate the upstream trust refuses, and a real proxy as upstream.proxy.
// Every env is passed explicitly, so this machine's SSL_CERT_FILE and friends never reach a check.
// The CLI's wiring of doctor (exit codes, --json, --offline, --timeout) is in cli.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type SecureContext } from 'node:tls';
import { createCa, loadOrCreateCa, type CaMaterial } from '../../src/ca.js';
import { createCatalogue, nameConstraintDomains, type Cloud } from '../../src/catalogue.js';
import { buildConfig, type Config } from '../../src/config.js';
import { loadInterceptionCa } from '../../src/server.js';
import { doctorHosts, environmentCheck, runDoctor, TRUST_VARIABLES, type Check, type DoctorOptions } from '../../src/doctor.js';
import { headerValues, startOrigin, type Origin } from '../helpers/origin.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { startProxy } from '../helpers/proxy.js';

const FABRIKAM_UA = 'MdePartner-Fabrikam-Scanner/2.0.0';
const FABRIKAM = { id: 'scanner', company: 'Fabrikam', product: 'Scanner', version: '2.0.0' };
const DAY_MS = 86_400_000;
const API = 'api.security.microsoft.com';
const GRAPH = 'graph.microsoft.com';
const ROTATE = /^rotate the CA with overlap .*ca init --force/;

const tmp = (what: string): string => mkdtempSync(join(tmpdir(), `mpp-doctor-${what}-`));
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The named check; throws with every name when there is none. */
function named(checks: readonly Check[], name: string): Check {
  const c = checks.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no "${name}" check among ${JSON.stringify(checks.map((x) => x.name))}`);
  return c;
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Listens on a loopback port 0 and returns the port; the server's sockets are destroyed on close(). */
async function listen(server: Server): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A leaf per SNI from the test "Microsoft" root, as the echo origin serves. */
function sni(name: string, cb: (err: Error | null, ctx?: SecureContext) => void): void {
  pki.msIssuer.secureContextFor(name).then((ctx) => cb(null, ctx), (e: Error) => cb(e));
}

let pki: TestPki;
let origin: Origin;
/** A state directory holding a CA for the commercial cloud, as `ca init` leaves it. */
let stateDir: string;
let ca: CaMaterial;

beforeAll(async () => {
  pki = await testPki();
  origin = await startOrigin(pki.msIssuer);
  stateDir = join(tmp('state'), 'state');
  ca = (await loadOrCreateCa({ stateDir, permittedDomains: nameConstraintDomains(createCatalogue(['commercial'])), create: true })).ca;
});

afterAll(() => origin.close());

/** A config over the test state dir (doc's keys win); env is empty so nothing leaks from this machine. */
function configOf(doc: Record<string, unknown> = {}): Config {
  return buildConfig({ version: 1, products: [FABRIKAM], stateDir, admin: 'off', log: { level: 'silent' }, ...doc }, { source: 'doctor.test', baseDir: tmpdir(), env: {} });
}

/** upstream settings that send each host on :443 to target (host:port) and trust the test "Microsoft" root. */
function upstreamTo(target: string, hosts: readonly string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { upstream: { ca: pki.msRootFile, resolve: Object.fromEntries(hosts.map((h) => [`${h}:443`, target])), ...extra } };
}

const offline = (o: Partial<DoctorOptions> = {}): DoctorOptions => ({ env: {}, offline: true, timeoutMs: 2000, ...o });
const online = (o: Partial<DoctorOptions> = {}): DoctorOptions => ({ env: {}, offline: false, timeoutMs: 2000, ...o });

/** Writes a CA's two files to a new directory, for ca.cert and ca.key. */
function caFiles(material: CaMaterial): { cert: string; key: string } {
  const dir = tmp('ca');
  writeFileSync(join(dir, 'ca.pem'), material.certPem);
  writeFileSync(join(dir, 'ca-key.pem'), material.keyPem, { mode: 0o600 });
  return { cert: join(dir, 'ca.pem'), key: join(dir, 'ca-key.pem') };
}

describe('environmentCheck', () => {
  it('is ok with no unknown MDE_PARTNER_PROXY_* variable', () => {
    expect(environmentCheck([], ['MDE_PARTNER_PROXY_CONFIG'])).toEqual({ name: 'environment', status: 'ok', message: 'no unknown MDE_PARTNER_PROXY_* variable', fix: null });
  });

  it('fails naming every unknown variable, and lists the known ones in the fix', () => {
    const c = environmentCheck(['MDE_PARTNER_PROXY_SERVICE_HOST', 'MDE_PARTNER_PROXY_USERAGENT'], ['MDE_PARTNER_PROXY_CONFIG', 'MDE_PARTNER_PROXY_UA']);
    expect(c.status).toBe('fail');
    expect(c.message).toBe('unknown variable MDE_PARTNER_PROXY_SERVICE_HOST, MDE_PARTNER_PROXY_USERAGENT');
    expect(c.fix).toMatch(/^correct or unset it \(for a Kubernetes service link: enableServiceLinks: false, .*\); known: MDE_PARTNER_PROXY_CONFIG, MDE_PARTNER_PROXY_UA$/);
  });
});

describe('doctorHosts', () => {
  it.each<[Cloud[], string[], string[], string[]]>([
    [['commercial'], [], [API, 'us.api.security.microsoft.com', 'api.securitycenter.microsoft.com', GRAPH], ['graph.microsoft.us']],
    [['gcc-high'], [], ['graph.microsoft.us', 'dod-graph.microsoft.us'], [API, GRAPH]],
    [['commercial'], ['partner.example.org', '*.fleet.example.org'], ['partner.example.org', API], ['fleet.example.org', '*.fleet.example.org']],
  ])('for clouds %j and extraHosts %j: every exact host, no suffix rule', (clouds, extraHosts, has, hasNot) => {
    const hosts = doctorHosts(configOf({ clouds, extraHosts }));
    expect(hosts).toEqual(expect.arrayContaining(has));
    for (const h of hasNot) expect(hosts).not.toContain(h);
    expect(hosts.every((h) => !h.includes('*'))).toBe(true);
  });
});

describe('runDoctor offline: configuration, identity, listeners, CA, trust variables', () => {
  it('reports each check in order, all ok (or skipped) for a sound configuration', async () => {
    const checks = await runDoctor(configOf({ admin: '127.0.0.1:9464' }), offline());
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['configuration', 'ok'], ['identity', 'ok'], ['proxy listener', 'ok'], ['admin listener', 'ok'],
      ['interception CA', 'ok'], ['CA validity', 'ok'], ['CA name constraints', 'ok'], ['trust variables', 'skip'], ['network', 'skip'],
    ]);
    expect(named(checks, 'configuration').message).toBe('doctor.test');
    expect(named(checks, 'identity').message).toBe(FABRIKAM_UA);
    expect(named(checks, 'proxy listener').message).toBe('127.0.0.1:3128, allowed clients 127.0.0.0/8, ::1/128');
    expect(named(checks, 'interception CA').message).toBe(join(stateDir, 'ca.pem'));
    expect(named(checks, 'CA validity').message).toMatch(/^valid until \d{4}-\d\d-\d\d \(7(29|30) days\)$/);
    expect(named(checks, 'trust variables').message).toBe(`none of ${TRUST_VARIABLES.join(', ')} is set: clients use their own trust store, which must hold the CA (docs/trust.md)`);
    expect(named(checks, 'network').message).toBe('DNS, TCP, TLS and clock checks skipped (--offline)');
    expect(checks.filter((c) => c.status === 'ok' || c.status === 'skip').every((c) => c.fix === null)).toBe(true);
  });

  it('fails the identity when it is Microsoft\'s example, with the fix', async () => {
    const c = named(await runDoctor(configOf({ products: undefined }), offline()), 'identity');
    expect(c).toEqual({ name: 'identity', status: 'fail', message: 'Microsoft\'s example, MdePartner-Contoso-ContosoCognito/1.0.0', fix: 'set --user-agent or products in the config to your own product' });
  });

  it.each([
    [['0.0.0.0/0'], 'fail'],
    [['10.0.0.0/8', '::/0'], 'fail'],
    [['10.0.0.0/8', '192.168.0.0/16'], 'ok'],
  ])('reports a proxy listener with allowed clients %j as %s', async (allowedClients, status) => {
    const c = named(await runDoctor(configOf({ listen: '0.0.0.0:3128', access: { allowedClients } }), offline()), 'proxy listener');
    expect(c.status).toBe(status);
    expect(c.message).toBe(`0.0.0.0:3128, allowed clients ${allowedClients.join(', ')}${status === 'fail' ? ': an open proxy' : ''}`);
    expect(c.fix).toBe(status === 'fail' ? 'restrict access.allowedClients to the callers\' networks' : null);
  });

  it.each([
    ['0.0.0.0:9464', 'warn'],
    ['[::]:9464', 'warn'],
    ['10.1.2.3:9464', 'warn'],
    ['127.0.0.1:9464', 'ok'],
    ['[::1]:9464', 'ok'],
    ['localhost:9464', 'ok'],
    ['off', 'ok'],
  ])('reports an admin listener on %s as %s', async (admin, status) => {
    const c = named(await runDoctor(configOf({ admin }), offline()), 'admin listener');
    expect(c.status).toBe(status);
    if (admin === 'off') expect(c.message).toBe('off');
    else if (status === 'ok') expect(c.message).toBe(`${admin} (loopback only)`);
    else expect(c.message).toBe(`${admin} is reachable beyond this host and has no authentication (/metrics, /usage, /report name tenants and applications)`);
    expect(c.fix).toBe(status === 'warn' ? 'bind admin to 127.0.0.1, or let only the scraper reach it (NetworkPolicy, firewall)' : null);
  });

  it('only looks: a missing CA fails with `ca init` as the fix, creates nothing, and leaves the trust variables unchecked', async () => {
    const empty = join(tmp('no-ca'), 'state');
    const checks = await runDoctor(configOf({ stateDir: empty }), offline({ env: { SSL_CERT_FILE: pki.msRootFile } }));
    const c = named(checks, 'interception CA');
    expect(c.status).toBe('fail');
    expect(c.message).toBe(`${join(empty, 'ca.pem')}: no interception CA yet; \`mde-partner-proxy ca init\` (or the first start) creates it`);
    expect(c.fix).toBe('mde-partner-proxy ca init');
    expect(existsSync(empty)).toBe(false);
    expect(checks.map((x) => x.name)).not.toContain('CA validity');
    expect(named(checks, 'SSL_CERT_FILE')).toEqual({ name: 'SSL_CERT_FILE', status: 'skip', message: `${pki.msRootFile}: no interception CA to look for`, fix: null });
  });

  it.each<[string, () => Promise<CaMaterial>, RegExp, RegExp]>([
    ['has expired', () => createCa({ permittedDomains: ['microsoft.com'], now: () => Date.now() - 800 * DAY_MS }), /expired on \d{4}-\d\d-\d\d/, ROTATE],
    ['has a key that is not its own', async () => ({ certPem: (await createCa({ permittedDomains: ['microsoft.com'] })).certPem, keyPem: ca.keyPem }),
      /the key does not belong to the certificate/, /^restore the CA files from a backup, or replace them: mde-partner-proxy ca init --force/],
  ])('fails a state directory\'s CA that %s with a fix a plain `ca init` would not refuse', async (_what, make, message, fix) => {
    const dir = join(tmp('bad-ca'), 'state');
    const material = await make();
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'ca.pem'), material.certPem);
    writeFileSync(join(dir, 'ca-key.pem'), material.keyPem, { mode: 0o600 });
    const c = named(await runDoctor(configOf({ stateDir: dir }), offline()), 'interception CA');
    expect(c.status).toBe('fail');
    expect(c.message).toMatch(message);
    expect(c.fix).toMatch(fix);
    // What `ca init` without --force does with this directory (server.ts loadInterceptionCa): it refuses.
    await expect(loadInterceptionCa(configOf({ stateDir: dir }))).rejects.toThrow(message);
  });

  it.each([
    ['an interrupted first start left (a staged pair, the key placed, a stale temporary file)', true],
    ['a deleted certificate left (the key alone)', false],
  ])('only looks at what %s: nothing is renamed, placed or removed', async (_what, interrupted) => {
    const dir = join(tmp('interrupted'), 'state');
    mkdirSync(dir, { mode: 0o700 });
    const material = await createCa({ permittedDomains: ['microsoft.com'] });
    if (interrupted) {
      const staged = join(dir, `ca.new.${spawnSync('true').pid}`); // its writer has exited
      mkdirSync(staged, { mode: 0o700 });
      writeFileSync(join(staged, 'ca.pem'), material.certPem);
      writeFileSync(join(staged, 'ca-key.pem'), material.keyPem, { mode: 0o600 });
      writeFileSync(join(dir, 'ca.pem.4242.0a1b.tmp'), 'partial');
    }
    writeFileSync(join(dir, 'ca-key.pem'), material.keyPem, { mode: 0o600 });
    const listing = (): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
    const before = listing();
    const c = named(await runDoctor(configOf({ stateDir: dir }), offline()), 'interception CA');
    expect(c).toEqual({ name: 'interception CA', status: 'fail', fix: 'mde-partner-proxy ca init',
      message: `${join(dir, 'ca.pem')}: missing, but its key ${join(dir, 'ca-key.pem')} is there (an interrupted first start, or a deleted certificate); \`mde-partner-proxy ca init\` completes or replaces it` });
    expect(listing()).toEqual(before);
  });

  it('fails a configured ca.cert that cannot be read, pointing at the config', async () => {
    const dir = tmp('ca-missing');
    const c = named(await runDoctor(configOf({ ca: { cert: join(dir, 'nope.pem'), key: join(dir, 'nope-key.pem') } }), offline()), 'interception CA');
    expect(c.status).toBe('fail');
    expect(c.message).toMatch(/nope/);
    expect(c.fix).toBe('check ca.cert and ca.key in the config');
  });

  it.each<[string, () => Promise<CaMaterial>, (() => number) | undefined, string, RegExp, RegExp | null]>([
    ['is not valid yet (created by a clock two days ahead)', () => createCa({ permittedDomains: ['microsoft.com'], now: () => Date.now() + 2 * DAY_MS }), undefined,
      'fail', /^not valid before \d{4}-\d\d-\d\dT/, /^check this machine's clock$/],
    ['expires within 30 days (created 720 days ago)', () => createCa({ permittedDomains: ['microsoft.com'], now: () => Date.now() - 720 * DAY_MS }), undefined,
      'warn', /^expires on \d{4}-\d\d-\d\d, in 9 days$/, ROTATE],
    ['expires in 31 days', () => createCa({ permittedDomains: ['microsoft.com'], validityDays: 32 }), undefined,
      'ok', /^valid until \d{4}-\d\d-\d\d \(31 days\)$/, null],
    ['has expired by the doctor\'s clock', () => createCa({ permittedDomains: ['microsoft.com'] }), () => Date.now() + 731 * DAY_MS,
      'fail', /^expired on \d{4}-\d\d-\d\d$/, ROTATE],
  ])('CA validity: a CA that %s', async (_what, make, now, status, message, fix) => {
    const checks = await runDoctor(configOf({ ca: caFiles(await make()) }), offline(now !== undefined ? { now } : {}));
    expect(named(checks, 'interception CA').status).toBe('ok');
    const c = named(checks, 'CA validity');
    expect(c.status).toBe(status);
    expect(c.message).toMatch(message);
    if (fix === null) expect(c.fix).toBeNull();
    else expect(c.fix).toMatch(fix);
  });

  it('CA name constraints: fails naming each enforced host the CA cannot sign for, extra hosts included', async () => {
    const narrow = await createCa({ permittedDomains: ['security.microsoft.com'] });
    const c = named(await runDoctor(configOf({ ca: caFiles(narrow), extraHosts: ['partner.example.org', '*.fleet.example.org'] }), offline()), 'CA name constraints');
    expect(c.status).toBe('fail');
    expect(c.message).toMatch(/^do not cover .* \(CaHostNotPermitted\)$/);
    for (const host of ['partner.example.org', 'x.fleet.example.org']) expect(c.message).toContain(host);
    expect(c.message).not.toContain(`${API},`);
    expect(c.fix).toMatch(/^a CA from ca init covers the configured hosts: recreate it/);
    const wide = await createCa({ permittedDomains: [...nameConstraintDomains(createCatalogue(['commercial'])), 'example.org'] });
    expect(named(await runDoctor(configOf({ ca: caFiles(wide), extraHosts: ['partner.example.org', '*.fleet.example.org'] }), offline()), 'CA name constraints').status).toBe('ok');
  });

  it.each<[string, Cloud[], Cloud[], string, RegExp]>([
    ['a government-cloud CA from ca init, for a government-cloud config', ['gcc-high'], ['gcc-high'], 'ok', /^cover every enforced host \(\d+ names under .*graph\.microsoft\.us/],
    ['a commercial CA, for a config that added a government cloud', ['commercial'], ['commercial', 'gcc-high'], 'fail', /^do not cover .*graph\.microsoft\.us.*x\.security\.microsoft\.us.* \(CaHostNotPermitted\)$/],
    ['a government-cloud CA, for a commercial config', ['gcc-high'], ['commercial'], 'fail', /^do not cover api\.security\.microsoft\.com, /],
  ])('CA name constraints: checks the hosts of every configured cloud (%s)', async (_what, caClouds, clouds, status, message) => {
    const material = await createCa({ permittedDomains: nameConstraintDomains(createCatalogue(caClouds)) });
    const c = named(await runDoctor(configOf({ ca: caFiles(material), clouds }), offline()), 'CA name constraints');
    expect(c.status).toBe(status);
    expect(c.message).toMatch(message);
    if (status === 'ok') expect(c.fix).toBeNull();
    else expect(c.fix).toMatch(/recreate it after changing clouds or extraHosts/);
  });

  describe('trust variables', () => {
    let bundle: string;
    let onlyCa: string;
    const caFile = (): string => join(stateDir, 'ca.pem');
    beforeAll(() => {
      const dir = tmp('trust');
      bundle = join(dir, 'bundle.pem');
      writeFileSync(bundle, `${pki.msRoot.certPem}\r\n${ca.certPem.replace(/\n/g, '\r\n')}`);
      onlyCa = join(dir, 'only-ca.pem');
      writeFileSync(onlyCa, ca.certPem);
    });

    it('are ok when each set file holds the CA; an empty one is not checked', async () => {
      const checks = await runDoctor(configOf(), offline({ env: { SSL_CERT_FILE: bundle, NODE_EXTRA_CA_CERTS: onlyCa, CURL_CA_BUNDLE: '' } }));
      expect(named(checks, 'SSL_CERT_FILE')).toEqual({ name: 'SSL_CERT_FILE', status: 'ok', message: `${bundle} contains the interception CA (2 certificates)`, fix: null });
      expect(named(checks, 'NODE_EXTRA_CA_CERTS')).toEqual({ name: 'NODE_EXTRA_CA_CERTS', status: 'ok', message: `${onlyCa} contains the interception CA (1 certificates)`, fix: null });
      expect(checks.map((c) => c.name)).not.toContain('CURL_CA_BUNDLE');
      expect(checks.map((c) => c.name)).not.toContain('trust variables');
    });

    it('fail when a file lacks the CA or cannot be read, each with the fix', async () => {
      const missing = join(tmp('trust-missing'), 'nope.pem');
      const checks = await runDoctor(configOf(), offline({ env: { REQUESTS_CA_BUNDLE: pki.msRootFile, CURL_CA_BUNDLE: missing } }));
      const fix = `eval "$(mde-partner-proxy env)" sets them all; or point it at ${stateDir}/ca-bundle.pem`;
      expect(named(checks, 'REQUESTS_CA_BUNDLE')).toEqual({ name: 'REQUESTS_CA_BUNDLE', status: 'fail', message: `${pki.msRootFile} does not contain the interception CA (${caFile()})`, fix });
      expect(named(checks, 'CURL_CA_BUNDLE')).toEqual({ name: 'CURL_CA_BUNDLE', status: 'fail', message: `cannot read ${missing}: ENOENT`, fix });
    });

    it.each(TRUST_VARIABLES.filter((v) => v !== 'NODE_EXTRA_CA_CERTS'))('warn when %s, which replaces the trust store, holds only the CA', async (name) => {
      const c = named(await runDoctor(configOf(), offline({ env: { [name]: onlyCa } })), name);
      expect(c.status).toBe('warn');
      expect(c.message).toBe(`${onlyCa} holds only the interception CA: tunnelled hosts (login.microsoftonline.com) will fail certificate checks`);
      expect(c.fix).toBe(`use ca-bundle.pem (public roots plus the CA): ${stateDir}/ca-bundle.pem`);
    });
  });
});

describe('runDoctor network: DNS, TCP, TLS and clock by the proxy\'s outbound path', () => {
  it('reaches every enforced host through upstream.resolve with a HEAD carrying the partner User-Agent, and finds the clock in step', async () => {
    const config = configOf(upstreamTo(`127.0.0.1:${origin.port}`, doctorHosts(configOf())));
    const before = origin.received.length;
    const checks = await runDoctor(config, online());
    const hosts = doctorHosts(config);
    for (const host of hosts) {
      expect(named(checks, host)).toEqual({ name: host, status: 'ok', message: `upstream.resolve → 127.0.0.1:${origin.port}, TCP, TLS TLSv1.3 (issuer Test Microsoft Root)`, fix: null });
    }
    const received = origin.received.slice(before);
    expect(received.map((r) => r.servername).sort()).toEqual([...hosts].sort());
    for (const r of received) {
      expect({ method: r.method, url: r.url, host: headerValues(r.rawHeaders, 'host'), ua: headerValues(r.rawHeaders, 'user-agent') })
        .toEqual({ method: 'HEAD', url: '/', host: [r.servername], ua: [FABRIKAM_UA] });
    }
    expect(named(checks, 'clock')).toMatchObject({ status: 'ok', fix: null });
    expect(named(checks, 'clock').message).toMatch(new RegExp(`^[01] s (ahead of|behind) the Date of ${escape(hosts[0]!)}$`));
  });

  it('reaches only opts.hosts when given', async () => {
    const checks = await runDoctor(configOf(upstreamTo(`127.0.0.1:${origin.port}`, [API, GRAPH])), online({ hosts: [GRAPH] }));
    expect(checks.filter((c) => c.name.includes('.')).map((c) => c.name)).toEqual([GRAPH]);
  });

  it('fails TCP to a refused port with the egress fix, and skips the clock', async () => {
    const port = await closedPort();
    const checks = await runDoctor(configOf(upstreamTo(`127.0.0.1:${port}`, [GRAPH])), online({ hosts: [GRAPH] }));
    expect(named(checks, GRAPH)).toEqual({ name: GRAPH, status: 'fail', message: `upstream.resolve → 127.0.0.1:${port}, TCP failed: connect ECONNREFUSED 127.0.0.1:${port}`,
      fix: 'allow egress to the host on port 443 (firewall, NetworkPolicy), or set upstream.proxy' });
    expect(named(checks, 'clock')).toEqual({ name: 'clock', status: 'skip', message: 'no host answered with a Date header', fix: null });
  });

  it('fails the TLS stage when the peer accepts but never answers the handshake, bounded by timeoutMs', async () => {
    const silent = await listen(createServer(() => undefined));
    try {
      const checks = await runDoctor(configOf(upstreamTo(`127.0.0.1:${silent.port}`, [API, GRAPH])), online({ hosts: [API, GRAPH], timeoutMs: 150 }));
      for (const host of [API, GRAPH]) {
        expect(named(checks, host)).toMatchObject({ status: 'fail', message: `upstream.resolve → 127.0.0.1:${silent.port}, TCP, TLS failed: TLS handshake timed out after 150 ms` });
        expect(named(checks, host).fix).toMatch(/^a TLS-inspecting proxy on the way\? add its root to upstream\.ca/);
      }
    } finally {
      await silent.close();
    }
  });

  it.each([
    ['an origin signed by a root the upstream trust lacks', 'rogue'],
    ['the test root missing from upstream.ca', 'untrusted'],
  ])('fails TLS to %s, naming upstream.ca in the fix', async (_what, how) => {
    const served = how === 'rogue' ? await startOrigin(pki.rogueIssuer) : origin;
    try {
      const doc = upstreamTo(`127.0.0.1:${served.port}`, [API]);
      if (how === 'untrusted') delete (doc['upstream'] as Record<string, unknown>)['ca'];
      const checks = await runDoctor(configOf(doc), online({ hosts: [API] }));
      const c = named(checks, API);
      expect(c.status).toBe('fail');
      expect(c.message).toMatch(new RegExp(`^upstream\\.resolve → 127\\.0\\.0\\.1:${served.port}, TCP, TLS failed: .*(certificate|issuer)`));
      expect(c.fix).toMatch(/add its root to upstream\.ca/);
      expect(named(checks, 'clock').status).toBe('skip');
    } finally {
      if (served !== origin) await served.close();
    }
  });

  it.each([
    ['answers the HEAD without a Date header', 'no-date'],
    ['completes the handshake but never answers the HEAD', 'mute'],
  ])('passes a host that %s, and skips the clock', async (_what, how) => {
    const server: Server = how === 'no-date'
      ? createHttpsServer({ SNICallback: sni }, (_req, res) => {
        res.sendDate = false;
        res.end();
      })
      : createTlsServer({ SNICallback: sni }, () => undefined);
    const s = await listen(server);
    try {
      const checks = await runDoctor(configOf(upstreamTo(`127.0.0.1:${s.port}`, [API])), online({ hosts: [API], timeoutMs: 300 }));
      expect(named(checks, API)).toMatchObject({ status: 'ok', message: `upstream.resolve → 127.0.0.1:${s.port}, TCP, TLS TLSv1.3 (issuer Test Microsoft Root)` });
      expect(named(checks, 'clock')).toEqual({ name: 'clock', status: 'skip', message: 'no host answered with a Date header', fix: null });
    } finally {
      await s.close();
    }
  });

  it.each([
    ['ahead of', 2 * 3600_000, /^720[01] s ahead of the Date of /],
    ['behind', -2 * 3600_000, /^7(199|200) s behind the Date of /],
  ])('warns when this machine\'s clock is %s the origin\'s Date by more than 60 s', async (_dir, offset, message) => {
    const checks = await runDoctor(configOf(upstreamTo(`127.0.0.1:${origin.port}`, [API])), online({ hosts: [API], now: () => Date.now() + offset }));
    const c = named(checks, 'clock');
    expect(c.status).toBe('warn');
    expect(c.message).toMatch(message);
    expect(c.message).toMatch(new RegExp(`${escape(API)}$`));
    expect(c.fix).toBe('synchronise this machine\'s clock (NTP): tokens and certificates are checked against it');
  });

  it('compares the clock with a host\'s Date when its answer arrives, not once slower hosts are done', async () => {
    // `later` turns true once the doctor has closed the answering host's connection (it has read the
    // Date); only then does the holding host let go, so the run ends after the clock moved 10 minutes.
    let later = false;
    let held: Socket | undefined;
    const answering = createHttpsServer({ SNICallback: sni }, (_req, res) => res.end());
    answering.on('secureConnection', (socket: Socket) => socket.once('close', () => {
      later = true;
      held?.destroy();
    }));
    const holding = createServer((socket) => {
      held = socket;
      if (later) socket.destroy();
    });
    const [a, h] = [await listen(answering), await listen(holding)];
    try {
      const config = configOf({ upstream: { ca: pki.msRootFile, resolve: { [`${API}:443`]: `127.0.0.1:${a.port}`, [`${GRAPH}:443`]: `127.0.0.1:${h.port}` } } });
      const checks = await runDoctor(config, online({ hosts: [API, GRAPH], timeoutMs: 10_000, now: () => Date.now() + (later ? 600_000 : 0) }));
      expect(named(checks, API).status).toBe('ok');
      expect(named(checks, GRAPH).status).toBe('fail');
      expect(named(checks, 'clock')).toMatchObject({ status: 'ok', fix: null });
      expect(named(checks, 'clock').message).toMatch(new RegExp(`^[01] s (ahead of|behind) the Date of ${escape(API)}$`));
    } finally {
      await Promise.all([a.close(), h.close()]);
    }
  });

  it('fails DNS for a host that resolves only to restricted addresses (the guard of the request path), and passes it when private destinations are allowed', async () => {
    const denied = named(await runDoctor(configOf(), online({ hosts: ['localhost'] })), 'localhost');
    expect(denied).toEqual({ name: 'localhost', status: 'fail', message: 'DNS failed: localhost resolves only to restricted addresses (the proxy refuses them)',
      fix: 'check this machine\'s DNS for the host, or reach it through upstream.proxy' });
    const allowed = named(await runDoctor(configOf({ access: { allowPrivateDestinations: true } }), online({ hosts: ['localhost'] })), 'localhost');
    expect(allowed.message).toMatch(/^DNS (\S+ )*(127\.0\.0\.1|::1)( \S+)*, TCP/);
  });

  describe('through upstream.proxy', () => {
    it('asks the upstream proxy to CONNECT the resolved address, then does TLS through it', async () => {
      const outer = await startProxy(origin.port, { access: { allowPrivateDestinations: true, connectPorts: [origin.port] } });
      try {
        const checks = await runDoctor(configOf(upstreamTo(`127.0.0.1:${origin.port}`, [API], { proxy: outer.url })), online({ hosts: [API] }));
        expect(named(checks, API)).toEqual({ name: API, status: 'ok', fix: null,
          message: `upstream.resolve → 127.0.0.1:${origin.port}, TCP through upstream proxy 127.0.0.1:${outer.port}, TLS TLSv1.3 (issuer Test Microsoft Root)` });
        const tunnel = await outer.recorder.waitForTunnel(() => true);
        expect({ host: tunnel.host, port: tunnel.port, action: tunnel.action }).toEqual({ host: '127.0.0.1', port: origin.port, action: 'tunnelled' });
        expect(named(checks, 'clock').status).toBe('ok');
      } finally {
        await outer.close();
      }
    });

    it('fails CONNECT with the upstream.proxy fix when the proxy refuses it, or is not there', async () => {
      const outer = await startProxy(origin.port); // private destinations refused
      const gone = await closedPort();
      try {
        const refused = named(await runDoctor(configOf(upstreamTo(`127.0.0.1:${origin.port}`, [API], { proxy: outer.url })), online({ hosts: [API] })), API);
        expect(refused).toEqual({ name: API, status: 'fail', fix: 'check upstream.proxy: it must accept CONNECT to the host on port 443',
          message: `upstream.resolve → 127.0.0.1:${origin.port}, CONNECT failed: upstream proxy refused CONNECT 127.0.0.1:${origin.port} with 403` });
        const down = named(await runDoctor(configOf({ upstream: { proxy: `http://127.0.0.1:${gone}` } }), online({ hosts: [GRAPH] })), GRAPH);
        expect(down).toEqual({ name: GRAPH, status: 'fail', fix: 'check upstream.proxy: it must accept CONNECT to the host on port 443',
          message: `DNS left to the upstream proxy, CONNECT failed: connect ECONNREFUSED 127.0.0.1:${gone}` });
      } finally {
        await outer.close();
      }
    });

    it('goes direct for a host upstream.noProxy matches', async () => {
      const gone = await closedPort();
      const checks = await runDoctor(configOf(upstreamTo(`127.0.0.1:${origin.port}`, [API, GRAPH], { proxy: `http://127.0.0.1:${gone}`, noProxy: ['.security.microsoft.com'] })),
        online({ hosts: [API, GRAPH] }));
      expect(named(checks, API)).toMatchObject({ status: 'ok', message: `upstream.resolve → 127.0.0.1:${origin.port}, TCP, TLS TLSv1.3 (issuer Test Microsoft Root)` });
      expect(named(checks, GRAPH)).toMatchObject({ status: 'fail', message: expect.stringContaining(', CONNECT failed: connect ECONNREFUSED') as unknown });
    });
  });
});
