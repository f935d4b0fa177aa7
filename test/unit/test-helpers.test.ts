// The test helpers that other tests' verdicts rest on: the scrape reader (on prom-client's own
// output, with escaped label values, NaN and +Inf), the seeded PRNG and the Basic credentials builder.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { basicAuth } from '../helpers/auth.js';
import { createPrng, DEFAULT_SEED } from '../helpers/prng.js';
import { findSeries, parseScrape, seriesValue, sumOf } from '../helpers/scrape.js';

describe('scrape reader', () => {
  let text: string;
  beforeAll(async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'x_total', help: 'h', labelNames: ['a', 'b'], registers: [registry] });
    c.inc({ a: '1', b: 'two' }, 3);
    c.inc({ a: 'quote " slash \\ nl \n end', b: '' }, 2);
    new Gauge({ name: 'g', help: 'h', registers: [registry] }).set(NaN);
    new Histogram({ name: 'h_seconds', help: 'h', buckets: [1], registers: [registry] }).observe(0.5);
    text = await registry.metrics();
  });

  it('reads every sample prom-client writes, escapes undone', () => {
    const samples = parseScrape(text);
    expect(samples.filter((s) => s.name === 'x_total')).toEqual([
      { name: 'x_total', labels: { a: '1', b: 'two' }, value: 3 },
      { name: 'x_total', labels: { a: 'quote " slash \\ nl \n end', b: '' }, value: 2 },
    ]);
    expect(samples.find((s) => s.name === 'g')?.value).toBeNaN();
    expect(samples.find((s) => s.name === 'h_seconds_bucket' && s.labels['le'] === '+Inf')?.value).toBe(1);
    expect(sumOf(samples, 'x_total')).toBe(5);
  });

  it('finds a series by all its labels in any order, and tells an absent one apart', () => {
    expect(findSeries(text, 'x_total{b="two",a="1"}')).toBe(3);
    expect(findSeries(text, 'x_total{a="1"}')).toBeUndefined(); // a label missing is another series
    expect(findSeries(text, 'y_total')).toBeUndefined();
    expect(seriesValue(text, 'y_total')).toBe(0);
  });

  it.each(['x_total{a="1" 3', 'x_total 3 4 5', 'x_total three', '{a="1"} 3'])('refuses the malformed line %p', (line) => {
    expect(() => parseScrape(line)).toThrow(/unreadable/);
  });
});

describe('createPrng', () => {
  it('repeats its sequence for a seed and differs for another', () => {
    const draw = (seed: number): string => createPrng(seed).hex(16);
    expect(draw(42)).toBe(draw(42));
    expect(draw(42)).not.toBe(draw(43));
    expect(createPrng().seed).toBe(process.env['TEST_SEED'] ? Number(process.env['TEST_SEED']) >>> 0 : DEFAULT_SEED);
  });

  it('stays in range and reaches every value of a small one', () => {
    const prng = createPrng(7);
    const seen = new Set(Array.from({ length: 1000 }, () => prng.int(6)));
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(() => prng.pick([])).toThrow(RangeError);
  });
});

describe('basicAuth', () => {
  it.each([
    ['user', 'pass', 'Basic dXNlcjpwYXNz'],
    ['u', 'p', 'Basic dTpw'],
    ['scan', undefined, 'Basic c2Nhbg=='],
    ['ünï', 'çødé', `Basic ${Buffer.from('ünï:çødé', 'utf8').toString('base64')}`],
  ])('%s / %s → %s', (user, password, header) => {
    expect(basicAuth(user, password)).toBe(header);
  });
});
