/// <reference lib="dom" />
// The report page in a real browser: Debian's chromium driven by playwright-core (no browser
// download). Known traffic goes through a running proxy (the bundled CLI); the test loads /report,
// reads the figures from the DOM and checks them against /usage, checks that the page asked no
// other origin for anything, runs axe-core and its own contrast and outline checks, and saves
// screenshots at 1280 px and 390 px and a PDF whose first page must hold the headline.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { request } from 'undici';
import { viaProxy } from '../helpers/client.js';
import { buildCli, ROOT, startCliProxy, writeTestConfig, type CliProxy } from '../helpers/cli-proxy.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { testPki } from '../helpers/pki.js';
import { ACTION_COLOURS, PALETTE } from '../../src/usage/html.js';

const UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = join(ROOT, 'test-output', 'report');
const DEADLINE_MS = 30_000;
const TENANT_A = '6f1e2d3c-4b5a-4968-8776-655443322110';
const TENANT_B = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const APP = 'c44b4083-3bb0-49c1-b47d-974e53cbdf3c';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An unsigned JWT with the claims the proxy reads (it never checks signatures). */
const token = (claims: Record<string, string>): string =>
  ['{"alg":"none","typ":"JWT"}', JSON.stringify(claims)].map((p) => Buffer.from(p).toString('base64url')).join('.') + '.x';

/** WCAG 2 relative luminance of #rrggbb. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
/** WCAG 2 contrast ratio of two #rrggbb colours. */
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

let origin: Origin;
let proxy: CliProxy;
let browser: Browser | undefined;

beforeAll(async () => {
  accessSync(CHROMIUM, constants.X_OK); // Debian's chromium; .ci/run installs it
  const pki = await testPki();
  origin = await startOrigin(pki.msIssuer);
  const cli = await buildCli('browser');
  const { file, stateDir } = await writeTestConfig(origin.port, { usage: { flushMs: 200 } });
  proxy = await startCliProxy(cli, file, stateDir);
  mkdirSync(OUT, { recursive: true });
  // Root cannot use Chromium's sandbox; CI runs as root.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await proxy?.stop();
  await origin?.close();
});

/** Sends n calls through the proxy. */
async function send(path: string, n: number, headers: Record<string, string>, host = 'https://api.security.microsoft.com'): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await viaProxy(proxy.proxyUrl, proxy.caPem, `${host}${path}`, { headers });
    expect(res.status).toBeGreaterThanOrEqual(200);
  }
}

interface UsageAnswer { rows: Record<string, string | number>[] }
const usage = async (query: string): Promise<UsageAnswer> => JSON.parse(await (await request(`${proxy.adminUrl}/usage?${query}`)).body.text()) as UsageAnswer;

it('renders /report with the figures of /usage, asks no other origin, passes the accessibility checks, and prints the headline on page 1', async () => {
  const tenantA = { authorization: `Bearer ${token({ tid: TENANT_A, appid: APP, app_displayname: 'Contoso sync' })}` };
  const tenantB = { authorization: `Bearer ${token({ tid: TENANT_B, appid: APP })}` };
  await send('/api/machines', 6, { 'user-agent': UA, ...tenantA });
  await send('/api/alerts', 3, { 'user-agent': 'python-requests/2.32.3', ...tenantA });
  await send('/api/machines', 2, { 'user-agent': '"><img src=x onerror=alert(1)>/1.0', ...tenantB });
  await send('/status/429', 1, { 'user-agent': UA, ...tenantB });
  await send('/v1.0/security/alerts_v2', 2, {}, 'https://graph.microsoft.com');
  const expectedCalls = 14;

  // The recorder flushes every 200 ms; wait until /usage holds every call.
  const deadline = Date.now() + DEADLINE_MS;
  let byProduct: UsageAnswer;
  for (;;) {
    byProduct = await usage('by=product');
    if (byProduct.rows.reduce((acc, r) => acc + Number(r.calls), 0) === expectedCalls) break;
    if (Date.now() > deadline) throw new Error(`/usage has ${JSON.stringify(byProduct.rows)}, expected ${expectedCalls} calls`);
    await sleep(200);
  }
  const byApi = await usage('by=product,api');

  const page: Page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  let dialogs = 0;
  page.on('dialog', (d) => {
    dialogs++;
    void d.dismiss();
  });
  const res = await page.goto(`${proxy.adminUrl}/report`);
  expect(res?.status()).toBe(200);
  expect(res?.headers()['content-type']).toBe('text/html; charset=utf-8');

  // The summary's figures are /usage's.
  const summary = await page.locator('.headline[data-product="cognito"]').evaluate((el) => ({ ...(el as HTMLElement).dataset }));
  const row = byProduct.rows.find((r) => r.product === 'cognito')!;
  for (const k of ['calls', 'compliant', 'rewritten', 'rejected', 'audited', 'throttled', 'errors']) expect([k, Number(summary[k])]).toEqual([k, Number(row[k])]);
  expect(summary).toMatchObject({ sent: '14', carried: '14', share: '100.00%' });
  const headline = (await page.locator('.headline[data-product="cognito"] [data-role="headline"]').textContent())!;
  expect(headline).toBe('14 calls to Microsoft security APIs, 100.00% carried MdePartner-Contoso-ContosoCognito.');

  // The API table's rows are /usage?by=product,api's; the day table's total is the product's.
  const apiRows = await page.locator('section[data-product="cognito"] table[data-table="api"] tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [(tr as HTMLElement).dataset.api, Number(tr.querySelector('[data-field="calls"]')!.getAttribute('data-value'))]));
  expect(Object.fromEntries(apiRows)).toEqual(Object.fromEntries(byApi.rows.filter((r) => r.product === 'cognito').map((r) => [r.api, Number(r.calls)])));
  const dayTotal = await page.locator('section[data-product="cognito"] table[data-table="day"] tfoot [data-field="calls"]').getAttribute('data-value');
  expect(Number(dayTotal)).toBe(expectedCalls);

  // Tenants from the tokens, the non-compliant callers, and no markup from a caller's User-Agent.
  const tenants = await page.locator('table[data-table="tenants"] tbody tr').evaluateAll((trs) => [...new Set(trs.map((tr) => (tr as HTMLElement).dataset.tenant))]);
  expect(tenants.sort()).toEqual([TENANT_B, TENANT_A, 'unknown'].sort());
  const families = await page.locator('table[data-table="callers"] tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.family));
  expect(families).toContain('python-requests');
  expect(await page.locator('img').count()).toBe(0);
  expect(dialogs).toBe(0);

  // Self-contained: the page asked nothing of any origin but the admin listener (only the page itself).
  const adminOrigin = new URL(proxy.adminUrl).origin;
  expect(requested.filter((u) => new URL(u).origin !== adminOrigin)).toEqual([]);
  expect(requested).toEqual([`${proxy.adminUrl}/report`]);

  // Outline and names: lang, one h1, no skipped heading level, every chart named, every table captioned.
  const outline = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    levels: [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map((h) => Number(h.tagName[1])),
    charts: [...document.querySelectorAll('svg')].map((svg) => (svg.getAttribute('aria-labelledby') ?? '').split(' ').map((id) => document.getElementById(id)?.textContent?.trim() ?? '').join(' | ')),
    svgRoles: [...document.querySelectorAll('svg')].map((svg) => svg.getAttribute('role')),
    uncaptioned: [...document.querySelectorAll('table')].filter((t) => !t.querySelector('caption')?.textContent?.trim()).length,
  }));
  expect(outline.lang).toBe('en');
  expect(outline.levels.filter((l) => l === 1)).toHaveLength(1);
  outline.levels.forEach((l, i) => expect(i === 0 ? l : l - outline.levels[i - 1]!).toBeLessThanOrEqual(1));
  expect(outline.charts.length).toBeGreaterThanOrEqual(2);
  for (const name of outline.charts) expect(name).toMatch(/^Calls (per day|by API), cognito \| .+/);
  expect(new Set(outline.svgRoles)).toEqual(new Set(['img']));
  expect(outline.uncaptioned).toBe(0);

  // Contrast: the palette's text pairs reach 4.5:1 and the chart colours 3:1 against white (WCAG 1.4.3, 1.4.11) ...
  for (const [fg, bg] of [[PALETTE.text, PALETTE.background], [PALETTE.muted, PALETTE.background], [PALETTE.muted, PALETTE.panel],
    [PALETTE.text, PALETTE.panel], [PALETTE.warn, PALETTE.background], [PALETTE.warn, PALETTE.panel], [PALETTE.link, PALETTE.background]]) {
    expect([fg, bg, contrast(fg!, bg!) >= 4.5]).toEqual([fg, bg, true]);
  }
  for (const a of ACTION_COLOURS) expect([a.key, contrast(a.colour, PALETTE.background) >= 3]).toEqual([a.key, true]);
  // ... and so does every rendered piece of text, colour against its effective background.
  const pairs = await page.evaluate(() => {
    const hex = (rgb: string): string | undefined => {
      const m = /^rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)$/.exec(rgb);
      if (m === null || (m[4] !== undefined && Number(m[4]) === 0)) return undefined;
      return `#${[m[1], m[2], m[3]].map((v) => Number(v).toString(16).padStart(2, '0')).join('')}`;
    };
    const out = new Set<string>();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n !== null; n = walker.nextNode()) {
      if ((n.textContent ?? '').trim() === '') continue;
      const el = n.parentElement!;
      if (el.closest('svg') !== null) continue; // chart text is checked below, as fill against white
      let bg: string | undefined;
      for (let a: Element | null = el; a !== null && bg === undefined; a = a.parentElement) bg = hex(getComputedStyle(a).backgroundColor);
      out.add(`${hex(getComputedStyle(el).color)} ${bg ?? '#ffffff'}`);
    }
    for (const t of document.querySelectorAll('svg text')) out.add(`${hex(getComputedStyle(t).fill)} #ffffff`);
    return [...out];
  });
  expect(pairs.length).toBeGreaterThan(2);
  for (const p of pairs) {
    const [fg, bg] = p.split(' ');
    expect([p, contrast(fg!, bg!) >= 4.5]).toEqual([p, true]);
  }

  // axe-core (WCAG 2 A and AA rules) in a second page that may run its script despite the CSP.
  const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const context = await browser!.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  const axePage = await context.newPage();
  await axePage.goto(`${proxy.adminUrl}/report`);
  await axePage.addScriptTag({ content: axeSource });
  const violations = await axePage.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: unknown): Promise<{ violations: { id: string; nodes: unknown[] }[] }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id} (${v.nodes.length})`);
  });
  await context.close();
  expect(violations).toEqual([]);

  // Screenshots at 1280 px and at 390 px; on a phone only the table wrappers scroll sideways.
  await page.screenshot({ path: join(OUT, 'report-1280.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(overflow).toBeLessThanOrEqual(390);
  await page.screenshot({ path: join(OUT, 'report-390.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(OUT, 'report-1280-top.png') });
  if (process.env.UPDATE_DOCS_SCREENSHOT === '1') copyFileSync(join(OUT, 'report-1280-top.png'), join(ROOT, 'docs', 'report.png'));

  // The PDF: A4 from the print stylesheet; page 1 holds the headline.
  const pdf = join(OUT, 'report.pdf');
  await page.emulateMedia({ media: 'print' });
  await page.pdf({ path: pdf, format: 'A4', printBackground: true });
  expect(statSync(pdf).size).toBeGreaterThan(1000);
  const first = execFileSync('pdftotext', ['-f', '1', '-l', '1', pdf, '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
  expect(first).toContain('14 calls to Microsoft security APIs, 100.00% carried MdePartner-Contoso-ContosoCognito.');
  expect(first).toContain('Partner User-Agent compliance report');
  await page.close();
}, 180_000);
