// The shared types of the request path: what serves requests now (Runtime, swapped whole on
// reload) and how one request arrived (RequestContext). Types only.
import type { Config } from './config.js';
import type { ProxyObserver, RequestMode } from './events.js';
import type { Product } from './policy.js';
import type { Upstream } from './upstream.js';

/** What serves requests now; swapped whole on reload, read once per request. */
export interface Runtime {
  readonly config: Config;
  readonly upstream: Upstream;
  readonly observer: ProxyObserver;
}

/** How the request arrived: intercepted and reverse requests have a fixed origin and product. */
export interface RequestContext {
  readonly mode: RequestMode;
  readonly origin?: { readonly scheme: 'http' | 'https'; readonly host: string; readonly port: number };
  readonly product?: Product;
  /** The caller's address when the request socket is not the client's own (intercepted: the CONNECT socket's). */
  readonly client?: string;
}
