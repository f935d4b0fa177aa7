// The recorder: what it counts per exchange, what it hands the store, how it keeps counts through
// a store failure (one log line per episode), the once-per-window warning and its memory bounds.
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/logger.js';
import type { ExchangeEvent } from '../../../src/events.js';
import { buildConfig } from '../../../src/config.js';
import { MAX_PENDING_COUNTS, createKeyJoiner, createRecorder, type RecorderOptions } from '../../../src/usage/recorder.js';
import type { UsageConfig } from '../../../src/usage/usage-config.js';
import type { UsageCount } from '../../../src/usage/store.js';
import { createMemoryStore, type MemoryStore } from '../../helpers/memory-store.js';

const T0 = Date.UTC(2026, 11, 2, 10, 15, 0);
const HOUR = Date.UTC(2026, 11, 2, 10, 0, 0);
const TID = '8f2c1a7e-3b4d-4c5e-9f60-718293a4b5c6';
const APP = '0c5a9b1e-2d3f-4a6b-8c7d-9e0f1a2b3c4d';

function usageConfig(doc: Record<string, unknown> = {}): UsageConfig {
  return buildConfig({ version: 1, stateDir: '/tmp/x', usage: doc }, { source: 'test', baseDir: '/tmp', env: {} }).usage;
}

function event(over: Partial<ExchangeEvent> = {}): ExchangeEvent {
  return {
    product: 'cognito', api: 'machines', method: 'GET', status: 200, action: 'rewritten', reason: 'non-partner-user-agent', mode: 'intercept',
    host: 'api.security.microsoft.com', userAgent: 'python-requests/2.32.3', durationMs: 3, client: '127.0.0.1', tenant: TID, app: APP, appName: 'Cognito', ...over,
  };
}

function logSink(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { out.push(chunk.toString()); cb(); } });
  return { logger: createLogger({ level: 'info', destination: stream }), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function setup(opts: Partial<RecorderOptions> & { usageDoc?: Record<string, unknown> } = {}) {
  let clock = T0;
  const store = createMemoryStore();
  const log = logSink();
  let storeErrors = 0;
  const recorder = createRecorder({
    usage: usageConfig(opts.usageDoc), createStore: () => store, logger: log.logger, onStoreError: () => storeErrors++, now: () => clock, timers: false, ...opts,
  });
  return { recorder, store, log, errors: () => storeErrors, tick: (ms: number) => { clock += ms; }, at: () => clock };
}

const totals = (store: MemoryStore) => {
  const rows = store.batches.flatMap((b) => b.counts);
  const sum = (f: (c: UsageCount) => number) => rows.reduce((a, c) => a + f(c), 0);
  return { calls: sum((c) => c.calls), throttled: sum((c) => c.throttled), errors: sum((c) => c.errors), rows };
};

describe('counting', () => {
  it('counts per hour, product, tenant, app, api, action and client, with 429s and errors', async () => {
    const { recorder, store } = setup();
    recorder.observer.exchangeEnd!(event());
    recorder.observer.exchangeEnd!(event());
    recorder.observer.exchangeEnd!(event({ status: 429, retryAfter: 30 }));
    recorder.observer.exchangeEnd!(event({ status: 502, error: 'UpstreamUnreachable' }));
    recorder.observer.exchangeEnd!(event({ action: 'compliant', userAgent: 'MdePartner-Contoso-ContosoCognito/1.0.0' }));
    recorder.observer.exchangeEnd!(event({ action: 'rejected', status: 403, error: 'PartnerUserAgentRequired' }));
    recorder.observer.exchangeEnd!(event({ action: 'passed', api: 'other' })); // not an API call
    recorder.observer.exchangeEnd!(event({ tenant: undefined, app: undefined, api: 'alerts' }));
    await recorder.flush();
    expect(store.batches).toHaveLength(1);
    const { calls, throttled, errors, rows } = totals(store);
    expect({ calls, throttled, errors }).toEqual({ calls: 7, throttled: 1, errors: 1 });
    const rewritten = rows.find((r) => r.action === 'rewritten' && r.api === 'machines')!;
    expect(rewritten).toEqual({ hour: HOUR, product: 'cognito', tenant: TID, app: APP, api: 'machines', action: 'rewritten', client: '127.0.0.1', calls: 4, throttled: 1, errors: 1 });
    expect(rows.find((r) => r.api === 'alerts')).toMatchObject({ tenant: 'unknown', app: 'unknown', calls: 1 });
    expect(rows.find((r) => r.action === 'rejected')).toMatchObject({ calls: 1, errors: 0 });
  });

  it('keeps non-compliant callers by product, User-Agent family and client with first and last seen', async () => {
    const { recorder, store, tick, at } = setup();
    const first = at();
    recorder.observer.exchangeEnd!(event({ userAgent: 'python-requests/2.31.0' }));
    tick(5000);
    recorder.observer.exchangeEnd!(event({ userAgent: 'python-requests/2.32.3' }));
    recorder.observer.exchangeEnd!(event({ userAgent: undefined, client: '10.1.2.3' }));
    recorder.observer.exchangeEnd!(event({ action: 'compliant', userAgent: 'MdePartner-Contoso-ContosoCognito/1.0.0' }));
    await recorder.flush();
    const callers = store.batches[0]!.callers;
    expect(callers).toHaveLength(2);
    expect(callers.find((c) => c.family === 'python-requests')).toEqual({ product: 'cognito', family: 'python-requests', client: '127.0.0.1', calls: 2, firstSeen: first, lastSeen: first + 5000 });
    expect(callers.find((c) => c.family === '(none)')).toMatchObject({ client: '10.1.2.3', calls: 1 });
  });

  it('records limit peaks per tenant/app/group with 429s and the largest Retry-After', async () => {
    const { recorder, store, tick } = setup();
    for (let i = 0; i < 10; i++) recorder.observer.exchangeEnd!(event());
    recorder.observer.exchangeEnd!(event({ api: 'advancedhunting', status: 429, retryAfter: 20 }));
    recorder.observer.exchangeEnd!(event({ api: 'advancedhunting', status: 429, retryAfter: 45 }));
    recorder.observer.exchangeEnd!(event({ action: 'rejected', status: 403 })); // never reached Microsoft
    await recorder.flush();
    const peaks = store.batches[0]!.peaks;
    expect(peaks.find((p) => p.group === 'api')).toEqual({ hour: HOUR, product: 'cognito', tenant: TID, app: APP, appName: 'Cognito', group: 'api',
      perMinute: 10, perHour: 10, minuteLimit: 100, hourLimit: 1500, throttled: 0, maxRetryAfter: 0 });
    expect(peaks.find((p) => p.group === 'hunting')).toMatchObject({ perMinute: 2, minuteLimit: 45, throttled: 2, maxRetryAfter: 45 });
    // The next flush carries only what changed: no new calls, no peaks.
    tick(1000);
    await recorder.flush();
    expect(store.batches).toHaveLength(1);
  });

  it('writes nothing for usage.store none and holds no counts', async () => {
    const recorder = createRecorder({ usage: usageConfig({ store: 'none' }), timers: false });
    recorder.observer.exchangeEnd!(event());
    await recorder.flush();
    expect(recorder.state).toBe('none');
    expect(recorder.store).toBeUndefined();
    expect(recorder.live()).toHaveLength(1); // the limit windows still run (metrics and warnings)
  });
});

describe('Microsoft limits', () => {
  it('logs rate-limit-near exactly once for a burst past 80% of the minute limit', () => {
    const { recorder, log, tick } = setup();
    for (let i = 0; i < 95; i++) {
      recorder.observer.exchangeEnd!(event());
      tick(100);
    }
    const near = log.lines().filter((l) => l['event'] === 'rate-limit-near');
    expect(near).toHaveLength(1);
    expect(near[0]).toMatchObject({ tenant: TID, app: APP, group: 'api', window: 'minute', count: 80, limit: 100, level: 'warn' });
  });

  it('reports the worst utilisation per product, group and window', () => {
    const { recorder } = setup();
    for (let i = 0; i < 45; i++) recorder.observer.exchangeEnd!(event({ api: 'advancedhunting' }));
    for (let i = 0; i < 10; i++) recorder.observer.exchangeEnd!(event({ tenant: '99999999-2222-4333-8444-555555555555', api: 'advancedhunting' }));
    const rows = recorder.utilisation(['cognito', 'idle']);
    expect(rows).toHaveLength(2 * 3 * 2);
    expect(rows.find((r) => r.product === 'cognito' && r.group === 'hunting' && r.window === 'minute')!.value).toBe(1);
    expect(rows.find((r) => r.product === 'cognito' && r.group === 'hunting' && r.window === 'hour')!.value).toBe(45 / 1500);
    expect(rows.filter((r) => r.product === 'idle').every((r) => r.value === 0)).toBe(true);
  });

  it('holds at most usage.maxTracked windows, evicting the least recently used and keeping their peaks', async () => {
    const { recorder, store } = setup({ usageDoc: { maxTracked: 100 } });
    for (let i = 0; i < 1000; i++) {
      const tenant = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      recorder.observer.exchangeEnd!(event({ tenant }));
    }
    expect(recorder.tracked).toBe(100);
    await recorder.flush();
    // Every pair's peak reached the store: 900 from evicted windows, 100 from live ones.
    expect(store.batches[0]!.peaks).toHaveLength(1000);
    expect(totals(store).calls).toBe(1000);
  });
});

describe('store faults', () => {
  it('keeps counts through a failing store, logs once per episode and once on recovery, and counts every failure', async () => {
    const { recorder, store, log, errors } = setup();
    await recorder.flush();
    expect(recorder.state).toBe('ok');
    store.failWith = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) recorder.observer.exchangeEnd!(event());
      await recorder.flush();
    }
    expect(recorder.state).toBe('failing');
    expect(errors()).toBe(3);
    store.failWith = undefined;
    await recorder.flush();
    expect(recorder.state).toBe('ok');
    expect(totals(store).calls).toBe(30);
    const episodes = log.lines().filter((l) => l['event'] === 'usage-store');
    expect(episodes.map((l) => l['result'])).toEqual(['open', 'failing', 'recovered']);
    expect(episodes[1]).toMatchObject({ level: 'error', operation: 'write', cause: 'SQLITE_IOERR: disk I/O error' });
  });

  it('starts when the store cannot open, counts, and writes once it opens', async () => {
    const store = createMemoryStore();
    store.failWith = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    let errors = 0;
    const log = logSink();
    const recorder = createRecorder({ usage: usageConfig(), createStore: () => store, logger: log.logger, onStoreError: () => errors++, timers: false });
    recorder.observer.exchangeEnd!(event());
    await recorder.flush();
    await recorder.flush();
    expect(recorder.store).toBeUndefined();
    expect(errors).toBe(2);
    store.failWith = undefined;
    recorder.observer.exchangeEnd!(event());
    await recorder.flush();
    expect(recorder.store).toBe(store);
    expect(totals(store).calls).toBe(2);
    expect(log.lines().filter((l) => l['event'] === 'usage-store').map((l) => l['result'])).toEqual(['failing', 'recovered']);
  });

  it('bounds the counts kept while the store is down', async () => {
    const { recorder, store } = setup();
    store.failWith = new Error('down');
    const n = MAX_PENDING_COUNTS + 500;
    for (let i = 0; i < n; i++) recorder.observer.exchangeEnd!(event({ client: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
    await recorder.flush();
    store.failWith = undefined;
    await recorder.flush();
    const { calls, rows } = totals(store);
    expect(calls).toBe(n); // nothing lost
    expect(rows.length).toBe(MAX_PENDING_COUNTS + 1); // the overflow row holds the rest
    expect(rows.find((r) => r.client === 'other')).toMatchObject({ tenant: 'other', app: 'other', calls: 500 });
  });

  it('close() flushes what is left and closes the store', async () => {
    const { recorder, store } = setup();
    recorder.observer.exchangeEnd!(event());
    await recorder.close();
    expect(totals(store).calls).toBe(1);
    expect(store.closed).toBe(true);
  });

  it('prunes with the configured retention', async () => {
    const { recorder, store } = setup();
    await recorder.flush();
    expect(store.prunes).toBe(1);
  });
});

describe('createKeyJoiner', () => {
  it('joins parts with | and hands back the same string while the parts repeat', () => {
    const join = createKeyJoiner();
    const first = join(1_764_633_600_000, 'cognito', 'unknown', 'unknown', 'machines');
    expect(first).toBe('1764633600000|cognito|unknown|unknown|machines');
    // Equal parts built anew (as each connection's address is) still reuse the key.
    expect(join(1_764_633_600_000, 'cognito', ['unk', 'nown'].join(''), 'unknown', 'machines')).toBe(first);
    expect(join(1_764_633_600_000, 'cognito', 'unknown', 'unknown', 'alerts')).toBe('1764633600000|cognito|unknown|unknown|alerts');
    expect(join(1_764_633_600_000, 'cognito', 'unknown', 'unknown')).toBe('1764633600000|cognito|unknown|unknown');
    expect(join('a|b', 'c')).toBe('a|b|c');
    expect(join('a', 'b|c')).toBe('a|b|c');
  });

  it('counts each combination under its own row when callers interleave', async () => {
    const { recorder, store } = setup();
    const order = ['10.0.0.1', '10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.2', '10.0.0.2'];
    for (const client of order) recorder.observer.exchangeEnd!(event({ client, userAgent: client.endsWith('1') ? 'curl/8.5' : 'python-requests/2.32' }));
    recorder.observer.exchangeEnd!(event({ client: '10.0.0.1', api: 'alerts', userAgent: 'curl/8.5' }));
    await recorder.flush();
    const { rows } = totals(store);
    expect(rows.map((r) => [r.client, r.api, r.calls]).sort()).toEqual([['10.0.0.1', 'alerts', 1], ['10.0.0.1', 'machines', 3], ['10.0.0.2', 'machines', 3]]);
    expect(store.batches[0]!.callers.map((c) => [c.family, c.client, c.calls]).sort()).toEqual([['curl', '10.0.0.1', 4], ['python-requests', '10.0.0.2', 3]]);
  });

});
