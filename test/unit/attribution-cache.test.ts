// The attribution cache: hits return the same frozen object, the digest map is bounded (oldest
// first), each connection remembers its last Authorization value, and no bearer token means no entry.
import { createAttributionCache } from '../../src/attribution-cache.js';
import { makeToken } from '../helpers/tokens.js';

const TID = '8f2c1a7e-3b4d-4c5e-9f60-718293a4b5c6';
const APP = '0c5a9b1e-2d3f-4a6b-8c7d-9e0f1a2b3c4d';
const AZP = '11111111-2222-4333-8444-555555555555';

describe('createAttributionCache', () => {
  it('answers a repeated token from the cache and never holds the token', () => {
    const cache = createAttributionCache(10);
    const token = makeToken({ tid: TID, appid: APP });
    const first = cache.attribute(`Bearer ${token}`);
    const second = cache.attribute(`Bearer ${token}`);
    expect(second).toBe(first); // the same object: a cache hit
    expect(first).toEqual({ tenant: TID, app: APP, appName: '' });
    expect(cache.size).toBe(1);
  });

  it('is bounded: beyond max the oldest entry goes', () => {
    const cache = createAttributionCache(3);
    const tokens = Array.from({ length: 5 }, () => makeToken({ tid: TID }));
    const first = tokens.map((t) => cache.attribute(`Bearer ${t}`));
    expect(cache.size).toBe(3);
    expect(cache.attribute(`Bearer ${tokens[4]}`)).toBe(first[4]); // still held
    const again = cache.attribute(`Bearer ${tokens[0]}`);
    expect(again).not.toBe(first[0]); // evicted: computed anew
    expect(again).toEqual({ tenant: TID, app: 'unknown', appName: '' });
    expect(cache.size).toBe(3);
  });

  it('remembers the last token per connection and follows a change of token on it', () => {
    const cache = createAttributionCache(10);
    const a = makeToken({ tid: TID, appid: APP });
    const b = makeToken({ tid: TID, appid: AZP });
    const conn = {};
    const first = cache.attribute(`Bearer ${a}`, conn);
    // A different string of the same content: the connection's memo compares values, not identity.
    expect(cache.attribute(`Bearer ${a.slice(0)}`, conn)).toBe(first);
    expect(cache.attribute(`Bearer ${b}`, conn)).toEqual({ tenant: TID, app: AZP, appName: '' });
    expect(cache.attribute(undefined, conn)).toEqual({ tenant: 'unknown', app: 'unknown', appName: '' });
    expect(cache.attribute(`Bearer ${a}`, conn)).toBe(first);
    // Another connection with the same token is served by the digest map: still one entry per token.
    expect(cache.attribute(`Bearer ${a}`, {})).toBe(first);
    expect(cache.size).toBe(2);
  });

  it('does not cache requests without a bearer token', () => {
    const cache = createAttributionCache(3);
    expect(cache.attribute(undefined)).toEqual({ tenant: 'unknown', app: 'unknown', appName: '' });
    expect(cache.attribute('Basic abc')).toEqual({ tenant: 'unknown', app: 'unknown', appName: '' });
    expect(cache.size).toBe(0);
  });
});
