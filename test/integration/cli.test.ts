// The command line as users run it: `node dist/cli.js …` as child processes with a clean
// environment. Config errors, config check, check-ua, ca init, env, explain, and `start` with a real
// echo origin behind upstream.resolve: the printed trust step works with curl, environment variables
// are honoured, SIGTERM drains and SIGHUP reloads. Every wait polls against a deadline.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { parse } from 'yaml';
import { createCatalogue } from '../../src/catalogue.js';
import type { Explanation } from '../../src/explain.js';
import { basicAuth } from '../helpers/auth.js';
import { viaProxy } from '../helpers/client.js';
import { cleanEnv, run, type RunResult } from '../helpers/child.js';
import { CLI, ROOT, logLines, sleep } from '../helpers/cli-process.js';
import { headerValues, startOrigin, type Origin } from '../helpers/origin.js';
import { jsonBodyOf, rawExchange, statusOf } from '../helpers/raw.js';
import { testPki } from '../helpers/pki.js';
import { seriesValue } from '../helpers/scrape.js';

const FIXTURES = join(ROOT, 'test', 'fixtures');
const EXAMPLE_UA = 'MdePartner-Contoso-ContosoCognito/1.0.0';
const FABRIKAM_UA = 'MdePartner-Fabrikam-Scanner/2.0.0';
const DEADLINE_MS = 15_000;

const tmp = (what: string): string => mkdtempSync(join(tmpdir(), `mpp-cli-${what}-`));
const cli = (args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> => run(process.execPath, [CLI, ...args], { env, timeoutMs: 20_000 });

/** Polls fn until it returns a value other than undefined; throws with describe() after the deadline. */
async function until<T>(fn: () => T | undefined | Promise<T | undefined>, describe: () => string, ms = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${describe()}`);
    await sleep(25);
  }
}

/** The promise's value, or undefined when it has not settled within ms. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Running {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** From the banner and the JSON 'ready' line, once the proxy listens. */
  proxyUrl: string;
  adminUrl: string | undefined;
  caFile: string;
}

const children: ChildProcess[] = [];

/** Starts `cli start …` and resolves once it printed its banner and its 'ready' log line. */
async function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const child = spawn(process.execPath, [CLI, 'start', ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exited = false;
  void exit.then(() => (exited = true));
  const describe = (): string => `the proxy to start; exited=${exited}\nstdout:\n${out}\nstderr:\n${err}`;
  const ready = await until(() => (exited ? null : logLines(out).find((l) => l['event'] === 'ready')), describe);
  if (ready === null) throw new Error(describe());
  const url = await until(() => /listening on (http:\/\/\S+)/.exec(err)?.[1], describe);
  // The trust steps are a later write than the "listening on" line; under load they arrive in a later chunk.
  await until(() => (err.includes('update-ca-certificates') ? true : undefined), describe);
  return {
    child, exit,
    stdout: () => out,
    stderr: () => err,
    proxyUrl: url,
    adminUrl: ready['admin'] === 'off' ? undefined : `http://${String(ready['admin'])}`,
    caFile: String(ready['ca']),
  };
}

async function adminGet(base: string, path: string): Promise<{ status: number; text: string }> {
  const res = await request(`${base}${path}`);
  return { status: res.statusCode, text: await res.body.text() };
}

/** A counter's value from a /metrics scrape (0 when absent). */
const counter = seriesValue;

let origin: Origin;
let msRootFile: string;

/** A config file mapping the Microsoft API host to the echo origin; extra keys are merged in. */
function resolveConfig(dir: string, extra = ''): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, [
    'version: 1',
    'upstream:',
    `  ca: ${msRootFile}`,
    '  resolve:',
    `    "api.security.microsoft.com:443": "127.0.0.1:${origin.port}"`,
    extra,
  ].join('\n'));
  return file;
}

beforeAll(async () => {
  // Build once: the CLI under test is the bundle `npm start` runs (scripts/build.mjs, without the
  // .d.ts step, which changes nothing the CLI runs).
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(CLI)) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
  const pki = await testPki();
  msRootFile = pki.msRootFile;
  origin = await startOrigin(pki.msIssuer);
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await origin?.close();
});

describe('configuration errors', () => {
  it.each([
    ['invalid-unknown-key.yaml', /policy\.colour: unknown key/],
    ['invalid-unknown-top-key.yaml', /listn: unknown key/],
    ['invalid-mode.yaml', /policy\.mode: /],
    ['invalid-version-crlf.yaml', /products\[0\]\.version: .*header text/],
    ['invalid-company-space.yaml', /products\[0\](\.company)?: .*company/],
    ['invalid-schema-version.yaml', /version: /],
    ['invalid-timeout.yaml', /timeouts\.drain: /],
    ['invalid-reverse-product.yaml', /reverse\[0\]\.product: .*nobody/],
    ['invalid-yaml.yaml', /\(yaml line 4, column 1\)/],
  ])('%s: config check and start both exit non-zero naming the field', async (fixture, path) => {
    const file = join(FIXTURES, fixture);
    const check = await cli(['config', 'check', file]);
    expect({ code: check.code, stdout: check.stdout }).toEqual({ code: 2, stdout: '' });
    expect(check.stderr).toMatch(path);
    const start = await cli(['start', '--config', file, '--state-dir', tmp('err'), '--listen', '127.0.0.1:0', '--admin', 'off']);
    expect(start.code).toBe(2);
    expect(start.stderr).toMatch(path);
    expect(start.stderr).not.toMatch(/listening on/);
  });

  it('names the file when it cannot be read', async () => {
    const missing = join(tmp('missing'), 'nope.yaml');
    const r = await cli(['config', 'check', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toMatch(/ENOENT/);
  });

  it.each([
    ['CR/LF', `${EXAMPLE_UA}\r\nX-Evil: 1`, /--user-agent: .*header text/],
    ['a library User-Agent', 'python-requests/2.32.3', /--user-agent: /],
  ])('refuses a --user-agent with %s and names --user-agent', async (_name, ua, path) => {
    const r = await cli(['start', '--user-agent', ua, '--state-dir', tmp('ua'), '--listen', '127.0.0.1:0', '--admin', 'off']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(path);
    expect(r.stderr).not.toMatch(/listening on/);
  });

  it('refuses the same value from MDE_PARTNER_PROXY_USER_AGENT', async () => {
    const r = await cli(['start', '--state-dir', tmp('ua'), '--listen', '127.0.0.1:0', '--admin', 'off'], { MDE_PARTNER_PROXY_USER_AGENT: `${EXAMPLE_UA}\nX-Evil: 1` });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration: MDE_PARTNER_PROXY_USER_AGENT \(--user-agent\): /);
  });
});

describe('listeners that cannot open', () => {
  it.each(['--listen', '--admin'])('a busy %s port exits 1 with one line naming the listener, not the usage text', async (flag) => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const args = flag === '--listen' ? ['--listen', `127.0.0.1:${port}`, '--admin', 'off'] : ['--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${port}`];
      const r = await cli(['start', '--state-dir', tmp('busy'), ...args]);
      expect(r.code).toBe(1);
      const what = flag === '--listen' ? 'proxy' : 'admin';
      expect(r.stderr).toContain(`mde-partner-proxy: cannot open the ${what} listener on 127.0.0.1:${port}: EADDRINUSE`);
      expect(r.stderr).not.toMatch(/Options:|^ +at /m);
    } finally {
      busy.close();
    }
  });

  it('answers a usage mistake with one line and a hint, exit 2, not the whole help', async () => {
    const r = await cli(['no-such-command']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('mde-partner-proxy: unknown command "no-such-command"\nRun \'mde-partner-proxy --help\' for usage.\n');
  });
});

describe('command-line conventions', () => {
  const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const COMMANDS = [[], ['start'], ['check-ua'], ['ca'], ['ca', 'init'], ['env'], ['config'], ['config', 'check'], ['explain'], ['doctor'], ['report'], ['completion']];

  it.each(COMMANDS.map((words, i) => [words.join(' ') || '(no command)', i % 2 === 0 ? '-h' : '--help', words] as const))('%s %s prints its own usage, exit 0', async (_name, flag, words) => {
    const r = await cli([...words, flag]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^mde-partner-proxy${words.length > 0 ? ` ${words.join(' ')}` : ''}( <[a-z-]+>)?$`));
    expect(r.stdout).toMatch(/^Options:$/m);
  });

  it.each(COMMANDS.map((words, i) => [words.join(' ') || '(no command)', i % 2 === 0 ? '-v' : '--version', words] as const))('%s %s prints the version, exit 0', async (_name, flag, words) => {
    const r = await cli([...words, flag]);
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it.each([
    ['an unknown command', ['frobnicate'], 'unknown command "frobnicate"', 'mde-partner-proxy --help'],
    ['an unknown subcommand', ['ca', 'list'], 'unknown command "ca list"', 'mde-partner-proxy ca --help'],
    ['a missing subcommand', ['config'], 'name a config command: check', 'mde-partner-proxy config --help'],
    ['an unknown option', ['explain', 'https://api.security.microsoft.com/', '--verbose'], 'unknown option --verbose', 'mde-partner-proxy explain --help'],
    ['a missing argument', ['explain'], 'missing argument <url>', 'mde-partner-proxy explain --help'],
    ['a missing argument of a subcommand', ['--config', 'x.yaml', 'config', 'check'], 'missing argument <file>', 'mde-partner-proxy config check --help'],
    ['an extra argument', ['check-ua', EXAMPLE_UA, 'extra'], 'unexpected argument "extra"', 'mde-partner-proxy check-ua --help'],
    ['a value outside its choices', ['env', '--mode', 'strict'], '--mode "strict" is not one of rewrite, reject, audit', 'mde-partner-proxy env --help'],
    ['an URL that is not absolute', ['explain', 'api.security.microsoft.com/api/machines'], 'not an absolute http(s) URL: "api.security.microsoft.com/api/machines"', 'mde-partner-proxy explain --help'],
    ['an --app that is no GUID', ['explain', 'https://api.security.microsoft.com/', '--app', 'sync'], '--app must be an Azure AD application id (a GUID), got "sync"', 'mde-partner-proxy explain --help'],
  ])('%s: exit 2, one line and a hint, no help text', async (_what, args, message, help) => {
    const dir = join(tmp('usage'), 'state');
    const r = await cli([...args, '--state-dir', dir]);
    expect(r).toEqual({ code: 2, stdout: '', stderr: `mde-partner-proxy: ${message}\nRun '${help}' for usage.\n` });
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses a boolean option variable that is not true or false', async () => {
    const r = await cli(['ca', 'init', '--state-dir', join(tmp('usage'), 'state')], { MDE_PARTNER_PROXY_FORCE: 'sometimes' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('mde-partner-proxy: MDE_PARTNER_PROXY_FORCE must be true or false, got "sometimes"\nUnset it or set it to true or false.\n');
  });

  it('completion prints a bash completion script that asks the CLI for its words', async () => {
    const r = await cli(['completion']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^###-begin-mde-partner-proxy-completions-###$/m);
    expect(r.stdout).toContain('mde-partner-proxy --get-yargs-completions');
    expect(r.stdout).toMatch(/^complete -o bashdefault -o default -F _mde-partner-proxy_yargs_completions mde-partner-proxy$/m);
  });

  it('--get-yargs-completions gives the command names, then the subcommands and options of a command', async () => {
    const top = await cli(['--get-yargs-completions', 'mde-partner-proxy', '']);
    expect(top.code).toBe(0);
    expect(top.stdout.split('\n').filter((w) => w !== '' && !w.startsWith('-'))).toEqual(['start', 'check-ua', 'ca', 'env', 'config', 'explain', 'doctor', 'report', 'completion']);
    const ca = await cli(['--get-yargs-completions', 'mde-partner-proxy', 'ca', '']);
    expect(ca.stdout.split('\n')).toContain('init');
    const explain = await cli(['--get-yargs-completions', 'mde-partner-proxy', 'explain', '--']);
    expect(explain.stdout.split('\n')).toEqual(expect.arrayContaining(['--ua', '--proxy-authorization', '--json']));
  });

  it('completes in a real bash with the printed script', async () => {
    const bin = tmp('completion');
    writeFileSync(join(bin, 'mde-partner-proxy'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
    const script = [
      'source <(mde-partner-proxy completion)',
      'COMP_WORDS=(mde-partner-proxy ex); COMP_CWORD=1; _mde-partner-proxy_yargs_completions; echo "1:${COMPREPLY[*]}"',
      'COMP_WORDS=(mde-partner-proxy config ""); COMP_CWORD=2; _mde-partner-proxy_yargs_completions; echo "2:${COMPREPLY[*]}"',
    ].join('\n');
    const r = await run('bash', ['-c', script], { env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^1:explain$/m);
    expect(r.stdout).toMatch(/^2:.*\bcheck\b/m);
  });
});

describe('--json output', () => {
  it('check-ua --json: valid, the parts, and the upgrade of a legacy form; the exit code as without --json', async () => {
    const valid = await cli(['check-ua', '--json', 'MdePartner-JoeSecurity-JoeSecuritySandbox-AzureFunctionApp/4.4.1 python-requests/2.32.3']);
    expect(valid.code).toBe(0);
    expect(JSON.parse(valid.stdout)).toEqual({
      valid: true, userAgent: 'MdePartner-JoeSecurity-JoeSecuritySandbox-AzureFunctionApp/4.4.1 python-requests/2.32.3',
      partner: { prefix: 'MdePartner', company: 'JoeSecurity', product: 'JoeSecuritySandbox-AzureFunctionApp', version: '4.4.1', rest: 'python-requests/2.32.3', legacy: false },
      upgrade: null,
    });
    const legacy = await cli(['check-ua', '--json', 'MdatpPartner-Contoso-ContosoCognito/1.0.0']);
    expect(legacy.code).toBe(1);
    expect(JSON.parse(legacy.stdout)).toMatchObject({ valid: false, partner: { prefix: 'MdatpPartner', legacy: true }, upgrade: EXAMPLE_UA });
    const none = await cli(['check-ua', '--json', 'python-requests/2.32.3']);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stdout)).toEqual({ valid: false, userAgent: 'python-requests/2.32.3', partner: null, upgrade: null });
  });

  it('explain --json: one object with every key, null where a step does not apply', async () => {
    const r = await cli(['explain', '--json', 'https://login.microsoftonline.com/common/oauth2/v2.0/token']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      url: 'https://login.microsoftonline.com/common/oauth2/v2.0/token', scheme: 'https', host: 'login.microsoftonline.com', port: 443, hostKind: 'token',
      connect: { action: 'tunnel', reason: 'token-endpoint' }, destination: null, token: null, identity: null, decision: null, api: null, userAgentSent: null,
      response: null, connectsTo: { host: 'login.microsoftonline.com', port: 443, overridden: false },
    });
  });

  it('MDE_PARTNER_PROXY_JSON=true asks for JSON as --json does', async () => {
    const r = await cli(['check-ua', EXAMPLE_UA], { MDE_PARTNER_PROXY_JSON: 'true' });
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true });
  });
});

describe('config check', () => {
  it('prints a valid config normalised and never prints a password', async () => {
    const r = await cli(['config', 'check', join(FIXTURES, 'valid-full.yaml')], { FIXTURE_SCANNER_PASSWORD: 'fixture-env-password-4242' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const secret of ['fixture-inline-password-5150', 'fixture-file-password-8675309', 'fixture-env-password-4242']) {
      expect(r.stdout).not.toContain(secret);
    }
    const printed = parse(r.stdout) as Record<string, unknown>;
    expect(printed['products']).toEqual([
      { id: 'cognito', company: 'Contoso', product: 'ContosoCognito', version: '1.0.0', credentials: { username: 'cognito', password: '<redacted>' } },
      { id: 'sandbox', company: 'JoeSecurity', product: 'JoeSecuritySandbox-AzureFunctionApp', version: '4.4.1', credentials: { username: 'sandbox', password: '<redacted>' } },
      { id: 'scanner', company: 'Fabrikam', product: 'Scanner', version: '2.0.0', credentials: { username: 'scanner', password: '<redacted>' } },
    ]);
    expect(r.stdout).toContain(`# normalised from ${join(FIXTURES, 'valid-full.yaml')}`);
    expect(printed).toMatchObject({
      version: 1,
      stateDir: join(FIXTURES, 'state'), // relative paths resolve against the config file
      policy: { mode: 'reject', rewrite: 'prepend' },
      clouds: ['commercial', 'gcc'],
      otherHosts: 'deny',
      reverse: [{ listen: '127.0.0.1:8443', upstream: 'https://api.security.microsoft.com:443', product: 'sandbox' }],
      timeouts: { connect: 5000, upstream: 60000, headers: 30000, idle: 60000, drain: 10000 },
      access: { connectPorts: [443, 8443] },
      log: { level: 'warn' },
    });
  });

  it('never prints a PostgreSQL password given as a query parameter of usage.store', async () => {
    const url = 'postgres://usage@db.internal:5432/usage?sslmode=require&password=pg-query-secret-31&sslpassword=pg-key-secret-47';
    for (const args of [['config', 'check', join(FIXTURES, 'valid-minimal.yaml')], ['config', 'check', '--json', join(FIXTURES, 'valid-minimal.yaml')]]) {
      const r = await cli(args, { MDE_PARTNER_PROXY_USAGE_STORE: url });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toContain('db.internal:5432/usage');
      expect(r.stdout).not.toContain('pg-query-secret-31');
      expect(r.stdout).not.toContain('pg-key-secret-47');
    }
  });

  it('reports every mistake with its path: five mistakes, five errors, exit 2', async () => {
    const r = await cli(['config', 'check', join(FIXTURES, 'invalid-five-mistakes.yaml')]);
    expect(r.code).toBe(2);
    const paths = r.stderr.trim().split('\n').map((l) => /^mde-partner-proxy: invalid configuration: (\S+): /.exec(l)?.[1]);
    expect(paths.sort()).toEqual(['clouds[1]', 'colour', 'policy.mode', 'products[0].id', 'timeouts.connect']);
    const json = await cli(['config', 'check', '--json', join(FIXTURES, 'invalid-five-mistakes.yaml')]);
    expect(json.code).toBe(2);
    const parsed = JSON.parse(json.stdout) as { valid: boolean; errors: { path: string; message: string }[] };
    expect(parsed.valid).toBe(false);
    expect(parsed.errors.map((e) => e.path).sort()).toEqual(paths.sort());
  });

  it('names the MDE_PARTNER_PROXY_* variable a bad option value came from, and the option when it came from the command line', async () => {
    const file = join(tmp('env-fault'), 'config.yaml');
    writeFileSync(file, 'version: 1\n');
    const fromEnv = await cli(['config', 'check', file], { MDE_PARTNER_PROXY_LISTEN: 'nowhere' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toMatch(/^mde-partner-proxy: invalid configuration: MDE_PARTNER_PROXY_LISTEN \(--listen\): /m);
    const fromArgv = await cli(['config', 'check', file, '--listen', 'nowhere'], { MDE_PARTNER_PROXY_LISTEN: '127.0.0.1:3128' });
    expect(fromArgv.stderr).toMatch(/^mde-partner-proxy: invalid configuration: --listen: /m);
  });

  it('reports every mistake found after the schema pass too: eight semantic mistakes, eight errors with their paths', async () => {
    const file = join(FIXTURES, 'invalid-eight-semantic-mistakes.yaml');
    const r = await cli(['config', 'check', file]);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
    const paths = r.stderr.trim().split('\n').map((l) => /^mde-partner-proxy: invalid configuration: (\S+): /.exec(l)?.[1]);
    expect(paths.sort()).toEqual(['access.allowedClients[0]', 'listen', 'products[1].apps[0]', 'products[1].id', 'reverse[0].product', 'reverse[0].upstream',
      'upstream.proxy', 'upstream.resolve.api.security.microsoft.com']);
    const json = await cli(['config', 'check', '--json', file]);
    expect((JSON.parse(json.stdout) as { errors: unknown[] }).errors).toHaveLength(8);
    const start = await cli(['start', '--config', file, '--state-dir', tmp('eight'), '--admin', 'off']);
    expect(start.code).toBe(2);
    expect(start.stderr).toMatch(/^mde-partner-proxy: invalid configuration: products\[1\]\.id: duplicate id "cognito"$/m);
  });

  it('checks a Kubernetes config whose passwordFile is not on this machine with --offline', async () => {
    const file = join(ROOT, 'config', 'kubernetes', 'overlays', 'shared', 'config.yaml');
    const online = await cli(['config', 'check', file]);
    expect(online.code).toBe(2);
    expect(online.stderr).toMatch(/products\[0\]\.credentials\.passwordFile: cannot read \/etc\/mde-partner-proxy\/credentials\/threatsync/);
    const offline = await cli(['config', 'check', '--offline', file]);
    expect(offline.stderr).toBe('');
    expect(offline.code).toBe(0);
    expect((parse(offline.stdout) as { products: unknown[] }).products).toHaveLength(2);
  });

  it.each([['valid-full.yaml'], ['valid-minimal.yaml']])('prints for %s a normalised config that passes config check and normalises to itself', async (name) => {
    const env = { FIXTURE_SCANNER_PASSWORD: 'fixture-env-password-4242' };
    const first = await cli(['config', 'check', join(FIXTURES, name)], env);
    expect(first.code).toBe(0);
    const copy = join(tmp('normalised'), 'normalised.yaml');
    writeFileSync(copy, first.stdout);
    const second = await cli(['config', 'check', copy], env);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    const body = (out: string): string => out.split('\n').filter((l) => !l.startsWith('# normalised from')).join('\n');
    expect(body(second.stdout)).toBe(body(first.stdout));
  });

  it('fills in the defaults of a minimal config', async () => {
    const r = await cli(['config', 'check', join(FIXTURES, 'valid-minimal.yaml')]);
    expect(r.code).toBe(0);
    expect(parse(r.stdout)).toMatchObject({
      listen: '127.0.0.1:3128', admin: '127.0.0.1:9464', policy: { mode: 'rewrite', rewrite: 'replace' },
      clouds: ['commercial'], otherHosts: 'tunnel', access: { connectPorts: [443] },
    });
  });

  it.each([['an empty file', ''], ['a file holding only a newline', '\n']])('refuses a passwordFile that is %s, naming the field', async (_what, content) => {
    const dir = tmp('empty-password');
    writeFileSync(join(dir, 'password'), content);
    writeFileSync(join(dir, 'config.yaml'), [
      'version: 1',
      'products:',
      '  - {id: cognito, company: Contoso, product: ContosoCognito, version: 1.0.0, credentials: {username: cognito, passwordFile: password}}',
      '',
    ].join('\n'));
    const r = await cli(['config', 'check', join(dir, 'config.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mde-partner-proxy: invalid configuration: products\[0\]\.credentials\.passwordFile: .*empty/m);
  });

  it('refuses a passwordEnv whose variable is not set, naming the field', async () => {
    const r = await cli(['config', 'check', join(FIXTURES, 'valid-full.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/products\[2\]\.credentials\.passwordEnv: .*FIXTURE_SCANNER_PASSWORD/);
  });
});

describe('check-ua', () => {
  it('accepts a partner User-Agent and prints its parts', async () => {
    const r = await cli(['check-ua', EXAMPLE_UA]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^company: Contoso$/m);
    expect(r.stdout).toMatch(/^product: ContosoCognito$/m);
    expect(r.stdout).toMatch(/^version: 1\.0\.0$/m);
  });

  it('accepts a product name with hyphens', async () => {
    const r = await cli(['check-ua', 'MdePartner-JoeSecurity-JoeSecuritySandbox-AzureFunctionApp/4.4.1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^product: JoeSecuritySandbox-AzureFunctionApp$/m);
  });

  it.each([
    ['a library User-Agent', 'python-requests/2.32.3'],
    ['the legacy MdatpPartner form', 'MdatpPartner-Contoso-ContosoCognito/1.0.0'],
    ['the legacy M365DPartner form', 'M365DPartner-Contoso-ContosoCognito/1.0.0'],
  ])('exits 1 for %s', async (_name, ua) => {
    const r = await cli(['check-ua', ua]);
    expect(r.code).toBe(1);
  });

  it('names the upgrade for a legacy form', async () => {
    const r = await cli(['check-ua', 'MdatpPartner-Contoso-ContosoCognito/1.0.0']);
    expect(r.stdout).toContain(EXAMPLE_UA);
  });
});

describe('ca init', () => {
  it('creates ca.pem and a ca-key.pem only its owner can read, and keeps them on a second run', async () => {
    const dir = join(tmp('ca'), 'state');
    const r = await cli(['ca', 'init', '--state-dir', dir]);
    expect(r.code).toBe(0);
    const cert = join(dir, 'ca.pem');
    const key = join(dir, 'ca-key.pem');
    expect(r.stdout).toContain(cert);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(statSync(cert).mode & 0o022).toBe(0); // public, but nobody else may change it
    expect(readFileSync(cert, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const keyPem = readFileSync(key, 'utf8');

    const again = await cli(['ca', 'init', '--state-dir', dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already exists/);
    expect(readFileSync(key, 'utf8')).toBe(keyPem);

    const forced = await cli(['ca', 'init', '--force', '--state-dir', dir]);
    expect(forced.code).toBe(0);
    expect(readFileSync(key, 'utf8')).not.toBe(keyPem);
    expect(statSync(key).mode & 0o777).toBe(0o600);
  });
});

describe('env', () => {
  it('prints HTTPS_PROXY, NO_PROXY and the CA variables', async () => {
    const dir = tmp('env');
    const r = await cli(['env', '--state-dir', dir, '--listen', '127.0.0.1:3999']);
    expect(r.code).toBe(0);
    const vars = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      if (!line.startsWith('export ')) continue;
      for (const pair of line.slice(7).split(' ')) vars.set(pair.split('=')[0]!, pair.slice(pair.indexOf('=') + 1));
    }
    expect(vars.get('HTTPS_PROXY')).toBe('http://127.0.0.1:3999');
    expect(vars.get('https_proxy')).toBe('http://127.0.0.1:3999');
    expect(vars.get('NO_PROXY')).toMatch(/127\.0\.0\.1/);
    for (const name of ['CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE']) expect([name, vars.get(name)]).toEqual([name, join(dir, 'ca-bundle.pem')]);
    expect(vars.get('NODE_EXTRA_CA_CERTS')).toBe(join(dir, 'ca.pem'));
    expect(readFileSync(join(dir, 'ca-bundle.pem'), 'utf8')).toContain(readFileSync(join(dir, 'ca.pem'), 'utf8').trim());
  });

  it('builds ca-bundle.pem from the roots SSL_CERT_FILE names, not from a fixed Debian path', async () => {
    const dir = tmp('env-roots');
    const roots = join(dir, 'roots.pem');
    writeFileSync(roots, (await testPki()).msRoot.certPem);
    const r = await cli(['env', '--state-dir', dir], { SSL_CERT_FILE: roots });
    expect(r.code).toBe(0);
    const certs = readFileSync(join(dir, 'ca-bundle.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    expect(certs).toEqual([(await testPki()).msRoot.certPem.trim(), readFileSync(join(dir, 'ca.pem'), 'utf8').trim()]);
  });
});

describe('ca init --force from the environment', () => {
  it('replaces the CA when MDE_PARTNER_PROXY_FORCE is set, as --force does', async () => {
    const dir = join(tmp('ca-force'), 'state');
    expect((await cli(['ca', 'init', '--state-dir', dir])).code).toBe(0);
    const key = readFileSync(join(dir, 'ca-key.pem'), 'utf8');
    const kept = await cli(['ca', 'init', '--state-dir', dir], { MDE_PARTNER_PROXY_FORCE: 'false' });
    expect(kept.stdout).toMatch(/already exists/);
    expect(readFileSync(join(dir, 'ca-key.pem'), 'utf8')).toBe(key);
    const forced = await cli(['ca', 'init', '--state-dir', dir], { MDE_PARTNER_PROXY_FORCE: 'true' });
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/^Created interception CA/m);
    expect(readFileSync(join(dir, 'ca-key.pem'), 'utf8')).not.toBe(key);
  });
});

describe('unknown MDE_PARTNER_PROXY_* variables', () => {
  const stray = { MDE_PARTNER_PROXY_SERVICE_HOST: '10.0.0.1' };
  it.each([
    ['start', ['start', '--listen', '127.0.0.1:0', '--admin', 'off']],
    ['the default command', ['--listen', '127.0.0.1:0', '--admin', 'off']],
    ['check-ua', ['check-ua', EXAMPLE_UA]],
    ['ca init', ['ca', 'init']],
    ['env', ['env']],
    ['config check', ['config', 'check', join(FIXTURES, 'valid-minimal.yaml')]],
    ['explain', ['explain', 'https://api.security.microsoft.com/api/machines']],
    ['report', ['report', '--format', 'json']],
  ])('%s refuses to run: exit 2, one line naming the variable and a hint listing the known ones', async (_name, args) => {
    const dir = join(tmp('stray'), 'state');
    const r = await cli([...args, '--state-dir', dir], stray);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('mde-partner-proxy: unknown environment variable MDE_PARTNER_PROXY_SERVICE_HOST');
    expect(lines[1]).toMatch(/^Known: .*MDE_PARTNER_PROXY_CONFIG\b.*MDE_PARTNER_PROXY_UA\b/);
    expect(existsSync(dir)).toBe(false);
  });

  it('names the known variable a typo was meant to be', async () => {
    const dir = join(tmp('stray'), 'state');
    const r = await cli(['env', '--state-dir', dir], { MDE_PARTNER_PROXY_USERAGENT: FABRIKAM_UA });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('mde-partner-proxy: unknown environment variable MDE_PARTNER_PROXY_USERAGENT (did you mean MDE_PARTNER_PROXY_USER_AGENT?)');
    const doctor = await cli(['doctor', '--state-dir', dir, '--offline'], { MDE_PARTNER_PROXY_USERAGENT: FABRIKAM_UA });
    expect(doctor.stdout).toMatch(/^FAIL environment: unknown variable MDE_PARTNER_PROXY_USERAGENT \(did you mean MDE_PARTNER_PROXY_USER_AGENT\?\) \(fix: correct or unset it/m);
    expect(existsSync(dir)).toBe(false);
  });

  it('doctor reports it as a failed check with the fix', async () => {
    const dir = join(tmp('stray'), 'state');
    const r = await cli(['doctor', '--state-dir', dir, '--user-agent', FABRIKAM_UA, '--offline'], stray);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL +environment: unknown variable MDE_PARTNER_PROXY_SERVICE_HOST/m);
  });
});

describe('doctor', () => {
  /** Every exact host of the commercial catalogue: doctor reaches each one. */
  const HOSTS = [...createCatalogue(['commercial']).exact.keys()];
  /** A config that sends every enforced host to `target` (host:port) through upstream.resolve. */
  const doctorConfig = (dir: string, target: string, extra: string[] = [], trustOrigin = true): string => {
    const file = join(dir, 'doctor.yaml');
    writeFileSync(file, ['version: 1', 'products:', '  - { id: scanner, company: Fabrikam, product: Scanner, version: 2.0.0 }', 'upstream:',
      ...(trustOrigin ? [`  ca: ${msRootFile}`] : []), '  resolve:', ...HOSTS.map((h) => `    "${h}:443": "${target}"`), ...extra].join('\n'));
    return file;
  };
  const checkStatus = (out: string, name: string): string | undefined => out.split('\n').find((l) => l.slice(5).startsWith(`${name}: `))?.slice(0, 4).trim();
  const lineFor = (out: string, name: string): string => out.split('\n').find((l) => l.slice(5).startsWith(`${name}: `)) ?? `(no ${name} line in)\n${out}`;
  let stateDir: string;
  let caFile: string;

  beforeAll(async () => {
    stateDir = join(tmp('doctor-ca'), 'state');
    expect((await cli(['ca', 'init', '--state-dir', stateDir])).code).toBe(0);
    caFile = join(stateDir, 'ca.pem');
  }, 30_000);

  it('only looks: with no CA yet it reports the missing CA with the fix, and creates nothing', async () => {
    const dir = join(tmp('doctor'), 'state');
    const r = await cli(['doctor', '--state-dir', dir, '--user-agent', FABRIKAM_UA, '--offline']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL interception CA: .*no interception CA yet.*\(fix: mde-partner-proxy ca init\)$/m);
    expect(existsSync(dir)).toBe(false);
  });

  it('reports the CA created by ca init as present, without replacing it', async () => {
    const before = readFileSync(caFile, 'utf8');
    const r = await cli(['doctor', '--state-dir', stateDir, '--user-agent', FABRIKAM_UA, '--offline']);
    expect(r.stdout).toMatch(new RegExp(`^ok +interception CA: ${caFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
    expect(lineFor(r.stdout, 'CA validity')).toMatch(/^ok {3}CA validity: valid until \d{4}-\d\d-\d\d \(\d+ days\)$/);
    expect(readFileSync(caFile, 'utf8')).toBe(before);
  });

  it('passes with every host reached by DNS (upstream.resolve), TCP and TLS, the trust variables holding the CA and the clock in step; --json has the same checks', async () => {
    const config = doctorConfig(tmp('doctor-ok'), `127.0.0.1:${origin.port}`);
    const env = { SSL_CERT_FILE: join(stateDir, 'ca-bundle.pem'), NODE_EXTRA_CA_CERTS: caFile, REQUESTS_CA_BUNDLE: join(stateDir, 'ca-bundle.pem') };
    const before = origin.received.length;
    const r = await cli(['doctor', '--config', config, '--state-dir', stateDir], env);
    expect({ code: r.code, stderr: r.stderr, failed: r.stdout.split('\n').filter((l) => l.startsWith('FAIL')) }).toEqual({ code: 0, stderr: '', failed: [] });
    for (const host of HOSTS) {
      expect(lineFor(r.stdout, host)).toMatch(new RegExp(`^ok   ${host.replace(/\./g, '\\.')}: upstream\\.resolve → 127\\.0\\.0\\.1:${origin.port}, TCP, TLS TLSv1\\.[23] \\(issuer Test Microsoft Root\\)$`));
    }
    expect(origin.received.length - before).toBe(HOSTS.length);
    expect(origin.received.slice(before).every((q) => q.method === 'HEAD' && headerValues(q.rawHeaders, 'user-agent')[0] === FABRIKAM_UA)).toBe(true);
    expect(lineFor(r.stdout, 'clock')).toMatch(/^ok {3}clock: \d s (ahead of|behind) the Date of /);
    for (const name of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE']) expect(checkStatus(r.stdout, name)).toBe('ok');
    expect(checkStatus(r.stdout, 'CURL_CA_BUNDLE')).toBeUndefined(); // not set: not checked
    const json = await cli(['doctor', '--config', config, '--state-dir', stateDir, '--json'], env);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; checks: { name: string; status: string; message: string; fix: string | null }[] };
    expect(parsed.ok).toBe(true);
    expect(parsed.checks.map((c) => c.name)).toEqual(r.stdout.trimEnd().split('\n').map((l) => l.slice(5, l.indexOf(': '))));
    for (const c of parsed.checks) expect(Object.keys(c)).toEqual(['name', 'status', 'message', 'fix']);
  });

  it('passes --timeout and a comma-separated --host to the checks: a peer that never answers the handshake fails each host after that bound', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const hung = await cli(['doctor', '--config', doctorConfig(tmp('doctor-hang'), `127.0.0.1:${(silent.address() as AddressInfo).port}`), '--state-dir', stateDir,
        '--timeout', '300', '--host', 'api.security.microsoft.com,graph.microsoft.com']);
      expect(hung.code).toBe(1);
      for (const host of ['api.security.microsoft.com', 'graph.microsoft.com']) {
        expect(lineFor(hung.stdout, host)).toMatch(/, TCP, TLS failed: TLS handshake timed out after 300 ms \(fix: /);
      }
      expect(hung.stdout.split('\n').filter((l) => /^\S+ +[a-z.-]+\.microsoft\.(com|us): /.test(l))).toHaveLength(2);
      expect(checkStatus(hung.stdout, 'clock')).toBe('--');
    } finally {
      silent.close();
    }
  });

  it('exits 0 when the only finding is a warning (an admin listener beyond loopback)', async () => {
    const r = await cli(['doctor', '--state-dir', stateDir, '--user-agent', FABRIKAM_UA, '--offline', '--admin', '0.0.0.0:9464']);
    expect(r.stdout.split('\n').filter((l) => /^(WARN|FAIL) /.test(l)).map((l) => l.slice(0, l.indexOf(':')))).toEqual(['WARN admin listener']);
    expect(r.code).toBe(0);
  });

  it('reports every configuration mistake as a failed check (exit 1, not a usage error)', async () => {
    const r = await cli(['doctor', '--config', join(FIXTURES, 'invalid-five-mistakes.yaml'), '--offline']);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('FAIL configuration: '))).toHaveLength(5);
  });
});

describe('explain', () => {
  const lineOf = (out: string, key: string): string | undefined => out.split('\n').find((l) => l.startsWith(`${key}:`))?.replace(/^[^:]+:\s+/, '');

  it('says intercept and rewritten for an MDE API URL, with the User-Agent it would send', async () => {
    const r = await cli(['explain', 'https://api.security.microsoft.com/api/machines']);
    expect(r.code).toBe(0);
    expect(lineOf(r.stdout, 'CONNECT')).toMatch(/^intercept\b/);
    expect(lineOf(r.stdout, 'decision')).toMatch(/^rewritten\b/);
    expect(lineOf(r.stdout, 'api label')).toBe('machines');
    expect(r.stdout).toContain(`User-Agent →  ${EXAMPLE_UA}`);
  });

  it('says compliant when the client already sends the partner User-Agent', async () => {
    const r = await cli(['explain', 'https://api.security.microsoft.com/api/alerts', '--ua', 'MdePartner-Contoso-ContosoCognito/3.1']);
    expect(lineOf(r.stdout, 'decision')).toMatch(/^compliant\b/);
  });

  it('says tunnel for a token endpoint', async () => {
    const r = await cli(['explain', 'https://login.microsoftonline.com/x']);
    expect(r.code).toBe(0);
    expect(lineOf(r.stdout, 'CONNECT')).toMatch(/^tunnel\b/);
    expect(r.stdout).toMatch(/blind tunnel/);
    expect(r.stdout).not.toMatch(/^decision:/m);
  });

  it('says passed for a Graph path outside the security API', async () => {
    const r = await cli(['explain', 'https://graph.microsoft.com/v1.0/users']);
    expect(lineOf(r.stdout, 'decision')).toMatch(/^passed\b/);
  });

  it('honours MDE_PARTNER_PROXY_MODE and MDE_PARTNER_PROXY_USER_AGENT, and a flag wins over the variable', async () => {
    const env = { MDE_PARTNER_PROXY_MODE: 'reject', MDE_PARTNER_PROXY_USER_AGENT: FABRIKAM_UA };
    const r = await cli(['explain', 'https://api.security.microsoft.com/api/machines'], env);
    expect(r.code).toBe(0);
    expect(lineOf(r.stdout, 'decision')).toMatch(/^rejected\b/);
    expect(lineOf(r.stdout, 'product')).toContain(FABRIKAM_UA);
    const flag = await cli(['explain', 'https://api.security.microsoft.com/api/machines', '--mode', 'audit'], env);
    expect(lineOf(flag.stdout, 'decision')).toMatch(/^audited\b/);
  });

  it('honours MDE_PARTNER_PROXY_UA as --ua, and --ua wins over it', async () => {
    const url = 'https://api.security.microsoft.com/api/machines';
    const fromEnv = await cli(['explain', url], { MDE_PARTNER_PROXY_UA: 'curl/8.5.0' });
    expect(fromEnv.code).toBe(0);
    expect(lineOf(fromEnv.stdout, 'decision')).toBe('rewritten (non-partner-user-agent)');
    const compliant = await cli(['explain', url], { MDE_PARTNER_PROXY_UA: EXAMPLE_UA });
    expect(lineOf(compliant.stdout, 'decision')).toBe('compliant (compliant-user-agent)');
    const flag = await cli(['explain', url, '--ua', EXAMPLE_UA], { MDE_PARTNER_PROXY_UA: 'curl/8.5.0' });
    expect(lineOf(flag.stdout, 'decision')).toBe('compliant (compliant-user-agent)');
  });

  it('honours MDE_PARTNER_PROXY_PROXY_AUTHORIZATION as --proxy-authorization and never prints its value', async () => {
    const dir = tmp('explain-auth');
    const config = join(dir, 'config.yaml');
    writeFileSync(config, ['version: 1', 'products:',
      '  - { id: cognito, company: Contoso, product: ContosoCognito, version: 1.0.0, credentials: { username: cognito, password: pw-cognito-77 } }',
      '  - { id: scanner, company: Fabrikam, product: Scanner, version: 2.0.0, credentials: { username: scanner, password: pw-scanner-99 } }'].join('\n'));
    const url = 'https://api.security.microsoft.com/api/machines';
    const none = await cli(['explain', url, '--config', config]);
    expect(lineOf(none.stdout, 'identity')).toMatch(/^refused \(missing-credentials\) → 407/);
    const value = basicAuth('scanner', 'pw-scanner-99');
    const fromEnv = await cli(['explain', url, '--config', config], { MDE_PARTNER_PROXY_PROXY_AUTHORIZATION: value });
    expect(fromEnv.code).toBe(0);
    expect(lineOf(fromEnv.stdout, 'product')).toBe(`scanner (${FABRIKAM_UA})`);
    const flag = await cli(['explain', url, '--config', config, '--proxy-authorization', basicAuth('cognito', 'pw-cognito-77')], { MDE_PARTNER_PROXY_PROXY_AUTHORIZATION: value });
    expect(lineOf(flag.stdout, 'product')).toBe(`cognito (${EXAMPLE_UA})`);
    const json = await cli(['explain', url, '--config', config, '--json'], { MDE_PARTNER_PROXY_PROXY_AUTHORIZATION: value });
    for (const r of [fromEnv, flag, json]) {
      expect(r.stdout + r.stderr).not.toMatch(/pw-scanner-99|pw-cognito-77/);
      expect(r.stdout + r.stderr).not.toContain(value.slice(6));
    }
  });

  it('refuses http://127.0.0.1:8080/x as the running proxy does: 403 DestinationDenied, naming the reason', async () => {
    const r = await cli(['explain', 'http://127.0.0.1:8080/x']);
    expect(r.code).toBe(0);
    expect(lineOf(r.stdout, 'destination')).toBe('deny (loopback-destination)');
    expect(lineOf(r.stdout, 'response')).toBe('403 DestinationDenied: 127.0.0.1:8080 refused: it is a loopback address');
    expect(r.stdout).not.toMatch(/^decision:/m);
  });

  it('exits non-zero for something that is not an absolute URL', async () => {
    const r = await cli(['explain', 'api.security.microsoft.com/api/machines']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/absolute/);
  });
});

describe('explain agrees with a running proxy', () => {
  let p: Running;
  let config: string;
  beforeAll(async () => {
    const dir = tmp('explain-vs-proxy');
    config = resolveConfig(dir, `    "graph.microsoft.com:443": "127.0.0.1:${origin.port}"\notherHosts: deny`);
    p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', 'off']);
  }, 30_000);
  afterAll(() => {
    p?.child.kill('SIGKILL');
  });

  const explained = async (url: string, ua?: string): Promise<Explanation> => {
    const r = await cli(['explain', url, '--config', config, '--json', ...(ua !== undefined ? ['--ua', ua] : [])]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(r.stdout) as Explanation;
  };

  it.each([
    ['a loopback address over plain http', 'http://127.0.0.1:8080/x'],
    ['a disguised loopback address over plain http', 'http://2130706433:8080/x'],
    ['an unknown host over plain http (otherHosts: deny)', 'http://unknown.example/x'],
    ['a loopback address over https', 'https://127.0.0.1/x'],
    ['an IPv6 loopback address over https', 'https://[::1]/x'],
    ['a catalogue host on a port outside connectPorts', 'https://api.security.microsoft.com:8443/api/machines'],
    ['an unknown host over https (otherHosts: deny)', 'https://unknown.example/x'],
  ])('refuses %s with the status, code and message the proxy answers', async (_what, url) => {
    const x = await explained(url);
    const t = new URL(url);
    const authority = `${t.hostname}:${t.port !== '' ? t.port : t.protocol === 'https:' ? 443 : 80}`;
    const wire = t.protocol === 'https:'
      ? `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`
      : `GET ${url} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`;
    const answer = await rawExchange(Number(new URL(p.proxyUrl).port), wire);
    const body = jsonBodyOf(answer) as { error: { code: string; message: string } };
    expect(x.response).toEqual({ status: statusOf(answer), code: body.error.code, message: body.error.message });
    expect(x.response?.code).toBe('DestinationDenied');
    expect(x.connectsTo).toBeNull();
  });

  it.each([
    ['an MDE API call without a partner User-Agent', 'https://api.security.microsoft.com/api/machines', 'curl/8.5.0'],
    ['an MDE API call with the partner User-Agent', 'https://api.security.microsoft.com/api/alerts', EXAMPLE_UA],
    ['a Graph call outside the security API', 'https://graph.microsoft.com/v1.0/users', 'curl/8.5.0'],
  ])('forwards %s with the User-Agent explain predicts', async (_what, url, ua) => {
    const x = await explained(url, ua);
    expect(x.response).toBeNull();
    const res = await viaProxy(p.proxyUrl, readFileSync(p.caFile, 'utf8'), url, { headers: { 'user-agent': ua } });
    expect(res.status).toBe(200);
    expect(headerValues(res.echo!.rawHeaders, 'user-agent')).toEqual([x.userAgentSent ?? ua]);
  });
});

describe('start on the embedded identity', () => {
  let p: Running;
  let stateDir: string;

  beforeAll(async () => {
    stateDir = join(tmp('start'), 'state');
    // Only upstream.resolve and upstream.ca: no products, so the embedded example identity is used.
    const config = resolveConfig(tmp('cfg'));
    p = await startCli(['--config', config, '--state-dir', stateDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  }, 30_000);

  it('warns about the example identity and prints the CA path and the trust step', () => {
    const err = p.stderr();
    expect(err).toMatch(/WARNING: .*EXAMPLE identity MdePartner-Contoso-ContosoCognito\/1\.0\.0/);
    expect(p.caFile).toBe(join(stateDir, 'ca.pem'));
    expect(err).toContain(`Interception CA: ${p.caFile}`);
    expect(err).toContain(`curl --proxy ${p.proxyUrl} --cacert ${p.caFile} https://api.security.microsoft.com/api/machines`);
    expect(p.proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(logLines(p.stdout()).find((l) => l['event'] === 'example-identity')).toBeDefined();
  });

  it('serves the printed curl trust step: the origin receives the example partner User-Agent', async () => {
    const step = /^\s*(curl --proxy .*)$/m.exec(p.stderr())![1]!;
    const [cmd, ...args] = step.split(' ');
    const before = origin.received.length;
    const r = await run(cmd!, ['-sS', '--fail-with-body', ...args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const echo = JSON.parse(r.stdout) as { url: string; rawHeaders: string[] };
    expect(echo.url).toBe('/api/machines');
    expect(headerValues(echo.rawHeaders, 'user-agent')).toEqual([EXAMPLE_UA]);
    expect(origin.received.length).toBe(before + 1);
  });

  it('works for curl configured by `eval "$(mde-partner-proxy env)"`', async () => {
    const port = new URL(p.proxyUrl).port;
    const script = `eval "$("${process.execPath}" "${CLI}" env --state-dir "${stateDir}" --listen 127.0.0.1:${port})" && curl -sS --fail-with-body https://api.security.microsoft.com/api/alerts`;
    const r = await run('bash', ['-c', script]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(headerValues((JSON.parse(r.stdout) as { rawHeaders: string[] }).rawHeaders, 'user-agent')).toEqual([EXAMPLE_UA]);
  });

  it('writes one access line per exchange and one per tunnel end, with OpenTelemetry names and no header values but the User-Agent', async () => {
    const before = logLines(p.stdout()).length;
    const r = await run('curl', ['-sS', '--fail-with-body', '--proxy', p.proxyUrl, '--cacert', p.caFile, '-H', 'Authorization: Bearer eyJsecret.token', '-A', 'curl/8.5.0',
      'https://api.security.microsoft.com/api/alerts?$top=1&code=s3cr3t']);
    expect(r.code).toBe(0);
    const fresh = (): Record<string, unknown>[] => logLines(p.stdout()).slice(before);
    // The tunnel of this curl ends after its exchange; a previous test's tunnel line may still arrive first.
    const tunnel = await until(() => {
      const lines = fresh();
      const exchange = lines.findIndex((l) => l['event'] === 'exchange' && l['user_agent.original'] === 'curl/8.5.0');
      return exchange < 0 ? undefined : lines.slice(exchange).find((l) => l['event'] === 'tunnel');
    }, () => `an exchange line and then a tunnel line in\n${p.stdout()}`);
    const exchanges = fresh().filter((l) => l['event'] === 'exchange');
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0]).toMatchObject({
      'client.address': '127.0.0.1', 'http.request.method': 'GET', 'server.address': 'api.security.microsoft.com', 'server.port': 443,
      'url.path': '/api/alerts', 'http.response.status_code': 200, product: 'default', api: 'alerts', action: 'rewritten', mode: 'intercept',
      'user_agent.original': 'curl/8.5.0',
    });
    expect(exchanges[0]!['http.response.body.size']).toBeGreaterThan(0);
    expect(typeof exchanges[0]!['duration_ms']).toBe('number');
    expect(tunnel).toMatchObject({ 'client.address': '127.0.0.1', 'http.request.method': 'CONNECT', 'server.address': 'api.security.microsoft.com', action: 'intercepted', outcome: 'closed' });
    expect(tunnel['bytes_to_client']).toBeGreaterThan(0);
    const text = JSON.stringify(fresh());
    expect(text).not.toMatch(/eyJsecret|s3cr3t|\$top/);
  });

  it('is ready on /readyz', async () => {
    expect((await adminGet(p.adminUrl!, '/readyz')).status).toBe(200);
  });

  it('exports the CA expiry from its own CA and the unprefixed process metrics', async () => {
    const text = (await adminGet(p.adminUrl!, '/metrics')).text;
    const notAfter = Date.parse(new X509Certificate(readFileSync(p.caFile)).validTo) / 1000;
    expect(counter(text, 'mde_partner_proxy_ca_expiry_timestamp_seconds')).toBe(notAfter);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(text).not.toMatch(/^mde_partner_proxy_(process|nodejs)_/m);
  });

  // Last in this block: it stops the process.
  it('drains on SIGTERM: an in-flight request completes while /readyz fails, then it exits 0', async () => {
    const caPem = readFileSync(p.caFile, 'utf8');
    const slow = viaProxy(p.proxyUrl, caPem, 'https://api.security.microsoft.com/slow/1500');
    await until(() => (origin.received.some((r) => r.url === '/slow/1500') ? true : undefined), () => 'the slow request to reach the origin');
    p.child.kill('SIGTERM');
    const readyz = await until(async () => {
      const r = await adminGet(p.adminUrl!, '/readyz');
      return r.status === 503 ? r : undefined;
    }, () => '/readyz to fail');
    expect(JSON.parse(readyz.text)).toEqual({ status: 'draining' });
    const res = await slow;
    expect(res.status).toBe(200);
    expect(headerValues(res.echo!.rawHeaders, 'user-agent')).toEqual([EXAMPLE_UA]);
    // The drain timeout is 30 s; a finished exchange must not hold the exit that long.
    const exit = await within(p.exit, DEADLINE_MS);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(logLines(p.stdout()).map((l) => l['event'])).toEqual(expect.arrayContaining(['drain', 'stopped']));
  }, 30_000);
});

describe('start configured by environment variables', () => {
  let p: Running;
  beforeAll(async () => {
    p = await startCli([], {
      MDE_PARTNER_PROXY_CONFIG: resolveConfig(tmp('cfg')),
      MDE_PARTNER_PROXY_USER_AGENT: FABRIKAM_UA,
      MDE_PARTNER_PROXY_MODE: 'reject',
      MDE_PARTNER_PROXY_LISTEN: '127.0.0.1:0',
      MDE_PARTNER_PROXY_ADMIN: 'off',
      MDE_PARTNER_PROXY_STATE_DIR: join(tmp('envstart'), 'state'),
      MDE_PARTNER_PROXY_LOG_LEVEL: 'info',
    });
  }, 30_000);
  afterAll(() => {
    p?.child.kill('SIGKILL');
  });

  it('runs as the product named by MDE_PARTNER_PROXY_USER_AGENT, in MDE_PARTNER_PROXY_MODE', async () => {
    expect(p.stderr()).toMatch(/\(mode reject, 1 product\(s\)\)/);
    expect(p.stderr()).not.toMatch(/WARNING/);
    expect(p.adminUrl).toBeUndefined();
    const caPem = readFileSync(p.caFile, 'utf8');
    const before = origin.received.length;
    const rejected = await viaProxy(p.proxyUrl, caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': EXAMPLE_UA } });
    expect(rejected.status).toBe(403);
    expect(JSON.parse(rejected.text)).toMatchObject({ error: { code: 'PartnerUserAgentRequired' } });
    expect((JSON.parse(rejected.text) as { error: { message: string } }).error.message).toContain(FABRIKAM_UA);
    expect(origin.received.length).toBe(before);
    const ok = await viaProxy(p.proxyUrl, caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': FABRIKAM_UA } });
    expect(ok.status).toBe(200);
    expect(headerValues(ok.echo!.rawHeaders, 'user-agent')).toEqual([FABRIKAM_UA]);
  });
});

describe('reload on SIGHUP', () => {
  let p: Running;
  let config: string;
  let caPem: string;
  const products = ['products:', '  - id: cognito', '    company: Contoso', '    product: ContosoCognito', '    version: 1.0.0'].join('\n');
  const writeMode = (mode: string): void => {
    resolveConfig(dirname(config), `${products}\npolicy:\n  mode: ${mode}\n`);
  };
  const scrape = async (): Promise<string> => (await adminGet(p.adminUrl!, '/metrics')).text;
  const machines = () => viaProxy(p.proxyUrl, caPem, 'https://api.security.microsoft.com/api/machines', { headers: { 'user-agent': 'python-requests/2.32.3' } });
  const reloadLines = (trigger: string, result: string) =>
    logLines(p.stdout()).filter((l) => l['event'] === 'config-reload' && l['trigger'] === trigger && l['result'] === result);

  beforeAll(async () => {
    const dir = tmp('hup');
    config = resolveConfig(dir, `${products}\npolicy:\n  mode: rewrite\n`);
    p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    caPem = readFileSync(p.caFile, 'utf8');
  }, 30_000);
  afterAll(() => {
    p?.child.kill('SIGKILL');
  });

  it('applies a changed mode (rewrite → reject) and counts a successful reload', async () => {
    const first = await machines();
    expect(first.status).toBe(200);
    expect(headerValues(first.echo!.rawHeaders, 'user-agent')).toEqual([EXAMPLE_UA]);
    expect(counter(await scrape(), 'mde_partner_proxy_config_reloads_total{result="success"}')).toBe(0);

    writeMode('reject');
    p.child.kill('SIGHUP');
    await until(() => (reloadLines('SIGHUP', 'success').length > 0 ? true : undefined), () => `a SIGHUP reload line in\n${p.stdout()}`);
    expect(counter(await scrape(), 'mde_partner_proxy_config_reloads_total{result="success"}')).toBeGreaterThanOrEqual(1);
    const rejected = await machines();
    expect(rejected.status).toBe(403);
    expect(JSON.parse(rejected.text)).toMatchObject({ error: { code: 'PartnerUserAgentRequired' } });
  });

  it('refuses a broken config, counts the failure, and keeps serving the last good one', async () => {
    const before = origin.received.length;
    writeMode('bogus');
    p.child.kill('SIGHUP');
    await until(() => (reloadLines('SIGHUP', 'failure').length > 0 ? true : undefined), () => `a failed SIGHUP reload line in\n${p.stdout()}`);
    const failure = reloadLines('SIGHUP', 'failure')[0]!;
    expect(String(failure['cause'])).toMatch(/policy\.mode/);
    expect(counter(await scrape(), 'mde_partner_proxy_config_reloads_total{result="failure"}')).toBeGreaterThanOrEqual(1);
    expect(p.child.exitCode).toBeNull();
    const still = await machines();
    expect(still.status).toBe(403); // reject mode, from the last good config
    expect(origin.received.length).toBe(before);
    expect((await adminGet(p.adminUrl!, '/readyz')).status).toBe(200);
  });
});

describe('reload of settings that only a restart applies', () => {
  it('warns that a changed admin address or CA needs a restart, and keeps the admin listener where it is', async () => {
    const dir = tmp('restart-only');
    const ca = join(dir, 'ca');
    const made = await cli(['ca', 'init', '--state-dir', ca]);
    expect(made.code).toBe(0);
    const config = resolveConfig(dir, 'admin: 127.0.0.1:0\n');
    const p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0']);
    try {
      const restartLines = (): Record<string, unknown>[] =>
        logLines(p.stdout()).filter((l) => l['event'] === 'config-reload' && l['result'] === undefined && /restart/.test(String(l['msg'])));
      const reloadLines = (): Record<string, unknown>[] => logLines(p.stdout()).filter((l) => l['event'] === 'config-reload' && l['result'] === 'success');

      resolveConfig(dir, 'admin: 127.0.0.1:1\n');
      p.child.kill('SIGHUP');
      await until(() => (reloadLines().length >= 1 ? true : undefined), () => `a reload line in\n${p.stdout()}`);
      expect(restartLines().map((l) => String(l['msg']))).toEqual([expect.stringMatching(/admin/)]);
      expect((await adminGet(p.adminUrl!, '/readyz')).status).toBe(200);

      resolveConfig(dir, `admin: 127.0.0.1:1\nca:\n  cert: ${join(ca, 'ca.pem')}\n  key: ${join(ca, 'ca-key.pem')}\n`);
      p.child.kill('SIGHUP');
      await until(() => (reloadLines().length >= 2 ? true : undefined), () => `a second reload line in\n${p.stdout()}`);
      expect(restartLines().map((l) => String(l['msg']))).toEqual([expect.stringMatching(/admin/), expect.stringMatching(/CA/)]);
    } finally {
      p.child.kill('SIGKILL');
    }
  }, 30_000);

  it('asks for a restart when the set of reverse listeners changes, not when the same listeners are listed in another order', async () => {
    const dir = tmp('restart-reverse');
    const routes = (...hosts: string[]): string => `reverse:\n${hosts.map((h) => `  - listen: ${h}:0\n    upstream: https://api.security.microsoft.com\n`).join('')}`;
    const config = resolveConfig(dir, routes('127.0.0.1', '127.0.0.2'));
    const p = await startCli(['--config', config, '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin', 'off']);
    try {
      const restartLines = (): unknown[] => logLines(p.stdout()).filter((l) => l['event'] === 'config-reload' && /restart/.test(String(l['msg'])));
      const reloadLines = (): unknown[] => logLines(p.stdout()).filter((l) => l['event'] === 'config-reload' && l['result'] === 'success');
      resolveConfig(dir, routes('127.0.0.2', '127.0.0.1'));
      p.child.kill('SIGHUP');
      await until(() => (reloadLines().length >= 1 ? true : undefined), () => `a reload line in\n${p.stdout()}`);
      expect(restartLines()).toEqual([]);
      resolveConfig(dir, routes('127.0.0.2', '127.0.0.3'));
      p.child.kill('SIGHUP');
      await until(() => (reloadLines().length >= 2 ? true : undefined), () => `a second reload line in\n${p.stdout()}`);
      expect(restartLines()).toHaveLength(1);
    } finally {
      p.child.kill('SIGKILL');
    }
  }, 30_000);
});
