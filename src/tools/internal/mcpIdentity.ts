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

/** A connection pool key (by `digest`): equal when the digest is equal; prints nothing secret. */
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

/** How many callers' last identities `identities` remembers. */
const remembered = 256

/**
 * `identify` with a memory of each user's last headers: a caller whose `getHeaders` keeps
 * answering the same headers (the usual case) gets the same `Identity` without hashing again.
 * A changed header (a refreshed token) is a miss and is hashed as usual.
 */
export const identities = (): ((userId: string | undefined, headers: Readonly<Record<string, string>>) => Identity) => {
  const last = new Map<string | undefined, { readonly names: Array<string>; readonly values: Array<string>; readonly identity: Identity }>()
  return (userId, headers) => {
    const names = Object.keys(headers)
    const seen = last.get(userId)
    if (seen !== undefined && seen.names.length === names.length) {
      let same = true
      for (let i = 0; i < names.length && same; i++) {
        same = names[i] === seen.names[i] && headers[names[i]!] === seen.values[i]
      }
      if (same) return seen.identity
    }
    const identity = identify(userId, headers)
    if (last.size >= remembered && seen === undefined) last.clear()
    last.set(userId, { names, values: names.map((name) => headers[name]!), identity })
    return identity
  }
}
