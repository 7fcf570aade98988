/** One thing wrong with the schema or the resolvers: file, position when known, and why. */
export interface SchemaProblem {
  file: string;
  line?: number | undefined;
  column?: number | undefined;
  message: string;
}

export class SchemaError extends Error {
  constructor(readonly problems: SchemaProblem[]) {
    super(problems.map(formatSchemaProblem).join('\n'));
    this.name = 'SchemaError';
  }
}

export function formatSchemaProblem(p: SchemaProblem): string {
  const at = p.line ? `:${p.line}:${p.column ?? 1}` : '';
  return `${p.file}${at}: ${p.message}`;
}
