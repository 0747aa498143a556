/**
 * The served agent's bearer token: which one is required, and checking a request's. A server
 * bound to loopback requires none unless given one (web pages are kept out by the `Host` and
 * `Origin` checks); bound to any other interface it generates one rather than serve the
 * network unguarded.
 */
import type { User } from "@a2a-js/sdk/server"
import * as Redacted from "effect/Redacted"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { isLoopback } from "./serverGuard.js"

/** The token to require: the one given; else, beyond loopback, a generated one. */
export const requiredToken = (
  given: string | Redacted.Redacted<string> | undefined,
  host: string
): Redacted.Redacted<string> | undefined => {
  if (given !== undefined) return Redacted.isRedacted(given) ? given : Redacted.make(given)
  return isLoopback(host.toLowerCase()) ? undefined : Redacted.make(randomBytes(32).toString("base64url"))
}

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
