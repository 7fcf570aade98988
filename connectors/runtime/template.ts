/**
 * `{args.id}`, `{parent.userId}`, `{context.user.id}` templates: the values a directive inserts
 * into a path, a query string, a header or a body. Parsed once at schema build time, so a
 * template naming an argument the field lacks is a build error, not a runtime surprise.
 */
export interface TemplateScope {
  args: Record<string, unknown>;
  parent: unknown;
  context: { user: unknown };
}

type Part = string | { root: 'args' | 'parent' | 'context'; path: string[]; text: string };

const PLACEHOLDER = /\{(args|parent|context)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\}/g;

export class Template {
  readonly parts: Part[] = [];

  constructor(readonly source: string) {
    let last = 0;
    for (const match of source.matchAll(PLACEHOLDER)) {
      if (match.index > last) this.parts.push(source.slice(last, match.index));
      this.parts.push({ root: match[1] as 'args' | 'parent' | 'context', path: match[2]!.slice(1).split('.'), text: match[0] });
      last = match.index + match[0].length;
    }
    if (last < source.length) this.parts.push(source.slice(last));
  }

  /** Placeholders naming `args.X` where the field has no argument X, as sentences. */
  problems(argumentNames: readonly string[]): string[] {
    const problems: string[] = [];
    for (const part of this.parts) {
      if (typeof part === 'string') continue;
      if (part.root === 'args' && !argumentNames.includes(part.path[0]!)) {
        problems.push(`${part.text} names an argument the field does not have (arguments: ${argumentNames.join(', ') || 'none'})`);
      }
      if (part.root === 'context' && part.path[0] !== 'user') problems.push(`${part.text}: only {context.user.…} may be used`);
    }
    return problems;
  }

  /** The single placeholder this template is, if it is nothing else (`"{args.input}"`). */
  get whole(): Exclude<Part, string> | undefined {
    const [only] = this.parts;
    return this.parts.length === 1 && typeof only !== 'string' ? only : undefined;
  }

  /** Renders with each value passed through `encode` (URL-encoding, JSON, …). */
  render(scope: TemplateScope, encode: (value: unknown) => string): string {
    return this.parts.map((part) => (typeof part === 'string' ? part : encode(lookup(scope, part)))).join('');
  }

  value(scope: TemplateScope, part: Exclude<Part, string>): unknown {
    return lookup(scope, part);
  }
}

function lookup(scope: TemplateScope, part: Exclude<Part, string>): unknown {
  let value: unknown = scope[part.root];
  for (const key of part.path) value = value == null ? undefined : (value as Record<string, unknown>)[key];
  return value;
}
