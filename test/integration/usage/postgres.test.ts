// The PostgreSQL usage store on a real server (Debian's postgresql package, started by
// test/helpers/postgres.ts): the shared store suite (test/helpers/store-suite.ts), then its faults:
// a server down at start, killed mid-run and started again. Each time the promises reject with
// StoreUnavailable and the same store object works again once the server is back.
import { createPostgresStore } from '../../../src/usage/postgres.js';
import type { UsageStore } from '../../../src/usage/store.js';
import { startPostgres, type Postgres } from '../../helpers/postgres.js';
import { RANGE, batchOf, callsIn, memoryLog, totalCalls, usageStoreSuite, type Backend } from '../../helpers/store-suite.js';

let suiteServer: Postgres | undefined;
const postgres: Backend = {
  name: 'postgres',
  setup: async () => {
    suiteServer = await startPostgres();
  },
  teardown: async () => {
    await suiteServer?.stop();
  },
  fresh: () => suiteServer!.createDatabase(),
  store: (url) => createPostgresStore({ url }),
  raw: (url, sql) => suiteServer!.query(new URL(url).pathname.slice(1), sql),
  exec: async (url, sql) => {
    await suiteServer!.query(new URL(url).pathname.slice(1), sql);
  },
};

describe('the shared usage store suite', () => usageStoreSuite(postgres));

describe('PostgreSQL store faults', () => {
  let server: Postgres;
  const stores: UsageStore[] = [];
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  afterAll(() => server.stop());

  it('rejects open() and write() with StoreUnavailable while the server is down at start, then writes once it is up', async () => {
    const url = await server.createDatabase();
    await server.kill();
    const s = createPostgresStore({ url, timeoutMs: 2000 });
    stores.push(s);
    await expect(s.open()).rejects.toMatchObject({ name: 'UsageStoreError', code: 'StoreUnavailable' });
    await expect(s.write(batchOf(10))).rejects.toMatchObject({ code: 'StoreUnavailable' });
    await server.restart();
    await s.write(batchOf(10));
    expect(await totalCalls(s)).toBe(callsIn(batchOf(10)));
  }, 60_000);

  it('rejects writes while the server is killed mid-run and writes again after it restarts, with the same store object', async () => {
    const url = await server.createDatabase();
    const log = memoryLog();
    const s = createPostgresStore({ url, timeoutMs: 2000, log });
    stores.push(s);
    const before = batchOf(11);
    await s.write(before);
    await server.kill();
    const lost = batchOf(12);
    await expect(s.write(lost)).rejects.toMatchObject({ name: 'UsageStoreError', code: 'StoreUnavailable' });
    await expect(s.usage({ ...RANGE, by: ['day'], limit: 10 })).rejects.toMatchObject({ code: 'StoreUnavailable' });
    await server.restart();
    const after = batchOf(13);
    await s.write(after);
    // The batch written while the server was gone is not there; the others are, exactly.
    expect(await totalCalls(s)).toBe(callsIn(before) + callsIn(after));
  }, 60_000);
});
