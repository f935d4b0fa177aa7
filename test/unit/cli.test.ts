// The `start` fast path of the command line: node:util parses the plain forms, and everything else
// is left to yargs (undefined), which owns usage text and error messages.
import { startArgs } from '../../src/cli.js';

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
    const env = { MDE_PARTNER_PROXY_MODE: 'audit', MDE_PARTNER_PROXY_USER_AGENT: UA, MDE_PARTNER_PROXY_STATE_DIR: '', MDE_PARTNER_PROXY_SERVICE_HOST: '10.0.0.1' };
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
  ])('leaves %s to yargs', (_what, argv, env) => {
    expect(startArgs(argv, env)).toBeUndefined();
  });
});
