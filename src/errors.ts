// One error type, one table of stable codes, one socket-error map, one response writer.
// Codes are part of the public contract (README "Error codes"): never rename one.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** Stable error codes. Each maps to one status and one RFC 9209 Proxy-Status error type. */
export const ERRORS = {
  BadRequest: { status: 400, proxyStatus: 'http_request_error' },
  ProxyAuthenticationRequired: { status: 407, proxyStatus: 'http_request_denied' },
  ClientDenied: { status: 403, proxyStatus: 'http_request_denied' },
  DestinationDenied: { status: 403, proxyStatus: 'destination_ip_prohibited' },
  PartnerUserAgentRequired: { status: 403, proxyStatus: 'http_request_denied' },
  MethodNotAllowed: { status: 405, proxyStatus: 'http_request_denied' },
  MisdirectedRequest: { status: 421, proxyStatus: 'http_request_denied' },
  PlainHttpExpected: { status: 400, proxyStatus: 'http_protocol_error' },
  RequestHeaderFieldsTooLarge: { status: 431, proxyStatus: 'http_request_error' },
  RequestHeaderTimeout: { status: 408, proxyStatus: 'http_request_error' },
  UpstreamUnreachable: { status: 502, proxyStatus: 'destination_unavailable' },
  UpstreamDnsError: { status: 502, proxyStatus: 'dns_error' },
  UpstreamTlsError: { status: 502, proxyStatus: 'tls_certificate_error' },
  UpstreamReset: { status: 502, proxyStatus: 'connection_terminated' },
  UpstreamProtocolError: { status: 502, proxyStatus: 'http_protocol_error' },
  UpstreamTimeout: { status: 504, proxyStatus: 'http_response_timeout' },
  ServiceUnavailable: { status: 503, proxyStatus: 'proxy_internal_response' },
  InternalError: { status: 500, proxyStatus: 'proxy_internal_error' },
  CaHostNotPermitted: { status: 500, proxyStatus: 'proxy_internal_error' },
  HttpVersionNotSupported: { status: 505, proxyStatus: 'http_protocol_error' },
  ExpectationFailed: { status: 417, proxyStatus: 'http_request_error' },
} as const satisfies Record<string, { status: number; proxyStatus: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Name the proxy uses in Proxy-Status (RFC 9209 §2). */
export const PROXY_NAME = 'mde-partner-proxy';

/** The one fault type of the request path: a stable code, its status and a message for the caller. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly target: string | undefined;
  /** Extra response headers, e.g. Proxy-Authenticate on 407. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, opts: { target?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.target = opts.target;
    this.headers = opts.headers ?? {};
  }
}

/** Why a caller could not be bound to a product by its proxy credentials (policy.decideIdentity). */
export type IdentityFailure = 'missing-credentials' | 'invalid-credentials' | 'unsupported-scheme';

const IDENTITY_MESSAGES: Readonly<Record<IdentityFailure, string>> = {
  'missing-credentials': 'This proxy requires Proxy-Authorization: Basic with a product\'s user name and password',
  'invalid-credentials': 'The proxy credentials are not valid for any configured product',
  'unsupported-scheme': 'Only the Basic scheme is supported for Proxy-Authorization',
};

/** The 407 every identity failure becomes (RFC 9110 §15.5.8 requires Proxy-Authenticate). */
export function identityError(reason: IdentityFailure): ProxyError {
  return new ProxyError('ProxyAuthenticationRequired', IDENTITY_MESSAGES[reason], {
    headers: { 'proxy-authenticate': 'Basic realm="mde-partner-proxy", charset="UTF-8"' },
  });
}

const SOCKET_ERRORS: Readonly<Record<string, ErrorCode>> = {
  ECONNREFUSED: 'UpstreamUnreachable',
  EDESTDENIED: 'DestinationDenied',
  EUPSTREAMPROXY: 'UpstreamUnreachable',
  EHOSTUNREACH: 'UpstreamUnreachable',
  ENETUNREACH: 'UpstreamUnreachable',
  EADDRNOTAVAIL: 'UpstreamUnreachable',
  ENOTFOUND: 'UpstreamDnsError',
  EAI_AGAIN: 'UpstreamDnsError',
  ECONNRESET: 'UpstreamReset',
  EPIPE: 'UpstreamReset',
  UND_ERR_SOCKET: 'UpstreamReset',
  UND_ERR_CLOSED: 'UpstreamReset',
  ETIMEDOUT: 'UpstreamTimeout',
  UND_ERR_CONNECT_TIMEOUT: 'UpstreamTimeout',
  UND_ERR_HEADERS_TIMEOUT: 'UpstreamTimeout',
  UND_ERR_BODY_TIMEOUT: 'UpstreamTimeout',
  UND_ERR_INFO: 'UpstreamProtocolError',
  HPE_INVALID_CONSTANT: 'UpstreamProtocolError',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'UpstreamProtocolError',
  UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE: 'UpstreamProtocolError',
  ERR_SSL_WRONG_VERSION_NUMBER: 'UpstreamTlsError',
  EPROTO: 'UpstreamTlsError',
};

/** Every code toProxyError can give: what observer.upstreamError reports and upstream_errors_total labels. */
export const UPSTREAM_ERROR_CODES: readonly ErrorCode[] = [...new Set<ErrorCode>([...Object.values(SOCKET_ERRORS), 'UpstreamTlsError', 'UpstreamProtocolError', 'UpstreamUnreachable'])];

/** Turns any fault from an outbound connection or exchange into a ProxyError with a named cause. */
export function toProxyError(err: unknown, what: string): ProxyError {
  if (err instanceof ProxyError) return err;
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  let mapped: ErrorCode | undefined = SOCKET_ERRORS[code];
  // OpenSSL verification failures carry codes such as UNABLE_TO_VERIFY_LEAF_SIGNATURE,
  // DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED or ERR_TLS_CERT_ALTNAME_INVALID.
  if (mapped === undefined && /CERT|SELF_SIGNED|ISSUER|ERR_TLS|ERR_SSL|SIGNATURE/.test(code)) mapped = 'UpstreamTlsError';
  if (mapped === undefined && code.startsWith('HPE_')) mapped = 'UpstreamProtocolError';
  mapped ??= 'UpstreamUnreachable';
  const detail = code !== '' ? `${code}${e?.message ? `: ${e.message}` : ''}` : (e?.message ?? String(err));
  return new ProxyError(mapped, `${what}: ${detail}`, { cause: err });
}

/** Microsoft's error shape, which partner code already knows how to read. */
export function errorBody(code: string, message: string, target?: string): string {
  return JSON.stringify({ error: target === undefined ? { code, message } : { code, message, target } });
}

function proxyStatus(err: ProxyError): string {
  const details = err.message.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  return `${PROXY_NAME}; error=${ERRORS[err.code].proxyStatus}; details="${details}"`;
}

/** Writes a ProxyError as a JSON response; a no-op beyond destroying the socket when headers already went out. */
export function sendError(res: ServerResponse, err: ProxyError, opts: { close?: boolean } = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(err.code, err.message, err.target);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'proxy-status': proxyStatus(err),
    'cache-control': 'no-store',
    ...err.headers,
  };
  if (opts.close) headers['connection'] = 'close';
  res.writeHead(err.status, headers);
  res.end(body);
}

/** Writes a ProxyError as a raw HTTP/1.1 response on a socket (CONNECT refusals) and ends it. */
export function writeRawError(socket: Duplex, err: ProxyError): void {
  if (socket.destroyed || !socket.writable) return;
  const body = errorBody(err.code, err.message, err.target);
  const lines = [
    `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Proxy-Status: ${proxyStatus(err)}`,
    'Connection: close',
    ...Object.entries(err.headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request', 403: 'Forbidden', 405: 'Method Not Allowed', 407: 'Proxy Authentication Required', 408: 'Request Timeout',
  421: 'Misdirected Request', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

/** Answers a request head the HTTP parser could not read with 400, 408 or 431 JSON, then closes (RFC 9112 §2.2). */
export function handleClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (socket.destroyed || !socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const perr = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? new ProxyError('RequestHeaderTimeout', 'The request head did not arrive in time')
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? new ProxyError('RequestHeaderFieldsTooLarge', 'The request head is larger than limits.maxHeaderBytes')
      : new ProxyError('BadRequest', `Malformed HTTP request (${err.code ?? 'parse error'})`);
  writeRawError(socket, perr);
}
