// A complete ExchangeEvent with sensible values, for observer tests that feed events directly.
import type { ExchangeEvent } from '../../src/events.js';

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
    ...over,
  };
}
