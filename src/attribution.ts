// PURE. Who made an API call: the tenant and application named in the bearer token's payload. The
// token's signature is never checked (the proxy is not the resource server and makes no network
// call); the values are attribution, not authentication. The application binds a request to its
// product (products[].apps, policy.decideBinding), so this is part of the core; the usage side
// counts by these values. Every value that leaves this file is bounded: a GUID, 'unknown', or a
// short cleaned string.
/** Tenant or application that could not be read from a token. */
export const UNKNOWN = 'unknown';

/** What a bearer token says about its caller. */
export interface Attribution {
  /** Token `tid` (a GUID, lowercase) or 'unknown'. */
  readonly tenant: string;
  /** Token `appid`, else `azp` (a GUID, lowercase) or 'unknown'. */
  readonly app: string;
  /** Token `app_displayname`, cleaned and cut to APP_NAME_MAX characters; '' when absent. */
  readonly appName: string;
}

/** The attribution of a request without a usable token. */
export const UNKNOWN_ATTRIBUTION: Attribution = Object.freeze({ tenant: UNKNOWN, app: UNKNOWN, appName: '' });

/** Longest app display name kept. */
export const APP_NAME_MAX = 64;
/** Payloads longer than this (base64url characters) are not decoded: real Entra ID tokens are far smaller. */
export const PAYLOAD_MAX = 16_384;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** True for a GUID in its 8-4-4-4-12 hex form (any case). */
export function isGuid(value: unknown): value is string {
  return typeof value === 'string' && value.length === 36 && GUID.test(value);
}

/** A GUID lowercased, or 'unknown' for anything else: the only tenant and app values the proxy keeps. */
export function guidOrUnknown(value: unknown): string {
  return isGuid(value) ? value.toLowerCase() : UNKNOWN;
}

/** Drops control characters, collapses spaces and cuts a display name to APP_NAME_MAX characters. */
export function cleanAppName(value: unknown): string {
  if (typeof value !== 'string') return '';
  // eslint-disable-next-line no-control-regex
  const cleaned = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').replace(/\s+/g, ' ').trim();
  return cleaned.length > APP_NAME_MAX ? cleaned.slice(0, APP_NAME_MAX) : cleaned;
}

/**
 * The bearer token in an Authorization value (RFC 6750 §2.1: `Bearer <token>`, scheme case-insensitive),
 * or undefined when there is none.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 8) return undefined;
  // Compare the scheme without allocating: 'bearer' then at least one space.
  const a = authorization;
  if ((a.charCodeAt(0) | 0x20) !== 0x62 || (a.charCodeAt(1) | 0x20) !== 0x65 || (a.charCodeAt(2) | 0x20) !== 0x61
    || (a.charCodeAt(3) | 0x20) !== 0x72 || (a.charCodeAt(4) | 0x20) !== 0x65 || (a.charCodeAt(5) | 0x20) !== 0x72) return undefined;
  if (a.charCodeAt(6) !== 0x20) return undefined;
  const token = a.slice(7).trim();
  return token === '' ? undefined : token;
}

/**
 * Reads tenant, application and display name from a JWT (RFC 7519 §3: header.payload.signature,
 * base64url per RFC 7515 §2) without checking its signature. Anything malformed is 'unknown'.
 */
export function attributeToken(token: string | undefined): Attribution {
  if (token === undefined) return UNKNOWN_ATTRIBUTION;
  const first = token.indexOf('.');
  if (first <= 0) return UNKNOWN_ATTRIBUTION;
  const second = token.indexOf('.', first + 1);
  if (second < 0) return UNKNOWN_ATTRIBUTION;
  const segment = token.slice(first + 1, second);
  if (segment.length === 0 || segment.length > PAYLOAD_MAX || !BASE64URL.test(segment)) return UNKNOWN_ATTRIBUTION;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return UNKNOWN_ATTRIBUTION;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return UNKNOWN_ATTRIBUTION;
  const claims = payload as Record<string, unknown>;
  const tenant = guidOrUnknown(claims['tid']);
  // v1.0 tokens carry appid, v2.0 tokens azp; both name the client application.
  const app = isGuid(claims['appid']) ? guidOrUnknown(claims['appid']) : guidOrUnknown(claims['azp']);
  const appName = cleanAppName(claims['app_displayname']);
  if (tenant === UNKNOWN && app === UNKNOWN && appName === '') return UNKNOWN_ATTRIBUTION;
  return { tenant, app, appName };
}

/** Attribution of an Authorization header value. */
export function attributeAuthorization(authorization: string | undefined): Attribution {
  return attributeToken(bearerToken(authorization));
}
