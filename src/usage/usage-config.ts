// The `usage` section of the config file: where the usage store lives, how often the recorder
// flushes, how long rows are kept, when to warn about Microsoft's limits, how many tenant/app pairs
// get their own metric series, and overrides of the limit table. Also `products[].apps`.
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import { isGuid } from '../attribution.js';
import { LIMIT_GROUPS, applyLimitOverrides, type LimitTable } from './limits.js';
import type { Retention } from './store.js';

/** Where the usage store lives. */
export type StoreSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'sqlite'; readonly file: string }
  | { readonly kind: 'postgres'; readonly url: string };

export interface UsageConfig {
  readonly store: StoreSpec;
  /** At most this many milliseconds of counts are held in memory before a write (and can be lost to a crash). */
  readonly flushMs: number;
  /** Days of hour rows and day rows kept. */
  readonly retention: Retention;
  /** Fraction of a limit at which `rate-limit-near` is logged. */
  readonly warnAt: number;
  /** Tenant/app pairs with their own tenant_requests_total series; the rest are tenant="other", app="other". */
  readonly metricTenants: number;
  /** Tenant/app/group windows held in memory (least recently used evicted beyond it). */
  readonly maxTracked: number;
  readonly limits: LimitTable;
}

export const USAGE_DEFAULTS = Object.freeze({
  flushMs: 5000,
  retention: Object.freeze({ days: 400, hours: 35 }),
  warnAt: 0.8,
  metricTenants: 200,
  maxTracked: 20_000,
});

/** The file name of the embedded SQLite store in the state directory. */
export const USAGE_DB = 'usage.db';

const limit = z.strictObject({ perMinute: z.int().min(1).max(1_000_000).optional(), perHour: z.int().min(1).max(100_000_000).optional() });

/** zod schema of the `usage` section. */
export const usageSchema = z.strictObject({
  store: z.string().min(1).optional(),
  flushMs: z.int().min(100).max(3_600_000).optional(),
  retentionDays: z.union([
    z.int().min(1).max(36_500),
    z.strictObject({ days: z.int().min(1).max(36_500).optional(), hours: z.int().min(1).max(36_500).optional() }),
  ]).optional(),
  warnAt: z.number().gt(0).max(1).optional(),
  metricTenants: z.int().min(0).max(100_000).optional(),
  maxTracked: z.int().min(1).max(10_000_000).optional(),
  limits: z.strictObject(Object.fromEntries(LIMIT_GROUPS.map((g) => [g, limit.optional()])) as Record<(typeof LIMIT_GROUPS)[number], z.ZodOptional<typeof limit>>).optional(),
}).optional();

/** zod schema of `products[].apps`: Azure AD application ids. */
export const appsSchema = z.array(z.string().refine(isGuid, 'must be an Azure AD application id (a GUID like 0c5a9b1e-2d3f-4a6b-8c7d-9e0f1a2b3c4d)')).optional();

/** Parses `usage.store`: 'none', a postgres:// or postgresql:// URL, or a SQLite file (default usage.db in stateDir). */
export function parseStoreSpec(value: string | undefined, stateDir: string, baseDir: string, field = 'usage.store'): StoreSpec | { error: string; field: string } {
  if (value === undefined || value === 'sqlite') return { kind: 'sqlite', file: join(stateDir, USAGE_DB) };
  if (value === 'none') return { kind: 'none' };
  if (/^postgres(ql)?:\/\//i.test(value)) {
    try {
      const u = new URL(value);
      if (u.hostname === '') return { error: 'a PostgreSQL URL needs a host, e.g. postgres://user@db:5432/usage', field };
    } catch {
      return { error: 'is not a valid PostgreSQL URL (postgres://user:password@host:5432/database)', field };
    }
    return { kind: 'postgres', url: value };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return { error: 'must be none, a postgres:// URL, or a SQLite file path', field };
  const file = value.startsWith('sqlite:') ? value.slice('sqlite:'.length) : value;
  if (file === '') return { error: 'names no SQLite file', field };
  return { kind: 'sqlite', file: isAbsolute(file) ? file : resolvePath(baseDir, file) };
}

/** Builds the usage config from its parsed section; throws via `fail(field, message)`. */
export function buildUsageConfig(raw: z.infer<typeof usageSchema>, opts: { stateDir: string; baseDir: string; storeOverride?: string | undefined; fail: (field: string, message: string) => never }): UsageConfig {
  const r = raw ?? {};
  const storeValue = opts.storeOverride ?? r.store;
  const store = parseStoreSpec(storeValue, opts.stateDir, opts.baseDir, opts.storeOverride !== undefined ? '--usage-store' : 'usage.store');
  if ('error' in store) return opts.fail(store.field, store.error);
  const retention: Retention = typeof r.retentionDays === 'number'
    ? { days: r.retentionDays, hours: Math.min(USAGE_DEFAULTS.retention.hours, r.retentionDays) }
    : { days: r.retentionDays?.days ?? USAGE_DEFAULTS.retention.days, hours: r.retentionDays?.hours ?? USAGE_DEFAULTS.retention.hours };
  return Object.freeze({
    store,
    flushMs: r.flushMs ?? USAGE_DEFAULTS.flushMs,
    retention: Object.freeze(retention),
    warnAt: r.warnAt ?? USAGE_DEFAULTS.warnAt,
    metricTenants: r.metricTenants ?? USAGE_DEFAULTS.metricTenants,
    maxTracked: r.maxTracked ?? USAGE_DEFAULTS.maxTracked,
    limits: applyLimitOverrides(r.limits),
  });
}

/** The store spec with any password in a PostgreSQL URL replaced, for `config check` and logs (a reload compares it to see whether the store changed). */
export function describeStore(store: StoreSpec): string {
  if (store.kind === 'none') return 'none';
  if (store.kind === 'sqlite') return store.file;
  return redactStoreUrl(store.url);
}

/** Query parameters through which libpq and node-postgres take a secret (the password and the client key's passphrase). */
const SECRET_PARAMS = ['password', 'sslpassword'];

/** A PostgreSQL URL with its password replaced, in the user part and in the query parameters pg also reads it from, for messages. */
export function redactStoreUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = 'redacted';
    for (const name of SECRET_PARAMS) if (u.searchParams.has(name)) u.searchParams.set(name, 'redacted');
    return u.toString();
  } catch {
    return 'postgres://(unparseable)';
  }
}
