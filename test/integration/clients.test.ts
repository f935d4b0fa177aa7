// Real clients (curl, Python requests, undici, Go's net/http) through the proxy to a Microsoft API host that
// upstream.resolve maps to the local echo origin. The origin must receive the partner User-Agent.
import { request, ProxyAgent, EnvHttpProxyAgent } from 'undici';
import { startOrigin, headerValues, type Origin } from '../helpers/origin.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { testPki } from '../helpers/pki.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, pythonWithRequests, cleanEnv } from '../helpers/child.js';

const PARTNER_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const URL_MACHINES = 'https://api.security.microsoft.com/api/machines';

let origin: Origin;
let plainOrigin: Origin;
let proxy: TestProxy;

beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
  plainOrigin = await startOrigin();
  proxy = await startProxy(origin.port, {}, { extraResolve: { 'api.security.microsoft.com:80': `127.0.0.1:${plainOrigin.port}` } });
});
afterAll(async () => {
  await proxy.close();
  await origin.close();
  await plainOrigin.close();
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

// Go's net/http as docs/trust.md sets it up: HTTPS_PROXY/HTTP_PROXY and SSL_CERT_FILE, no code
// for either (http.DefaultTransport reads both). https:// goes through CONNECT, http:// as an
// absolute-form request. `go` is Debian's golang-go (.ci/run installs it).
describe('Go net/http (HTTPS_PROXY, SSL_CERT_FILE)', () => {
  let binary: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-go-client-'));
    writeFileSync(join(dir, 'main.go'), [
      'package main',
      'import ("encoding/json"; "fmt"; "io"; "net/http"; "os")',
      'func main() {',
      '  res, err := http.Get(os.Args[1])',
      '  if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(1) }',
      '  defer res.Body.Close()',
      '  body, _ := io.ReadAll(res.Body)',
      '  out, _ := json.Marshal(map[string]any{"status": res.StatusCode, "body": string(body)})',
      '  fmt.Println(string(out))',
      '}',
    ].join('\n'));
    env = { GOCACHE: join(dir, 'cache'), GOPATH: join(dir, 'gopath'), GO111MODULE: 'off', CGO_ENABLED: '0' };
    const build = await run('go', ['build', '-o', join(dir, 'client'), join(dir, 'main.go')], { env: { ...cleanEnv(), ...env }, timeoutMs: 120_000 });
    if (build.code !== 0) throw new Error(`go build failed (apt-get install -y golang-go): ${build.stderr}`);
    binary = join(dir, 'client');
  }, 150_000);

  const get = async (url: string): Promise<{ status: number; echo: Echo }> => {
    const r = await run(binary, [url], { env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '', SSL_CERT_FILE: proxy.caFile } });
    if (r.code !== 0) throw new Error(`the Go client failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { status: number; body: string };
    return { status: out.status, echo: JSON.parse(out.body) as Echo };
  };

  it('https:// through CONNECT: the origin receives exactly the partner User-Agent, not Go-http-client', async () => {
    const { status, echo } = await get(URL_MACHINES);
    expect(status).toBe(200);
    expect(echo.url).toBe('/api/machines');
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  });

  it('http:// as an absolute-form request: the origin receives exactly the partner User-Agent', async () => {
    const { status, echo } = await get('http://api.security.microsoft.com/api/alerts');
    expect(status).toBe(200);
    expect(echo.url).toBe('/api/alerts');
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([PARTNER_UA]);
  });
});
