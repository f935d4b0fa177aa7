// Builds the usage store that `usage.store` names. Each backend is imported only when used, so a
// proxy on PostgreSQL (or with the store off) never loads the SQLite driver, and the reverse.
import type { StoreLog, UsageStore } from './store.js';
import { parseStoreSpec, type StoreSpec } from './usage-config.js';

/** A factory for the configured store, or undefined for `usage.store: none`. */
export function storeFactory(spec: StoreSpec, log?: StoreLog): (() => Promise<UsageStore>) | undefined {
  switch (spec.kind) {
    case 'none':
      return undefined;
    case 'sqlite':
      return async () => (await import('./sqlite.js')).createSqliteStore({ path: spec.file, ...(log ? { log } : {}) });
    case 'postgres':
      return async () => (await import('./postgres.js')).createPostgresStore({ url: spec.url, ...(log ? { log } : {}) });
  }
}

/**
 * Opens the store a command reads (`report --store`): `spec` as `usage.store` takes it, else the
 * config's own store; undefined for `none`. Rejects when it cannot be opened.
 */
export async function openStoreFor(spec: string | undefined, config: { readonly stateDir: string; readonly usage: { readonly store: StoreSpec } }, baseDir = process.cwd()): Promise<UsageStore | undefined> {
  const parsed = spec === undefined ? config.usage.store : parseStoreSpec(spec, config.stateDir, baseDir, '--store');
  if ('error' in parsed) throw new Error(`${parsed.field}: ${parsed.error}`);
  const create = storeFactory(parsed);
  if (create === undefined) return undefined;
  const store = await create();
  await store.open();
  return store;
}
