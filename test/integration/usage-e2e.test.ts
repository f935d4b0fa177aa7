// Usage evidence end to end, on SQLite and on a real PostgreSQL: the built CLI as a child process,
// the TLS echo origin as Microsoft, undici through the proxy with Entra-ID-shaped tokens. Two
// products bound by application id, three tenants, known traffic with 429s and non-compliant
// callers; /usage in JSON and CSV gives exact counts, the counts survive SIGTERM and a restart, a
// hunting burst logs rate-limit-near once, and no token is found anywhere the proxy writes.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { buildCli, logLines, startCli, until, type RunningProxy } from '../helpers/cli-process.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { makeToken, signatureOf } from '../helpers/tokens.js';
import { findSeries, seriesValue } from '../helpers/scrape.js';

const T1 = '11111111-1111-4111-8111-111111111111';
const T2 = '22222222-2222-4222-8222-222222222222';
const T3 = '33333333-3333-4333-8333-333333333333';
const APP_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const APP_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
const COGNITO_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';

const TOKENS = {
  t1a: makeToken({ tid: T1, appid: APP_A, app_displayname: 'Cognito Connector' }),
  t2a: makeToken({ tid: T2, appid: APP_A, app_displayname: 'Cognito Connector' }),
  t3b: makeToken({ tid: T3, azp: APP_B }),
};

let origin: Origin;
let msRootFile: string;
let caPem: string | undefined;

beforeAll(async () => {
  buildCli();
  const pki = await testPki();
  msRootFile = pki.msRootFile;
  origin = await startOrigin(pki.msIssuer);
});
afterAll(async () => {
  await origin.close();
});

function configYaml(stateDir: string, store: string | undefined): string {
  return [
    'version: 1',
    'listen: 127.0.0.1:0',
    'admin: 127.0.0.1:0',
    `stateDir: ${stateDir}`,
    'log:',
    '  level: info',
    'products:',
    '  - {id: cognito, company: Contoso, product: ContosoCognito, version: 1.0.0, apps: [' + APP_A + ']}',
    '  - {id: sync, company: Contoso, product: ContosoSync, version: 2.0.0, apps: [' + APP_B + ']}',
    'upstream:',
    `  ca: ${msRootFile}`,
    '  resolve:',
    `    "api.security.microsoft.com:443": "127.0.0.1:${origin.port}"`,
    'usage:',
    '  flushMs: 200',
    ...(store !== undefined ? [`  store: "${store}"`] : []),
  ].join('\n');
}

async function start(dir: string, store: string | undefined): Promise<RunningProxy> {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, configYaml(join(dir, 'state'), store));
  const p = await startCli(['--config', file]);
  caPem ??= readFileSync(p.caFile, 'utf8');
  return p;
}

/** Sends n calls through the proxy on one kept-alive agent; returns their statuses. */
async function calls(p: RunningProxy, n: number, path: string, headers: Record<string, string>): Promise<number[]> {
  const agent = new ProxyAgent({ uri: p.proxyUrl, requestTls: { ca: readFileSync(p.caFile, 'utf8') } });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) {
      const res = await request(`https://api.security.microsoft.com${path}`, { dispatcher: agent, headers });
      await res.body.text();
      statuses.push(res.statusCode);
    }
    return statuses;
  } finally {
    await agent.close();
  }
}

async function admin(p: RunningProxy, path: string): Promise<{ status: number; type: string; text: string }> {
  const res = await request(`${p.adminUrl!}${path}`);
  return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text() };
}

interface Row { [k: string]: string | number }
async function usage(p: RunningProxy, query: string): Promise<Row[]> {
  const r = await admin(p, `/usage?${query}`);
  if (r.status !== 200) throw new Error(`/usage?${query}: ${r.status} ${r.text}\n${logLines(p.stdout()).filter((l) => String(l['event']).startsWith('usage')).map((l) => JSON.stringify(l)).join('\n')}`);
  const body = JSON.parse(r.text) as { rows: Row[]; truncated: boolean; by: string[] };
  expect(body.truncated).toBe(false);
  return body.rows;
}

const pick = (rows: Row[], keys: string[]) => rows.map((r) => Object.fromEntries([...keys, 'calls', 'compliant', 'rewritten', 'throttled', 'errors'].map((k) => [k, r[k]]))).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

/** The known traffic: counts per product, tenant and app that the assertions below expect. */
async function knownTraffic(p: RunningProxy): Promise<void> {
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  expect(await calls(p, 5, '/api/machines', { ...bearer(TOKENS.t1a), 'user-agent': COGNITO_UA })).toEqual(Array(5).fill(200));
  expect(await calls(p, 3, '/api/alerts', { ...bearer(TOKENS.t2a), 'user-agent': 'python-requests/2.32.3' })).toEqual(Array(3).fill(200));
  expect(await calls(p, 4, '/api/machines', { ...bearer(TOKENS.t3b), 'user-agent': 'Go-http-client/1.1' })).toEqual(Array(4).fill(200));
  expect(await calls(p, 2, '/api/machines', { ...bearer(TOKENS.t3b), 'user-agent': 'Go-http-client/1.1', 'x-echo-status': '429', 'x-echo-retry-after': '30' })).toEqual([429, 429]);
  expect(await calls(p, 1, '/api/machines', { 'user-agent': 'curl/8.5.0' })).toEqual([200]);
}

const EXPECTED_BY_PRODUCT = [
  { product: 'cognito', calls: 9, compliant: 5, rewritten: 4, throttled: 0, errors: 0 },
  { product: 'sync', calls: 6, compliant: 0, rewritten: 6, throttled: 2, errors: 0 },
];
const EXPECTED_BY_TENANT_APP = [
  { tenant: T1, app: APP_A, calls: 5, compliant: 5, rewritten: 0, throttled: 0, errors: 0 },
  { tenant: T2, app: APP_A, calls: 3, compliant: 0, rewritten: 3, throttled: 0, errors: 0 },
  { tenant: T3, app: APP_B, calls: 6, compliant: 0, rewritten: 6, throttled: 2, errors: 0 },
  { tenant: 'unknown', app: 'unknown', calls: 1, compliant: 0, rewritten: 1, throttled: 0, errors: 0 },
];

/** Every file under dir, as bytes. */
function filesUnder(dir: string): { file: string; bytes: Buffer }[] {
  const out: { file: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) out.push(...filesUnder(file));
    else out.push({ file, bytes: readFileSync(file) });
  }
  return out;
}

function expectNoToken(where: string, text: string | Buffer): void {
  for (const token of Object.values(TOKENS)) {
    for (const secret of [token, signatureOf(token), token.split('.')[1]!]) {
      if ((typeof text === 'string' ? text : text.toString('latin1')).includes(secret)) throw new Error(`a token part was found in ${where}`);
    }
  }
}

describe.each(['sqlite', 'postgres'] as const)('usage evidence on %s', (backend) => {
  let pg: Postgres | undefined;
  let storeUrl: string | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mpp-usage-'));
    if (backend === 'postgres') {
      pg = await startPostgres();
      storeUrl = await pg.createDatabase();
    }
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  it('counts exactly, survives SIGTERM and a restart, warns once near a limit, and keeps no token', async () => {
    let p = await start(dir, storeUrl);
    try {
      await knownTraffic(p);
      // A burst of advanced hunting past 80% of its 45 per minute: one warning.
      expect(await calls(p, 40, '/api/advancedhunting/run', { authorization: `Bearer ${TOKENS.t1a}`, 'user-agent': COGNITO_UA })).toEqual(Array(40).fill(200));
      const near = await until(() => {
        const lines = logLines(p.stdout()).filter((l) => l['event'] === 'rate-limit-near');
        return lines.length > 0 ? lines : undefined;
      }, () => 'a rate-limit-near line');
      expect(near).toHaveLength(1);
      expect(near[0]).toMatchObject({ product: 'cognito', tenant: T1, app: APP_A, group: 'hunting', window: 'minute', count: 36, limit: 45 });
      const throttledLines = logLines(p.stdout()).filter((l) => l['event'] === 'rate-limited');
      expect(throttledLines.map((l) => l['retryAfter'])).toEqual([30, 30]);

      // Counts reach the store within a few flushes.
      await until(async () => {
        if ((await admin(p, '/usage')).status !== 200) return undefined; // the store may still be opening
        const rows = await usage(p, 'by=product');
        return rows.reduce((a, r) => a + Number(r['calls']), 0) === 55 ? rows : undefined;
      }, () => 'all 55 calls in /usage');
      // Metrics of this process: the tenants, the worst use of a limit, no store errors.
      const metrics = (await admin(p, '/metrics')).text;
      expect(findSeries(metrics, `mde_partner_proxy_tenant_requests_total{product="sync",tenant="${T3}",app="${APP_B}",action="rewritten"}`)).toBe(6);
      expect(findSeries(metrics, `mde_partner_proxy_tenant_requests_total{product="cognito",tenant="${T1}",app="${APP_A}",action="compliant"}`)).toBe(45);
      expect(findSeries(metrics, 'mde_partner_proxy_usage_store_errors_total')).toBe(0);
      // The burst is still in the hunting minute window unless this machine took a minute since: 40 of 45 at most.
      const hunting = findSeries(metrics, 'mde_partner_proxy_rate_limit_utilization{product="cognito",group="hunting",window="minute"}');
      expect(hunting).toBeLessThanOrEqual(40 / 45);
      expect(findSeries(metrics, 'mde_partner_proxy_rate_limit_utilization{product="cognito",group="hunting",window="hour"}')).toBeCloseTo(40 / 1500, 6);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toEqual({ code: 0, signal: null });
    }
    expectNoToken('the logs', p.stdout() + p.stderr());

    // A new process on the same store: the same answers.
    p = await start(dir, storeUrl);
    try {
      await until(async () => ((await admin(p, '/usage')).status === 200 ? true : undefined), () => 'the store to open');
      const expectedProduct = EXPECTED_BY_PRODUCT.map((r) => (r.product === 'cognito' ? { ...r, calls: r.calls + 40, compliant: r.compliant + 40 } : r));
      expect(pick(await usage(p, 'by=product'), ['product'])).toEqual(pick(expectedProduct, ['product']));
      const byTenant = EXPECTED_BY_TENANT_APP.map((r) => (r.tenant === T1 ? { ...r, calls: 45, compliant: 45 } : r));
      expect(pick(await usage(p, 'by=tenant,app'), ['tenant', 'app'])).toEqual(pick(byTenant, ['tenant', 'app']));
      expect(pick(await usage(p, 'by=api'), ['api'])).toEqual(pick([
        { api: 'machines', calls: 12, compliant: 5, rewritten: 7, throttled: 2, errors: 0 },
        { api: 'alerts', calls: 3, compliant: 0, rewritten: 3, throttled: 0, errors: 0 },
        { api: 'advancedhunting', calls: 40, compliant: 40, rewritten: 0, throttled: 0, errors: 0 },
      ], ['api']));
      const byDay = await usage(p, 'by=day,action');
      const today = new Date().toISOString().slice(0, 10);
      expect(byDay.every((r) => r['day'] === today || r['day'] === new Date(Date.now() - 86_400_000).toISOString().slice(0, 10))).toBe(true);
      expect(byDay.reduce((a, r) => a + Number(r['calls']), 0)).toBe(55);
      const byClient = await usage(p, 'by=client');
      expect(byClient.map((r) => [r['client'], r['calls']])).toEqual([['127.0.0.1', 55]]);
      const byHour = await usage(p, 'by=hour,product');
      expect(byHour.reduce((a, r) => a + Number(r['calls']), 0)).toBe(55);

      // CSV: a header row, then the same numbers.
      const csv = await admin(p, '/usage?by=product&format=csv');
      expect(csv.status).toBe(200);
      expect(csv.type).toMatch(/^text\/csv/);
      const lines = csv.text.trim().split('\r\n');
      expect(lines[0]).toBe('product,calls,compliant,rewritten,rejected,audited,throttled,errors');
      expect(lines.slice(1).sort()).toEqual(['cognito,49,45,4,0,0,0,0', 'sync,6,0,6,0,0,2,0']);

      // The limits: peaks against Microsoft's numbers, 429s and their Retry-After.
      const limits = JSON.parse((await admin(p, '/usage/limits')).text) as { rows: Row[] };
      const hunting = limits.rows.find((r) => r['group'] === 'hunting')!;
      expect(hunting).toMatchObject({ product: 'cognito', tenant: T1, app: APP_A, appName: 'Cognito Connector', perMinute: { peak: 40, limit: 45 }, perHour: { peak: 40, limit: 1500 } });
      const syncApi = limits.rows.find((r) => r['product'] === 'sync')!;
      expect(syncApi).toMatchObject({ tenant: T3, app: APP_B, group: 'api', throttled: 2, maxRetryAfter: 30, perMinute: { peak: 6, limit: 100 } });

      // The non-compliant callers to fix: family and client per product.
      const callers = JSON.parse((await admin(p, '/usage/callers')).text) as { rows: Row[] };
      expect(callers.rows.map((r) => [r['product'], r['family'], r['client'], r['calls']]).sort()).toEqual([
        ['cognito', 'curl', '127.0.0.1', 1],
        ['cognito', 'python-requests', '127.0.0.1', 3],
        ['sync', 'Go-http-client', '127.0.0.1', 6],
      ]);

      // No token anywhere: the answers, the metrics, the state directory, the database.
      for (const path of ['/usage?by=tenant,app,api,action,client,day,hour,product', '/usage?by=tenant,app&format=csv', '/usage/limits', '/usage/limits?format=csv', '/usage/callers', '/metrics', '/healthz']) {
        expectNoToken(path, (await admin(p, path)).text);
      }
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toEqual({ code: 0, signal: null });
    }
    expectNoToken('the logs', p.stdout() + p.stderr());
    for (const f of filesUnder(dir)) expectNoToken(f.file, f.bytes);
    if (pg !== undefined) {
      const database = new URL(storeUrl!).pathname.slice(1);
      const tables = await pg.query(database, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
      expect(tables.length).toBeGreaterThan(0);
      for (const t of tables) {
        const rows = await pg.query(database, `SELECT * FROM "${String(t['table_name'])}"`);
        expectNoToken(`table ${String(t['table_name'])}`, JSON.stringify(rows));
      }
    }
  }, 120_000);
});

describe('store faults never touch the traffic', () => {
  const storeLines = (p: RunningProxy) => logLines(p.stdout()).filter((l) => l['event'] === 'usage-store');
  const storeErrors = async (p: RunningProxy) => seriesValue((await admin(p, '/metrics')).text, 'mde_partner_proxy_usage_store_errors_total');
  const total = async (p: RunningProxy) => (await usage(p, 'by=product')).reduce((a, r) => a + Number(r['calls']), 0);
  const headers = { authorization: `Bearer ${TOKENS.t2a}`, 'user-agent': 'python-requests/2.32.3' };
  /** Waits until the usage-store lines are exactly these (the log is written asynchronously), and fails on any other sequence. */
  const episodes = async (p: RunningProxy, expected: string[]): Promise<void> => {
    await until(() => (storeLines(p).length >= expected.length ? true : undefined), () => `usage-store lines ${JSON.stringify(expected)}; got ${JSON.stringify(storeLines(p).map((l) => l['result']))}`);
    expect(storeLines(p).map((l) => l['result'])).toEqual(expected);
  };

  it('an SQLite file that cannot be created: the proxy serves, logs once, counts errors, and writes everything once it can', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-usage-fault-'));
    const blocker = join(dir, 'blocked');
    writeFileSync(blocker, 'a file where the store wants a directory');
    const p = await start(dir, join(blocker, 'usage.db'));
    try {
      expect(await calls(p, 10, '/api/alerts', headers)).toEqual(Array(10).fill(200));
      await until(async () => ((await storeErrors(p)) >= 3 ? true : undefined), () => 'three failed store operations');
      await episodes(p, ['failing']);
      expect(storeLines(p)[0]).toMatchObject({ level: 'error', operation: 'open' });
      const down = await admin(p, '/usage');
      expect(down.status).toBe(503);
      expect(JSON.parse(down.text)).toMatchObject({ error: { code: 'UsageStoreUnavailable' } });
      expect(await calls(p, 5, '/api/alerts', headers)).toEqual(Array(5).fill(200));
      // The directory appears: the store opens and writes what was counted meanwhile.
      const { rmSync, mkdirSync } = await import('node:fs');
      rmSync(blocker);
      mkdirSync(blocker);
      await until(async () => ((await admin(p, '/usage')).status === 200 && (await total(p)) === 15 ? true : undefined), () => 'all 15 calls written');
      await episodes(p, ['failing', 'recovered']);
    } finally {
      p.child.kill('SIGTERM');
      await p.exit;
    }
  }, 60_000);

  it('PostgreSQL down at start, then killed mid-run and back: traffic unaffected, one line per episode, nothing lost', async () => {
    const pg = await startPostgres();
    try {
      const url = await pg.createDatabase();
      await pg.kill();
      const dir = mkdtempSync(join(tmpdir(), 'mpp-usage-pg-'));
      const p = await start(dir, url);
      try {
        expect(await calls(p, 10, '/api/alerts', headers)).toEqual(Array(10).fill(200));
        await until(async () => ((await storeErrors(p)) >= 2 ? true : undefined), () => 'failed opens counted');
        await episodes(p, ['failing']);
        await pg.restart();
        await until(async () => ((await admin(p, '/usage')).status === 200 && (await total(p)) === 10 ? true : undefined), () => 'the 10 calls written after PostgreSQL started');
        await episodes(p, ['failing', 'recovered']);

        // Killed mid-run: the calls keep flowing, one more episode, then everything is written.
        const before = await storeErrors(p);
        await pg.kill();
        expect(await calls(p, 10, '/api/alerts', headers)).toEqual(Array(10).fill(200));
        await until(async () => ((await storeErrors(p)) > before ? true : undefined), () => 'a failed write counted');
        expect(await calls(p, 5, '/api/alerts', headers)).toEqual(Array(5).fill(200));
        await pg.restart();
        await until(async () => ((await admin(p, '/usage')).status === 200 && (await total(p)) === 25 ? true : undefined), () => 'all 25 calls written');
        await episodes(p, ['failing', 'recovered', 'failing', 'recovered']);
      } finally {
        p.child.kill('SIGTERM');
        expect((await p.exit).code).toBe(0);
      }
    } finally {
      await pg.stop();
    }
  }, 120_000);

  it('usage.store none: the proxy counts metrics only and /usage says the store is off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-usage-none-'));
    const p = await start(dir, 'none');
    try {
      expect(await calls(p, 2, '/api/alerts', headers)).toEqual([200, 200]);
      const r = await admin(p, '/usage?by=tenant');
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text)).toMatchObject({ error: { code: 'UsageStoreOff' } });
      expect((await admin(p, '/usage?by=nonsense')).status).toBe(400);
      expect(readdirSync(join(dir, 'state'))).not.toContain('usage.db');
    } finally {
      p.child.kill('SIGTERM');
      await p.exit;
    }
  }, 60_000);
});
