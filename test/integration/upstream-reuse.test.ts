// Reload and the outbound side: pools and the trust store are kept unless what they depend on changed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfig } from '../../src/config.js';
import { headerValues, startOrigin, type Origin } from '../helpers/origin.js';
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

const MACHINES = 'https://api.security.microsoft.com/api/machines';
const FOREIGN_UA = 'curl/8.5.0';

it('keeps the pools and trust store across a reload that changes only the policy, and applies the policy', async () => {
  expect((await viaProxy(proxy.url, proxy.caPem, MACHINES, { headers: { 'user-agent': FOREIGN_UA } })).status).toBe(200);
  expect(headerValues(origin.last().rawHeaders, 'user-agent')).not.toEqual([FOREIGN_UA]); // rewrite mode
  expect(proxy.proxy.reload(await configWith({ policy: { mode: 'audit' } }))).toEqual({ pools: 'kept', trustStore: 'kept' });
  expect((await viaProxy(proxy.url, proxy.caPem, MACHINES, { headers: { 'user-agent': FOREIGN_UA } })).status).toBe(200);
  expect(headerValues(origin.last().rawHeaders, 'user-agent')).toEqual([FOREIGN_UA]); // audit forwards it unchanged
});

it('builds new pools but keeps the trust store when an outbound timeout changes', async () => {
  expect(proxy.proxy.reload(await configWith({ timeouts: { connect: 5000 } }))).toEqual({ pools: 'rebuilt', trustStore: 'kept' });
  expect((await viaProxy(proxy.url, proxy.caPem, MACHINES)).status).toBe(200);
});

it('builds a new trust store when upstream.ca changes, and dials with it', async () => {
  const pki = await testPki();
  const foreign = join(pki.dir, 'foreign-root.pem');
  writeFileSync(foreign, proxy.caPem);
  expect(proxy.proxy.reload(await configWith({ upstream: { ca: foreign } }))).toEqual({ pools: 'rebuilt', trustStore: 'rebuilt' });
  expect((await viaProxy(proxy.url, proxy.caPem, MACHINES)).status).toBe(502); // the origin's root is no longer trusted
  const both = join(pki.dir, 'both-roots.pem');
  writeFileSync(both, `${pki.msRoot.certPem}\n${proxy.caPem}`);
  expect(proxy.proxy.reload(await configWith({ upstream: { ca: both } }))).toEqual({ pools: 'rebuilt', trustStore: 'rebuilt' });
  expect((await viaProxy(proxy.url, proxy.caPem, MACHINES)).status).toBe(200);
});
