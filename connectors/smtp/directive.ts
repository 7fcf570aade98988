import { getNamedType, getNullableType, isListType, isObjectType } from 'graphql';
import { type DirectiveUse, type FieldBinding, type FieldDirective, type FieldResolver, type HubContext, Template, type TemplateScope } from '../../src/index.ts';
import type { SmtpConnector } from './connector.ts';

const SDL = `
"What the SMTP server accepted for a @mail mutation."
type MailReceipt {
  "The message's Message-ID header, angle brackets included."
  messageId: String!
  "Recipients the server accepted."
  accepted: [String!]!
  "Recipients the server refused while it accepted the others."
  rejected: [String!]!
}
"""
Sends an e-mail through an \`smtp\` connector; on a Mutation field returning MailReceipt.
Templates: {args.x}, {context.user.x}. \`to\` is one address or a comma-separated list (a list
argument is joined); a line break in \`to\` or \`subject\`, or a \`to\` that is not e-mail addresses,
is BAD_USER_INPUT and nothing is sent. Values inserted into \`html\` are HTML-escaped.
"""
directive @mail(
  connector: String!
  to: String!
  subject: String!
  text: String
  html: String
) on FIELD_DEFINITION
`;

interface MailArgs {
  connector: string;
  to: string;
  subject: string;
  text?: string | null;
  html?: string | null;
}

export const mailDirective: FieldDirective = {
  name: 'mail',
  sdl: SDL,
  bind(use: DirectiveUse): FieldBinding | string[] {
    const args = use.args as unknown as MailArgs;
    const problems: string[] = [];
    if (use.operation !== 'mutation') problems.push('@mail binds Mutation fields only (sending an e-mail is a mutation)');
    const returned = getNullableType(use.type);
    const named = getNamedType(use.type);
    if (isListType(returned) || !isObjectType(named) || named.name !== 'MailReceipt') {
      problems.push(`the field must return MailReceipt, not ${String(use.type)}`);
    }
    const to = new Template(args.to);
    const subject = new Template(args.subject);
    const text = args.text != null ? new Template(args.text) : undefined;
    const html = args.html != null ? new Template(args.html) : undefined;
    if (!text && !html) problems.push('needs text, html or both');
    const argumentNames = use.arguments.map((a) => a.name);
    for (const template of [to, subject, ...(text ? [text] : []), ...(html ? [html] : [])]) {
      problems.push(...template.problems(argumentNames));
      for (const part of template.parts) {
        if (typeof part !== 'string' && part.root === 'parent') problems.push(`${part.text}: a Mutation field has no parent; use {args.…} or {context.user.…}`);
      }
    }
    if (problems.length > 0) return problems;

    const resolve: FieldResolver = async (_parent, fieldArgs, ctx) => {
      const scope = scopeOf(fieldArgs, ctx);
      const connector = ctx.connectors[args.connector] as SmtpConnector;
      return connector.send({
        to: to.whole ? recipients(to.value(scope, to.whole)) : to.render(scope, recipients),
        subject: subject.render(scope, plain),
        text: text?.render(scope, plain),
        html: html?.render(scope, (v) => escapeHtml(plain(v))),
      });
    };
    return { resolve };
  },
};

function scopeOf(args: Record<string, unknown>, ctx: HubContext): TemplateScope {
  return { args, parent: {}, context: { user: ctx.user } };
}

function plain(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A list argument (`to: [String!]`) is one comma-separated list of addresses. */
function recipients(value: unknown): string {
  return Array.isArray(value) ? value.map(plain).join(', ') : plain(value);
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}
