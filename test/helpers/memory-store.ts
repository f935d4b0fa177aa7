// A UsageStore held in memory for the recorder's unit tests: it keeps every batch it was given and
// can be told to fail, so tests see exactly what the recorder wrote and when. Backends themselves
// are tested against SQLite and PostgreSQL.
import type { UsageBatch, UsageStore } from '../../src/usage/store.js';

export interface MemoryStore extends UsageStore {
  readonly batches: UsageBatch[];
  /** When set, open() / write() / prune() reject with this error. */
  failWith: Error | undefined;
  opens: number;
  prunes: number;
  closed: boolean;
}

/** The store's queries, which the recorder's tests never call. */
const notUsed = (): Promise<never> => Promise.reject(new Error('not used by these tests'));

/** Creates an in-memory store. */
export function createMemoryStore(): MemoryStore {
  const s: MemoryStore = {
    kind: 'memory',
    batches: [],
    failWith: undefined,
    opens: 0,
    prunes: 0,
    closed: false,
    open() {
      if (s.failWith) return Promise.reject(s.failWith);
      s.opens++;
      return Promise.resolve();
    },
    write(batch) {
      if (s.failWith) return Promise.reject(s.failWith);
      s.batches.push(batch);
      return Promise.resolve();
    },
    usage: notUsed,
    limits: notUsed,
    callers: notUsed,
    prune() {
      if (s.failWith) return Promise.reject(s.failWith);
      s.prunes++;
      return Promise.resolve();
    },
    close() {
      s.closed = true;
      return Promise.resolve();
    },
  };
  return s;
}
