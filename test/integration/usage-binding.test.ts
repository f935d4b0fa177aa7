// Binding by application and attribution on the request path: the real proxy, the TLS echo origin,
// undici through the proxy. Precedence: reverse route, proxy credentials, token application,
// default product. `explain` shows what bound a request. Events carry tenant and app, never the token.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { viaProxy } from '../helpers/client.js';
import { buildCli, CLI } from '../helpers/cli-process.js';
import { run } from '../helpers/child.js';
import { headerValues, startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { makeToken, signatureOf } from '../helpers/tokens.js';
import { basicAuth } from '../helpers/auth.js';

const TID = '11111111-1111-4111-8111-111111111111';
const APP_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const APP_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
const COGNITO_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const SYNC_UA = 'MdePartner-Contoso-ContosoSync/2.0.0';
const products = (extra: Record<string, unknown> = {}) => [
  { id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', apps: [APP_A] },
  { id: 'sync', company: 'Contoso', product: 'ContosoSync', version: '2.0.0', apps: [APP_B], ...extra },
];

let origin: Origin;
beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
});
afterAll(() => origin.close());

describe('binding by application', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startProxy(origin.port, { products: products(), reverse: [{ listen: '127.0.0.1:0', upstream: 'https://api.security.microsoft.com', product: 'cognito' }] });
  });
  afterAll(() => proxy.close());

  it.each([
    ['a token of application B binds to sync', makeToken({ tid: TID, appid: APP_B }), SYNC_UA, 'sync'],
    ['a v2 token (azp) of application A binds to cognito', makeToken({ tid: TID, azp: APP_A }), COGNITO_UA, 'cognito'],
    ['an unknown application takes the default product', makeToken({ tid: TID, appid: '99999999-9999-4999-8999-999999999999' }), COGNITO_UA, 'cognito'],
    ['a malformed token takes the default product', 'not.a-jwt', COGNITO_UA, 'cognito'],
  ])('%s', async (_name, token, ua, product) => {
    const n = proxy.recorder.exchanges.length;
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines', { headers: { authorization: `Bearer ${token}`, 'user-agent': 'python-requests/2.32.3' } });
    expect(r.status).toBe(200);
    expect(headerValues(r.echo!.rawHeaders, 'user-agent')).toEqual([ua]);
    // The token reaches Microsoft unchanged.
    expect(headerValues(r.echo!.rawHeaders, 'authorization')).toEqual([`Bearer ${token}`]);
    const [e] = await proxy.recorder.waitForExchanges(n + 1).then((all) => all.slice(n));
    expect(e).toMatchObject({ product, action: 'rewritten' });
    expect(JSON.stringify(e)).not.toContain(token.split('.')[1] ?? token);
  });

  it('puts the token\'s tenant, application and display name on the event, never the token', async () => {
    const token = makeToken({ tid: TID.toUpperCase(), appid: APP_B, app_displayname: 'Sync Worker' });
    const n = proxy.recorder.exchanges.length;
    await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/alerts', { headers: { authorization: `Bearer ${token}` } });
    const e = (await proxy.recorder.waitForExchanges(n + 1))[n]!;
    expect(e).toMatchObject({ tenant: TID, app: APP_B, appName: 'Sync Worker', api: 'alerts', client: '127.0.0.1' });
    expect(JSON.stringify(e)).not.toContain(signatureOf(token));
  });

  it('records Retry-After of a 429', async () => {
    const n = proxy.recorder.exchanges.length;
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'x-echo-status': '429', 'x-echo-retry-after': '17' } });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('17');
    expect((await proxy.recorder.waitForExchanges(n + 1))[n]).toMatchObject({ status: 429, retryAfter: 17 });
  });

  it('a reverse route binds before the token application', async () => {
    const n = proxy.recorder.exchanges.length;
    const res = await request(`http://127.0.0.1:${proxy.reversePorts[0]}/api/machines`, { headers: { authorization: `Bearer ${makeToken({ tid: TID, appid: APP_B })}` } });
    const echo = JSON.parse(await res.body.text()) as { rawHeaders: string[] };
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([COGNITO_UA]);
    expect((await proxy.recorder.waitForExchanges(n + 1))[n]).toMatchObject({ product: 'cognito', app: APP_B, mode: 'reverse' });
  });

  it('does not decode tokens of traffic that is not an API call', async () => {
    const n = proxy.recorder.exchanges.length;
    await viaProxy(proxy.url, proxy.caPem, 'https://graph.microsoft.com/v1.0/users', { headers: { authorization: `Bearer ${makeToken({ tid: TID, appid: APP_B })}` } });
    expect((await proxy.recorder.waitForExchanges(n + 1))[n]).toMatchObject({ action: 'passed', tenant: 'unknown', app: 'unknown' });
  });
});

describe('proxy credentials bind before the token application', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startProxy(origin.port, { products: [
      { ...products()[0], credentials: { username: 'cog', password: 'pw1' } },
      { ...products()[1], credentials: { username: 'syn', password: 'pw2' } },
    ] });
  });
  afterAll(() => proxy.close());

  it('credentials of cognito win over a token of application B', async () => {
    const r = await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines', { token: basicAuth('cog', 'pw1'), headers: { authorization: `Bearer ${makeToken({ tid: TID, appid: APP_B })}` } });
    expect(headerValues(r.echo!.rawHeaders, 'user-agent')).toEqual([COGNITO_UA]);
  });
});

describe('explain shows what bound the request', () => {
  let config: string;
  beforeAll(() => {
    buildCli();
    const dir = mkdtempSync(join(tmpdir(), 'mpp-explain-'));
    config = join(dir, 'config.yaml');
    writeFileSync(config, [
      'version: 1',
      `stateDir: ${join(dir, 'state')}`,
      'products:',
      `  - {id: cognito, company: Contoso, product: ContosoCognito, version: 1.0.0, apps: [${APP_A}]}`,
      `  - {id: sync, company: Contoso, product: ContosoSync, version: 2.0.0, apps: [${APP_B}]}`,
    ].join('\n'));
  });
  const explain = (...args: string[]) => run(process.execPath, [CLI, 'explain', 'https://api.security.microsoft.com/api/machines', '--config', config, ...args], { timeoutMs: 20_000 });

  it('--app binds by products[].apps', async () => {
    const r = await explain('--app', APP_B.toUpperCase());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`product:      sync (${SYNC_UA})`);
    expect(r.stdout).toContain(`bound by:     token-application (application ${APP_B} is in products[].apps)`);
  });

  it('--token reads the tenant and application and never prints the token', async () => {
    const token = makeToken({ tid: TID, appid: APP_B, app_displayname: 'Sync Worker' });
    const r = await explain('--token', token);
    expect(r.stdout).toContain(`token:        tenant ${TID}, app ${APP_B} (Sync Worker)`);
    expect(r.stdout).toContain('bound by:     token-application');
    expect(r.stdout + r.stderr).not.toContain(signatureOf(token));
  });

  it('without an application it is the default product', async () => {
    const r = await explain();
    expect(r.stdout).toContain(`product:      cognito (${COGNITO_UA})`);
    expect(r.stdout).toContain('bound by:     default-product');
  });

  it('refuses an --app that is not a GUID', async () => {
    const r = await explain('--app', 'contoso');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--app must be an Azure AD application id');
  });
});
