// The PostgreSQL usage store on a real server (Debian's postgresql package, started by
// test/helpers/postgres.ts): the shared store suite (test/helpers/store-suite.ts), then its faults:
// a server down at start, killed mid-run and started again. Each time the promises reject with
// StoreUnavailable and the same store object works again once the server is back.
import { createServer, connect, type Server, type Socket } from 'node:net';
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

  it('rejects a write with StoreUnavailable when the server stops answering mid-run, then writes again over a new connection', async () => {
    const url = new URL(await server.createDatabase());
    const relay = await startRelay(Number(url.port));
    try {
      url.port = String(relay.port);
      const s = createPostgresStore({ url: url.toString(), timeoutMs: 2000, queryTimeoutMs: 500 });
      stores.push(s);
      const before = batchOf(21);
      await s.write(before);
      // The connections stay open but nothing comes back: a network partition, or a server frozen.
      relay.freeze();
      await expect(s.write(batchOf(22))).rejects.toMatchObject({ name: 'UsageStoreError', code: 'StoreUnavailable' });
      relay.thaw();
      const after = batchOf(23);
      await s.write(after);
      expect(await totalCalls(s)).toBe(callsIn(before) + callsIn(after));
    } finally {
      await relay.close();
    }
  }, 60_000);
});

/** A loopback TCP relay to the server; freeze() stops passing bytes on the connections open now. */
async function startRelay(target: number): Promise<{ port: number; freeze: () => void; thaw: () => void; close: () => Promise<void> }> {
  const open = new Set<Socket>();
  let frozen: Socket[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk: Buffer) => {
        if (!frozen.includes(from)) to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        to.destroy();
        open.delete(from);
      });
      open.add(from);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    freeze: () => {
      frozen = [...open];
    },
    // The frozen connections are dropped: the client has given up on them.
    thaw: () => {
      for (const socket of frozen) socket.destroy();
      frozen = [];
    },
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
