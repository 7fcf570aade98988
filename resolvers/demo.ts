import { GraphQLError } from 'graphql';
import type { Message, Resolvers } from '../src/generated/schema-types.ts';

// The demo's message board, kept in memory: it starts empty each time the hub starts.
const messages: Message[] = [];
const MESSAGE_POSTED = 'demo.messagePosted';
const MAX_TEXT = 500;

const resolvers: Resolvers = {
  Query: {
    hello: (_, { name }) => `Hello ${name ?? 'World'}!`,
    messages: (_, { first }) => messages.slice(0, Math.max(0, first ?? 20)),
  },
  Mutation: {
    postMessage: async (_, { author, text }, { pubsub }) => {
      if (text.trim() === '' || text.length > MAX_TEXT) {
        throw new GraphQLError(`text must be 1 to ${MAX_TEXT} characters`, {
          extensions: { code: 'BAD_USER_INPUT', argument: 'text' },
        });
      }
      const message: Message = {
        id: String(messages.length + 1),
        author,
        text,
        postedAt: new Date().toISOString(),
      };
      messages.unshift(message);
      await pubsub.publish(MESSAGE_POSTED, message);
      return message;
    },
  },
  Subscription: {
    messagePosted: {
      subscribe: (_, __, { pubsub }) => pubsub.asyncIterableIterator<Message>(MESSAGE_POSTED),
      resolve: (message: Message) => message,
    },
  },
};

export default resolvers;
