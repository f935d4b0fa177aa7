// A recording observer: tests assert decisions through the events, not by parsing logs.
import type { ExchangeEvent, ProxyObserver, TunnelEvent } from '../../src/events.js';

export interface Recorder extends ProxyObserver {
  readonly exchanges: ExchangeEvent[];
  readonly tunnels: TunnelEvent[];
  readonly upstreamErrors: string[];
  readonly issued: string[];
  /** Resolves once n exchanges have ended (bounded by timeoutMs). */
  waitForExchanges(n: number, timeoutMs?: number): Promise<ExchangeEvent[]>;
  /** Resolves with the first ended exchange that matches (bounded by timeoutMs). */
  waitForExchange(match: (e: ExchangeEvent) => boolean, timeoutMs?: number): Promise<ExchangeEvent>;
  /** Resolves with the first ended tunnel that matches (bounded by timeoutMs). */
  waitForTunnel(match: (e: TunnelEvent) => boolean, timeoutMs?: number): Promise<TunnelEvent>;
}

/** A list of events and the waiters for a matching one. */
function eventLog<E>(what: string): { list: E[]; push(e: E): void; waitFor(match: (e: E) => boolean, timeoutMs: number): Promise<E> } {
  const list: E[] = [];
  const waiters = new Set<(e: E) => void>();
  return {
    list,
    push(e) {
      list.push(e);
      for (const w of [...waiters]) w(e);
    },
    waitFor(match, timeoutMs) {
      const found = list.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = (e: E): void => {
          if (!match(e)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve(e);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching ${what} among the ${list.length} ended`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
  };
}

/** Creates an observer that keeps every event. */
export function createRecorder(): Recorder {
  const exchanges = eventLog<ExchangeEvent>('exchange');
  const tunnels = eventLog<TunnelEvent>('tunnel');
  const r: Recorder = {
    exchanges: exchanges.list,
    tunnels: tunnels.list,
    upstreamErrors: [],
    issued: [],
    exchangeEnd: (e) => exchanges.push(e),
    tunnelEnd: (e) => tunnels.push(e),
    upstreamError(code) { r.upstreamErrors.push(code); },
    certificateIssued(host) { r.issued.push(host); },
    async waitForExchanges(n, timeoutMs = 5000) {
      if (exchanges.list.length >= n) return exchanges.list;
      await exchanges.waitFor(() => exchanges.list.length >= n, timeoutMs);
      return exchanges.list;
    },
    waitForExchange: (match, timeoutMs = 5000) => exchanges.waitFor(match, timeoutMs),
    waitForTunnel: (match, timeoutMs = 5000) => tunnels.waitFor(match, timeoutMs),
  };
  return r;
}
