import { defineConnectorType } from '../../src/index.ts';
import { SmtpConnector, smtpConfigSchema } from './connector.ts';
import { mailDirective } from './directive.ts';

/** `type: smtp`: sends e-mail through an SMTP server (nodemailer, pooled), and `@mail` to bind mutations to it. */
export const smtpConnector = defineConnectorType({
  type: 'smtp',
  schema: smtpConfigSchema,
  create: (name, config, deps) => new SmtpConnector(name, config, deps),
  directives: [mailDirective],
});
