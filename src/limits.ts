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
  visit,
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
      const m = measure(operation.selectionSet, root, { fragments, limits, visiting: new Set(), measured: new Map(), context });
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

/** What one walk over an operation shares. */
interface Walk {
  fragments: Map<string, FragmentDefinitionNode>;
  limits: Limits;
  /** Fragments being measured right now (a cycle is another rule's error). */
  visiting: Set<string>;
  /** Each fragment is measured once, however many times it is spread: no exponential walk. */
  measured: Map<string, Measure>;
  context: ValidationContext;
}

function measure(selectionSet: SelectionSetNode, parent: GraphQLCompositeType, walk: Walk): Measure {
  const { fragments, limits, visiting, measured, context } = walk;
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
        const inner = measure(selection.selectionSet, named, walk);
        const factor = field && isListType(getNullableType(field.type)) ? pageSize(selection, limits) : 1;
        child.depth = inner.depth;
        child.aliases = inner.aliases;
        child.cost = inner.cost * factor;
      }
      add({ depth: child.depth, aliases: child.aliases + (selection.alias ? 1 : 0), cost: child.cost + 1 }, 1);
    } else if (selection.kind === 'InlineFragment') {
      const condition = selection.typeCondition && context.getSchema().getType(selection.typeCondition.name.value);
      const type = condition && isCompositeType(condition) ? condition : parent;
      add(measure(selection.selectionSet, type, walk));
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment || visiting.has(name)) continue; // other rules report unknown and cyclic fragments
      const condition = context.getSchema().getType(fragment.typeCondition.name.value);
      const type = condition && isCompositeType(condition) ? condition : parent;
      const key = `${name} ${type.name}`;
      let m = measured.get(key);
      if (!m) {
        visiting.add(name);
        m = measure(fragment.selectionSet, type, walk);
        visiting.delete(name);
        measured.set(key, m);
      }
      add(m);
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

/**
 * A validation rule that refuses, with QUERY_TOO_COMPLEX, a document with more directives than
 * `limits.directives` or a selection set repeating one response name more than
 * `limits.duplicateFields` times (`{ a a a … }`, `{ __typename __typename … }`). It looks at the
 * whole document as validation starts, so its error comes first.
 */
export function documentShapeRule(limits: Limits): ValidationRule {
  return (context: ValidationContext) => ({
    Document(document) {
      let directives = 0;
      let duplicate: { name: string; count: number; node: FieldNode } | undefined;
      visit(document, {
        Directive() {
          directives++;
        },
        SelectionSet(set) {
          if (duplicate) return;
          const counts = new Map<string, number>();
          for (const selection of set.selections) {
            if (selection.kind !== Kind.FIELD) continue;
            const name = selection.alias?.value ?? selection.name.value;
            const count = (counts.get(name) ?? 0) + 1;
            counts.set(name, count);
            if (count > limits.duplicateFields) {
              duplicate = { name, count, node: selection };
              return;
            }
          }
        },
      });
      if (directives > limits.directives) {
        context.reportError(
          new GraphQLError(`Query too complex: ${directives} directives are over the limit of ${limits.directives}`, {
            extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, directives },
          }),
        );
      }
      if (duplicate) {
        context.reportError(
          new GraphQLError(
            `Query too complex: "${duplicate.name}" is selected more than ${limits.duplicateFields} times in one selection set`,
            { nodes: duplicate.node, extensions: { code: ErrorCode.QUERY_TOO_COMPLEX } },
          ),
        );
      }
    },
  });
}

/**
 * Deepest nesting of `{`, `[` and `(` in a GraphQL document's text (strings and comments
 * skipped), counted without parsing: graphql-js parses recursively, and a document nested
 * thousands deep would overflow its stack. Stops counting once past `max`.
 */
export function documentNesting(text: string, max: number): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '#') {
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
    } else if (c === '"') {
      if (text.startsWith('"""', i)) {
        i += 3;
        while (i < text.length && !text.startsWith('"""', i)) i += text.startsWith('\\"""', i) ? 4 : 1;
        i += 2;
      } else {
        i++;
        while (i < text.length && text[i] !== '"' && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
      }
    } else if (c === '{' || c === '[' || c === '(') {
      deepest = Math.max(deepest, ++depth);
      if (deepest > max) return deepest;
    } else if (c === '}' || c === ']' || c === ')') {
      depth--;
    }
  }
  return deepest;
}

/** Deepest nesting of arrays and objects in a JSON value, walked without recursion; stops past `max`. */
export function jsonNesting(value: unknown, max: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > max) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}
