// runReport in-process: where the rows come from (the config's store, --store, none), where the
// report goes (stdout, --out written whole), and the exit codes and one-line messages for mistakes
// (2) and faults (1). A real SQLite store in a temporary state directory holds known counts.
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, type Config } from '../../../src/config.js';
import { openReportStore, runReport, type ReportCommandArgs } from '../../../src/usage/report-command.js';
import type { ReportModel } from '../../../src/usage/report.js';
import { createSqliteStore } from '../../../src/usage/sqlite.js';
import { DAY_MS, HOUR_MS } from '../../../src/usage/store.js';

const DAY0 = Date.UTC(2026, 10, 20);
const FROM = new Date(DAY0).toISOString();
const TO = new Date(DAY0 + 2 * DAY_MS).toISOString();
const stateDir = mkdtempSync(join(tmpdir(), 'mpp-report-command-'));

const configWith = (usage: Record<string, unknown> = {}, dir = stateDir): Config => buildConfig({
  version: 1, stateDir: dir, usage,
  products: [{ id: 'alpha', company: 'Contoso', product: 'Alpha', version: '1.0.0' }],
}, { source: 'test', baseDir: process.cwd() });

/** Runs the command and collects what it wrote. */
async function report(config: Config, args: ReportCommandArgs): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runReport(config, '9.9.9', args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out, err };
}

beforeAll(async () => {
  // The config's default store: usage.db in stateDir.
  const store = createSqliteStore({ path: join(stateDir, 'usage.db') });
  await store.open();
  await store.write({
    counts: [
      { hour: DAY0 + HOUR_MS, product: 'alpha', tenant: 'unknown', app: 'unknown', api: 'machines', action: 'compliant', client: '::1', calls: 7, throttled: 0, errors: 0 },
      { hour: DAY0 + DAY_MS, product: 'alpha', tenant: 'unknown', app: 'unknown', api: 'alerts', action: 'rewritten', client: '::1', calls: 3, throttled: 1, errors: 0 },
    ],
    callers: [], peaks: [],
  });
  await store.close();
});

describe('runReport', () => {
  it('reads the config\'s own store and prints JSON with the known counts, without a trailing newline', async () => {
    const r = await report(configWith(), { from: FROM, to: TO, format: 'json' });
    expect([r.code, r.err]).toEqual([0, []]);
    expect(r.out).toHaveLength(1);
    expect(r.out[0]!.endsWith('\n')).toBe(false);
    const model = JSON.parse(r.out[0]!) as ReportModel;
    expect(model.products.map((p) => [p.id, p.calls, p.compliant, p.rewritten, p.throttled])).toEqual([['alpha', 10, 7, 3, 1]]);
  });

  it('writes --out whole, says where and how big, and leaves no temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-report-out-'));
    const file = join(dir, 'november.csv');
    const r = await report(configWith(), { from: FROM, to: TO, format: 'csv', out: file });
    expect([r.code, r.out]).toEqual([0, []]);
    const body = readFileSync(file, 'utf8');
    expect(r.err).toEqual([expect.stringMatching(new RegExp(`^wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(${Buffer.byteLength(body)} bytes\\)\\. `))]);
    expect(readdirSync(dir)).toEqual(['november.csv']);
  });

  it('treats --out - as stdout', async () => {
    const r = await report(configWith(), { from: FROM, to: TO, format: 'csv', out: '-' });
    expect([r.code, r.err]).toEqual([0, []]);
    expect(r.out[0]).toMatch(/alpha/);
  });

  it('fails with 1 and leaves nothing behind when --out cannot be written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpp-report-out-'));
    const file = join(dir, 'missing-dir', 'r.html');
    const r = await report(configWith(), { from: FROM, to: TO, out: file });
    expect(r).toEqual({ code: 1, out: [], err: [`mde-partner-proxy: report: cannot write ${file}: ENOENT`] });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('exits 2 when usage.store is none and no --store or --prometheus is given', async () => {
    const r = await report(configWith({ store: 'none' }), { from: FROM, to: TO });
    expect(r).toEqual({ code: 2, out: [], err: ['mde-partner-proxy: report: no usage store to read (usage.store is none); give --store FILE|URL or --prometheus URL'] });
  });

  it('reads --store when given, even when usage.store is none', async () => {
    const r = await report(configWith({ store: 'none' }), { from: FROM, to: TO, format: 'json', store: join(stateDir, 'usage.db') });
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out[0]!) as ReportModel).products[0]?.calls).toBe(10);
  });

  it.each<[string, ReportCommandArgs, number, RegExp]>([
    ['a bad --format', { format: 'pdf' }, 2, /^mde-partner-proxy: report: --format: /],
    ['a bad --from', { from: 'yesterday' }, 2, /^mde-partner-proxy: report: --from: /],
    ['a --to before --from', { from: TO, to: FROM }, 2, /^mde-partner-proxy: report: --(from|to): /],
    ['a --store of an unknown scheme', { store: 'ftp://example/usage' }, 2, /^mde-partner-proxy: report: --store: must be none, a postgres:\/\/ URL, or a SQLite file path$/],
    ['a --store file that does not exist', { store: '/nonexistent/usage.db' }, 1, /^mde-partner-proxy: report: no usage store at \/nonexistent\/usage\.db: /],
    ['an unreachable --prometheus', { prometheus: 'http://127.0.0.1:1' }, 1, /^mde-partner-proxy: report: /],
  ])('answers %s with exit %i and one line naming it', async (_what, args, code, message) => {
    const r = await report(configWith(), args);
    expect([r.code, r.out, r.err.length]).toEqual([code, [], 1]);
    expect(r.err[0]).toMatch(message);
  });
});

it('answers a --prometheus URL it cannot parse without the password in it', async () => {
  const r = await report(configWith(), { from: FROM, to: TO, prometheus: 'http://reader:prom-secret-8@[::1:9090' });
  expect([r.code, r.out, r.err.length]).toEqual([1, [], 1]);
  expect(r.err[0]).toMatch(/^mde-partner-proxy: report: --prometheus: not a URL: /);
  expect(r.err[0]).not.toContain('prom-secret-8');
});

describe('openReportStore', () => {
  it('never creates a store: a state directory without usage.db is an error', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'mpp-report-empty-'));
    await expect(openReportStore(undefined, configWith({}, empty))).rejects.toThrow(`no usage store at ${join(empty, 'usage.db')}`);
    expect(existsSync(join(empty, 'usage.db'))).toBe(false);
  });

  it('gives undefined for --store none', async () => {
    expect(await openReportStore('none', configWith())).toBeUndefined();
  });

  it('names an unreachable PostgreSQL store in one line, without its password', async () => {
    const err = await openReportStore('postgres://u:pw-secret@127.0.0.1:1/usage', configWith()).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^cannot open the usage store postgres:\/\/u:redacted@127\.0\.0\.1:1\/usage: [^\n]+$/);
  });

  it('names an unreachable PostgreSQL store without a password given as a query parameter', async () => {
    const err = await openReportStore('postgres://u@127.0.0.1:1/usage?password=pw-query-secret&sslpassword=pw-key-secret', configWith()).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^cannot open the usage store postgres:\/\/u@127\.0\.0\.1:1\/usage\?password=redacted&sslpassword=redacted: [^\n]+$/);
    expect(err?.message).not.toMatch(/pw-(query|key)-secret/);
  });
});
