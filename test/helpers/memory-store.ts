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

/** Creates an in-memory store. */
export function createMemoryStore(): MemoryStore {
  const s: MemoryStore = {
    kind: 'memory',
    batches: [],
    failWith: undefined,
    opens: 0,
    prunes: 0,
    closed: false,
    async open() {
      if (s.failWith) throw s.failWith;
      s.opens++;
    },
    async write(batch) {
      if (s.failWith) throw s.failWith;
      s.batches.push(batch);
    },
    async usage() {
      throw new Error('not used by these tests');
    },
    async limits() {
      throw new Error('not used by these tests');
    },
    async callers() {
      throw new Error('not used by these tests');
    },
    async prune() {
      if (s.failWith) throw s.failWith;
      s.prunes++;
    },
    async close() {
      s.closed = true;
    },
  };
  return s;
}
