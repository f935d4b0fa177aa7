// runProxy, the whole running proxy of `start`, used as a library: listen failures name the
// listener, reloads keep the last good config, stop drains and closes.
import { createServer, type Server } from 'node:net';
import { buildConfig, ConfigError, type Config } from '../../src/config.js';
import { runProxy } from '../../src/server.js';
import { viaProxy } from '../helpers/client.js';
import { headerValues, startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';
import { startProxy, testConfigDoc } from '../helpers/proxy.js';
import { readFileSync } from 'node:fs';
import { request } from 'undici';

let origin: Origin;
beforeAll(async () => {
  origin = await startOrigin((await testPki()).msIssuer);
});
afterAll(async () => {
  await origin.close();
});

const configFor = async (doc: Record<string, unknown> = {}): Promise<Config> =>
  buildConfig(await testConfigDoc(origin.port, doc), { source: 'test', baseDir: process.cwd() });

it('rejects with one line naming the listener, its address and the cause when the port is taken', async () => {
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const config = await configFor({ listen: `127.0.0.1:${port}` });
    await expect(runProxy(config, { version: '0.0.0-test', loadConfig: () => config, say: () => undefined }))
      .rejects.toThrow(`cannot open the proxy listener on 127.0.0.1:${port}: EADDRINUSE`);
  } finally {
    taken.close();
  }
});

it('serves, keeps the last good config when a reload is refused, applies a good one, and stops', async () => {
  const config = await configFor();
  const said: string[] = [];
  let next: () => Config = () => config;
  const running = await runProxy(config, { version: '0.0.0-test', loadConfig: () => next(), say: (l) => said.push(l) });
  try {
    const url = `http://127.0.0.1:${running.addresses.proxy.port}`;
    const caPem = readFileSync(config.stateDir + '/ca.pem', 'utf8');
    expect(said[0]).toMatch(/^WARNING: Using Microsoft's documented EXAMPLE identity|^mde-partner-proxy 0\.0\.0-test listening on /);
    expect(said.some((l) => l.startsWith(`mde-partner-proxy 0.0.0-test listening on ${url}`))).toBe(true);
    expect((await viaProxy(url, caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'x/1' } })).status).toBe(200);

    next = () => { throw new ConfigError('policy.mode', 'bad'); };
    running.reload('test');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await viaProxy(url, caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'x/1' } })).status).toBe(200);

    const reject = await configFor({ stateDir: config.stateDir, policy: { mode: 'reject' } });
    next = () => reject;
    running.reload('test');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await viaProxy(url, caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'x/1' } })).status).toBe(403);
  } finally {
    await running.stop('test');
  }
});

it('keeps each reverse listener on its own route when a reload lists the routes in another order', async () => {
  const products = [
    { id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' },
    { id: 'scanner', company: 'Fabrikam', product: 'Scanner', version: '2.0.0' },
  ];
  const security = { listen: '127.0.0.1:0', upstream: 'https://api.security.microsoft.com', product: 'cognito' };
  const graph = { listen: '127.0.0.2:0', upstream: 'https://graph.microsoft.com', product: 'scanner' };
  const p = await startProxy(origin.port, { products, reverse: [security, graph] });
  try {
    const sent = async (): Promise<{ host: string[]; userAgent: string[] }> => {
      const res = await request(`http://127.0.0.1:${p.reversePorts[0]!}/api/machines`, { headers: { 'user-agent': 'x/1' } });
      const echo = (await res.body.json()) as { rawHeaders: string[] };
      return { host: headerValues(echo.rawHeaders, 'host'), userAgent: headerValues(echo.rawHeaders, 'user-agent') };
    };
    const before = await sent();
    expect(before).toEqual({ host: ['api.security.microsoft.com'], userAgent: ['MdePartner-Contoso-ContosoCognito/1.0.0'] });
    p.proxy.reload(buildConfig(await testConfigDoc(origin.port, { stateDir: p.stateDir, products, reverse: [graph, security] }), { source: 'test', baseDir: process.cwd() }));
    expect(await sent()).toEqual(before);
  } finally {
    await p.close();
  }
});
