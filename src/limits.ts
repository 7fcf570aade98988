import {
  type FieldNode,
  type FragmentDefinitionNode,
  Kind,
  getNamedType,
  getNullableType,
  GraphQLError,
  type GraphQLCompositeType,
  type GraphQLField,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { HubConfig } from './config.ts';
import { ErrorCode } from './errors.ts';

export type Limits = HubConfig['server']['limits'];

interface Measure {
  depth: number;
  aliases: number;
  cost: number;
}

const PAGE_ARGUMENTS = ['first', 'last', 'limit'];

/**
 * A validation rule that refuses an operation over the configured depth, alias or cost limit
 * with QUERY_TOO_COMPLEX, before anything runs. Introspection (`__schema`, `__type`) is not
 * counted: `server.introspection` governs it.
 *
 * Cost: every field costs 1; a list field multiplies the cost of what it selects by its
 * `first`/`last`/`limit` argument, or by `listFactor` when it has none.
 */
export function complexityRule(limits: Limits): ValidationRule {
  return (context: ValidationContext) => ({
    OperationDefinition(operation) {
      const root =
        operation.operation === 'query'
          ? context.getSchema().getQueryType()
          : operation.operation === 'mutation'
            ? context.getSchema().getMutationType()
            : context.getSchema().getSubscriptionType();
      if (!root) return;
      const fragments = new Map(
        context
          .getDocument()
          .definitions.filter((d): d is FragmentDefinitionNode => d.kind === 'FragmentDefinition')
          .map((d) => [d.name.value, d]),
      );
      const m = measure(operation.selectionSet, root, fragments, limits, new Set(), context);
      const over = [
        m.depth > limits.depth && `depth ${m.depth} is over the limit of ${limits.depth}`,
        m.aliases > limits.aliases && `${m.aliases} aliases are over the limit of ${limits.aliases}`,
        m.cost > limits.cost && `cost ${m.cost} is over the limit of ${limits.cost}`,
      ].filter(Boolean);
      if (over.length > 0) {
        context.reportError(
          new GraphQLError(`Query too complex: ${over.join('; ')}`, {
            nodes: operation,
            extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, ...m },
          }),
        );
      }
    },
  });
}

function measure(
  selectionSet: SelectionSetNode,
  parent: GraphQLCompositeType,
  fragments: Map<string, FragmentDefinitionNode>,
  limits: Limits,
  visiting: Set<string>,
  context: ValidationContext,
): Measure {
  const total: Measure = { depth: 0, aliases: 0, cost: 0 };
  const add = (m: Measure, extraDepth = 0) => {
    total.depth = Math.max(total.depth, m.depth + extraDepth);
    total.aliases += m.aliases;
    total.cost += m.cost;
  };
  for (const selection of selectionSet.selections) {
    if (selection.kind === 'Field') {
      const name = selection.name.value;
      if (name === '__schema' || name === '__type') continue;
      const field = fieldOf(parent, name);
      const child: Measure = { depth: 0, aliases: 0, cost: 0 };
      const named = field && getNamedType(field.type);
      if (selection.selectionSet && named && isCompositeType(named)) {
        const inner = measure(selection.selectionSet, named, fragments, limits, visiting, context);
        const factor = field && isListType(getNullableType(field.type)) ? pageSize(selection, limits) : 1;
        child.depth = inner.depth;
        child.aliases = inner.aliases;
        child.cost = inner.cost * factor;
      }
      add({ depth: child.depth, aliases: child.aliases + (selection.alias ? 1 : 0), cost: child.cost + 1 }, 1);
    } else if (selection.kind === 'InlineFragment') {
      const condition = selection.typeCondition && context.getSchema().getType(selection.typeCondition.name.value);
      const type = condition && isCompositeType(condition) ? condition : parent;
      add(measure(selection.selectionSet, type, fragments, limits, visiting, context));
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment || visiting.has(name)) continue; // other rules report unknown and cyclic fragments
      const condition = context.getSchema().getType(fragment.typeCondition.name.value);
      visiting.add(name);
      add(measure(fragment.selectionSet, condition && isCompositeType(condition) ? condition : parent, fragments, limits, visiting, context));
      visiting.delete(name);
    }
  }
  return total;
}

function fieldOf(parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  return isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
}

/** A literal `first`/`last`/`limit` argument; a variable's value is unknown at validation. */
function pageSize(field: FieldNode, limits: Limits): number {
  for (const arg of field.arguments ?? []) {
    if (PAGE_ARGUMENTS.includes(arg.name.value) && arg.value.kind === Kind.INT) {
      return Math.max(1, Number(arg.value.value));
    }
  }
  return limits.listFactor;
}
