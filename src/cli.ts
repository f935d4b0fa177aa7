#!/usr/bin/env -S node --initial-old-space-size=128
// The command line: the only file that reads argv and the environment, prints usage or exits.
// It owns SIGTERM (drain) and SIGHUP / config-file changes (reload).
// The shebang gives V8 64 MiB of old space before its first full collection (only a limit: idle
// memory is unchanged), so incremental marking does not run under load from a small start-up
// heap and slow the young collections (bench/results.md). Node does not accept the flag in
// NODE_OPTIONS nor at run time; `npm start`, the bin, the container and the bench all start
// through this line.
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { envLines, proxyUrl, trustSteps, writeTrustBundle } from './client-setup.js';
import { ConfigError, loadConfig, normaliseConfig, type Config, type ConfigOverrides } from './config.js';
import { LOG_LEVELS } from './logger.js';
import { environmentCheck, runDoctor, type Check } from './doctor.js';
import { explainRequest, type Explanation } from './explain.js';
import { POLICY_MODES } from './policy.js';
import { loadInterceptionCa, runProxy } from './server.js';
import { formatAuthority, parseAbsoluteTarget } from './target.js';
import { parsePartnerUserAgent } from './user-agent.js';
import { isGuid } from './attribution.js';
import { runReport, type ReportCommandArgs } from './usage/report-command.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const ENV_PREFIX = 'MDE_PARTNER_PROXY';
/** The config JSON Schema shipped in the package, for the YAML language server line of normalised output. */
const SCHEMA_URL = fileURLToPath(new URL('../config/mde-partner-proxy.schema.json', import.meta.url));

interface CommonArgs {
  config?: string;
  listen?: string;
  admin?: string;
  mode?: string;
  userAgent?: string;
  logLevel?: string;
  stateDir?: string;
  usageStore?: string;
}

const out = (s: string): boolean => process.stdout.write(`${s}\n`);
const err = (s: string): boolean => process.stderr.write(`${s}\n`);

/** Command-line and MDE_PARTNER_PROXY_* values that win over the config file. */
function overridesOf(args: CommonArgs): ConfigOverrides {
  return {
    ...(args.listen !== undefined ? { listen: args.listen } : {}),
    ...(args.admin !== undefined ? { admin: args.admin } : {}),
    ...(args.mode !== undefined ? { mode: args.mode } : {}),
    ...(args.userAgent !== undefined ? { userAgent: args.userAgent } : {}),
    ...(args.logLevel !== undefined ? { logLevel: args.logLevel } : {}),
    ...(args.stateDir !== undefined ? { stateDir: args.stateDir } : {}),
    ...(args.usageStore !== undefined ? { usageStore: args.usageStore } : {}),
  };
}

/**
 * Where a config fault's value was set: an option path (`--listen`) whose value came from its
 * MDE_PARTNER_PROXY_* variable, not from the command line, is named by the variable.
 */
export function whereSet(path: string, argv: readonly string[], env: NodeJS.ProcessEnv): string {
  const name = path.startsWith('--') ? path.slice(2) : undefined;
  if (name === undefined || !(name in COMMON_OPTIONS)) return path;
  const alias = (COMMON_OPTIONS as Record<string, OptionSpec>)[name]!.alias;
  if (argv.some((a) => a === path || a.startsWith(`${path}=`) || (alias !== undefined && a === `-${alias}`))) return path;
  const variable = envVariable(name);
  return env[variable] === undefined || env[variable] === '' ? path : `${variable} (${path})`;
}

/** A ConfigError's faults, each path named as the user set it (whereSet). */
const faultsOf = (e: ConfigError): { path: string; message: string }[] =>
  e.all.map((f) => ({ path: whereSet(f.path, process.argv.slice(2), process.env), message: f.message }));

/** Loads the config or exits 2 naming each faulty field, one line each. */
function configFrom(args: CommonArgs): Config {
  try {
    return loadConfig(args.config, overridesOf(args));
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const problem of faultsOf(e)) err(`mde-partner-proxy: invalid configuration: ${problem.path}: ${problem.message}`);
      process.exit(2);
    }
    throw e;
  }
}

/** `start`: runs the proxy; SIGHUP reloads, SIGTERM and SIGINT drain (a second signal exits at once). */
async function start(args: CommonArgs): Promise<void> {
  const running = await runProxy(configFrom(args), {
    version: VERSION,
    loadConfig: () => loadConfig(args.config, overridesOf(args)),
    ...(args.config !== undefined ? { watchFile: args.config } : {}),
    say: err,
  });
  process.on('SIGHUP', () => running.reload('SIGHUP'));
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) {
      await running.abandon(signal);
      process.exit(1);
    }
    stopping = true;
    await running.stop(signal);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** `check-ua`: the parts of a User-Agent; exit 1 unless it is a current partner User-Agent. */
function checkUa(ua: string, args: { json?: boolean }): void {
  const parsed = parsePartnerUserAgent(ua);
  const upgrade = parsed?.legacy === true ? `MdePartner-${parsed.company}-${parsed.product}/${parsed.version}` : null;
  const valid = parsed !== undefined && !parsed.legacy;
  if (args.json === true) {
    out(JSON.stringify({ valid, userAgent: ua, partner: parsed === undefined ? null
      : { prefix: parsed.prefix, company: parsed.company, product: parsed.product, version: parsed.version, rest: parsed.rest, legacy: parsed.legacy }, upgrade }));
  } else if (parsed === undefined) {
    out(`not a partner User-Agent: ${JSON.stringify(ua.slice(0, 200))}`);
    out('expected: MdePartner-{Company}-{Product}/{Version}, e.g. MdePartner-Contoso-ContosoCognito/1.0.0');
  } else {
    out(`prefix:  ${parsed.prefix}${parsed.legacy ? ' (legacy form)' : ''}`);
    out(`company: ${parsed.company}`);
    out(`product: ${parsed.product}`);
    out(`version: ${parsed.version}`);
    if (parsed.rest !== '') out(`rest:    ${parsed.rest}`);
    if (upgrade !== null) out(`legacy form: Microsoft now asks for ${upgrade}; rewrite mode upgrades it`);
    else out('valid partner User-Agent');
  }
  if (!valid) process.exit(1);
}

async function caInit(args: CommonArgs & { force?: boolean }): Promise<void> {
  const config = configFrom(args);
  if (args.force) {
    const { rmSync } = await import('node:fs');
    rmSync(`${config.stateDir}/ca.pem`, { force: true });
    rmSync(`${config.stateDir}/ca-key.pem`, { force: true });
  }
  const loaded = await loadInterceptionCa(config);
  const bundleFile = writeTrustBundle(config.stateDir, loaded.ca.certPem);
  out(loaded.created ? `Created interception CA ${loaded.certFile} (key ${loaded.keyFile}, mode 0600)` : `Interception CA already exists: ${loaded.certFile} (use --force to replace it)`);
  out(trustSteps({ proxyUrl: proxyUrl(config), caFile: loaded.certFile, bundleFile }));
}

async function printEnv(args: CommonArgs): Promise<void> {
  const config = configFrom(args);
  const loaded = await loadInterceptionCa(config);
  const bundleFile = writeTrustBundle(config.stateDir, loaded.ca.certPem);
  for (const line of envLines({ proxyUrl: proxyUrl(config), caFile: loaded.certFile, bundleFile })) out(line);
}

/**
 * `config check FILE`: every fault the schema finds, each with its field path (exit 2), or the
 * configuration normalised as a file that passes `config check` itself. --offline does not read
 * secrets that live elsewhere (passwordFile, passwordEnv, upstream.ca), so a Kubernetes ConfigMap
 * can be checked in CI.
 */
function configCheck(file: string, args: CommonArgs & { offline?: boolean; json?: boolean }): void {
  let config: Config;
  try {
    config = loadConfig(file, overridesOf(args), process.env, { offline: args.offline === true });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (args.json === true) out(JSON.stringify({ valid: false, file, errors: faultsOf(e) }));
    else for (const problem of faultsOf(e)) err(`mde-partner-proxy: invalid configuration: ${problem.path}: ${problem.message}`);
    process.exit(2);
  }
  const normalised = normaliseConfig(config);
  if (args.json === true) out(JSON.stringify({ valid: true, file, config: normalised }));
  else out(`# yaml-language-server: $schema=${SCHEMA_URL}\n# normalised from ${config.source}${args.offline === true ? ' (--offline: secrets not read)' : ''}\n${stringify(normalised).trimEnd()}`);
}

interface ExplainArgs extends CommonArgs {
  ua?: string;
  proxyAuthorization?: string;
  app?: string;
  token?: string;
  json?: boolean;
}

/** The text form of an explanation: one `key: value` line per step the request reaches. */
function explanationText(x: Explanation): string[] {
  const lines = [`url:          ${x.url}`, `host kind:    ${x.hostKind}`];
  if (x.identity !== null && 'error' in x.identity) lines.push(`identity:     refused (${x.identity.error}) → ${x.response?.status ?? 407}`);
  if (x.connect !== null) lines.push(`CONNECT:      ${x.connect.action} (${x.connect.reason})`);
  if (x.destination !== null) lines.push(`destination:  ${x.destination.action} (${x.destination.reason})`);
  if (x.connect?.action === 'tunnel') lines.push('The request travels inside a blind tunnel: the proxy neither sees nor changes it.');
  if (x.token !== null) lines.push(`token:        tenant ${x.token.tenant}, app ${x.token.app}${x.token.appName !== '' ? ` (${x.token.appName})` : ''}`);
  if (x.identity !== null && 'product' in x.identity) {
    lines.push(`product:      ${x.identity.product} (${x.identity.userAgent})`);
    lines.push(`bound by:     ${x.identity.boundBy}${x.identity.boundBy === 'token-application' ? ` (application ${x.identity.app} is in products[].apps)` : ''}`);
  }
  if (x.decision !== null) lines.push(`decision:     ${x.decision.action} (${x.decision.reason})`);
  if (x.api !== null) lines.push(`api label:    ${x.api}`);
  if (x.userAgentSent !== null) lines.push(`User-Agent →  ${x.userAgentSent}`);
  if (x.response !== null) lines.push(`response:     ${x.response.status} ${x.response.code}: ${x.response.message}`);
  if (x.response !== null && x.connectsTo === null) lines.push('The proxy answers itself; nothing is sent upstream.');
  if (x.connectsTo !== null) lines.push(`connects to:  ${formatAuthority(x.connectsTo)}${x.connectsTo.overridden ? ' (upstream.resolve)' : ''}`);
  return lines;
}

/**
 * `explain URL`: runs the proxy's own decisions (explain.ts) on the request the options describe.
 * The Proxy-Authorization and the token are only read, never printed.
 */
function explain(url: string, args: ExplainArgs): void {
  if (args.app !== undefined && !isGuid(args.app)) usageError(`--app must be an Azure AD application id (a GUID), got ${JSON.stringify(String(args.app).slice(0, 60))}`, 'explain');
  if (parseAbsoluteTarget(url) === undefined) usageError(`not an absolute http(s) URL: ${JSON.stringify(url.slice(0, 200))}`, 'explain');
  const config = configFrom(args);
  const x = explainRequest(config.policy, { url, userAgent: args.ua, proxyAuthorization: args.proxyAuthorization, app: args.app, token: args.token });
  if (x === undefined) usageError(`not an absolute http(s) URL: ${JSON.stringify(url.slice(0, 200))}`, 'explain');
  out(args.json === true ? JSON.stringify(x) : explanationText(x).join('\n'));
}

interface DoctorArgs extends CommonArgs {
  json?: boolean;
  offline?: boolean;
  timeout?: string;
  host?: string | string[];
}

/** The text form of a check: status, name, message and, when not ok, the fix, on one line. */
function checkLine(c: Check): string {
  const status = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: '--  ' }[c.status];
  return `${status} ${c.name}: ${c.message}${c.fix !== null ? ` (fix: ${c.fix})` : ''}`;
}

/**
 * `doctor`: every check on its own line (doctor.ts), exit 1 when any failed. It only looks; a stray
 * MDE_PARTNER_PROXY_* variable or an invalid configuration is a failed check, not a usage error.
 */
async function doctor(args: DoctorArgs): Promise<void> {
  const timeoutMs = args.timeout === undefined ? 5000 : Number(args.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) usageError(`--timeout must be milliseconds between 1 and 600000, got ${JSON.stringify(String(args.timeout))}`, 'doctor');
  const hosts = (args.host === undefined ? [] : Array.isArray(args.host) ? args.host : [args.host]).flatMap((h) => h.split(',')).map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
  const checks: Check[] = [environmentCheck(withGuesses(unknownVariables(process.env)), KNOWN_VARIABLES)];
  let config: Config | undefined;
  try {
    config = loadConfig(args.config, overridesOf(args));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const problem of faultsOf(e)) checks.push({ name: 'configuration', status: 'fail', message: `${problem.path}: ${problem.message}`, fix: `mde-partner-proxy config check ${args.config ?? ''} lists every problem with its path`.replace('  ', ' ') });
  }
  if (config !== undefined) checks.push(...await runDoctor(config, { env: process.env, offline: args.offline === true, timeoutMs, hosts }));
  const ok = checks.every((c) => c.status !== 'fail');
  if (args.json === true) out(JSON.stringify({ ok, checks }));
  else for (const c of checks) out(checkLine(c));
  process.exit(ok ? 0 : 1);
}

async function report(args: CommonArgs & ReportCommandArgs): Promise<void> {
  const config = configFrom(args);
  const code = await runReport(config, VERSION, args, { out, err });
  if (code !== 0) process.exit(code);
}

/** The options every command takes; yargs and the `start` fast path both read this table. */
const COMMON_OPTIONS = {
  config: { type: 'string', alias: 'c', describe: 'YAML config file (version: 1)' },
  listen: { type: 'string', describe: 'proxy listen address host:port (default 127.0.0.1:3128)' },
  admin: { type: 'string', describe: 'admin listen address host:port, or off (default 127.0.0.1:9464)' },
  mode: { type: 'string', choices: POLICY_MODES, describe: 'policy mode' },
  'user-agent': { type: 'string', describe: 'the one product, e.g. MdePartner-Contoso-ContosoCognito/1.0.0' },
  'log-level': { type: 'string', choices: LOG_LEVELS, describe: 'log level' },
  'state-dir': { type: 'string', describe: 'where the interception CA lives' },
  'usage-store': { type: 'string', describe: 'usage store: none, a postgres:// URL, or a SQLite file (default usage.db in the state directory)' },
} as const;

const JSON_OPTION = { json: { type: 'boolean', describe: 'print the result as one JSON object (shape in docs/cli.md)' } } as const;

/** The options of each command beyond the common ones; every one also reads MDE_PARTNER_PROXY_<OPTION>. */
const COMMAND_OPTIONS = {
  'check-ua': { ...JSON_OPTION },
  'ca init': { force: { type: 'boolean', describe: 'replace an existing CA' } },
  'config check': {
    offline: { type: 'boolean', describe: 'do not read secrets kept elsewhere (passwordFile, passwordEnv, upstream.ca)' },
    ...JSON_OPTION,
  },
  explain: {
    ua: { type: 'string', describe: 'the User-Agent the client sends' },
    'proxy-authorization': { type: 'string', describe: 'the Proxy-Authorization the client sends (never printed)' },
    app: { type: 'string', describe: 'the Azure AD application id in the caller\'s token (binds by products[].apps)' },
    token: { type: 'string', describe: 'the caller\'s bearer token: its tenant and application are read (never checked, stored or printed)' },
    ...JSON_OPTION,
  },
  doctor: {
    offline: { type: 'boolean', describe: 'skip the network checks (DNS, TCP, TLS, clock)' },
    timeout: { type: 'string', describe: 'bound on each network stage of each host, in milliseconds (default 5000)' },
    host: { type: 'string', describe: 'reach only this host (repeat or comma-separate; default: every exact host of the catalogue)' },
    ...JSON_OPTION,
  },
  report: {
    from: { type: 'string', describe: 'start of the period, ISO 8601 date or date-time (UTC unless an offset is given); default 30 days before --to' },
    to: { type: 'string', describe: 'end of the period, excluded; default now' },
    format: { type: 'string', choices: ['html', 'json', 'csv'], describe: 'output format (default html)' },
    out: { type: 'string', describe: 'write to this file instead of stdout' },
    store: { type: 'string', describe: 'usage store to read: a SQLite file or a postgres:// URL (default: usage.store of the config)' },
    prometheus: { type: 'string', describe: 'compute the report for every replica from this Prometheus server instead (http://host:9090)' },
  },
} as const;

interface OptionSpec { readonly type: 'string' | 'boolean'; readonly alias?: string; readonly describe: string; readonly choices?: readonly string[] }

type CommonOption = keyof typeof COMMON_OPTIONS;
const envVariable = (name: string): string => `${ENV_PREFIX}_${name.replace(/-/g, '_').toUpperCase()}`;
const camel = (name: string): string => name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Every MDE_PARTNER_PROXY_* variable the CLI reads, sorted: one per option of any command. */
export const KNOWN_VARIABLES: readonly string[] = [...new Set([COMMON_OPTIONS, ...Object.values(COMMAND_OPTIONS)]
  .flatMap((table) => Object.keys(table).map(envVariable)))].sort();

/** The MDE_PARTNER_PROXY_* variables of env that are no option of any command. */
export function unknownVariables(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(env).filter((name) => name.startsWith(`${ENV_PREFIX}_`) && !KNOWN_VARIABLES.includes(name)).sort();
}

/** The command words of the CLI: top-level commands, and the subcommands of the two groups. */
const COMMANDS: Readonly<Record<string, readonly string[]>> = {
  start: [], 'check-ua': [], ca: ['init'], env: [], config: ['check'], explain: [], doctor: [], report: [], completion: [],
};

/** Options that take a value, so the word after them is not a command. */
const VALUE_OPTIONS = new Set([COMMON_OPTIONS, ...Object.values(COMMAND_OPTIONS)].flatMap((table) =>
  Object.entries(table as Record<string, OptionSpec>).filter(([, spec]) => spec.type === 'string').flatMap(([name, spec]) => [`--${name}`, ...(spec.alias !== undefined ? [`-${spec.alias}`] : [])])));

/** The command words in argv (`['ca', 'init']`), and the first word that names no command, if any. */
export function commandWords(argv: readonly string[]): { words: string[]; unknown?: string } {
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') break;
    if (token.startsWith('-')) {
      if (!token.includes('=') && VALUE_OPTIONS.has(token)) i++;
      continue;
    }
    positionals.push(token);
  }
  const [first, second] = positionals;
  if (first === undefined) return { words: [] };
  const subcommands = COMMANDS[first];
  if (subcommands === undefined) return { words: [], unknown: first };
  if (subcommands.length === 0 || second === undefined) return { words: [first] };
  return subcommands.includes(second) ? { words: [first, second] } : { words: [first], unknown: second };
}

/** A mistake in how the CLI was called: one line, then a hint; exit 2. */
class UsageError extends Error {
  readonly hint: string;
  constructor(message: string, hint: string) {
    super(message);
    this.name = 'UsageError';
    this.hint = hint;
  }
}

const helpHint = (words: readonly string[]): string => `Run 'mde-partner-proxy ${[...words, '--help'].join(' ')}' for usage.`;

/** Stops with a usage error about the named command (e.g. 'explain', 'ca init'). */
function usageError(message: string, command: string): never {
  throw new UsageError(message, helpHint(command.split(' ')));
}

/** The positional argument of each command that takes one, for 'missing argument <url>'. */
const POSITIONALS: Readonly<Record<string, string>> = { 'check-ua': '<user-agent>', explain: '<url>', 'config check': '<file>' };

/** yargs' usage message in our words, on one line: what is wrong and with which option or argument. */
export function usageMessage(msg: string, argv: readonly string[], words: readonly string[]): string {
  const line = msg.replace(/\s*\n\s*/g, ' ').trim();
  if (/^Not enough non-option arguments/.test(line)) return `missing argument ${POSITIONALS[words.join(' ')] ?? ''}`.trim();
  const choice = /^Invalid values: Argument: (\S+), Given: ("[^"]*"), Choices: (.*)$/.exec(line);
  if (choice !== null) return `--${choice[1]!} ${choice[2]!} is not one of ${choice[3]!.replace(/"/g, '')}`;
  const unknown = /^Unknown arguments?: (.*)$/.exec(line);
  if (unknown !== null) {
    return unknown[1]!.split(', ').map((name) => {
      const given = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `-${name}`);
      return given !== undefined ? `unknown option ${given.split('=')[0]!}` : `unexpected argument ${JSON.stringify(name)}`;
    }).join('; ');
  }
  return line;
}

/** Levenshtein distance between two short strings. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The known variable a stray one is most likely a typo of, if any: one edit per four characters of
 * the option's name (at least one), so `…_USERAGENT` finds `…_USER_AGENT` but Kubernetes'
 * `…_PORT` does not pass for `…_HOST`.
 */
export function likelyMeant(variable: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of KNOWN_VARIABLES) {
    const distance = editDistance(variable, name);
    const allowed = Math.max(1, Math.floor((name.length - ENV_PREFIX.length - 1) / 4));
    if (distance <= allowed && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Refuses to run with a stray MDE_PARTNER_PROXY_* variable (doctor reports it as a check instead). */
function refuseUnknownVariables(env: NodeJS.ProcessEnv): void {
  const stray = unknownVariables(env);
  if (stray.length === 0) return;
  throw new UsageError(`unknown environment variable ${withGuesses(stray).join(', ')}`, `Known: ${KNOWN_VARIABLES.join(', ')}`);
}

/** Stray variable names, each followed by the known one it is likely a typo of. */
function withGuesses(stray: readonly string[]): string[] {
  return stray.map((v) => {
    const meant = likelyMeant(v);
    return meant === undefined ? v : `${v} (did you mean ${meant}?)`;
  });
}

/** A boolean option's value from its environment variable. */
function envBoolean(variable: string, value: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new UsageError(`${variable} must be true or false, got ${JSON.stringify(value.slice(0, 60))}`, 'Unset it or set it to true or false.');
}

/**
 * `start` with nothing but the common options, each given at most once in a plain form, parsed with
 * node:util instead of yargs: the way a service manager, a container or `npm start` runs the proxy.
 * A long-running proxy need not load and carry yargs (start-up time and idle memory). Anything else (another
 * command, --help, an unknown or repeated option, a value outside its choices, a stray
 * MDE_PARTNER_PROXY_* variable) returns undefined and goes to yargs, which owns the usage text and
 * the error messages.
 */
export function startArgs(argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): CommonArgs | undefined {
  if (unknownVariables(environment).length > 0) return undefined;
  const rest = argv[0] === 'start' ? argv.slice(1) : argv;
  const options: Record<string, { type: 'string'; short?: string }> = {};
  for (const [name, spec] of Object.entries(COMMON_OPTIONS)) options[name] = { type: 'string', ...('alias' in spec ? { short: spec.alias } : {}) };
  const parsed = (() => {
    try {
      return parseArgs({ args: [...rest], options, strict: true, allowPositionals: false, tokens: true });
    } catch {
      return undefined;
    }
  })();
  if (parsed === undefined) return undefined;
  const given = parsed.tokens.filter((t) => t.kind === 'option').map((t) => t.name);
  if (new Set(given).size !== given.length) return undefined;
  const args: Record<string, string> = {};
  for (const [name, spec] of Object.entries(COMMON_OPTIONS) as [CommonOption, (typeof COMMON_OPTIONS)[CommonOption]][]) {
    const fromEnv = environment[envVariable(name)];
    const value = (parsed.values as Record<string, string | undefined>)[name] ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
    if (value === undefined) continue;
    if ('choices' in spec && !(spec.choices as readonly string[]).includes(value)) return undefined;
    args[camel(name)] = value;
  }
  return args;
}

/**
 * Every option also reads MDE_PARTNER_PROXY_<OPTION>; the command line wins. Only the known
 * options are read: yargs' own env() would turn any stray variable (Kubernetes injects
 * MDE_PARTNER_PROXY_SERVICE_HOST for a Service of that name) into an unknown-argument error.
 */
function withEnvDefaults(options: Readonly<Record<string, OptionSpec>>): Record<string, OptionSpec & { default?: string | boolean }> {
  const result: Record<string, OptionSpec & { default?: string | boolean }> = {};
  for (const [name, spec] of Object.entries(options)) {
    const variable = envVariable(name);
    const value = process.env[variable];
    const fromEnv = value === undefined || value === '' ? undefined : spec.type === 'boolean' ? envBoolean(variable, value) : value;
    result[name] = { ...spec, describe: `${spec.describe} [env ${variable}]`, ...(fromEnv !== undefined ? { default: fromEnv } : {}) };
  }
  return result;
}

/** Wraps a command handler: a stray MDE_PARTNER_PROXY_* variable stops every command but doctor. */
function guarded<A>(handler: (a: A) => void | Promise<void>): (a: A) => Promise<void> {
  return async (a) => {
    refuseUnknownVariables(process.env);
    await handler(a);
  };
}

/** Builds the yargs program (loaded on demand: see startArgs); exported so tests can run commands in-process. */
export async function program(argv: string[]) {
  const { default: yargs } = await import('yargs');
  const options = (name: keyof typeof COMMAND_OPTIONS) => withEnvDefaults(COMMAND_OPTIONS[name]);
  const cli = yargs(argv);
  return cli
    .scriptName('mde-partner-proxy')
    .options(withEnvDefaults(COMMON_OPTIONS as Readonly<Record<string, OptionSpec>>))
    .command(['start', '$0'], 'run the proxy (default command)', {}, guarded((a) => start(a as CommonArgs)))
    .command('check-ua <user-agent>', 'parse a User-Agent; exit 0 when it is a valid partner User-Agent', (y) => y
      .positional('user-agent', { type: 'string', demandOption: true }).options(options('check-ua')),
    guarded((a) => checkUa(String(a['user-agent'] ?? a.userAgent), a as { json?: boolean })))
    .command('ca', 'manage the interception CA', (y) => y
      .command('init', 'create the interception CA under the state directory', (z) => z.options(options('ca init')),
        guarded((a) => caInit(a as CommonArgs & { force?: boolean })))
      .demandCommand(1, 'name a ca command: init'))
    .command('env', 'print shell lines that point clients at the proxy and its CA', {}, guarded((a) => printEnv(a as CommonArgs)))
    .command('config', 'work with config files', (y) => y
      .command('check <file>', 'validate a config file and print it normalised (every fault, with its path)', (z) => z
        .positional('file', { type: 'string', demandOption: true }).options(options('config check')),
      guarded((a) => configCheck(String(a.file), a as CommonArgs & { offline?: boolean; json?: boolean })))
      .demandCommand(1, 'name a config command: check'))
    .command('explain <url>', 'what the proxy would do with a request to a URL, and why', (y) => y
      .positional('url', { type: 'string', demandOption: true }).options(options('explain')),
    guarded((a) => explain(String(a.url), a as ExplainArgs)))
    .command('doctor', 'check the configuration, the CA and the trust setup', (y) => y.options(options('doctor')), (a) => doctor(a as DoctorArgs))
    .command('report', 'the compliance report from the usage store (or --prometheus for a fleet); default: the last 30 days, HTML to stdout', (y) => y
      .options(options('report'))
      .conflicts('store', 'prometheus'),
    guarded((a) => report(a as CommonArgs & ReportCommandArgs)))
    .command('completion', 'print the bash/zsh completion script: mde-partner-proxy completion >> ~/.bashrc', {}, guarded(() => {
      cli.showCompletionScript();
    }))
    // yargs answers --get-yargs-completions (the script calls it) once completion is on; its own
    // completion command would ignore --help, so ours prints the script.
    .completion('get-yargs-completions', false)
    .strict()
    // Usage is for usage mistakes: one line and a hint. A fault inside a command (a busy port, an
    // unreadable CA) is thrown on to the one-line catch of the entry point.
    .fail((msg, e) => {
      if (e) throw e;
      const { words, unknown } = commandWords(argv);
      if (unknown !== undefined) throw new UsageError(`unknown command ${JSON.stringify([...words, unknown].join(' '))}`, helpHint(words));
      throw new UsageError(usageMessage(msg, argv, words), helpHint(words));
    })
    .version(VERSION)
    .alias('v', 'version')
    .help()
    .alias('h', 'help');
}

// npx, npm -g and node_modules/.bin start the CLI through a symlink: compare real paths.
const isMain = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (isMain) {
  // `mde-partner-proxy check-ua … | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(0) : undefined));
  const argv = process.argv.slice(2);
  const quick = startArgs(argv);
  const run = async (): Promise<void> => {
    if (quick !== undefined) return start(quick);
    await (await program(argv)).parseAsync();
  };
  run().catch((e: unknown) => {
    if (e instanceof UsageError) {
      err(`mde-partner-proxy: ${e.message}`);
      err(e.hint);
      process.exit(2);
    }
    err(`mde-partner-proxy: ${(e as Error).message}`);
    process.exit(1);
  });
}
