// Real clients (curl, Python requests, undici) through the proxy to a Microsoft API host that
// upstream.resolve maps to the local echo origin. The origin must receive the partner User-Agent.
import { request, ProxyAgent, EnvHttpProxyAgent } from 'undici';
import { startOrigin, headerValues, type Origin } from '../helpers/origin.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { testPki } from '../helpers/pki.js';
import { run, pythonWithRequests } from '../helpers/child.js';

const PARTNER_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const URL_MACHINES = 'https://api.security.microsoft.com/api/machines';

let origin: Origin;
let proxy: TestProxy;

beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
  proxy = await startProxy(origin.port);
});
afterAll(async () => {
  await proxy.close();
  await origin.close();
});

interface Echo { method: string; url: string; rawHeaders: string[] }

it('curl through the proxy: the origin receives exactly the partner User-Agent', async () => {
  const r = await run('curl', ['-sS', '--fail-with-body', '--proxy', proxy.url, '--cacert', proxy.caFile, URL_MACHINES]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const echo = JSON.parse(r.stdout) as Echo;
  expect(echo.url).toBe('/api/machines');
  expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  expect(headerValues(echo.rawHeaders, 'host')).toEqual(['api.security.microsoft.com']);
});

it('Python requests through the proxy: the origin receives exactly the partner User-Agent', async () => {
  const script = [
    'import json, sys, requests',
    'r = requests.get(sys.argv[1], proxies={"https": sys.argv[2]}, verify=sys.argv[3], timeout=10)',
    'print(json.dumps({"status": r.status_code, "body": r.json()}))',
  ].join('\n');
  const r = await run(pythonWithRequests(), ['-c', script, URL_MACHINES, proxy.url, proxy.caFile]);
  expect(r.stderr).toBe('');
  const out = JSON.parse(r.stdout) as { status: number; body: Echo };
  expect(out.status).toBe(200);
  expect(out.body.url).toBe('/api/machines');
  expect(headerValues(out.body.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
});

it('undici ProxyAgent through the proxy: the origin receives exactly the partner User-Agent', async () => {
  const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: proxy.caPem } });
  try {
    const res = await request(URL_MACHINES, { dispatcher, headers: { 'user-agent': 'node' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-origin']).toBe('echo');
    const echo = (await res.body.json()) as Echo;
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  } finally {
    await dispatcher.close();
  }
});

it('undici EnvHttpProxyAgent (HTTPS_PROXY) through the proxy: the origin receives exactly the partner User-Agent', async () => {
  const dispatcher = new EnvHttpProxyAgent({ httpsProxy: proxy.url, noProxy: '', requestTls: { ca: proxy.caPem } });
  try {
    const res = await request(`${URL_MACHINES}?$top=1`, { dispatcher });
    expect(res.statusCode).toBe(200);
    const echo = (await res.body.json()) as Echo;
    expect(echo.url).toBe('/api/machines?$top=1');
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  } finally {
    await dispatcher.close();
  }
});

it('curl POST with a body: the body reaches the origin intact and the User-Agent is rewritten', async () => {
  const body = JSON.stringify({ Query: 'DeviceInfo | take 1' });
  const r = await run('curl', ['-sS', '--proxy', proxy.url, '--cacert', proxy.caFile, '-H', 'content-type: application/json', '--data-binary', body,
    'https://api.security.microsoft.com/api/advancedhunting/run']);
  const echo = JSON.parse(r.stdout) as Echo & { body: string };
  expect(echo.method).toBe('POST');
  expect(echo.body).toBe(body);
  expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
});
