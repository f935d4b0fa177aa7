// The report page from literal rows: escaping of caller-supplied values, self-containment, the
// document outline, and the data- attributes the browser test reads.
import { escapeHtml, niceMax, renderHtml } from '../../../src/usage/html.js';
import { buildReport, type ReportFacts, type ReportRows } from '../../../src/usage/report.js';
import type { UsageRow } from '../../../src/usage/store.js';

const DAY = 86_400_000;
const NOV1 = Date.UTC(2026, 10, 1);
const EVIL = '<img src=x onerror=alert(1)>"\'&';

const facts: ReportFacts = {
  period: { from: NOV1, to: NOV1 + 2 * DAY }, generatedAt: NOV1 + 2 * DAY, version: '0.1.0', replicaVersions: [],
  products: [{ id: 'cognito', userAgent: 'MdePartner-Contoso-ContosoCognito/1.0.0' }], clouds: ['commercial'],
  hosts: ['api.security.microsoft.com', 'graph.microsoft.com'], extraHosts: [], mode: 'rewrite', rewrite: 'replace',
  ca: { subject: 'CN=test CA', notBefore: NOV1 - DAY, notAfter: NOV1 + 700 * DAY }, source: { kind: 'store', name: 'sqlite' },
};
const row = (keys: Record<string, string>, compliant: number, audited = 0): UsageRow =>
  ({ ...keys, calls: compliant + audited, compliant, rewritten: 0, rejected: 0, audited, throttled: 0, errors: 0 });
const rows = (over: Partial<ReportRows> = {}): ReportRows => ({
  products: [row({ product: 'cognito' }, 7, 1)],
  apis: [row({ product: 'cognito', api: 'machines' }, 7, 1)],
  days: [row({ product: 'cognito', day: '2026-11-02' }, 7, 1)],
  tenants: [row({ product: 'cognito', tenant: EVIL, app: EVIL }, 7, 1)],
  limits: [{ product: 'cognito', tenant: EVIL, app: EVIL, appName: EVIL, group: 'api', perMinute: { peak: 90, limit: 100 }, perHour: { peak: 8, limit: 1500 }, throttled: 0, maxRetryAfter: 0 }],
  callers: [{ product: 'cognito', family: EVIL, client: EVIL, calls: 1, firstSeen: NOV1, lastSeen: NOV1 }],
  utilisation: undefined, truncated: [], notes: [EVIL],
  ...over,
});

const html = renderHtml(buildReport(facts, rows()));

it.each([
  ['<', '&lt;'], ['>', '&gt;'], ['"', '&quot;'], ["'", '&#39;'], ['&', '&amp;'], ['a<b>"c"', 'a&lt;b&gt;&quot;c&quot;'],
])('escapeHtml(%p) is %p', (value, out) => expect(escapeHtml(value)).toBe(out));

it('escapes every caller-supplied value: no tag or attribute from a tenant, app, family, address or note survives', () => {
  expect(html).not.toContain('<img');
  expect(html).not.toContain('onerror=alert(1)>');
  expect(html.split('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;').length - 1).toBeGreaterThanOrEqual(6);
});

it('is self-contained: no script, no external style, font, image or frame, and a CSP that forbids them', () => {
  expect(html).not.toMatch(/<script|<link|<iframe|<object|<embed|@import|url\(/i);
  // Attribute values replaced first: an escaped "src=" inside a data- attribute is text, not an attribute.
  expect(html.replace(/"[^"]*"/g, "\"\"")).not.toMatch(/<[a-z][^>]*\s(src|href|srcset|xlink:href|action|poster|background)=/i);
  expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
});

it('declares its language and keeps headings in order (one h1, no level skipped)', () => {
  expect(html).toMatch(/^<!DOCTYPE html>\n<html lang="en">/);
  const levels = [...html.matchAll(/<h([1-6])[\s>]/g)].map((m) => Number(m[1]));
  expect(levels.filter((l) => l === 1)).toHaveLength(1);
  expect(levels[0]).toBe(1);
  for (let i = 1; i < levels.length; i++) expect(levels[i]! - levels[i - 1]!).toBeLessThanOrEqual(1);
});

it('gives every chart a role, a title and a description, and follows it with its table', () => {
  const svgs = [...html.matchAll(/<svg role="img" aria-labelledby="([^ "]+) ([^"]+)"[^>]*>\n<title id="([^"]+)">[^<]+<\/title>\n<desc id="([^"]+)">/g)];
  expect(svgs).toHaveLength((html.match(/<svg/g) ?? []).length);
  expect(svgs).toHaveLength(2);
  for (const m of svgs) expect([m[3], m[4]]).toEqual([m[1], m[2]]);
  expect(html).toMatch(/<\/figure>\n<div class="table-wrap"[^>]*><table data-table="api">/);
  expect(html).toMatch(/<\/figure>\n<div class="table-wrap"[^>]*><table data-table="day">/);
});

it('puts the figures in data- attributes and the headline first', () => {
  expect(html).toMatch(/data-product="cognito" data-sent="8" data-carried="7" data-share="87.50%" data-calls="8" data-compliant="7" data-rewritten="0" data-rejected="0" data-audited="1"/);
  expect(html.indexOf('data-role="headline"')).toBeLessThan(html.indexOf('<figure'));
  expect(html).toContain('8 calls to Microsoft security APIs, 87.50% carried MdePartner-Contoso-ContosoCognito.');
  expect(html).toMatch(/<tr data-day="2026-11-01"><th scope="row">2026-11-01<\/th><td class="num" data-field="calls" data-value="0">/);
  expect(html).toContain('90 of 100 (90.0%)<br><span class="flag">near the limit</span>');
});

it('says so when the source cannot name the non-compliant callers', () => {
  const page = renderHtml(buildReport(facts, rows({ callers: undefined, limits: undefined })));
  expect(page).toContain('data-role="callers-unavailable"');
  expect(page).not.toContain('data-table="callers"');
});

it.each([[0, 1], [1, 1], [7, 10], [10, 10], [11, 20], [180, 200], [201, 500], [5001, 10_000]])('niceMax(%i) is %i', (max, nice) => expect(niceMax(max)).toBe(nice));
