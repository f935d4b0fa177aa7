// The store's shared vocabulary: UTC day and hour keys as ISO 8601 strings, and the one error type
// every backend rejects with (its code, name and the driver's error as cause).
import { DAY_MS, HOUR_MS, UsageStoreError, isoDay, isoHour } from '../../../src/usage/store.js';

const DAY0 = Date.UTC(2026, 11, 2);

describe('isoDay and isoHour', () => {
  it.each([
    ['midnight', DAY0, '2026-12-02', '2026-12-02T00:00:00Z'],
    ['the last millisecond of a day', DAY0 + DAY_MS - 1, '2026-12-02', '2026-12-02T23:00:00Z'],
    ['mid-hour', DAY0 + 13 * HOUR_MS + 59 * 60_000 + 999, '2026-12-02', '2026-12-02T13:00:00Z'],
    ['the next day', DAY0 + DAY_MS, '2026-12-03', '2026-12-03T00:00:00Z'],
    ['a leap day', Date.UTC(2028, 1, 29, 6, 30), '2028-02-29', '2028-02-29T06:00:00Z'],
    ['the epoch', 0, '1970-01-01', '1970-01-01T00:00:00Z'],
  ])('%s', (_what, ms, day, hour) => {
    expect([isoDay(ms), isoHour(ms)]).toEqual([day, hour]);
  });
});

describe('UsageStoreError', () => {
  it('carries its stable code, its name and the driver error as cause', () => {
    const driver = Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'SQLITE_FULL' });
    const e = new UsageStoreError('StoreFull', 'write: the disk is full', { cause: driver });
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.code, e.message, e.cause]).toEqual(['UsageStoreError', 'StoreFull', 'write: the disk is full', driver]);
  });

  it('has no cause when none is given', () => {
    const e = new UsageStoreError('StoreClosed', 'the store is closed');
    expect('cause' in e).toBe(false);
  });
});
