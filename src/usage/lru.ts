// A Map bounded by entry count that forgets the least recently used entry first. JavaScript Maps
// iterate in insertion order, so "used" means deleted and set again; the first key is the oldest.
// Moving an entry costs a delete and a set, so get() moves it only when it has fallen into the
// older half (more than max/2 insertions or moves ago): an entry used within the last max/2
// operations is never the one evicted, and a hot entry costs one lookup per use.

export interface Lru<K, V> {
  /** The value, marked as most recently used. */
  get(key: K): V | undefined;
  /** Adds or replaces the value as most recently used; evicts the least recently used beyond `max`. Returns the evicted entry. */
  set(key: K, value: V): [K, V] | undefined;
  /** The value without changing its recency. */
  peek(key: K): V | undefined;
  readonly size: number;
  readonly max: number;
  /** Oldest first. */
  entries(): IterableIterator<[K, V]>;
  delete(key: K): boolean;
}

/** Creates an LRU map of at most `max` entries (max ≥ 1). */
export function createLru<K, V>(max: number): Lru<K, V> {
  if (!(max >= 1)) throw new RangeError('an LRU needs room for at least one entry');
  const map = new Map<K, { value: V; moved: number }>();
  const half = Math.floor(max / 2);
  let tick = 0;
  return {
    get(key) {
      const e = map.get(key);
      if (e === undefined) return undefined;
      if (tick - e.moved > half) {
        map.delete(key);
        map.set(key, e);
        e.moved = ++tick;
      }
      return e.value;
    },
    set(key, value) {
      map.delete(key);
      map.set(key, { value, moved: ++tick });
      if (map.size <= max) return undefined;
      const [oldKey, old] = map.entries().next().value as [K, { value: V }];
      map.delete(oldKey);
      return [oldKey, old.value];
    },
    peek: (key) => map.get(key)?.value,
    get size() {
      return map.size;
    },
    max,
    *entries() {
      for (const [k, e] of map) yield [k, e.value] as [K, V];
    },
    delete: (key) => map.delete(key),
  };
}
