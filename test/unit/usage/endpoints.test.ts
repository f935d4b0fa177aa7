// /usage parameters: every by key, ISO 8601 times, the default range, and a precise 400 for each
// kind of bad input; CSV quoting.
import { MAX_ROWS, QueryError, csvField, parseIsoTime, parseUsageQuery, toCsv } from '../../../src/usage/endpoints.js';
import { USAGE_BY } from '../../../src/usage/store.js';

const NOW = Date.UTC(2026, 11, 2, 13, 30, 0);
const q = (s: string, allowBy = true) => parseUsageQuery(new URLSearchParams(s), NOW, allowBy);
const bad = (s: string, allowBy = true): string => {
  try {
    q(s, allowBy);
  } catch (e) {
    if (e instanceof QueryError) return e.parameter;
    throw e;
  }
  throw new Error('accepted');
};

describe('parseUsageQuery', () => {
  it('defaults to the last 30 days by product as JSON', () => {
    expect(q('')).toEqual({ from: NOW - 30 * 86_400_000, to: NOW, by: ['product'], format: 'json', limit: MAX_ROWS });
  });

  it('accepts every by key, alone and together', () => {
    for (const b of USAGE_BY) expect(q(`by=${b}`).by).toEqual([b]);
    expect(q(`by=${USAGE_BY.join(',')}`).by).toEqual(USAGE_BY);
    expect(q('by=tenant, app').by).toEqual(['tenant', 'app']);
  });

  it.each([
    ['2026-12-01', Date.UTC(2026, 11, 1)],
    ['2026-12-01T10:00:00Z', Date.UTC(2026, 11, 1, 10)],
    ['2026-12-01T10:00Z', Date.UTC(2026, 11, 1, 10)],
    ['2026-12-01T12:00:00+02:00', Date.UTC(2026, 11, 1, 10)],
    ['2026-12-01T10:00:00.500Z', Date.UTC(2026, 11, 1, 10) + 500],
    ['2028-02-29', Date.UTC(2028, 1, 29)],
  ])('reads %s', (value, ms) => {
    expect(parseIsoTime(value)).toBe(ms);
  });

  it.each([
    ['by=tenant,secret', 'by'],
    ['by=tenant,tenant', 'by'],
    ['by=', 'by'],
    ['from=yesterday', 'from'],
    ['from=2026-12-01T10:00:00', 'from'], // no zone: ambiguous
    ['from=2026-13-45', 'from'],
    ['from=2026-06-31', 'from'], // no such day: not July 1
    ['to=2025-02-29T10:00:00Z', 'to'], // 2025 is no leap year
    ['to=1764633600', 'to'],
    ['from=2026-12-02&to=2026-12-01', 'from'],
    ['from=2020-01-01&to=2026-12-01', 'from'],
    ['format=xml', 'format'],
    ['limit=0', 'limit'],
    ['limit=99999999', 'limit'],
    ['limit=ten', 'limit'],
    ['tenant=x', 'tenant'],
    ['by=product&by=tenant', 'by'],
  ])('%s → 400 naming %s', (query, parameter) => {
    expect(bad(query)).toBe(parameter);
  });

  it('reads an offset whose + arrived unencoded (a space after form decoding) as +', () => {
    expect(q('from=2026-12-01T12:00:00+02:00&to=2026-12-02').from).toBe(Date.UTC(2026, 11, 1, 10));
    expect(q('from=2026-12-01T12:00:00%2B02:00&to=2026-12-02').from).toBe(Date.UTC(2026, 11, 1, 10));
    expect(bad('from=2026-12-01 02:00&to=2026-12-02')).toBe('from'); // a date, then a space: not a time
  });

  it('/usage/limits takes no by', () => {
    expect(bad('by=product', false)).toBe('by');
  });
});

describe('CSV', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['line\nbreak', '"line\nbreak"'],
    ['=HYPERLINK("x")', '"\'=HYPERLINK(""x"")"'],
    ['-5', '-5'],
    [42, '42'],
    [undefined, ''],
  ])('%j → %s', (value, out) => {
    expect(csvField(value)).toBe(out);
  });

  it('has a header row and CRLF line ends', () => {
    expect(toCsv(['product', 'calls'], [{ product: 'cognito', calls: 3 }])).toBe('product,calls\r\ncognito,3\r\n');
  });
});
