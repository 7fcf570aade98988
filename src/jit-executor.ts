import type { ApolloServerOptions } from '@apollo/server';
import {
  type DocumentNode,
  execute,
  type ExecutionResult,
  type FragmentDefinitionNode,
  getNamedType,
  type GraphQLCompositeType,
  GraphQLError,
  type GraphQLField,
  type GraphQLSchema,
  isAbstractType,
  isCompositeType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { type CompiledQuery, compileQuery } from 'graphql-jit';
import type { HubContext } from '../connectors/runtime/contract.ts';
import { BoundedMap } from './bounded-map.ts';

type Gateway = NonNullable<ApolloServerOptions<HubContext>['gateway']>;
type GatewayExecutor = NonNullable<Awaited<ReturnType<Gateway['load']>>['executor']>;

/** What one operation needs to run, as Apollo Server hands it over after parse and validation. */
export interface Operation {
  document: DocumentNode;
  operation: OperationDefinitionNode | undefined;
  operationName: string | null | undefined;
  /** SHA-256 of the query text (Apollo's `queryHash`): with the operation name, the compiled query's key. */
  queryHash: string;
  variables: Record<string, unknown> | undefined;
  contextValue: HubContext;
}

type Compiled = CompiledQuery | typeof FALLBACK;

/** graphql-js runs what graphql-jit cannot compile, or compiles to different results. */
const FALLBACK = Symbol('graphql-js');

/**
 * `server.execution: jit`: queries and mutations run as functions graphql-jit compiles from each
 * document, once per query text and operation name (an LRU of `maxCompiled`). Subscriptions
 * (their HTTP refusal, as graphql-js gives it), documents jit refuses to compile and requests
 * whose variables jit cannot coerce run on graphql-js, so every answer and every error is the one
 * graphql-js would give.
 */
export class JitExecutor {
  readonly #schema: GraphQLSchema;
  readonly #compiled: BoundedMap<string, Compiled>;
  readonly #plainData: (field: GraphQLField<unknown, unknown>) => boolean;

  /**
   * `plainData`: whether a field's resolver answers plain data (parsed JSON, rows), whose
   * properties jit may read directly. graphql-js's default resolver calls a property that is a
   * function (the @graphql connector answers with such functions; code may too) and awaits one
   * that is a promise; jit's compiled reads do neither. So a document runs on jit only when every
   * field without a resolver reads a value from such a field (through plain fields).
   */
  constructor(schema: GraphQLSchema, maxCompiled: number, plainData: (field: GraphQLField<unknown, unknown>) => boolean) {
    this.#schema = schema;
    this.#compiled = new BoundedMap(maxCompiled);
    this.#plainData = plainData;
  }

  async execute(op: Operation): Promise<ExecutionResult> {
    const compiled = this.#compile(op);
    if (compiled === FALLBACK) return this.#graphqlJs(op);
    const result = (await compiled.query(undefined, op.contextValue, op.variables ?? {})) as ExecutionResult;
    // Variables jit could not coerce: graphql-js's own BAD_USER_INPUT errors, word for word.
    if (result.data === undefined) return this.#graphqlJs(op);
    // A null that reached the root among several errors: graphql-js stops resolving the root's
    // fields at the first such error, jit resolves them all, so their errors differ. A query runs
    // again on graphql-js for its exact errors (a mutation is not run twice).
    if (result.data === null && (result.errors?.length ?? 0) > 1 && op.operation?.operation === 'query') return this.#graphqlJs(op);
    return result.errors?.length ? { ...result, errors: result.errors.map(asGraphQLError) } : result;
  }

  #compile(op: Operation): Compiled {
    const kind = op.operation?.operation;
    if (kind !== 'query' && kind !== 'mutation') return FALLBACK;
    const key = `${op.queryHash}\0${op.operationName ?? ''}`;
    const cached = this.#compiled.get(key);
    if (cached !== undefined) return cached;
    let compiled: Compiled;
    if (!this.#readsPlainData(op)) {
      this.#compiled.set(key, FALLBACK);
      return FALLBACK;
    }
    try {
      const made = compileQuery(this.#schema, op.document, op.operationName ?? undefined, { disablingCapturingStackErrors: true });
      compiled = 'query' in made ? (made as CompiledQuery) : FALLBACK;
    } catch {
      compiled = FALLBACK;
    }
    this.#compiled.set(key, compiled);
    return compiled;
  }

  #readsPlainData(op: Operation): boolean {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of op.document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    const walk = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, plain: boolean): boolean =>
      selectionSet.selections.every((s) => {
        if (s.kind !== Kind.FIELD) {
          const node = s.kind === Kind.INLINE_FRAGMENT ? s : fragments.get(s.name.value);
          const type = node?.typeCondition ? this.#schema.getType(node.typeCondition.name.value) : parent;
          return node !== undefined && isCompositeType(type) && walk(node.selectionSet, type, plain);
        }
        if (s.name.value.startsWith('__')) return true;
        const owners = isAbstractType(parent) ? this.#schema.getPossibleTypes(parent) : [parent];
        return owners.every((owner) => {
          const field = owner.getFields()[s.name.value] as GraphQLField<unknown, unknown> | undefined;
          if (!field || (!field.resolve && !plain)) return false;
          const type = getNamedType(field.type);
          return !s.selectionSet || (isCompositeType(type) && walk(s.selectionSet, type, field.resolve ? this.#plainData(field) : plain));
        });
      });
    const root = op.operation!.operation === 'query' ? this.#schema.getQueryType() : this.#schema.getMutationType();
    return root !== null && root !== undefined && walk(op.operation!.selectionSet, root, false);
  }

  #graphqlJs(op: Operation): Promise<ExecutionResult> {
    return Promise.resolve(
      execute({ schema: this.#schema, document: op.document, contextValue: op.contextValue, variableValues: op.variables, operationName: op.operationName }),
    );
  }
}

/**
 * Apollo Server takes a custom executor only through its gateway interface: the schema reaches
 * it through `onSchemaLoadOrUpdate`, the executor through `load()`. Validation, `formatError`
 * and every plugin hook still run as they do without it.
 */
export function jitGateway(schema: GraphQLSchema, executor: JitExecutor): Gateway {
  const run: GatewayExecutor = (ctx) =>
    executor.execute({
      document: ctx.document,
      operation: ctx.operation,
      // As the client sent it: Apollo's `operationName` is the one it found (null when none matched).
      operationName: ctx.request.operationName,
      queryHash: ctx.queryHash,
      variables: ctx.request.variables,
      contextValue: ctx.context as HubContext,
    }) as ReturnType<GatewayExecutor>;
  return {
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => undefined;
    },
    load: async () => ({ executor: run }),
    stop: async () => undefined,
  };
}

/**
 * graphql-jit's own errors (a non-null violation, a value a scalar cannot serialize, a plain
 * `Error` a resolver threw) have no `extensions`, which Apollo Server cannot format: they become
 * graphql-js errors with the same message, locations, path and original error.
 */
function asGraphQLError(error: GraphQLError): GraphQLError {
  if (error.extensions !== undefined && Object.getPrototypeOf(error) === GraphQLError.prototype) return error;
  const original = error.originalError ?? undefined;
  const rewrapped = new GraphQLError(error.message, {
    path: error.path,
    originalError: original,
    extensions: original instanceof GraphQLError ? original.extensions : undefined,
  });
  if (error.locations) (rewrapped as { locations: GraphQLError['locations'] }).locations = error.locations;
  return rewrapped;
}
