// The library entry (`import { createProxy, loadConfig } from 'mde-partner-proxy'`): load a config
// the way the CLI does, then run the proxy inside your own process with your own observers.
export { createProxy, type ListeningAddresses, type ProxyServer, type ReloadEffect } from './server.js';
export { ConfigError, buildConfig, loadConfig, type Config, type ConfigOverrides } from './config.js';
export { combineObservers, noopObserver, type ExchangeEvent, type ProxyObserver, type TunnelEvent } from './events.js';
export { createMetrics, type Metrics, type MetricsOptions } from './metrics.js';
export { formatPartnerUserAgent, parsePartnerUserAgent } from './user-agent.js';
