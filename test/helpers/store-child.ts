// A second process on the same usage store, for the store tests: opens it (which migrates), writes
// the batch given as JSON (if any), closes it and prints "ok". Run with ts-register.mjs.
import { createPostgresStore } from '../../src/usage/postgres.js';
import { createSqliteStore } from '../../src/usage/sqlite.js';
import type { UsageBatch } from '../../src/usage/store.js';

const [kind, target, batch] = process.argv.slice(2);
if (target === undefined) throw new Error('usage: store-child.ts sqlite|postgres PATH|URL [BATCH_JSON]');
const store = kind === 'sqlite' ? createSqliteStore({ path: target }) : createPostgresStore({ url: target });
await store.open();
if (batch !== undefined) await store.write(JSON.parse(batch) as UsageBatch);
await store.close();
process.stdout.write('ok\n');
