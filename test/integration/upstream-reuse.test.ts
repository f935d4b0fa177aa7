// Reload and the outbound side: pools and the trust store are kept unless what they depend on changed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfig } from '../../src/config.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startProxy, testConfigDoc, type TestProxy } from '../helpers/proxy.js';
import { testPki } from '../helpers/pki.js';
import { viaProxy } from '../helpers/client.js';

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

const configWith = async (doc: Record<string, unknown>) =>
  buildConfig({ ...(await testConfigDoc(origin.port, doc)), stateDir: proxy.stateDir }, { source: 'test', baseDir: process.cwd() });

it('keeps the pools and trust store across a reload that changes only the policy', async () => {
  expect((await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines')).status).toBe(200);
  const before = proxy.proxy.runtime.upstream;
  proxy.proxy.reload(await configWith({ policy: { mode: 'audit' } }));
  expect(proxy.proxy.runtime.config.policy.mode).toBe('audit');
  expect(proxy.proxy.runtime.upstream).toBe(before);
  expect((await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines')).status).toBe(200);
});

it('builds new pools but keeps the trust store when an outbound timeout changes', async () => {
  const before = proxy.proxy.runtime.upstream;
  proxy.proxy.reload(await configWith({ timeouts: { connect: 5000 } }));
  expect(proxy.proxy.runtime.upstream).not.toBe(before);
  expect(proxy.proxy.runtime.upstream.trust).toBe(before.trust);
  expect((await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines')).status).toBe(200);
});

it('builds a new trust store when upstream.ca changes', async () => {
  const before = proxy.proxy.runtime.upstream;
  const pki = await testPki();
  const both = join(pki.dir, 'both-roots.pem');
  writeFileSync(both, `${pki.msRoot.certPem}\n${proxy.caPem}`);
  proxy.proxy.reload(await configWith({ upstream: { ca: both } }));
  expect(proxy.proxy.runtime.upstream.trust).not.toBe(before.trust);
  expect((await viaProxy(proxy.url, proxy.caPem, 'https://api.security.microsoft.com/api/machines')).status).toBe(200);
});
