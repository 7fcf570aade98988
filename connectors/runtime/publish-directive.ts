// `@publish(connector, to, payload, idempotencyKey)`: a mutation that publishes one message to a
// queue connector and answers with the broker's confirmation (SPEC §4). One directive shared by
// every type whose connectors implement `publish()` (amqp, nats, mqtt, redis, or a user's own):
// each lists it in its `directives`.
import { createHash } from 'node:crypto';
import { getNamedType, getNullableType, isListType, isObjectType } from 'graphql';
import { ErrorCode, HubError } from '../../src/errors.ts';
import type { Connector, DirectiveUse, FieldBinding, FieldDirective, FieldResolver, HubContext, KeyClaim, PublishConfirm } from './contract.ts';
import { Template, type TemplateScope } from './template.ts';

const SDL = `
"What a broker confirmed for a @publish mutation."
type PublishReceipt {
  "The connector that published."
  connector: String!
  "Where the message went: a queue, exchange/routingKey, subject, topic or stream."
  to: String!
  "The broker's id for the message (AMQP message-id, JetStream stream sequence, MQTT message-id property, Redis entry id)."
  messageId: String!
  "True when the idempotency key was used before: nothing was published now, and this is the first publish's receipt."
  duplicate: Boolean!
}
"""
Publishes one message through a queue connector (amqp, nats, mqtt, redis) on a Mutation field
returning PublishReceipt, and answers once the broker confirmed it. Templates: {args.x},
{context.user.x}. \`to\`: a queue or \`exchange/routingKey\` (amqp), a subject (nats), a topic
(mqtt), a stream (redis). \`payload\`: a JSON template, default the field's \`input\` argument as
JSON. \`idempotencyKey\`: a repeat of the same key (for the same connector and destination) within
\`keyTtlMs\` publishes nothing and answers the first receipt with \`duplicate: true\`, across
restarts and hub instances (the keys live in the event log's store); an empty key means none.
"""
directive @publish(
  connector: String!
  to: String!
  payload: String
  idempotencyKey: String
  keyTtlMs: Int = 86400000
) on FIELD_DEFINITION
`;

interface PublishArgs {
  connector: string;
  to: string;
  payload?: string | null;
  idempotencyKey?: string | null;
  keyTtlMs: number;
}

/** Longest wait for another caller's claim on the same key to settle before claiming it again. */
const MIN_LEASE_MS = 30_000;

export const publishDirective: FieldDirective = {
  name: 'publish',
  sdl: SDL,
  bind(use: DirectiveUse): FieldBinding | string[] {
    const args = use.args as unknown as PublishArgs;
    const problems: string[] = [];
    if (use.operation !== 'mutation') problems.push('@publish binds Mutation fields only (publishing is a mutation)');
    const returned = getNullableType(use.type);
    const named = getNamedType(use.type);
    if (isListType(returned) || !isObjectType(named) || named.name !== 'PublishReceipt') {
      problems.push(`the field must return PublishReceipt, not ${String(use.type)}`);
    }
    if (!Number.isSafeInteger(args.keyTtlMs) || args.keyTtlMs < 1) problems.push(`keyTtlMs must be a positive number of milliseconds, not ${args.keyTtlMs}`);
    const argumentNames = use.arguments.map((a) => a.name);
    const to = new Template(args.to);
    const payload = args.payload != null ? new Template(args.payload) : undefined;
    const key = args.idempotencyKey != null ? new Template(args.idempotencyKey) : undefined;
    if (!payload && !argumentNames.includes('input')) problems.push('without payload, the field needs an `input` argument: it is what is published, as JSON');
    if (payload && !payload.whole) {
      try {
        JSON.parse(payload.render({ args: {}, parent: {}, context: { user: null } }, () => 'null'));
      } catch {
        problems.push(`payload ${JSON.stringify(args.payload)} is not JSON once its placeholders are filled`);
      }
    }
    for (const template of [to, ...(payload ? [payload] : []), ...(key ? [key] : [])]) {
      problems.push(...template.problems(argumentNames));
      for (const part of template.parts) {
        if (typeof part !== 'string' && part.root === 'parent') problems.push(`${part.text}: a Mutation field has no parent; use {args.…} or {context.user.…}`);
      }
    }
    if (problems.length > 0) return problems;

    const resolve: FieldResolver = async (_parent, fieldArgs, ctx) => {
      const scope: TemplateScope = { args: fieldArgs, parent: {}, context: { user: ctx.user } };
      const destination = to.render(scope, plain);
      const body = payload
        ? payload.whole
          ? JSON.stringify(payload.value(scope, payload.whole) ?? null)
          : payload.render(scope, (v) => JSON.stringify(v ?? null))
        : JSON.stringify(fieldArgs.input ?? null);
      const idempotencyKey = key?.render(scope, plain) || undefined;
      const connector = ctx.connectors[args.connector]!;
      if (!connector.publish) throw new Error(`connector ${args.connector} (type ${connector.type}) has no publish()`);
      const publish = async (): Promise<Receipt> => {
        const { messageId } = await connector.publish!({ to: destination, body, idempotencyKey });
        return { connector: args.connector, to: destination, messageId, duplicate: false };
      };
      if (idempotencyKey === undefined) return publish();
      return once(ctx, connector, `publish:${digest(args.connector, destination, idempotencyKey)}`, args.keyTtlMs, publish);
    };
    return { resolve };
  },
};

interface Receipt {
  connector: string;
  to: string;
  messageId: PublishConfirm['messageId'];
  duplicate: boolean;
}

/**
 * Runs `publish` once per key: the first caller claims the key in the event log's store,
 * publishes and records the receipt; a repeat answers that receipt as a duplicate. A repeat that
 * arrives while the first is still publishing waits for it; a failed publish gives the key up.
 */
async function once(ctx: HubContext, connector: Connector, key: string, ttlMs: number, publish: () => Promise<Receipt>): Promise<Receipt> {
  const timeoutMs = (connector as { config?: { timeoutMs?: number } }).config?.timeoutMs ?? 10_000;
  const leaseMs = Math.max(MIN_LEASE_MS, 3 * timeoutMs);
  for (let waits = 0; ; waits++) {
    let claim: KeyClaim;
    try {
      claim = await ctx.eventLog.keys.claim(key, leaseMs);
    } catch (error) {
      ctx.logger.error({ err: error }, 'idempotency key store unavailable');
      throw new HubError(ErrorCode.UPSTREAM_ERROR, 'the idempotency key could not be checked (the event log is unavailable); nothing was published, retry later', {
        connector: connector.name,
      });
    }
    if (claim.state === 'settled') return { ...(JSON.parse(claim.value) as Receipt), duplicate: true };
    if (claim.state === 'pending') {
      await new Promise((r) => setTimeout(r, Math.min(500, 25 * 2 ** Math.min(waits, 5))));
      continue;
    }
    let receipt: Receipt;
    try {
      receipt = await publish();
    } catch (error) {
      await ctx.eventLog.keys.release(key, claim.token).catch(() => undefined);
      throw error;
    }
    // Published: a failure to record the key now only loses the dedupe of a later repeat.
    await ctx.eventLog.keys.settle(key, claim.token, JSON.stringify(receipt), ttlMs).catch((error: unknown) => {
      ctx.logger.error({ err: error }, 'idempotency key not recorded after publishing');
    });
    return receipt;
  }
}

/** The key as stored: bounded in length, whatever the caller sent. */
function digest(connector: string, to: string, key: string): string {
  return createHash('sha256').update(`${connector}\0${to}\0${key}`).digest('hex');
}

function plain(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
