import { createPublicKey } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, type JWTVerifyGetKey, jwtVerify, type KeyObject } from 'jose';
import type { HubConfig } from './config.ts';
import type { User } from '../connectors/runtime/contract.ts';
import { ErrorCode, HubError } from './errors.ts';

type AuthConfig = NonNullable<HubConfig['auth']>;

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

/**
 * Turns the bearer token of an incoming request (HTTP `Authorization` header, or the
 * `authorization` connection parameter of a WebSocket) into a User, or refuses it.
 */
export class Authenticator {
  readonly #config: AuthConfig;
  readonly #key: Uint8Array | KeyObject | JWTVerifyGetKey;

  constructor(config: AuthConfig) {
    this.#config = config;
    const { secret, publicKey, jwksUrl } = config.jwt;
    if (secret) this.#key = new TextEncoder().encode(secret);
    else if (publicKey) this.#key = createPublicKey(publicKey);
    else this.#key = createRemoteJWKSet(new URL(jwksUrl!));
  }

  /** null for an anonymous caller (when allowed); throws UNAUTHENTICATED for a bad token. */
  async authenticate(authorization: string | undefined): Promise<User | null> {
    if (!authorization) {
      if (this.#config.required) throw new HubError(ErrorCode.UNAUTHENTICATED, 'Authentication required');
      return null;
    }
    const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!match) throw new HubError(ErrorCode.UNAUTHENTICATED, 'Expected "Authorization: Bearer <token>"');
    const { issuer, audience, secret } = this.#config.jwt;
    try {
      const { payload } = await jwtVerify(match[1]!, this.#key as Uint8Array, {
        ...(issuer && { issuer }),
        ...(audience && { audience }),
        ...(secret && { algorithms: HMAC_ALGORITHMS }),
      });
      return {
        id: typeof payload.sub === 'string' ? payload.sub : '',
        roles: rolesOf(payload, this.#config.jwt.rolesClaim),
        claims: payload,
      };
    } catch (error) {
      throw new HubError(ErrorCode.UNAUTHENTICATED, `Invalid token: ${reason(error)}`);
    }
  }
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
