// GET /report on a real admin listener: request errors, a store that is off, and the headers of
// each format. The figures themselves are checked end to end by report-browser and usage/prometheus.
import { Registry } from 'prom-client';
import { request } from 'undici';
import { createAdminServer, type AdminServer } from '../../src/admin.js';
import { buildConfig } from '../../src/config.js';
import { createReportRoute, staticFacts } from '../../src/usage/evidence.js';

const config = buildConfig({ version: 1, products: [{ id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0' }] }, { source: 'test', baseDir: process.cwd() });
const servers: AdminServer[] = [];

async function admin(withReport: boolean, state = 'opening'): Promise<string> {
  const server = createAdminServer({ registry: new Registry(),
    ...(withReport ? { routes: new Map([['/report', createReportRoute({ source: { store: undefined, state }, facts: () => staticFacts(config, undefined, '0.0.0-test') })]]) } : {}) });
  servers.push(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${port}`;
}

afterAll(async () => {
  for (const s of servers) await s.close();
});

it.each([
  ['?from=yesterday', 'ok', 400, 'BadRequest', 'from'],
  ['?from=2026-12-01&to=2026-11-01', 'ok', 400, 'BadRequest', 'from'],
  ['?to=2026-02-30', 'ok', 400, 'BadRequest', 'to'],
  ['?format=pdf', 'ok', 400, 'BadRequest', 'format'],
  ['?format=json&format=csv', 'ok', 400, 'BadRequest', 'format'],
  ['?colour=blue', 'ok', 400, 'BadRequest', 'colour'],
  ['', 'opening', 503, 'UsageStoreUnavailable', undefined],
  ['?format=json', 'failing', 503, 'UsageStoreUnavailable', undefined],
  ['', 'none', 503, 'UsageStoreOff', undefined],
])('GET /report%s with the store %s answers %i %s', async (query, state, status, code, target) => {
  const base = await admin(true, state);
  const res = await request(`${base}/report${query}`);
  const body = JSON.parse(await res.body.text()) as { error: { code: string; message: string; target?: string } };
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(body.error.code).toBe(code);
  expect(body.error.target).toBe(target);
  expect(body.error.message.length).toBeGreaterThan(10);
});

it('has no /report when the admin server is given no report route', async () => {
  const res = await request(`${await admin(false)}/report`);
  expect(res.statusCode).toBe(404);
  await res.body.text();
});

it('refuses other methods on /report with 405', async () => {
  const res = await request(`${await admin(true)}/report`, { method: 'POST', body: 'x' });
  expect([res.statusCode, res.headers.allow]).toEqual([405, 'GET, HEAD']);
  await res.body.text();
});
