// PURE. Header surgery on flat rawHeaders arrays ([name, value, name, value, …]), the form
// node:http gives (req.rawHeaders) and undici takes, so no object is built per request.

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1) plus fields the proxy consumes or must never pass on:
 * the caller's proxy credentials, client-address disclosure, Expect (answered by the proxy,
 * RFC 9110 §10.1.1) and Host (rebuilt from the fixed origin, RFC 9112 §3.2).
 */
const DROPPED_REQUEST = new Set([
  'connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'trailer',
  'proxy-authorization', 'proxy-authenticate', 'host', 'expect',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip', 'via',
]);

/** Response fields that describe the upstream hop and not the message (RFC 9110 §7.6.1). */
const DROPPED_RESPONSE = new Set(['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'trailer', 'te']);

/** Fields a Connection token may never remove: the one this proxy exists to set, and the caller's credentials to Microsoft. */
const NEVER_HOP = new Set(['user-agent', 'authorization', 'host']);

/** Names listed in Connection headers (RFC 9110 §7.6.1): they are hop-by-hop too. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 && name.length !== 16) continue;
    const lower = name.toLowerCase();
    if (lower !== 'connection' && lower !== 'proxy-connection') continue;
    for (const token of raw[i + 1]!.split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '' && t !== 'close' && t !== 'keep-alive' && !NEVER_HOP.has(t)) (out ??= new Set()).add(t);
    }
  }
  return out;
}

/** Returns the first value of a header (case-insensitive), or undefined. */
export function getHeader(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}

/** Counts the occurrences of a header (case-insensitive). */
export function countHeader(raw: readonly string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) n++;
  }
  return n;
}

/**
 * Builds the upstream request headers: hop-by-hop and proxy-only fields removed, and, when
 * userAgent is given, every User-Agent replaced by exactly one with that value.
 */
export function buildRequestHeaders(raw: readonly string[], userAgent: string | undefined): string[] {
  const extra = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (DROPPED_REQUEST.has(lower) || extra?.has(lower)) continue;
    if (userAgent !== undefined && lower === 'user-agent') continue;
    out.push(name, raw[i + 1]!);
  }
  if (userAgent !== undefined) out.push('User-Agent', userAgent);
  return out;
}

/** Builds the client response headers from undici's raw response headers (latin1 buffers or strings). */
export function buildResponseHeaders(raw: readonly (Buffer | string)[]): string[] {
  const strings = raw.map((v) => (typeof v === 'string' ? v : v.toString('latin1')));
  const extra = connectionTokens(strings);
  const out: string[] = [];
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i]!;
    const lower = name.toLowerCase();
    if (DROPPED_RESPONSE.has(lower) || extra?.has(lower)) continue;
    out.push(name, strings[i + 1]!);
  }
  return out;
}

/** Why a request head is refused before anything is forwarded: a stable error code, a fixed reason, the caller's message and the field at fault. */
export interface HeadFault {
  readonly code: 'RequestHeaderFieldsTooLarge' | 'HttpVersionNotSupported' | 'BadRequest' | 'ExpectationFailed';
  readonly reason: 'too-many-header-fields' | 'http-version' | 'underscore-field-name' | 'chunked-content-encoding' | 'expectation-failed';
  readonly message: string;
  readonly field?: string;
}

/**
 * Names a server may read as another field once `_` becomes `-` (CGI, WSGI, PHP and some proxies
 * do): framing, hop-by-hop and proxy-only fields, and the ones this proxy sets or protects.
 */
const UNDERSCORE_CONFUSABLE = new Set([...DROPPED_REQUEST, 'content-length', 'user-agent', 'authorization']);

/**
 * Refuses, before anything is forwarded: a head with more fields than maxFields (the server keeps
 * one field past the limit, so a list Node cut short is always over it and never forwarded without
 * its tail); an HTTP major version other than 1 (RFC 9110 §15.6.6: 505); a field name with `_`
 * that reads as a framing, hop-by-hop or identity field with `-` (`Transfer_Encoding`); and
 * `chunked` in Content-Encoding, a transfer coding where only content codings belong (RFC 9110
 * §8.4.1), which an intermediary might take as framing.
 */
export function decideHead(raw: readonly string[], versionMajor: number, maxFields: number): HeadFault | undefined {
  if (raw.length / 2 > maxFields) {
    return { code: 'RequestHeaderFieldsTooLarge', reason: 'too-many-header-fields', message: `The request has more than ${maxFields} header fields (limits.maxHeaderCount)` };
  }
  if (versionMajor !== 1) {
    return { code: 'HttpVersionNotSupported', reason: 'http-version', message: `HTTP/${versionMajor} on the request line: this proxy speaks HTTP/1.1 (and 1.0)` };
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.includes('_') && UNDERSCORE_CONFUSABLE.has(name.toLowerCase().replace(/_/g, '-'))) {
      return { code: 'BadRequest', reason: 'underscore-field-name', field: name,
        message: `The field name ${name} would read as ${name.replace(/_/g, '-')} to some servers; send it with '-' or not at all` };
    }
    // RFC 9110 §10.1.1: 100-continue is the only expectation; the proxy cannot meet another.
    if (name.length === 6 && name.toLowerCase() === 'expect' && raw[i + 1]!.trim().toLowerCase() !== '100-continue') {
      return { code: 'ExpectationFailed', reason: 'expectation-failed', field: name,
        message: `Expect: ${raw[i + 1]!.slice(0, 64)} cannot be met; 100-continue is the only expectation (RFC 9110 §10.1.1)` };
    }
    if (name.length === 16 && name.toLowerCase() === 'content-encoding' && raw[i + 1]!.split(',').some((c) => c.trim().toLowerCase() === 'chunked')) {
      return { code: 'BadRequest', reason: 'chunked-content-encoding', field: name,
        message: 'chunked is a transfer coding, not a content coding (RFC 9110 §8.4.1): use Transfer-Encoding, or Content-Length' };
    }
  }
  return undefined;
}

/**
 * Seconds a Retry-After value asks for (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), capped at
 * a day; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Math.min(Number(v), 86_400);
  if (v.length > 64 || !/^[A-Za-z]{3}/.test(v)) return undefined; // an HTTP-date starts with a day name
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, Math.ceil((at - nowMs) / 1000)), 86_400);
}
