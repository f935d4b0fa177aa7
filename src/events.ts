// The observer interface: what the request path reports, and nothing it depends on.
// Observers (metrics, logs, tests) never sit in the decision path and never throw into it.

/** What the policy did with one API request; the same words appear in YAML, logs and metric labels. */
export type RequestAction = 'compliant' | 'rewritten' | 'rejected' | 'audited';

/** What the proxy did with one CONNECT. */
export type TunnelAction = 'tunnelled' | 'intercepted' | 'denied';

/**
 * How a CONNECT ended: 'denied' when the proxy refused it; 'failed' when the destination could not
 * be reached or TLS could not be offered, so no byte of the caller's moved; 'closed' after the
 * tunnel carried traffic and either side closed it (or it stayed idle past timeouts.idle).
 */
export type TunnelOutcome = 'closed' | 'failed' | 'denied';

/** How a request reached the shared request path. */
export type RequestMode = 'intercept' | 'forward' | 'reverse';

/** Result label of a configuration (re)load. */
export type ReloadResult = 'success' | 'failure';

/** One finished HTTP exchange: a request and the response the client got (or did not get). */
export interface ExchangeEvent {
  /** Configured product id, or 'unregistered' when the caller is bound to none. */
  readonly product: string;
  /** Bounded API label from the catalogue ('machines', 'security.alerts_v2', 'other'). */
  readonly api: string;
  /** The request method as received (observers bound it before using it as a label). */
  readonly method: string;
  /** Status sent to the client; 0 when the client went away before any status was sent. */
  readonly status: number;
  /** Policy action; 'passed' for traffic that is not a Microsoft security API call (not counted). */
  readonly action: RequestAction | 'passed';
  /** Fixed reason string of the decision. */
  readonly reason: string;
  readonly mode: RequestMode;
  /** Destination host name (logs only, never a metric label). */
  readonly host: string;
  /** Destination port; absent when the request was refused before its target was known. */
  readonly port?: number;
  /** The request path as sent upstream, query included (logs cut the query; never a metric label). */
  readonly path?: string;
  /** Request body bytes the client declared in Content-Length, when it sent one. */
  readonly requestBodyBytes?: number;
  /** Response body bytes relayed from the upstream to the client. */
  readonly responseBodyBytes?: number;
  /** The User-Agent the client sent (untrusted; logs truncate it). */
  readonly userAgent: string | undefined;
  /** Milliseconds from the request head to the end of the response (or the failure). */
  readonly durationMs: number;
  /** The caller's address (the client socket's remote address, IPv4-mapped IPv6 unwrapped); '' when unknown. */
  readonly client: string;
  /** Stable ProxyError code when the exchange failed upstream or was refused by the proxy. */
  readonly error?: string;
  /** True when the client closed the connection before the response finished. */
  readonly aborted?: boolean;
  /** API calls: tenant from the bearer token (a lowercase GUID or 'unknown'; never the token). */
  readonly tenant?: string;
  /** API calls: application id from the bearer token (a lowercase GUID or 'unknown'). */
  readonly app?: string;
  /** API calls: the token's app_displayname, cleaned and cut short ('' when absent). */
  readonly appName?: string;
  /** Seconds of a 429's Retry-After from the upstream (RFC 9110 §10.2.3), when it sent one. */
  readonly retryAfter?: number;
}

/** One finished CONNECT: the decision, how it ended, how long it lasted and what it carried. */
export interface TunnelEvent {
  readonly action: TunnelAction;
  readonly outcome: TunnelOutcome;
  /** Fixed reason string of the decision. */
  readonly reason: string;
  readonly product: string;
  readonly host: string;
  readonly port: number;
  /** The caller's address, as in ExchangeEvent. */
  readonly client: string;
  /** Milliseconds from the CONNECT head to the end of the tunnel. */
  readonly durationMs: number;
  /** Tunnel payload bytes the client sent (TLS records for an intercepted tunnel), after the CONNECT head. */
  readonly bytesFromClient: number;
  /** Tunnel payload bytes sent to the client, after the CONNECT answer. */
  readonly bytesToClient: number;
  /** Stable ProxyError code for denied and failed tunnels. */
  readonly error?: string;
}

/** A listener at limits.maxConnections closed a new connection at once. */
export interface ConnectionRefusedEvent {
  /** The listener's address, host:port. */
  readonly listener: string;
  readonly limit: number;
  /** True for the first refusal since the listener last had room: one log line per episode. */
  readonly firstInEpisode: boolean;
}

/** Everything the proxy reports. Every method is optional; a missing one is a no-op. */
export interface ProxyObserver {
  exchangeEnd?(event: ExchangeEvent): void;
  /** A CONNECT ended (a denied one ends at once). */
  tunnelEnd?(event: TunnelEvent): void;
  /** A client connection to a proxy listener opened / closed. */
  connectionOpen?(): void;
  connectionClose?(): void;
  /** A new connection was closed unserved because its listener was at limits.maxConnections. */
  connectionRefused?(event: ConnectionRefusedEvent): void;
  /** The interception CA minted a leaf certificate for a host. */
  certificateIssued?(host: string): void;
  /** An outbound connection or exchange failed; code is a stable ProxyError code. */
  upstreamError?(code: string): void;
  configReload?(result: ReloadResult): void;
}

/** Observer that ignores everything. */
export const noopObserver: ProxyObserver = Object.freeze({});

/** The events a ProxyObserver can hear, in one list so wrappers cannot miss one. */
const EVENT_NAMES = ['exchangeEnd', 'tunnelEnd', 'connectionOpen', 'connectionClose', 'connectionRefused', 'certificateIssued', 'upstreamError', 'configReload'] as const satisfies readonly (keyof ProxyObserver)[];

type EventName = (typeof EVENT_NAMES)[number];
/** Every event carries at most one argument, so wrappers pass one along (no rest array per event). */
type Handler = (arg?: unknown) => void;
type Handlers = Partial<Record<EventName, Handler>>;

/** The observer's handlers, each bound to it and wrapped so that a fault in it is caught. */
function guardedHandlers(observer: ProxyObserver): Handlers {
  const guarded: Handlers = {};
  for (const name of EVENT_NAMES) {
    const fn = (observer[name] as Handler | undefined)?.bind(observer);
    if (fn === undefined) continue;
    guarded[name] = (arg?: unknown): void => {
      try {
        fn(arg);
      } catch {
        // An observer fault loses one sample or one line; it never breaks the request path.
      }
    };
  }
  return guarded;
}

/** Observers whose every handler is already guarded (combineObservers' results): not wrapped twice. */
const guardedObservers = new WeakSet<ProxyObserver>();

/** Wraps an observer so a fault in it never reaches the caller: the one place observer faults are caught. */
export function guardObserver(observer: ProxyObserver): ProxyObserver {
  if (guardedObservers.has(observer)) return observer;
  const guarded = guardedHandlers(observer);
  guardedObservers.add(guarded);
  return guarded;
}

/** Fans every event out to several observers; one observer's fault never reaches the others or the caller. */
export function combineObservers(...observers: ProxyObserver[]): ProxyObserver {
  const guarded = observers.map(guardedHandlers);
  const combined: Handlers = {};
  for (const name of EVENT_NAMES) {
    const fns = guarded.map((o) => o[name]).filter((fn) => fn !== undefined);
    if (fns.length > 0) combined[name] = (arg?: unknown): void => { for (const fn of fns) fn(arg); };
  }
  guardedObservers.add(combined);
  return combined;
}
