import { createHash, createPublicKey, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, type JWTVerifyGetKey, jwtVerify, type KeyObject } from 'jose';
import type { HubConfig } from './config.ts';
import type { User } from '../connectors/runtime/contract.ts';
import { ErrorCode, HubError } from './errors.ts';

type AuthConfig = NonNullable<HubConfig['auth']>;

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

/** What a request presents: its `Authorization` header and its `X-API-Key` (or their WebSocket equivalents). */
export interface Credentials {
  authorization?: string | undefined;
  apiKey?: string | undefined;
}

/**
 * Turns the credentials of an incoming request — a bearer token (HTTP `Authorization` header, or
 * the `authorization` connection parameter of a WebSocket) or an API key (`X-API-Key`, or the
 * `apiKey` connection parameter) — into a User, or refuses them. A bearer token wins over a key.
 */
export class Authenticator {
  readonly #config: AuthConfig;
  readonly #jwt: { config: NonNullable<AuthConfig['jwt']>; key: Uint8Array | KeyObject | JWTVerifyGetKey } | undefined;
  /** SHA-256 of each configured key: compared in constant time, whatever the presented length. */
  readonly #apiKeys: { digest: Buffer; user: User }[];

  constructor(config: AuthConfig) {
    this.#config = config;
    if (config.jwt) {
      const { secret, publicKey, jwksUrl } = config.jwt;
      const key = secret ? new TextEncoder().encode(secret) : publicKey ? createPublicKey(publicKey) : createRemoteJWKSet(new URL(jwksUrl!));
      this.#jwt = { config: config.jwt, key };
    }
    this.#apiKeys = config.apiKeys.map(({ key, sub, roles }) => ({
      digest: digest(key),
      user: { id: sub, sub, roles: [...roles], claims: { sub, apiKey: true } },
    }));
  }

  /** null for an anonymous caller (when allowed); throws UNAUTHENTICATED for bad credentials. */
  async authenticate(credentials: Credentials): Promise<User | null> {
    const { authorization, apiKey } = credentials;
    if (authorization) return this.#verifyToken(authorization);
    if (apiKey !== undefined) return this.#verifyApiKey(apiKey);
    if (this.#config.required) throw new HubError(ErrorCode.UNAUTHENTICATED, 'Authentication required');
    return null;
  }

  /** Every configured key is compared, each in constant time, so timing tells nothing of which or how much matched. */
  #verifyApiKey(presented: string): User {
    const presentedDigest = digest(presented);
    let found: User | undefined;
    for (const { digest: d, user } of this.#apiKeys) {
      if (timingSafeEqual(d, presentedDigest)) found = user;
    }
    if (!found) throw new HubError(ErrorCode.UNAUTHENTICATED, 'Invalid API key');
    return { ...found, roles: [...found.roles], claims: { ...found.claims } };
  }

  async #verifyToken(authorization: string): Promise<User> {
    if (!this.#jwt) throw new HubError(ErrorCode.UNAUTHENTICATED, 'Bearer tokens are not accepted here (auth.jwt is not configured); send X-API-Key');
    const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!match) throw new HubError(ErrorCode.UNAUTHENTICATED, 'Expected "Authorization: Bearer <token>"');
    const { issuer, audience, secret, rolesClaim } = this.#jwt.config;
    try {
      const { payload } = await jwtVerify(match[1]!, this.#jwt.key as Uint8Array, {
        ...(issuer && { issuer }),
        ...(audience && { audience }),
        ...(secret && { algorithms: HMAC_ALGORITHMS }),
      });
      const sub = typeof payload.sub === 'string' ? payload.sub : '';
      return { id: sub, sub, roles: rolesOf(payload, rolesClaim), claims: payload };
    } catch (error) {
      throw new HubError(ErrorCode.UNAUTHENTICATED, `Invalid token: ${reason(error)}`);
    }
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

function reason(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim "${error.claim}" is not accepted`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  return 'malformed or unverifiable';
}

/**
 * Roles from a claim holding a list, or a space-separated string (OAuth2 `scope`). The claim is
 * named whole first (`https://example.com/roles`), else as a dot path (`realm_access.roles`).
 */
function rolesOf(payload: Record<string, unknown>, claim: string): string[] {
  let value: unknown = payload[claim];
  if (value === undefined) {
    value = payload;
    for (const key of claim.split('.')) {
      value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    }
  }
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  return [];
}
