// Microsoft's limit table, the sliding minute and hour windows, the once-per-window warning, and
// the LRU that bounds how many windows are held.
import {
  DEFAULT_LIMITS, addCall, advanceWindow, applyLimitOverrides, createWindow, limitGroup, utilisation, windowCounts, windowsToWarn,
} from '../../../src/usage/limits.js';
import { apiLabel } from '../../../src/catalogue.js';

const T0 = Date.UTC(2026, 11, 2, 10, 0, 0);

describe('limit groups by API path', () => {
  it.each([
    ['api', '/api/advancedhunting/run', 'hunting'],
    ['api', '/api/advancedqueries/run', 'hunting'],
    ['graph', '/v1.0/security/runHuntingQuery', 'hunting'],
    ['graph', '/beta/security/microsoft.graph.security.runHuntingQuery', 'hunting'],
    ['api', '/api/incidents?$top=10', 'incidents'],
    ['api', '/api/incidents/123', 'incidents'],
    ['api', '/api/machines', 'api'],
    ['api', '/api/alerts', 'api'],
    ['graph', '/v1.0/security/incidents', 'api'],
    ['api', '/nothing', 'api'],
  ] as const)('%s %s → %s', (kind, path, group) => {
    expect(limitGroup(apiLabel(kind, path))).toBe(group);
  });

  it('holds Microsoft\'s published numbers', () => {
    expect(DEFAULT_LIMITS).toEqual({ api: { perMinute: 100, perHour: 1500 }, hunting: { perMinute: 45, perHour: 1500 }, incidents: { perMinute: 50, perHour: 1500 } });
  });

  it('applies overrides per group and window', () => {
    const t = applyLimitOverrides({ hunting: { perMinute: 10 }, api: { perHour: 3000 } });
    expect(t).toEqual({ api: { perMinute: 100, perHour: 3000 }, hunting: { perMinute: 10, perHour: 1500 }, incidents: { perMinute: 50, perHour: 1500 } });
    expect(applyLimitOverrides(undefined)).toEqual(DEFAULT_LIMITS);
  });
});

describe('sliding windows', () => {
  it('counts calls in the last 60 seconds and the last hour', () => {
    const w = createWindow(T0);
    for (let i = 0; i < 30; i++) addCall(w, T0 + i * 1000); // one call a second for 30 s
    expect(windowCounts(w, T0 + 29_000)).toEqual({ minute: 30, hour: 30 });
    // At T0+60 s the call from T0 has left the minute window; all are still in the hour.
    expect(windowCounts(w, T0 + 60_000)).toEqual({ minute: 29, hour: 30 });
    expect(windowCounts(w, T0 + 89_000)).toEqual({ minute: 0, hour: 30 });
    expect(windowCounts(w, T0 + 3_600_000)).toEqual({ minute: 0, hour: 0 });
  });

  it('addCall and windowCounts agree after the window advanced', () => {
    const w = createWindow(T0);
    addCall(w, T0);
    addCall(w, T0 + 59_999);
    expect(addCall(w, T0 + 60_000)).toEqual({ minute: 2, hour: 3 });
    advanceWindow(w, T0 + 120_000);
    expect(windowCounts(w, T0 + 120_000)).toEqual({ minute: 0, hour: 3 });
    expect(addCall(w, T0 + 60 * 60_000)).toEqual({ minute: 1, hour: 2 }); // the two calls of minute 0 left the hour
  });

  it('a clock going back counts in the newest bucket', () => {
    const w = createWindow(T0);
    addCall(w, T0 + 5000);
    expect(addCall(w, T0)).toEqual({ minute: 2, hour: 2 });
  });

  it('a long pause clears both windows', () => {
    const w = createWindow(T0);
    for (let i = 0; i < 10; i++) addCall(w, T0);
    expect(addCall(w, T0 + 5 * 3_600_000)).toEqual({ minute: 1, hour: 1 });
  });
});

describe('windowsToWarn', () => {
  it('warns once per window when a count passes warnAt of the limit', () => {
    const w = createWindow(T0);
    const warned: string[] = [];
    for (let i = 0; i < 95; i++) {
      const at = T0 + i * 100;
      warned.push(...windowsToWarn(w, addCall(w, at), DEFAULT_LIMITS.api, 0.8, at));
    }
    expect(warned).toEqual(['minute']);
  });

  it('warns again in each later minute window, and for the hour once', () => {
    const w = createWindow(T0);
    const limit = { perMinute: 10, perHour: 20 };
    const warned: string[] = [];
    for (let minute = 0; minute < 3; minute++) {
      for (let i = 0; i < 9; i++) {
        const at = T0 + minute * 61_000 + i * 10;
        warned.push(...windowsToWarn(w, addCall(w, at), limit, 0.8, at));
      }
    }
    expect(warned).toEqual(['minute', 'hour', 'minute', 'minute']);
  });
});

describe('utilisation', () => {
  it('utilisation is a fraction of the limit', () => {
    expect(utilisation(80, 100)).toBe(0.8);
    expect(utilisation(5, 0)).toBe(0);
  });
});

