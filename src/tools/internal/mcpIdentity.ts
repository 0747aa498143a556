/**
 * Identities: which connection a call may use. Connections are kept per identity so one user's
 * credentials never travel on a connection another user's calls use; the key is a digest of the
 * user id and the headers, and the headers themselves stay `Redacted` inside it.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"
import * as Redacted from "effect/Redacted"
import { secretsOf } from "./mcpErrors.js"

/** An `RcMap` key: equal when the digest is equal; prints nothing secret. */
export class Identity implements Equal.Equal {
  readonly secrets: ReadonlyArray<string>
  constructor(
    readonly digest: string,
    readonly headers: Redacted.Redacted<Readonly<Record<string, string>>>
  ) {
    this.secrets = secretsOf(Redacted.value(headers))
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Identity && that.digest === this.digest
  }
  [Hash.symbol](): number {
    return Hash.cached(this, Hash.string(this.digest))
  }
  toJSON(): unknown {
    return { _id: "McpIdentity", digest: this.digest }
  }
  toString(): string {
    return `McpIdentity(${this.digest.slice(0, 12)})`
  }
}

/** The identity of calls made without credentials (and of every call when no headers apply). */
export const anonymous: Identity = new Identity("anonymous", Redacted.make({}))

/**
 * The identity for a user id and the headers built for it. Header names are compared
 * case-insensitively, as HTTP does.
 */
export const identify = (userId: string | undefined, headers: Readonly<Record<string, string>>): Identity => {
  const entries = Object.entries(headers)
    .map(([name, value]) => [name.toLowerCase(), value] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  if (userId === undefined && entries.length === 0) return anonymous
  const digest = createHash("sha256").update(JSON.stringify([userId ?? null, entries])).digest("hex")
  return new Identity(digest, Redacted.make(headers))
}
