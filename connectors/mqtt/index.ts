import { defineConnectorType, publishDirective } from '../../src/index.ts';
import { MqttConnector, mqttConfigSchema } from './connector.ts';

/**
 * `type: mqtt`: consumes MQTT topics into the event log through a persistent session (QoS 1,
 * acknowledged once stored) and publishes `@publish` mutations at QoS 1, answered on the PUBACK.
 */
export const mqttConnector = defineConnectorType({
  type: 'mqtt',
  schema: mqttConfigSchema,
  create: (name, config, deps) => new MqttConnector(name, config, deps),
  directives: [publishDirective],
});
