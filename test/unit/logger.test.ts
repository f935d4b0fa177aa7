import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { ExchangeEvent } from '../../src/events.js';
import { LOG_FIELDS, MAX_LOGGED_VALUE, createLogObserver, createLogger, flushLogger, type LogLevel } from '../../src/logger.js';
import { exchangeEvent, tunnelEvent } from '../helpers/events.js';

/** A logger writing to memory, and the parsed lines written so far. */
function capture(level: LogLevel = 'info'): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[]; raw: () => string } {
  const stream = new PassThrough();
  let raw = '';
  stream.on('data', (d: Buffer) => (raw += d.toString()));
  const logger = createLogger({ level, destination: stream });
  const lines = (): Record<string, unknown>[] =>
    raw
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, raw: () => raw };
}

/** A rewritten exchange as the logger tests expect it. */
function exchange(over: Partial<ExchangeEvent> = {}): ExchangeEvent {
  return exchangeEvent({ action: 'rewritten', reason: 'user-agent-missing', userAgent: 'python-requests/2.32.3', durationMs: 12.3456789, ...over });
}

describe('createLogObserver', () => {
  it('writes one info line per exchange with the canonical fields', () => {
    const { logger, lines } = capture();
    createLogObserver(logger).exchangeEnd?.(exchange());
    const out = lines();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      level: 'info',
      msg: 'exchange',
      [LOG_FIELDS.event]: 'exchange',
      [LOG_FIELDS.product]: 'cognito',
      [LOG_FIELDS.api]: 'machines',
      [LOG_FIELDS.method]: 'GET',
      [LOG_FIELDS.status]: 200,
      [LOG_FIELDS.action]: 'rewritten',
      [LOG_FIELDS.reason]: 'user-agent-missing',
      [LOG_FIELDS.mode]: 'intercept',
      [LOG_FIELDS.host]: 'api.security.microsoft.com',
      [LOG_FIELDS.userAgent]: 'python-requests/2.32.3',
      [LOG_FIELDS.durationMs]: 12.346,
    });
    expect(out[0]).not.toHaveProperty(LOG_FIELDS.error);
    expect(typeof out[0]?.time).toBe('string');
  });

  it.each([
    ['an upstream failure', 'warn', { status: 502, error: 'UpstreamUnreachable' }],
    ['an upstream timeout', 'warn', { status: 504, error: 'UpstreamTimeout' }],
    ['a 429 from Microsoft', 'info', { status: 429 }],
    ['a rejection', 'info', { status: 403, action: 'rejected', error: 'PartnerUserAgentRequired' }],
    ['a client abort', 'info', { status: 0, aborted: true }],
  ] as const)('logs %s at %s', (_name, level, over) => {
    const { logger, lines } = capture();
    createLogObserver(logger).exchangeEnd?.(exchange(over));
    expect(lines()[0]?.level).toBe(level);
    if ('error' in over) expect(lines()[0]?.[LOG_FIELDS.error]).toBe(over.error);
    if ('aborted' in over) expect(lines()[0]?.[LOG_FIELDS.aborted]).toBe(true);
  });

  it('truncates the untrusted User-Agent under its own key', () => {
    const { logger, lines } = capture();
    createLogObserver(logger).exchangeEnd?.(exchange({ userAgent: 'A'.repeat(10_000) }));
    expect(lines()[0]?.[LOG_FIELDS.userAgent]).toBe('A'.repeat(MAX_LOGGED_VALUE));
  });

  it('writes one line per finished tunnel and leaves config reloads to the CLI', () => {
    const { logger, lines } = capture();
    const o = createLogObserver(logger);
    o.tunnelEnd?.(tunnelEvent({ action: 'denied', outcome: 'denied', reason: 'private-destination', host: '127.1', error: 'DestinationDenied', durationMs: 0.25, bytesFromClient: 0, bytesToClient: 0 }));
    o.tunnelEnd?.(tunnelEvent({ action: 'tunnelled', outcome: 'closed', reason: 'token-endpoint', host: 'login.microsoftonline.com', client: '10.1.2.3' }));
    o.tunnelEnd?.(tunnelEvent({ action: 'tunnelled', outcome: 'failed', reason: 'other-host', host: 'www.example.org', error: 'UpstreamUnreachable', bytesFromClient: 0, bytesToClient: 0 }));
    o.configReload?.('success');
    o.configReload?.('failure');
    expect(lines().map((l) => [l.level, l[LOG_FIELDS.event], l[LOG_FIELDS.action], l[LOG_FIELDS.outcome]])).toEqual([
      ['info', 'tunnel', 'denied', 'denied'],
      ['info', 'tunnel', 'tunnelled', 'closed'],
      ['warn', 'tunnel', 'tunnelled', 'failed'],
    ]);
    expect(lines()[0]).toMatchObject({ 'server.address': '127.1', 'server.port': 443, 'error.type': 'DestinationDenied', duration_ms: 0.25, bytes_from_client: 0, bytes_to_client: 0 });
    expect(lines()[1]).toMatchObject({ 'client.address': '10.1.2.3', 'http.request.method': 'CONNECT', duration_ms: 120, bytes_from_client: 900, bytes_to_client: 4200 });
    expect(lines()[1]).not.toHaveProperty(LOG_FIELDS.error);
  });

  it('keeps certificate and upstream-error events at debug', () => {
    const quiet = capture('info');
    createLogObserver(quiet.logger).certificateIssued?.('api.security.microsoft.com');
    createLogObserver(quiet.logger).upstreamError?.('UpstreamReset');
    expect(quiet.lines()).toEqual([]);
    const loud = capture('debug');
    createLogObserver(loud.logger).upstreamError?.('UpstreamReset');
    expect(loud.lines()[0]).toMatchObject({ level: 'debug', event: 'upstream-error', code: 'UpstreamReset' });
  });

  it('names the access line\'s fields as OpenTelemetry does, with url.path cut before its query', () => {
    const { logger, lines } = capture();
    createLogObserver(logger).exchangeEnd?.(exchange({
      client: '192.0.2.7', port: 443, path: '/api/machines?$filter=healthStatus%20eq%20%27Active%27&token=x', requestBodyBytes: 17, responseBodyBytes: 2048,
    }));
    expect(lines()[0]).toEqual({
      level: 'info', time: expect.any(String) as unknown, pid: process.pid, msg: 'exchange', event: 'exchange',
      'client.address': '192.0.2.7', 'http.request.method': 'GET', 'server.address': 'api.security.microsoft.com', 'server.port': 443,
      'url.path': '/api/machines', 'http.response.status_code': 200, duration_ms: 12.346,
      'http.request.body.size': 17, 'http.response.body.size': 2048,
      product: 'cognito', api: 'machines', action: 'rewritten', reason: 'user-agent-missing', mode: 'intercept',
      'user_agent.original': 'python-requests/2.32.3',
    });
  });

  it('uses one kebab-case style for every event name', () => {
    const { logger, lines } = capture('debug');
    const o = createLogObserver(logger);
    o.exchangeEnd?.(exchange());
    o.tunnelEnd?.(tunnelEvent());
    o.certificateIssued?.('api.security.microsoft.com');
    o.upstreamError?.('UpstreamReset');
    expect(lines().map((l) => l['event'])).toEqual(['exchange', 'tunnel', 'certificate-issued', 'upstream-error']);
  });

  it('writes one warning per connection-limit episode, naming the listener and the limit', () => {
    const { logger, lines } = capture();
    const observer = createLogObserver(logger);
    for (const firstInEpisode of [true, false, false, true]) observer.connectionRefused?.({ listener: '127.0.0.1:3128', limit: 448, firstInEpisode });
    const out = lines();
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ level: 'warn', [LOG_FIELDS.event]: 'connections-refused', [LOG_FIELDS.listener]: '127.0.0.1:3128', [LOG_FIELDS.limit]: 448 });
  });

  it('writes the caller\'s address on the exchange line', () => {
    const { logger, lines } = capture();
    createLogObserver(logger).exchangeEnd?.(exchange({ client: '192.0.2.7' }));
    expect(lines()[0]?.[LOG_FIELDS.client]).toBe('192.0.2.7');
  });
});

describe('createLogger', () => {
  it('redacts credentials if a caller ever logs them', () => {
    const { logger, raw } = capture();
    logger.info({ headers: { authorization: 'Bearer eyJ.secret', 'proxy-authorization': 'Basic c2VjcmV0' } }, 'oops');
    logger.info({ credentials: { username: 'u', password: 'hunter2' } }, 'oops');
    logger.info({ product: { credentials: { password: 'hunter3' } } }, 'oops');
    expect(raw()).not.toMatch(/eyJ\.secret|c2VjcmV0|hunter2|hunter3/);
    expect(raw()).toContain('[redacted]');
  });

  it('honours the level and silent', () => {
    const warn = capture('warn');
    warn.logger.info('hidden');
    warn.logger.warn('shown');
    expect(warn.lines().map((l) => l.msg)).toEqual(['shown']);
    const silent = capture('silent');
    silent.logger.fatal('hidden');
    expect(silent.raw()).toBe('');
  });

  it('writes asynchronously to a file descriptor and flushes on demand', async () => {
    const file = path.join(tmpdir(), `mde-logger-${process.pid}-${Date.now()}.log`);
    const fd = openSync(file, 'w');
    try {
      const logger = createLogger({ level: 'info', destination: fd });
      createLogObserver(logger).exchangeEnd?.(exchange());
      await flushLogger(logger);
      const line = JSON.parse(readFileSync(file, 'utf8').trim()) as Record<string, unknown>;
      expect(line).toMatchObject({ event: 'exchange', product: 'cognito' });
    } finally {
      closeSync(fd);
      rmSync(file, { force: true });
    }
  });
});
