// The bounded LRU map behind the limit windows: eviction order, the max/2 rule that spares hot
// entries from moving on every get, replacement, peek and delete, and its bound.
import { createLru } from '../../../src/usage/lru.js';

describe('LRU', () => {
  it('evicts the least recently used entry beyond max', () => {
    const lru = createLru<string, number>(3);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('c', 3);
    lru.get('a'); // a is now the most recent
    expect(lru.set('d', 4)).toEqual(['b', 2]);
    expect([...lru.entries()].map(([k]) => k)).toEqual(['c', 'a', 'd']);
    expect(lru.size).toBe(3);
    expect(lru.peek('c')).toBe(3);
    expect(lru.set('e', 5)).toEqual(['c', 3]); // peek did not refresh c
  });

  it('never evicts an entry used within the last max/2 operations', () => {
    const lru = createLru<number, number>(100);
    for (let i = 0; i < 100; i++) lru.set(i, i);
    for (let i = 100; i < 10_000; i++) {
      expect(lru.get(0)).toBe(0); // a hot entry, used between every insertion
      lru.set(i, i);
    }
    expect(lru.peek(0)).toBe(0);
    expect(lru.size).toBe(100);
    expect(lru.peek(9_950)).toBe(9_950);
    expect(lru.peek(9_000)).toBeUndefined();
  });

  it('stays at max with 100,000 distinct keys', () => {
    const lru = createLru<number, number>(1000);
    let evicted = 0;
    for (let i = 0; i < 100_000; i++) if (lru.set(i, i) !== undefined) evicted++;
    expect(lru.size).toBe(1000);
    expect(evicted).toBe(99_000);
    expect(lru.peek(99_999)).toBe(99_999);
    expect(lru.peek(0)).toBeUndefined();
  });
});
describe('LRU edges', () => {
  it.each([0, -1, 0.5, Number.NaN])('refuses room for fewer than one entry (max %p)', (max) => {
    expect(() => createLru(max)).toThrow(RangeError);
  });

  it('replaces the value of a key it holds, without evicting, as the most recent', () => {
    const lru = createLru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.set('a', 10)).toBeUndefined();
    expect([...lru.entries()]).toEqual([['b', 2], ['a', 10]]);
    expect(lru.set('c', 3)).toEqual(['b', 2]);
  });

  it('holds one entry with max 1, the newest', () => {
    const lru = createLru<string, number>(1);
    lru.set('a', 1);
    expect(lru.set('b', 2)).toEqual(['a', 1]);
    expect([...lru.entries()]).toEqual([['b', 2]]);
    expect(lru.get('a')).toBeUndefined();
  });

  it('forgets a deleted key and makes room for another', () => {
    const lru = createLru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.delete('a')).toBe(true);
    expect(lru.delete('a')).toBe(false);
    expect(lru.set('c', 3)).toBeUndefined();
    expect([lru.size, lru.max, lru.peek('a')]).toEqual([2, 2, undefined]);
  });
});
