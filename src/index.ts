// The public API of the `junction` package: what a connector type of your own needs, and the
// types a code resolver uses. Every export here is on purpose and documented in the README
// ("Write your own connector"); the built-in connector types import from this module only.
// Add exports with intention: removing or changing one is a breaking change.

export { z } from 'zod';

// Declaring a connector type and its config.
export { defineConnectorType, type ConnectorTypeDefinition } from '../connectors/runtime/define.ts';
export {
  connectorConfig,
  bool,
  httpUrl,
  nonNegativeInt,
  positiveInt,
  str,
  urlParts,
  type CommonOptions,
} from '../connectors/runtime/options.ts';

// The connector class: the pipeline, batching, status and health check.
export { BaseConnector, type BatchOptions } from '../connectors/runtime/base.ts';
export type { Call, Outcome } from '../connectors/runtime/runtime.ts';

// Errors: one base, mapped to `extensions.code` in one place.
export {
  CircuitOpenError,
  ConnectorError,
  RateLimitedError,
  UpstreamError,
  UpstreamTimeoutError,
} from '../connectors/runtime/errors.ts';
export { ErrorCode, HubError } from './errors.ts';

// Calling HTTP APIs: keep-alive pooling, outbound auth (apiKey, bearer, basic, oauth2), a size limit.
export {
  displayUrl,
  HttpTransport,
  jsonBody,
  statusError,
  type TransportOptions,
  type TransportResponse,
} from '../connectors/http/transport.ts';

// Queue connectors: messages in (stored, then acknowledged; dead letters), messages out (confirmed).
export {
  BrokerConnector,
  brokerOptions,
  IntakeAbortedError,
  type BrokerOptions,
  type InboundMessage,
  type IntakeOutcome,
} from '../connectors/runtime/broker.ts';
export { publishDirective } from '../connectors/runtime/publish-directive.ts';

// Inbound payloads: the JSON the event log accepts (webhooks and queues alike).
export { MAX_ID_LENGTH, MAX_NESTING, parseJsonPayload, utf8 } from '../connectors/runtime/inbound-json.ts';

// Writing binding directives.
export { markStale, requestLoader } from '../connectors/runtime/loaders.ts';
export { Template, type TemplateScope } from '../connectors/runtime/template.ts';

// The contract between the hub and a connector, and the resolver context.
export type {
  BreakerState,
  Connector,
  ConnectorDeps,
  ConnectorMetrics,
  ConnectorOf,
  Connectors,
  ConnectorStatus,
  ConnectorTestResult,
  ConnectorType,
  ConsumerStats,
  DirectiveUse,
  EventLog,
  EventQuery,
  EventSourceStats,
  FieldBinding,
  FieldDirective,
  FieldResolver,
  HubContext,
  IdempotencyKeys,
  InboundRequest,
  InboundResponse,
  InboundRoute,
  KeyClaim,
  NewEvent,
  OutboundMessage,
  PublishConfirm,
  StatusEvent,
  StoredEvent,
  User,
} from '../connectors/runtime/contract.ts';
