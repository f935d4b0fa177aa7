// The usage section and products[].apps: defaults, validation with field paths, and redaction.
import { buildConfig, ConfigError, describeConfig } from '../../../src/config.js';

const APP1 = '0c5a9b1e-2d3f-4a6b-8c7d-9e0f1a2b3c4d';
const APP2 = '11111111-2222-4333-8444-555555555555';
const product = (id: string, extra: Record<string, unknown> = {}) => ({ id, company: 'Contoso', product: `P${id}`, version: '1.0.0', ...extra });
const build = (doc: Record<string, unknown>, overrides = {}) => buildConfig({ version: 1, stateDir: '/var/lib/mpp', ...doc }, { source: 'test', baseDir: '/etc/mpp', overrides, env: {} });

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('no ConfigError');
}

describe('usage defaults', () => {
  it('stores in usage.db under stateDir, flushes every 5 s, keeps 400 days and 35 days of hours', () => {
    const u = build({}).usage;
    expect(u.store).toEqual({ kind: 'sqlite', file: '/var/lib/mpp/usage.db' });
    expect(u.flushMs).toBe(5000);
    expect(u.retention).toEqual({ days: 400, hours: 35 });
    expect(u.warnAt).toBe(0.8);
    expect(u.metricTenants).toBe(200);
    expect(u.maxTracked).toBe(20_000);
    expect(u.limits.hunting).toEqual({ perMinute: 45, perHour: 1500 });
  });

  it.each([
    ['none', { kind: 'none' }],
    ['postgres://usage:secret@db.internal:5432/usage', { kind: 'postgres', url: 'postgres://usage:secret@db.internal:5432/usage' }],
    ['postgresql://db/usage', { kind: 'postgres', url: 'postgresql://db/usage' }],
    ['data/usage.sqlite', { kind: 'sqlite', file: '/etc/mpp/data/usage.sqlite' }],
    ['sqlite:/srv/usage.db', { kind: 'sqlite', file: '/srv/usage.db' }],
  ])('usage.store %s', (store, spec) => {
    expect(build({ usage: { store } }).usage.store).toEqual(spec);
  });

  it('--usage-store wins over the file', () => {
    expect(build({ usage: { store: 'none' } }, { usageStore: 'postgres://db/u' }).usage.store).toEqual({ kind: 'postgres', url: 'postgres://db/u' });
  });

  it('reads overrides of the limit table and retention', () => {
    const u = build({ usage: { limits: { incidents: { perMinute: 20 } }, retentionDays: { days: 90 }, warnAt: 0.5, flushMs: 1000, metricTenants: 10 } }).usage;
    expect(u.limits.incidents).toEqual({ perMinute: 20, perHour: 1500 });
    expect(u.retention).toEqual({ days: 90, hours: 35 });
    expect(build({ usage: { retentionDays: 7 } }).usage.retention).toEqual({ days: 7, hours: 7 });
  });

  it('config check shows the store without the PostgreSQL password', () => {
    const d = describeConfig(build({ usage: { store: 'postgres://usage:s3cret@db:5432/usage' } })) as { usage: { store: string } };
    expect(d.usage.store).toBe('postgres://usage:redacted@db:5432/usage');
    expect(JSON.stringify(d)).not.toContain('s3cret');
  });
});

describe('invalid usage values name the field', () => {
  it.each([
    [{ usage: { store: 'mysql://db/u' } }, 'usage.store'],
    [{ usage: { store: 'postgres://' } }, 'usage.store'],
    [{ usage: { store: 'sqlite:' } }, 'usage.store'],
    [{ usage: { flushMs: 0 } }, 'usage.flushMs'],
    [{ usage: { warnAt: 1.5 } }, 'usage.warnAt'],
    [{ usage: { warnAt: 0 } }, 'usage.warnAt'],
    [{ usage: { metricTenants: -1 } }, 'usage.metricTenants'],
    [{ usage: { retentionDays: { days: 0 } } }, 'usage.retentionDays.days'],
    [{ usage: { limits: { api: { perMinute: 0 } } } }, 'usage.limits.api.perMinute'],
    [{ usage: { limits: { graph: { perMinute: 10 } } } }, 'usage.limits.graph'],
    [{ usage: { retention: 5 } }, 'usage.retention'],
    [{ products: [product('a', { apps: ['not-a-guid'] })] }, 'products[0].apps[0]'],
  ])('%j → %s', (doc, path) => {
    expect(errorOf(() => build(doc)).path).toBe(path);
  });
});

describe('products[].apps', () => {
  it('binds application ids (any case) to their product', () => {
    const c = build({ products: [product('a', { apps: [APP1.toUpperCase()] }), product('b', { apps: [APP2] })] });
    expect(c.policy.appProducts?.get(APP1)?.id).toBe('a');
    expect(c.policy.appProducts?.get(APP2)?.id).toBe('b');
    expect(c.policy.products[0]!.apps).toEqual([APP1]);
  });

  it('one application in two products is an error naming both products', () => {
    const e = errorOf(() => build({ products: [product('alpha', { apps: [APP1] }), product('beta', { apps: [APP2, APP1.toUpperCase()] })] }));
    expect(e.path).toBe('products[1].apps[1]');
    expect(e.message).toContain('"alpha"');
    expect(e.message).toContain('"beta"');
  });

  it('an application listed twice in one product is an error', () => {
    expect(errorOf(() => build({ products: [product('a', { apps: [APP1, APP1] })] })).path).toBe('products[0].apps[1]');
  });
});
