// The observer interface: what the request path reports, and nothing it depends on.
// Observers (metrics, logs, tests) never sit in the decision path and never throw into it.

/** What the policy did with one API request; the same words appear in YAML, logs and metric labels. */
export type RequestAction = 'compliant' | 'rewritten' | 'rejected' | 'audited';

/** What happened to one CONNECT. */
export type TunnelAction = 'tunnelled' | 'intercepted' | 'denied';

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
  /** The User-Agent the client sent (untrusted; logs truncate it). */
  readonly userAgent: string | undefined;
  /** Milliseconds from the request head to the end of the response (or the failure). */
  readonly durationMs: number;
  /** Stable ProxyError code when the exchange failed upstream or was refused by the proxy. */
  readonly error?: string;
  /** True when the client closed the connection before the response finished. */
  readonly aborted?: boolean;
  /** Caller's address (IPv4-mapped IPv6 unwrapped); usage counts it per client. */
  readonly client?: string;
  /** API calls: tenant from the bearer token (a lowercase GUID or 'unknown'; never the token). */
  readonly tenant?: string;
  /** API calls: application id from the bearer token (a lowercase GUID or 'unknown'). */
  readonly app?: string;
  /** API calls: the token's app_displayname, cleaned and cut short ('' when absent). */
  readonly appName?: string;
  /** Seconds of a 429's Retry-After from the upstream (RFC 9110 §10.2.3), when it sent one. */
  readonly retryAfter?: number;
}

/** One CONNECT decision. */
export interface TunnelEvent {
  readonly action: TunnelAction;
  readonly reason: string;
  readonly product: string;
  readonly host: string;
  readonly port: number;
  /** Stable ProxyError code for denied tunnels. */
  readonly error?: string;
}

/** Everything the proxy reports. Every method is optional; a missing one is a no-op. */
export interface ProxyObserver {
  exchangeEnd?(event: ExchangeEvent): void;
  tunnel?(event: TunnelEvent): void;
  /** A client connection to a proxy listener opened / closed. */
  connectionOpen?(): void;
  connectionClose?(): void;
  /** The interception CA minted a leaf certificate for a host. */
  certificateIssued?(host: string): void;
  /** An outbound connection or exchange failed; code is a stable ProxyError code. */
  upstreamError?(code: string): void;
  configReload?(result: ReloadResult): void;
}

/** Observer that ignores everything. */
export const noopObserver: ProxyObserver = Object.freeze({});

/** Fans every event out to several observers; one observer's fault never reaches the others or the caller. */
export function combineObservers(...observers: ProxyObserver[]): ProxyObserver {
  const call = <K extends keyof ProxyObserver>(key: K, args: unknown[]): void => {
    for (const o of observers) {
      const fn = o[key] as ((...a: unknown[]) => void) | undefined;
      if (fn === undefined) continue;
      try {
        fn.apply(o, args);
      } catch {
        // An observer fault must never break the request path.
      }
    }
  };
  return {
    exchangeEnd: (e) => call('exchangeEnd', [e]),
    tunnel: (e) => call('tunnel', [e]),
    connectionOpen: () => call('connectionOpen', []),
    connectionClose: () => call('connectionClose', []),
    certificateIssued: (h) => call('certificateIssued', [h]),
    upstreamError: (c) => call('upstreamError', [c]),
    configReload: (r) => call('configReload', [r]),
  };
}
