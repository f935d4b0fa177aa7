// A recording observer: tests assert decisions through the events, not by parsing logs.
import type { ExchangeEvent, ProxyObserver, TunnelEvent } from '../../src/events.js';

export interface Recorder extends ProxyObserver {
  readonly exchanges: ExchangeEvent[];
  readonly tunnels: TunnelEvent[];
  readonly upstreamErrors: string[];
  readonly issued: string[];
  /** Resolves once n exchanges have ended (bounded by timeoutMs). */
  waitForExchanges(n: number, timeoutMs?: number): Promise<ExchangeEvent[]>;
}

/** Creates an observer that keeps every event. */
export function createRecorder(): Recorder {
  const exchanges: ExchangeEvent[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const r: Recorder = {
    exchanges,
    tunnels: [],
    upstreamErrors: [],
    issued: [],
    exchangeEnd(e) {
      exchanges.push(e);
      for (const w of [...waiters]) if (exchanges.length >= w.n) w.resolve();
    },
    tunnel(e) { r.tunnels.push(e); },
    upstreamError(code) { r.upstreamErrors.push(code); },
    certificateIssued(host) { r.issued.push(host); },
    waitForExchanges(n, timeoutMs = 5000) {
      if (exchanges.length >= n) return Promise.resolve(exchanges);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${exchanges.length} of ${n} exchanges ended`)), timeoutMs);
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(exchanges); } });
      });
    },
  };
  return r;
}
