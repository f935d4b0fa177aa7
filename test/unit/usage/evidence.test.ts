// The report's request parsing, static facts and the Prometheus arithmetic, table-driven.
import { createCatalogue } from '../../../src/catalogue.js';
import { caFacts, enforcedHosts, parseFormat, parseInstant, parseRange, ReportInputError } from '../../../src/usage/evidence.js';
import { displayUrl, seriesIncrease, stepFor } from '../../../src/usage/prometheus.js';
import { testPki } from '../../helpers/pki.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 2, 13, 30);

describe('the period', () => {
  it.each([
    ['2026-11-01', Date.UTC(2026, 10, 1)],
    ['2026-11-01T06:30:15Z', Date.UTC(2026, 10, 1, 6, 30, 15)],
    ['2026-11-01T06:30:15.250Z', Date.UTC(2026, 10, 1, 6, 30, 15, 250)],
    ['2026-11-01T06:30:00+01:00', Date.UTC(2026, 10, 1, 5, 30)],
  ])('parseInstant(%p)', (text, ms) => expect(parseInstant(text, 'from')).toBe(ms));

  it.each(['yesterday', '2026-13-01', '2026-11-01T25:00Z', '2026-11-01T06:30', '1700000000', '', '2026-11-01T06:30:00+0x:00'])('parseInstant(%p) names the field', (text) => {
    expect(() => parseInstant(text, 'from')).toThrow(ReportInputError);
    expect(() => parseInstant(text, 'from')).toThrow(/^from: must be an ISO 8601 date/);
  });

  it.each([
    [undefined, undefined, { from: NOW - 30 * DAY, to: NOW }],
    ['2026-11-01', '2026-12-01', { from: Date.UTC(2026, 10, 1), to: Date.UTC(2026, 11, 1) }],
    [undefined, '2026-12-01', { from: Date.UTC(2026, 11, 1) - 30 * DAY, to: Date.UTC(2026, 11, 1) }],
    ['2026-11-20', undefined, { from: Date.UTC(2026, 10, 20), to: NOW }],
    ['', '', { from: NOW - 30 * DAY, to: NOW }],
  ])('parseRange(%p, %p)', (from, to, range) => expect(parseRange(from, to, NOW)).toEqual(range));

  it.each([
    ['2026-12-01', '2026-11-01', /^from: must be before to/],
    ['2026-11-01', '2026-11-01', /^from: must be before to/],
    ['2020-01-01', '2026-01-01', /^from: the period is longer than 800 days/],
  ])('parseRange(%p, %p) is refused', (from, to, message) => expect(() => parseRange(from, to, NOW)).toThrow(message));

  it.each([[undefined, 'html'], ['', 'html'], ['json', 'json'], ['csv', 'csv']])('parseFormat(%p) is %p', (v, f) => expect(parseFormat(v)).toBe(f));
  it.each(['pdf', 'HTML', '<b>'])('parseFormat(%p) is refused', (v) => expect(() => parseFormat(v)).toThrow(/^format: must be one of html, json, csv/));
});

describe('static facts', () => {
  it('lists the enforced hosts: built-in names in catalogue order, suffix rules, then extra hosts', () => {
    const hosts = enforcedHosts(createCatalogue(['commercial'], ['mde.example.net', '*.xdr.example.net']));
    expect(hosts.slice(0, 2)).toEqual(['api.security.microsoft.com', 'us.api.security.microsoft.com']);
    expect(hosts).toContain('graph.microsoft.com');
    expect(hosts.slice(-4)).toEqual(['*.api.security.microsoft.com', '*.securitycenter.windows.com', 'mde.example.net', '*.xdr.example.net']);
    expect(new Set(hosts).size).toBe(hosts.length);
  });

  it('reads the CA\'s subject and validity, and nothing from text that is no certificate', async () => {
    const pki = await testPki();
    const { readFileSync } = await import('node:fs');
    const facts = caFacts(readFileSync(pki.msRootFile, 'utf8'))!;
    expect(facts.notBefore).toBeLessThan(Date.now());
    expect(facts.notAfter).toBeGreaterThan(Date.now());
    expect(facts.subject).toMatch(/CN=/);
    expect(caFacts('not a certificate')).toBeUndefined();
    expect(caFacts(undefined)).toBeUndefined();
  });
});

describe('counter arithmetic for --prometheus', () => {
  const S = 1_000;
  it.each([
    ['existed at the start: only the rise counts', [[S, 5], [S + 60, 5], [S + 120, 9]], 4],
    ['born inside the period: counts from 0', [[S + 60, 3], [S + 120, 7]], 7],
    ['a drop is a restart: the new value counts', [[S, 10], [S + 60, 12], [S + 120, 2], [S + 180, 5]], 2 + 2 + 3],
    ['a gap (stale) then a higher value: the difference', [[S, 4], [S + 600, 6]], 2],
    ['NaN and negative samples are skipped', [[S, 1], [S + 60, Number.NaN], [S + 120, -3], [S + 180, 2]], 1],
    ['no points', [], 0],
  ])('%s', (_name, points, total) => expect(seriesIncrease(points as [number, number][], S).total).toBe(total));

  it('keeps the time of each rise, for the day table', () => {
    expect(seriesIncrease([[S, 1], [S + 60, 1], [S + 120, 4], [S + 180, 6]], S).byTime).toEqual([[S + 120, 3], [S + 180, 2]]);
  });

  it.each([
    [86_400, 2000, 60], [30 * 86_400, 2000, 1800], [400 * 86_400, 2000, 21_600], [60, 2000, 1], [30 * 86_400, 400, 7200], [10_000 * 86_400, 2000, 86_400],
  ])('stepFor(%i s, %i points) is %i s, and divides a day', (range, max, step) => {
    expect(stepFor(range, max)).toBe(step);
    expect(86_400 % step).toBe(0);
  });

  it.each([
    ['http://prom:9090', 'http://prom:9090'],
    ['http://user:secret@prom:9090/', 'http://prom:9090'],
    ['https://prom.example/prometheus/', 'https://prom.example/prometheus'],
    ['not a url', '(unparseable URL)'],
  ])('displayUrl(%p) is %p', (url, shown) => expect(displayUrl(url)).toBe(shown));
});
