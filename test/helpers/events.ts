// A complete ExchangeEvent with sensible values, for observer tests that feed events directly.
import type { ExchangeEvent, TunnelEvent } from '../../src/events.js';

/** A compliant GET /api/machines exchange by product 'cognito', with fields overridden. */
export function exchangeEvent(over: Partial<ExchangeEvent> = {}): ExchangeEvent {
  return {
    product: 'cognito',
    api: 'machines',
    method: 'GET',
    status: 200,
    action: 'compliant',
    reason: 'compliant-user-agent',
    mode: 'intercept',
    host: 'api.security.microsoft.com',
    userAgent: 'MdePartner-Contoso-ContosoCognito/1.0.0',
    durationMs: 42,
    client: '127.0.0.1',
    ...over,
  };
}

/** An intercepted CONNECT to api.security.microsoft.com by product 'cognito' that closed normally, with fields overridden. */
export function tunnelEvent(over: Partial<TunnelEvent> = {}): TunnelEvent {
  return {
    action: 'intercepted',
    outcome: 'closed',
    reason: 'catalogue-host',
    product: 'cognito',
    host: 'api.security.microsoft.com',
    port: 443,
    client: '127.0.0.1',
    durationMs: 120,
    bytesFromClient: 900,
    bytesToClient: 4200,
    ...over,
  };
}
