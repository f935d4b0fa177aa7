// undici through the proxy: the Node client used by most integration tests.
import { ProxyAgent, request } from 'undici';
import type { Received } from './origin.js';

export interface ProxiedResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The echo origin's record of the request (undefined when the body is not an echo). */
  readonly echo: Received | undefined;
}

/** Sends one request through the proxy (CONNECT for https) trusting the proxy's CA. */
export async function viaProxy(proxyUrl: string, caPem: string, url: string, opts: {
  method?: string; headers?: Record<string, string> | string[]; body?: string; token?: string;
} = {}): Promise<ProxiedResponse> {
  const dispatcher = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: caPem }, ...(opts.token ? { token: opts.token } : {}) });
  try {
    const res = await request(url, { dispatcher, method: (opts.method ?? 'GET') as 'GET', headers: opts.headers ?? {}, body: opts.body ?? null });
    const text = await res.body.text();
    let echo: Received | undefined;
    try {
      const parsed = JSON.parse(text) as Received;
      if (Array.isArray(parsed.rawHeaders)) echo = parsed;
    } catch {
      echo = undefined;
    }
    return { status: res.statusCode, headers: res.headers, text, echo };
  } finally {
    await dispatcher.close();
  }
}
