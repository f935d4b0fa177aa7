// Builds the usage store that `usage.store` names. Each backend is imported only when used, so a
// proxy on PostgreSQL (or with the store off) never loads the SQLite driver, and the reverse.
import type { StoreLog, UsageStore } from './store.js';
import type { StoreSpec } from './usage-config.js';

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
