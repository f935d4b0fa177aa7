// The `start` fast path of the command line: node:util parses the plain forms, and everything else
// is left to yargs (undefined), which owns usage text and error messages.
import { KNOWN_VARIABLES, commandWords, likelyMeant, startArgs, unknownVariables, whereSet } from '../../src/cli.js';

const UA = 'MdePartner-Fabrikam-Sentinel/2.1.0';

describe('startArgs', () => {
  it.each<[string[], Record<string, string>]>([
    [['start'], {}],
    [[], {}],
    [['start', '--config', '/etc/p.yaml'], { config: '/etc/p.yaml' }],
    [['start', '-c', '/etc/p.yaml'], { config: '/etc/p.yaml' }],
    [['--config=/etc/p.yaml'], { config: '/etc/p.yaml' }],
    [['start', '--listen', '127.0.0.1:0', '--admin', 'off', '--mode', 'reject', '--user-agent', UA, '--log-level', 'debug', '--state-dir', '/tmp/s'],
      { listen: '127.0.0.1:0', admin: 'off', mode: 'reject', userAgent: UA, logLevel: 'debug', stateDir: '/tmp/s' }],
  ])('parses %j', (argv, expected) => {
    expect(startArgs(argv, {})).toEqual(expected);
  });

  it('reads MDE_PARTNER_PROXY_* for options not given, and a flag wins over its variable', () => {
    const env = { MDE_PARTNER_PROXY_MODE: 'audit', MDE_PARTNER_PROXY_USER_AGENT: UA, MDE_PARTNER_PROXY_STATE_DIR: '' };
    expect(startArgs(['start', '--mode', 'reject'], env)).toEqual({ mode: 'reject', userAgent: UA });
  });

  it.each<[string, string[], Record<string, string>]>([
    ['another command', ['check-ua', UA], {}],
    ['a subcommand', ['ca', 'init'], {}],
    ['help', ['start', '--help'], {}],
    ['version', ['--version'], {}],
    ['an unknown option', ['start', '--lisen', '127.0.0.1:0'], {}],
    ['a camelCase spelling', ['start', '--userAgent', UA], {}],
    ['a repeated option', ['start', '--listen', 'a:1', '--listen', 'b:2'], {}],
    ['an option without its value', ['start', '--config'], {}],
    ['a positional', ['start', 'extra'], {}],
    ['a mode outside its choices', ['start', '--mode', 'bogus'], {}],
    ['a log level outside its choices, from the environment', ['start'], { MDE_PARTNER_PROXY_LOG_LEVEL: 'loud' }],
    ['a stray MDE_PARTNER_PROXY_* variable (refused there)', ['start'], { MDE_PARTNER_PROXY_SERVICE_HOST: '10.0.0.1' }],
  ])('leaves %s to yargs', (_what, argv, env) => {
    expect(startArgs(argv, env)).toBeUndefined();
  });
});

describe('whereSet', () => {
  const env = { MDE_PARTNER_PROXY_LISTEN: 'nowhere', MDE_PARTNER_PROXY_CONFIG: '/etc/p.yaml', MDE_PARTNER_PROXY_MODE: '' };
  it.each<[string, string[], string]>([
    ['--listen', [], 'MDE_PARTNER_PROXY_LISTEN (--listen)'],
    ['--listen', ['start', '--listen', 'x'], '--listen'],
    ['--listen', ['start', '--listen=x'], '--listen'],
    ['--mode', [], '--mode'], // an empty variable is not read
    ['--user-agent', [], '--user-agent'], // no variable set
    ['--config', ['-c', '/x.yaml'], '--config'], // the alias on the command line
    ['--config', [], 'MDE_PARTNER_PROXY_CONFIG (--config)'],
    ['listen', [], 'listen'], // a field of the file
    ['--timeout', [], '--timeout'], // not a common option
  ])('%s with argv %j → %s', (path, argv, expected) => {
    expect(whereSet(path, argv, env)).toBe(expected);
  });
});

describe('unknownVariables', () => {
  it('names the MDE_PARTNER_PROXY_* variables that are no option of any command, and only those', () => {
    const env = { MDE_PARTNER_PROXY_SERVICE_HOST: '10.0.0.1', MDE_PARTNER_PROXY_PORT: 'tcp://10.0.0.1:3128', MDE_PARTNER_PROXY_UA: 'curl/8.5.0',
      MDE_PARTNER_PROXY_FORCE: 'true', MDE_PARTNER_PROXY_CONFIG: '/etc/p.yaml', PATH: '/bin', MDE_PARTNER_PROXYX: '1' };
    expect(unknownVariables(env)).toEqual(['MDE_PARTNER_PROXY_PORT', 'MDE_PARTNER_PROXY_SERVICE_HOST']);
  });

  it('knows one variable per option, the common ones and every command\'s', () => {
    expect(KNOWN_VARIABLES).toEqual(expect.arrayContaining(['MDE_PARTNER_PROXY_CONFIG', 'MDE_PARTNER_PROXY_USER_AGENT', 'MDE_PARTNER_PROXY_FORCE', 'MDE_PARTNER_PROXY_UA',
      'MDE_PARTNER_PROXY_PROXY_AUTHORIZATION', 'MDE_PARTNER_PROXY_OFFLINE', 'MDE_PARTNER_PROXY_JSON', 'MDE_PARTNER_PROXY_FORMAT']));
    expect([...KNOWN_VARIABLES].sort()).toEqual(KNOWN_VARIABLES);
  });
});

describe('commandWords', () => {
  it.each<[string[], { words: string[]; unknown?: string }]>([
    [[], { words: [] }],
    [['--listen', '127.0.0.1:0'], { words: [] }],
    [['explain', 'https://x/'], { words: ['explain'] }],
    [['--config', 'explain', 'doctor'], { words: ['doctor'] }],
    [['-c', 'f.yaml', 'ca', 'init', '--force'], { words: ['ca', 'init'] }],
    [['--config=f.yaml', 'config', 'check', 'f.yaml'], { words: ['config', 'check'] }],
    [['ca'], { words: ['ca'] }],
    [['ca', 'list'], { words: ['ca'], unknown: 'list' }],
    [['bogus', 'doctor'], { words: [], unknown: 'bogus' }],
    [['--json', 'doctor'], { words: ['doctor'] }],
  ])('finds the command words of %j', (argv, expected) => {
    expect(commandWords(argv)).toEqual(expected);
  });
});

describe('likelyMeant', () => {
  it.each<[string, string | undefined]>([
    ['MDE_PARTNER_PROXY_USERAGENT', 'MDE_PARTNER_PROXY_USER_AGENT'],
    ['MDE_PARTNER_PROXY_LOGLEVEL', 'MDE_PARTNER_PROXY_LOG_LEVEL'],
    ['MDE_PARTNER_PROXY_CONFG', 'MDE_PARTNER_PROXY_CONFIG'],
    ['MDE_PARTNER_PROXY_STATEDIR', 'MDE_PARTNER_PROXY_STATE_DIR'],
    ['MDE_PARTNER_PROXY_SERVICE_HOST', undefined],
    ['MDE_PARTNER_PROXY_PORT_3128_TCP', undefined],
    ['MDE_PARTNER_PROXY_PORT', undefined],
    ['MDE_PARTNER_PROXY_SERVICE_PORT', undefined],
  ])('%s → %s', (variable, meant) => {
    expect(likelyMeant(variable)).toBe(meant);
  });
});
