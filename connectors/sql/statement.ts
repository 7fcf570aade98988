import type { TemplateScope } from '../../src/index.ts';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';

/** A placeholder in SQL text: `:args.id`, `:parent.customerId`, `:context.user.id`. */
interface Param {
  root: 'args' | 'parent' | 'context';
  path: string[];
  text: string;
}

type Part = string | Param;

/**
 * One SQL statement of an `@sql` directive with its named placeholders, parsed once at schema
 * build time. Placeholders inside quoted strings, quoted identifiers and comments are left alone,
 * and `::` casts are not placeholders. Values are always bound as parameters, never spliced.
 */
export class Statement {
  readonly parts: Part[] = [];

  constructor(readonly source: string) {
    const re = /'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|--[^\n]*|\/\*[\s\S]*?\*\/|::|:(args|parent|context)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g;
    let last = 0;
    for (const match of source.matchAll(re)) {
      if (!match[1]) continue; // a string, identifier, comment or cast: part of the text
      if (match.index > last) this.parts.push(source.slice(last, match.index));
      this.parts.push({ root: match[1] as Param['root'], path: match[2]!.slice(1).split('.'), text: match[0] });
      last = match.index + match[0].length;
    }
    if (last < source.length) this.parts.push(source.slice(last));
  }

  get params(): Param[] {
    return this.parts.filter((p): p is Param => typeof p !== 'string');
  }

  /** Placeholders naming a missing argument, or a context other than the user, as sentences. */
  problems(argumentNames: readonly string[]): string[] {
    const problems: string[] = [];
    for (const p of this.params) {
      if (p.root === 'args' && !argumentNames.includes(p.path[0]!)) {
        problems.push(`${p.text} names an argument the field does not have (arguments: ${argumentNames.join(', ') || 'none'})`);
      }
      if (p.root === 'context' && p.path[0] !== 'user') problems.push(`${p.text}: only :context.user.… may be used`);
    }
    return problems;
  }

  /**
   * The dialect's SQL text and its bound values. With `lists`, a placeholder whose value is an
   * array expands to one parameter per element (`IN (:parent.id)` over a batch of parents).
   */
  compile(dialect: Dialect, scope: TemplateScope, lists: ReadonlySet<string> = new Set()): { sql: string; params: unknown[] } {
    const params: unknown[] = [];
    const marker = () => (dialect === 'postgres' ? `$${params.length}` : '?');
    const sql = this.parts
      .map((part) => {
        if (typeof part === 'string') return part;
        const value = lookup(scope, part);
        if (lists.has(part.text) && Array.isArray(value)) {
          return value.map((v) => (params.push(bindable(v, dialect)), marker())).join(', ');
        }
        params.push(bindable(value, dialect));
        return marker();
      })
      .join('');
    return { sql, params };
  }
}

function lookup(scope: TemplateScope, p: Param): unknown {
  let value: unknown = scope[p.root];
  for (const key of p.path) value = value == null ? undefined : (value as Record<string, unknown>)[key];
  return value;
}

/**
 * Strings, numbers and null bind as they are; booleans and dates as the driver wants them
 * (SQLite has neither); objects and lists (a JSON input) as JSON text.
 */
function bindable(value: unknown, dialect: Dialect): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (typeof value === 'boolean') return dialect === 'sqlite' ? Number(value) : value;
  if (value instanceof Date) return dialect === 'sqlite' ? value.toISOString() : value;
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value);
}
