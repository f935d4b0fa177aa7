// Config: every error names the field's path; valid documents compile to a frozen Config.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError, loadConfig } from '../../src/config.js';

const product = { id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' };
const build = (doc: unknown, overrides = {}, env: NodeJS.ProcessEnv = {}) => buildConfig(doc, { source: 'test', baseDir: '/tmp', overrides, env });

function pathOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.path;
    throw e;
  }
  throw new Error('no ConfigError');
}

describe('invalid configs name the field', () => {
  it.each([
    ['an unknown top-level key', { version: 1, listn: 'x' }, 'listn'],
    ['an unknown nested key', { version: 1, policy: { mode: 'rewrite', rewite: 'x' } }, 'policy.rewite'],
    ['a wrong version', { version: 2 }, 'version'],
    ['a bad mode', { version: 1, policy: { mode: 'block' } }, 'policy.mode'],
    ['a bad rewrite style', { version: 1, policy: { rewrite: 'append' } }, 'policy.rewrite'],
    ['a version with CR/LF', { version: 1, products: [{ ...product, version: '1.0\r\nX-Evil: 1' }] }, 'products[0].version'],
    ['a company with a NUL', { version: 1, products: [{ ...product, company: 'Con\0toso' }] }, 'products[0].company'],
    ['non-Latin-1 product text', { version: 1, products: [{ ...product, product: 'Cognito✓' }] }, 'products[0].product'],
    ['a company with a hyphen', { version: 1, products: [{ ...product, company: 'Con-toso' }] }, 'products[0].company'],
    ['a company with a space', { version: 1, products: [{ ...product, company: 'Contoso Ltd' }] }, 'products[0].company'],
    ['a product without version', { version: 1, products: [{ id: 'x', company: 'A', product: 'B' }] }, 'products[0].version'],
    ['a duplicate product id', { version: 1, products: [product, product] }, 'products[1].id'],
    ['a reserved product id', { version: 1, products: [{ ...product, id: 'unregistered' }] }, 'products[0].id'],
    ['an unknown cloud', { version: 1, clouds: ['moon'] }, 'clouds[0]'],
    ['an IP literal in extraHosts', { version: 1, extraHosts: ['10.0.0.1'] }, 'extraHosts[0]'],
    ['a TLD wildcard in extraHosts', { version: 1, extraHosts: ['*.com'] }, 'extraHosts[0]'],
    ['a token endpoint in extraHosts', { version: 1, extraHosts: ['login.microsoftonline.com'] }, 'extraHosts[0]'],
    ['a bad otherHosts', { version: 1, otherHosts: 'allow' }, 'otherHosts'],
    ['a bad listen address', { version: 1, listen: 'localhost' }, 'listen'],
    ['a bad resolve target', { version: 1, upstream: { resolve: { 'a.example:443': 'nowhere' } } }, 'upstream.resolve.a.example:443'],
    ['a resolve target on port 0', { version: 1, upstream: { resolve: { 'a.example:443': '127.0.0.1:0' } } }, 'upstream.resolve.a.example:443'],
    ['a resolve key without port', { version: 1, upstream: { resolve: { 'a.example': '127.0.0.1:1' } } }, 'upstream.resolve.a.example'],
    ['a reverse listener on port 70000', { version: 1, products: [product], reverse: [{ listen: '127.0.0.1:70000', upstream: 'https://api.security.microsoft.com' }] }, 'reverse[0].listen'],
    ['a non-http upstream proxy', { version: 1, upstream: { proxy: 'socks5://p:1080' } }, 'upstream.proxy'],
    ['a reverse route to http', { version: 1, products: [product], reverse: [{ listen: '127.0.0.1:8443', upstream: 'http://api.security.microsoft.com', product: 'cognito' }] }, 'reverse[0].upstream'],
    ['a reverse route to a host outside the catalogue', { version: 1, products: [product], reverse: [{ listen: '127.0.0.1:8443', upstream: 'https://www.example.org' }] }, 'reverse[0].upstream'],
    ['a reverse route to a government host with the commercial cloud', { version: 1, products: [product], reverse: [{ listen: '127.0.0.1:8443', upstream: 'https://api-gov.securitycenter.microsoft.us' }] }, 'reverse[0].upstream'],
    ['a reverse route to a token endpoint', { version: 1, products: [product], reverse: [{ listen: '127.0.0.1:8443', upstream: 'https://login.microsoftonline.com' }] }, 'reverse[0].upstream'],
    ['a reverse route to an unknown product', { version: 1, products: [product], reverse: [{ listen: '127.0.0.1:8443', upstream: 'https://api.security.microsoft.com', product: 'nope' }] }, 'reverse[0].product'],
    ['a negative timeout', { version: 1, timeouts: { connect: -1 } }, 'timeouts.connect'],
    ['a bad CIDR', { version: 1, access: { allowedClients: ['everyone'] } }, 'access.allowedClients[0]'],
    ['a CIDR prefix too long', { version: 1, access: { allowedClients: ['127.0.0.0/8', '10.0.0.0/33'] } }, 'access.allowedClients[1]'],
    ['a short IPv4 in a CIDR', { version: 1, access: { allowedClients: ['1.2.3/8'] } }, 'access.allowedClients[0]'],
    ['a port out of range', { version: 1, access: { connectPorts: [70000] } }, 'access.connectPorts[0]'],
    ['a missing password env', { version: 1, products: [{ ...product, credentials: { username: 'u', passwordEnv: 'NOPE_PW' } }] }, 'products[0].credentials.passwordEnv'],
    ['a missing password file', { version: 1, products: [{ ...product, credentials: { username: 'u', passwordFile: '/nonexistent/pw' } }] }, 'products[0].credentials.passwordFile'],
    ['a bad log level', { version: 1, log: { level: 'loud' } }, 'log.level'],
    ['a header count below 8', { version: 1, limits: { maxHeaderCount: 2 } }, 'limits.maxHeaderCount'],
    ['a fractional head size', { version: 1, limits: { maxHeaderBytes: 2048.5 } }, 'limits.maxHeaderBytes'],
    ['zero connections', { version: 1, limits: { maxConnections: 0 } }, 'limits.maxConnections'],
    ['an unknown limit', { version: 1, limits: { maxBodyBytes: 1 } }, 'limits.maxBodyBytes'],
  ])('%s → %s', (_name, doc, path) => {
    expect(pathOf(() => build(doc))).toBe(path);
  });

  it.each([
    ['--user-agent with CR/LF', { userAgent: 'MdePartner-A-B/1\r\nX: y' }, '--user-agent'],
    ['--user-agent not a partner token', { userAgent: 'curl/8' }, '--user-agent'],
    ['--mode unknown', { mode: 'block' }, '--mode'],
    ['--listen without port', { listen: '127.0.0.1' }, '--listen'],
    ['--listen with a port out of range', { listen: '127.0.0.1:65536' }, '--listen'],
    ['--listen with IPv6 unbracketed', { listen: '::1:3128' }, '--listen'],
    ['--admin with a bad IPv6', { admin: '[::g]:9464' }, '--admin'],
  ])('%s → %s', (_name, overrides, path) => {
    expect(pathOf(() => build({ version: 1 }, overrides))).toBe(path);
  });

  it('reports every fault found after the schema pass, in the order the sections are built', () => {
    const app = '11111111-2222-3333-4444-555555555555';
    const doc = {
      version: 1, listen: 'localhost', admin: 'nowhere',
      products: [{ ...product, apps: [app] }, { ...product, id: 'scanner', apps: [app], credentials: { username: 'a:b', passwordEnv: 'NOPE_PW' } }],
      upstream: { proxy: 'socks5://p:1080', resolve: { 'a.example': '127.0.0.1:1', 'b.example:443': 'nowhere' } },
      reverse: [{ listen: 'x', upstream: 'http://api.security.microsoft.com', product: 'nope' }],
      access: { allowedClients: ['everyone', '127.0.0.0/8', '10.0.0.0/33'] },
    };
    let error: unknown;
    try {
      build(doc, { mode: 'block', logLevel: 'loud' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).all.map((p) => p.path)).toEqual([
      'products[1].credentials.username', 'products[1].credentials.passwordEnv', 'products[1].apps[0]',
      'upstream.resolve.a.example', 'upstream.resolve.b.example:443',
      'reverse[0].upstream', 'reverse[0].product', 'reverse[0].listen',
      'upstream.proxy', '--mode', '--log-level',
      'access.allowedClients[0]', 'access.allowedClients[2]',
      'listen', 'admin',
    ]);
    expect((error as ConfigError).path).toBe('products[1].credentials.username');
  });

  it('names the YAML position of a syntax error and refuses duplicate keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-cfg-'));
    writeFileSync(join(dir, 'bad.yaml'), 'version: 1\nlisten: [\n');
    expect(pathOf(() => loadConfig(join(dir, 'bad.yaml')))).toMatch(/^\(yaml line \d+, column \d+\)$/);
    writeFileSync(join(dir, 'dup.yaml'), 'version: 1\nlisten: 127.0.0.1:1\nlisten: 127.0.0.1:2\n');
    expect(pathOf(() => loadConfig(join(dir, 'dup.yaml')))).toMatch(/^\(yaml/);
  });
});

describe('valid configs', () => {
  it('uses the example identity, loopback listeners and the documented defaults with no config', () => {
    const c = build(undefined);
    expect(c.exampleIdentity).toBe(true);
    expect(c.policy.products.map((p) => p.userAgent)).toEqual(['MdePartner-Contoso-ContosoCognito/1.0.0']);
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 3128 });
    expect(c.admin).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(c.policy.mode).toBe('rewrite');
    expect(c.policy.rewrite).toBe('replace');
    expect([...c.policy.connectPorts]).toEqual([443]);
    expect(c.allowedClients).toEqual(['127.0.0.0/8', '::1/128']);
    expect(c.limits).toEqual({ maxHeaderCount: 100, maxHeaderBytes: 32768, maxConnections: undefined });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes one product from --user-agent alone, upgrading a legacy form', () => {
    const c = build({ version: 1 }, { userAgent: 'MdatpPartner-Joe-JoeSandbox-Func/4.4.1' });
    expect(c.exampleIdentity).toBe(false);
    expect(c.policy.products.map((p) => p.userAgent)).toEqual(['MdePartner-Joe-JoeSandbox-Func/4.4.1']);
  });

  it('lets overrides win over the file', () => {
    const c = build({ version: 1, listen: '127.0.0.1:1', policy: { mode: 'audit' } }, { listen: '127.0.0.1:2', mode: 'reject', admin: 'off' });
    expect(c.listen.port).toBe(2);
    expect(c.policy.mode).toBe('reject');
    expect(c.admin).toBeUndefined();
  });

  it('reads passwords from the environment and requires credentials from every caller once one product has them', () => {
    const c = build({ version: 1, products: [{ ...product, credentials: { username: 'u', passwordEnv: 'PW' } }] }, {}, { PW: 'secret' });
    expect(c.policy.products[0]!.credentials).toEqual({ username: 'u', password: 'secret' });
    expect(c.policy.defaultProduct).toBeUndefined();
  });

  it.each([
    ['an IPv4 address and port', '127.0.0.1:3128', { host: '127.0.0.1', port: 3128 }],
    ['a bracketed IPv6 address', '[::1]:3128', { host: '::1', port: 3128 }],
    ['port 0 (any free port)', '127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['a port alone, on every IPv4 address', ':3128', { host: '0.0.0.0', port: 3128 }],
    ['a name, lowercased, with spaces around', ' LocalHost:3128 ', { host: 'localhost', port: 3128 }],
  ])('listens on %s', (_name, listen, expected) => {
    expect(build({ version: 1, listen }).listen).toEqual(expected);
  });

  it.each([
    ['the default list admits loopback', undefined, [['127.0.0.1', 'ipv4', true], ['127.255.0.9', 'ipv4', true], ['::1', 'ipv6', true], ['10.0.0.1', 'ipv4', false], ['::2', 'ipv6', false]]],
    ['a private network and an IPv6 prefix', ['10.0.0.0/8', 'fd00::/8'], [['10.200.3.4', 'ipv4', true], ['11.0.0.1', 'ipv4', false], ['fd12::1', 'ipv6', true], ['fe80::1', 'ipv6', false], ['127.0.0.1', 'ipv4', false]]],
    ['one host', ['192.0.2.7/32'], [['192.0.2.7', 'ipv4', true], ['192.0.2.8', 'ipv4', false]]],
  ] as const)('compiles access.allowedClients once: %s', (_name, allowedClients, checks) => {
    const c = build({ version: 1, ...(allowedClients ? { access: { allowedClients } } : {}) });
    expect(checks.map(([addr, family]) => [addr, family, c.clientAllowList.check(addr, family)])).toEqual(checks);
  });

  it.each([
    ['a government host with its cloud', { clouds: ['gcc-high'] }, 'https://api-gov.securitycenter.microsoft.us', 'api-gov.securitycenter.microsoft.us'],
    ['a Graph host', {}, 'https://graph.microsoft.com', 'graph.microsoft.com'],
    ['an extra host', { extraHosts: ['api.partner-gateway.example'] }, 'https://api.partner-gateway.example:8443', 'api.partner-gateway.example'],
  ])('accepts a reverse route to %s', (_name, doc, upstream, host) => {
    const c = build({ version: 1, products: [product], ...doc, reverse: [{ listen: '127.0.0.1:8443', upstream }] });
    expect(c.reverse[0]!.upstream.host).toBe(host);
  });

  it('normalises upstream.resolve keys and values', () => {
    const c = build({ version: 1, upstream: { resolve: { 'API.Security.Microsoft.com:443': '127.0.0.1:8443', '[::1]:443': '[::1]:9' } } });
    expect([...c.policy.resolve]).toEqual([['api.security.microsoft.com:443', { host: '127.0.0.1', port: 8443 }], ['[::1]:443', { host: '::1', port: 9 }]]);
  });
});
