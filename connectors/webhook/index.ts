import { defineConnectorType } from '../../src/index.ts';
import { WebhookConnector, webhookConfigSchema } from './connector.ts';

/**
 * `type: webhook`: signed webhooks at `POST /webhooks/<name>` (GitHub, Stripe, Slack, Standard
 * Webhooks or a configurable HMAC), stored in the hub's event log for `events` subscriptions.
 */
export const webhookConnector = defineConnectorType({
  type: 'webhook',
  schema: webhookConfigSchema,
  create: (name, config, deps) => new WebhookConnector(name, config, deps),
});
