/** Checking a request's bearer token against the served agent's. */
import type { User } from "@a2a-js/sdk/server"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"

/** Checks a request's token against the required one. */
export const makeTokenCheck = (required: Redacted.Redacted<string> | undefined) => {
  const expected = required === undefined ? undefined : digest(Redacted.value(required))
  return (token: string | undefined): boolean =>
    expected === undefined || (token !== undefined && timingSafeEqual(digest(token), expected))
}

/** The token of an `Authorization: Bearer <token>` header. */
export const bearerOf = (header: string | undefined): string | undefined => /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1]

/** The SDK's user for a request that sent a token (it scopes the tasks it may see). */
export const bearerUser: User = { isAuthenticated: true, userName: "bearer" }

/** Fixed-length digests make the comparison constant-time whatever the token's length. */
const digest = (token: string): Buffer => createHash("sha256").update(token).digest()
