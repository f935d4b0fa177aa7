// storeFactory: `usage.store` none, a SQLite file or a PostgreSQL URL becomes the backend it names.
// SQLite on a real file in a temporary directory; PostgreSQL at a loopback port nobody listens on, so
// the factory's store is shown to be the PostgreSQL one by how it fails (the backends' own test
// files run them against live databases).
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeFactory } from '../../../src/usage/open-store.js';
import type { UsageStore } from '../../../src/usage/store.js';

const stores: UsageStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

it('gives no factory for usage.store none', () => {
  expect(storeFactory({ kind: 'none' })).toBeUndefined();
});

it('makes a SQLite store on the named file, created when it opens', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'mpp-open-store-')), 'usage.db');
  const store = await storeFactory({ kind: 'sqlite', file })!();
  stores.push(store);
  expect(store.kind).toBe('sqlite');
  expect(existsSync(file)).toBe(false);
  await store.open();
  expect(existsSync(file)).toBe(true);
  await store.write({ counts: [{ hour: 0, product: 'p', tenant: 't', app: 'a', api: 'machines', action: 'compliant', client: '::1', calls: 2, throttled: 0, errors: 0 }], callers: [], peaks: [] });
  expect((await store.usage({ from: 0, to: 86_400_000, by: ['product'], limit: 10 })).rows).toEqual([expect.objectContaining({ product: 'p', calls: 2 })]);
});

it('makes a PostgreSQL store for the URL, which connects only when opened and names the server without its password', async () => {
  const store = await storeFactory({ kind: 'postgres', url: 'postgres://proxy:s3cret@127.0.0.1:1/usage' })!();
  stores.push(store);
  expect(store.kind).toBe('postgres');
  const err = await store.open().then(() => undefined, (e: unknown) => e as { code?: string; message: string });
  expect(err?.code).toBe('StoreUnavailable');
  expect(err?.message).toContain('127.0.0.1:1');
  expect(err?.message).not.toContain('s3cret');
});

it('passes its log to the backend: a corrupt SQLite file moved aside is reported there', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'mpp-open-store-')), 'usage.db');
  writeFileSync(file, 'this is not a database, just text long enough to look like a file '.repeat(100));
  const warnings: string[] = [];
  const store = await storeFactory({ kind: 'sqlite', file }, { warn: (_fields, message) => warnings.push(message) })!();
  stores.push(store);
  await store.open();
  expect(warnings).toHaveLength(1);
});
