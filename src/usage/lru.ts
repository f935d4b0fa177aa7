// A Map bounded by entry count that forgets the least recently used entry first. JavaScript Maps
// iterate in insertion order, so "used" means deleted and set again; the first key is the oldest.

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
  const map = new Map<K, V>();
  return {
    get(key) {
      const v = map.get(key);
      if (v !== undefined) {
        map.delete(key);
        map.set(key, v);
      }
      return v;
    },
    set(key, value) {
      map.delete(key);
      map.set(key, value);
      if (map.size <= max) return undefined;
      const oldest = map.entries().next().value as [K, V];
      map.delete(oldest[0]);
      return oldest;
    },
    peek: (key) => map.get(key),
    get size() {
      return map.size;
    },
    max,
    entries: () => map.entries(),
    delete: (key) => map.delete(key),
  };
}
