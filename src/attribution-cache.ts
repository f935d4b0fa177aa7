// A bounded cache of token attributions, so a client that sends the same bearer token on every call
// pays a lookup instead of a base64 decode and a JSON parse. Two levels: each connection remembers
// the Authorization value of its last request and its attribution (a string comparison, for a
// kept-alive client), and a process-wide map keyed by a SHA-256 digest of the token serves new
// connections. The token is never logged or stored; it stays in memory only with its open connection,
// as the request head it arrived in did.
import { hash } from 'node:crypto';
import { UNKNOWN_ATTRIBUTION, attributeToken, bearerToken, type Attribution } from './attribution.js';

/** Default number of cached tokens (about 200 bytes each: a 44-byte key and a small frozen object). */
export const ATTRIBUTION_CACHE_SIZE = 10_000;

export interface AttributionCache {
  /**
   * The attribution of an Authorization header value (UNKNOWN_ATTRIBUTION without a bearer token);
   * `connection` (the request's socket) remembers the last value for the next request on it.
   */
  attribute(authorization: string | undefined, connection?: object): Attribution;
  /** Entries held now (for tests). */
  readonly size: number;
}

/** Creates a cache holding at most `max` attributions; the oldest inserted entry goes first. */
export function createAttributionCache(max: number = ATTRIBUTION_CACHE_SIZE): AttributionCache {
  const entries = new Map<string, Attribution>();
  const lastOn = new WeakMap<object, { readonly authorization: string; readonly attribution: Attribution }>();
  const lookup = (token: string): Attribution => {
    const key = hash('sha256', token, 'base64');
    const hit = entries.get(key);
    if (hit !== undefined) return hit;
    const value = Object.freeze(attributeToken(token));
    if (entries.size >= max) entries.delete(entries.keys().next().value as string);
    entries.set(key, value);
    return value;
  };
  return {
    attribute(authorization, connection) {
      if (authorization === undefined) return UNKNOWN_ATTRIBUTION;
      const last = connection === undefined ? undefined : lastOn.get(connection);
      if (last !== undefined && last.authorization === authorization) return last.attribution;
      const token = bearerToken(authorization);
      const attribution = token === undefined ? UNKNOWN_ATTRIBUTION : lookup(token);
      if (connection !== undefined) lastOn.set(connection, { authorization, attribution });
      return attribution;
    },
    get size() {
      return entries.size;
    },
  };
}
