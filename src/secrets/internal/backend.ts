/**
 * What a writable secrets layer needs from its storage: read the current entries, and apply a
 * change atomically. The service on top (validation, globbing, change events, the environment
 * fallback) is the same for every storage.
 */
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { SecretsError } from "../../domain/Errors.js"

/** The entries of a store, by key name. */
export type Entries = ReadonlyMap<string, Redacted.Redacted<string>>

/** A change computed from the current entries: its result, and the new entries if anything changed. */
export interface Change<A> {
  readonly result: A
  readonly next?: Entries
}

/** A storage for secrets. */
export interface Backend {
  readonly entries: Effect.Effect<Entries, SecretsError>
  /** Runs `change` against the current entries and persists `next`; changes never interleave. */
  readonly modify: <A>(change: (current: Entries) => Change<A>) => Effect.Effect<A, SecretsError>
}

/** A storage that lives only in this process. */
export const memoryBackend = (initial: Entries): Effect.Effect<Backend> =>
  Effect.sync(() => {
    let current: Entries = new Map(initial)
    return {
      entries: Effect.sync(() => current),
      // A change is one synchronous step, so no other fiber can interleave with it.
      modify: (change) =>
        Effect.sync(() => {
          const { next, result } = change(current)
          if (next !== undefined) current = next
          return result
        })
    }
  })
