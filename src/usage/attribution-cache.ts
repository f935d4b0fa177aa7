// A bounded cache of token attributions, so a kept-alive client that sends the same bearer token on
// every call pays one hash and one map lookup instead of a base64 decode and a JSON parse. The key
// is a SHA-256 digest of the token: the token itself is never held, logged or stored.
import { hash } from 'node:crypto';
import { UNKNOWN_ATTRIBUTION, attributeToken, bearerToken, type Attribution } from './attribution.js';

/** Default number of cached tokens (about 200 bytes each: a 44-byte key and a small frozen object). */
export const ATTRIBUTION_CACHE_SIZE = 10_000;

export interface AttributionCache {
  /** The attribution of an Authorization header value (UNKNOWN_ATTRIBUTION without a bearer token). */
  attribute(authorization: string | undefined): Attribution;
  /** Entries held now (for tests). */
  readonly size: number;
}

/** Creates a cache holding at most `max` attributions; the oldest inserted entry goes first. */
export function createAttributionCache(max: number = ATTRIBUTION_CACHE_SIZE): AttributionCache {
  const entries = new Map<string, Attribution>();
  return {
    attribute(authorization) {
      const token = bearerToken(authorization);
      if (token === undefined) return UNKNOWN_ATTRIBUTION;
      const key = hash('sha256', token, 'base64');
      const hit = entries.get(key);
      if (hit !== undefined) return hit;
      const value = Object.freeze(attributeToken(token));
      if (entries.size >= max) entries.delete(entries.keys().next().value as string);
      entries.set(key, value);
      return value;
    },
    get size() {
      return entries.size;
    },
  };
}
