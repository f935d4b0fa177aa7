// Structured logs: pino JSON on stdout, written asynchronously so the request path never waits on a
// slow pipe, and an observer that writes one access line per exchange and one per tunnel when it
// ends. Nothing here ever logs a header block or a query string: of the headers only the truncated
// User-Agent reaches a line, so an Authorization value or a password cannot.

import pino from 'pino';
import type { ConnectionRefusedEvent, ExchangeEvent, ProxyObserver, TunnelEvent } from './events.js';

/** Closed set of log levels: the config schema, the --log-level choices and pino all take these. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

/** Longest untrusted value (User-Agent, host) written to a line; longer ones are cut. */
export const MAX_LOGGED_VALUE = 256;

/**
 * The log field names; the same words appear in every line so queries survive refactors. Where
 * OpenTelemetry's semantic conventions name a field (client.address, http.request.method,
 * server.address, http.response.status_code, url.path, user_agent.original, error.type, …), the
 * line uses that name, so collectors and log backends map it without a rename; the proxy's own
 * concepts (product, api, action, reason, mode, outcome) keep plain names.
 */
export const LOG_FIELDS = {
  event: 'event',
  product: 'product',
  api: 'api',
  action: 'action',
  reason: 'reason',
  mode: 'mode',
  outcome: 'outcome',
  method: 'http.request.method',
  status: 'http.response.status_code',
  host: 'server.address',
  port: 'server.port',
  path: 'url.path',
  userAgent: 'user_agent.original',
  client: 'client.address',
  requestBodySize: 'http.request.body.size',
  responseBodySize: 'http.response.body.size',
  durationMs: 'duration_ms',
  error: 'error.type',
  aborted: 'aborted',
  bytesFromClient: 'bytes_from_client',
  bytesToClient: 'bytes_to_client',
  result: 'result',
  code: 'code',
  listener: 'listener',
  limit: 'limit',
} as const;

/** Values of the `event` field, kebab-case as everywhere in the logs: what kind of line this is. */
export const LOG_EVENTS = {
  exchange: 'exchange',
  tunnel: 'tunnel',
  configReload: 'config-reload',
  certificateIssued: 'certificate-issued',
  upstreamError: 'upstream-error',
  connectionsRefused: 'connections-refused',
} as const;

/** Paths censored if any module ever logs an object carrying credentials; belt and braces. */
export const REDACT_PATHS: readonly string[] = [
  'authorization',
  'password',
  'headers.authorization',
  'headers["proxy-authorization"]',
  '*.password',
  '*.authorization',
  '*["proxy-authorization"]',
  '*.*.password',
];

export interface LoggerOptions {
  level: LogLevel;
  /** A stream, or a file descriptor (default 1, stdout). */
  destination?: NodeJS.WritableStream | number;
  /** Write synchronously to the descriptor (default false); ignored for a stream destination. */
  sync?: boolean;
}

/** Creates the process logger: JSON lines, string levels, ISO time, credentials redacted. */
export function createLogger(opts: LoggerOptions): pino.Logger {
  const dest = opts.destination ?? 1;
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: opts.sync ?? false }) : dest;
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    },
    stream,
  );
}

/** Flushes buffered lines (before exit or after a drain); resolves within timeoutMs even if stdout is stuck. */
export function flushLogger(logger: pino.Logger, timeoutMs = 2000): Promise<void> {
  // With minLength 0 sonic-boom's flush(cb) calls back at once even while a write is still in flight,
  // so also wait for its 'drain'. `_writing` is sonic-boom 4 internals; without it, flush() is all we have.
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    | { _writing?: boolean; once?: (event: string, fn: () => void) => void }
    | undefined;
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    try {
      logger.flush(() => {
        if (stream?._writing === true && typeof stream.once === 'function') {
          stream.once('drain', done);
          stream.once('error', done);
        } else {
          done();
        }
      });
    } catch {
      done();
    }
  });
}

/** Cuts an untrusted value to MAX_LOGGED_VALUE characters. */
export function truncate(value: string | undefined): string | undefined {
  return value !== undefined && value.length > MAX_LOGGED_VALUE ? value.slice(0, MAX_LOGGED_VALUE) : value;
}

/** The path without its query (which may carry filters or identifiers nobody asked to log), cut short. */
export function logPath(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const q = path.indexOf('?');
  return truncate(q === -1 ? path : path.slice(0, q));
}

// An upstream fault is worth a warning; a refusal by the proxy (407, 403, 400) or a client abort is not.
const isUpstreamFailure = (e: ExchangeEvent): boolean =>
  e.error !== undefined && (e.error.startsWith('Upstream') || e.status >= 500);

/** Observer that writes one line per exchange and per CONNECT decision, plus config reloads. */
export function createLogObserver(logger: pino.Logger): ProxyObserver {
  const F = LOG_FIELDS;
  // createProxy guards every observer (events.guardObserver): a fault here loses one line, no more.
  return {
    exchangeEnd: (e: ExchangeEvent) => {
      const upstreamFailure = isUpstreamFailure(e);
      // The line is built only when its level is written: at `warn` an ordinary exchange costs one check.
      if (!logger.isLevelEnabled(upstreamFailure ? 'warn' : 'info')) return;
      const line: Record<string, unknown> = {
        [F.event]: LOG_EVENTS.exchange,
        [F.client]: e.client,
        [F.method]: truncate(e.method),
        [F.host]: truncate(e.host),
        [F.port]: e.port,
        [F.path]: logPath(e.path),
        [F.status]: e.status,
        [F.durationMs]: Math.round(e.durationMs * 1000) / 1000,
        [F.requestBodySize]: e.requestBodyBytes,
        [F.responseBodySize]: e.responseBodyBytes,
        [F.product]: e.product,
        [F.api]: e.api,
        [F.action]: e.action,
        [F.reason]: e.reason,
        [F.mode]: e.mode,
        [F.userAgent]: truncate(e.userAgent),
      };
      if (e.error !== undefined) line[F.error] = e.error;
      if (e.aborted === true) line[F.aborted] = true;
      if (upstreamFailure) logger.warn(line, LOG_EVENTS.exchange);
      else logger.info(line, LOG_EVENTS.exchange);
    },
    tunnelEnd: (e: TunnelEvent) => {
      if (!logger.isLevelEnabled(e.outcome === 'failed' ? 'warn' : 'info')) return;
      const line: Record<string, unknown> = {
        [F.event]: LOG_EVENTS.tunnel,
        [F.client]: e.client,
        [F.method]: 'CONNECT',
        [F.host]: truncate(e.host),
        [F.port]: e.port,
        [F.durationMs]: Math.round(e.durationMs * 1000) / 1000,
        [F.bytesFromClient]: e.bytesFromClient,
        [F.bytesToClient]: e.bytesToClient,
        [F.product]: e.product,
        [F.action]: e.action,
        [F.outcome]: e.outcome,
        [F.reason]: e.reason,
      };
      if (e.error !== undefined) line[F.error] = e.error;
      if (e.outcome === 'failed') logger.warn(line, LOG_EVENTS.tunnel);
      else logger.info(line, LOG_EVENTS.tunnel);
    },
    // No configReload line: the CLI, which knows the trigger and the cause, writes the one reload line.
    certificateIssued: (host: string) => {
      logger.debug({ [F.event]: LOG_EVENTS.certificateIssued, [F.host]: truncate(host) }, LOG_EVENTS.certificateIssued);
    },
    // One line per episode; connections_refused_total counts every refusal.
    connectionRefused: (e: ConnectionRefusedEvent) => {
      if (!e.firstInEpisode) return;
      logger.warn({ [F.event]: LOG_EVENTS.connectionsRefused, [F.listener]: e.listener, [F.limit]: e.limit },
        `listener ${e.listener} is at limits.maxConnections (${e.limit}): new connections are closed until one ends`);
    },
    // The exchange line already carries the code at warn; this one is for blind tunnels and debugging.
    upstreamError: (code: string) => {
      logger.debug({ [F.event]: LOG_EVENTS.upstreamError, [F.code]: truncate(code) }, LOG_EVENTS.upstreamError);
    },
  };
}
