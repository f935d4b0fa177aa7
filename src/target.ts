// PURE. Request-target and authority parsing (RFC 9112 §3.2, RFC 9110 §7.2). No URL object: it
// normalises paths and hosts, and a proxy must forward the path it was given and judge the host it
// will dial. What a host is (a name, or an address in some range) is address.ts's job.
import { isDnsName, parseIPv6 } from './address.js';

/** A host and port; host is lowercase, without brackets or a trailing dot. */
export interface Authority {
  readonly host: string;
  readonly port: number;
}

/** An absolute-form request-target split into what the proxy dials and what it forwards. */
export interface AbsoluteTarget {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  /** origin-form (RFC 9112 §3.2.1) including the query; '/' when the target had no path */
  readonly path: string;
}

// Path and query characters allowed in a request-target: visible ASCII except '#', since a
// fragment is never part of a request-target (RFC 9112 §3.2, RFC 3986 §4.3 absolute-URI).
function isTargetChar(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x23;
}

// Up to five decimal digits; the range is checked by the caller.
function parsePort(s: string): number | undefined {
  if (s.length === 0 || s.length > 5) return undefined;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}

/** How parseAuthority treats the port. */
export interface PortOptions {
  /** Port 0 is accepted: a listener's "any free port" (never a destination). */
  readonly allowZero?: boolean;
}

/**
 * Parse authority-form (RFC 9112 §3.2.3) or a Host header value (RFC 9110 §7.2):
 * `host:port`, `[v6]:port`, or `host` alone when a default port is given. Undefined when malformed.
 * The one host:port parser: CONNECT targets, Host headers, URLs, listen addresses and upstream.resolve.
 */
export function parseAuthority(input: string, defaultPort?: number, opts: PortOptions = {}): Authority | undefined {
  let hostPart: string;
  let portPart: string | undefined;
  if (input.charCodeAt(0) === 0x5b) {
    const close = input.indexOf(']');
    if (close < 0) return undefined;
    hostPart = input.slice(1, close);
    const after = input.slice(close + 1);
    if (after.length > 0) {
      if (after.charCodeAt(0) !== 0x3a) return undefined;
      portPart = after.slice(1);
    }
    if (parseIPv6(hostPart) === undefined) return undefined;
    hostPart = hostPart.toLowerCase();
  } else {
    const colon = input.indexOf(':');
    if (colon >= 0) {
      if (input.indexOf(':', colon + 1) >= 0) return undefined; // IPv6 without brackets
      hostPart = input.slice(0, colon);
      portPart = input.slice(colon + 1);
    } else {
      hostPart = input;
    }
    if (hostPart.length > 1 && hostPart.charCodeAt(hostPart.length - 1) === 0x2e) hostPart = hostPart.slice(0, -1);
    if (!isDnsName(hostPart)) return undefined;
    hostPart = hostPart.toLowerCase();
  }
  let port: number | undefined;
  if (portPart === undefined) port = defaultPort;
  else port = parsePort(portPart);
  if (port === undefined || !Number.isInteger(port) || port < (opts.allowZero === true ? 0 : 1) || port > 65535) return undefined;
  return { host: hostPart, port };
}

/** Format an authority for a CONNECT line or Host header; IPv6 literals get brackets (RFC 3986 §3.2.2). */
export function formatAuthority(a: Authority): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const DEFAULT_PORTS = { http: 80, https: 443 } as const;

/**
 * Parse absolute-form (RFC 9112 §3.2.2) for http and https. The scheme is case-insensitive;
 * userinfo, fragments and bytes outside visible ASCII are refused; the path is kept byte-for-byte.
 */
export function parseAbsoluteTarget(target: string): AbsoluteTarget | undefined {
  const sep = target.indexOf('://');
  if (sep < 0) return undefined;
  const schemeText = target.slice(0, sep).toLowerCase();
  if (schemeText !== 'http' && schemeText !== 'https') return undefined;
  const scheme: 'http' | 'https' = schemeText;

  const authStart = sep + 3;
  let authEnd = target.length;
  for (let i = authStart; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) {
      authEnd = i;
      break;
    }
  }
  for (let i = authEnd; i < target.length; i++) if (!isTargetChar(target.charCodeAt(i))) return undefined;

  const authority = parseAuthority(target.slice(authStart, authEnd), DEFAULT_PORTS[scheme]);
  if (authority === undefined) return undefined;

  const rest = target.slice(authEnd);
  const path = rest.length === 0 ? '/' : rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
  return { scheme, host: authority.host, port: authority.port, path };
}
