// guardObserver and combineObservers: the one place observer faults are caught.
import { combineObservers, guardObserver, type ExchangeEvent, type ProxyObserver } from '../../src/events.js';
import { exchangeEvent, tunnelEvent } from '../helpers/events.js';

/** An observer that throws from every method and counts the calls. */
function throwing(): ProxyObserver & { calls: number } {
  const o = {
    calls: 0,
    exchangeEnd() { o.calls++; throw new Error('boom'); },
    tunnelEnd() { o.calls++; throw new Error('boom'); },
    connectionOpen() { o.calls++; throw new Error('boom'); },
    connectionClose() { o.calls++; throw new Error('boom'); },
    certificateIssued() { o.calls++; throw new Error('boom'); },
    upstreamError() { o.calls++; throw new Error('boom'); },
    configReload() { o.calls++; throw new Error('boom'); },
  };
  return o;
}

/** Calls every event of an observer once. */
function fireAll(o: ProxyObserver): void {
  o.exchangeEnd?.(exchangeEvent());
  o.tunnelEnd?.(tunnelEvent());
  o.connectionOpen?.();
  o.connectionClose?.();
  o.certificateIssued?.('api.security.microsoft.com');
  o.upstreamError?.('UpstreamReset');
  o.configReload?.('success');
}

describe('guardObserver', () => {
  it('calls every event of the wrapped observer and swallows its faults', () => {
    const inner = throwing();
    expect(() => fireAll(guardObserver(inner))).not.toThrow();
    expect(inner.calls).toBe(7);
  });

  it('keeps the observer as `this`', () => {
    const seen: ExchangeEvent[] = [];
    const o = { seen, exchangeEnd(this: { seen: ExchangeEvent[] }, e: ExchangeEvent) { this.seen.push(e); } };
    guardObserver(o).exchangeEnd?.(exchangeEvent({ status: 418 }));
    expect(seen.map((e) => e.status)).toEqual([418]);
  });

  it('leaves out the events the observer does not hear', () => {
    expect(Object.keys(guardObserver({ upstreamError: () => undefined }))).toEqual(['upstreamError']);
  });
});

describe('combineObservers', () => {
  it('delivers every event to each observer even when one before it throws', () => {
    const first = throwing();
    const codes: string[] = [];
    fireAll(combineObservers(first, { upstreamError: (c) => codes.push(c) }, {}));
    expect(first.calls).toBe(7);
    expect(codes).toEqual(['UpstreamReset']);
  });

  it('is guarded already: guardObserver returns it as it is, and its faults are still caught', () => {
    const first = throwing();
    const combined = combineObservers(first);
    const guarded = guardObserver(combined);
    expect(guarded).toBe(combined);
    expect(() => fireAll(guarded)).not.toThrow();
    expect(first.calls).toBe(7);
    // A plain observer is wrapped, and wrapping the result again does not wrap twice.
    const once = guardObserver(throwing());
    expect(guardObserver(once)).toBe(once);
  });
});
