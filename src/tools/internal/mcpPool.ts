/**
 * The connections of one provider, one per identity, on Effect's `RcMap`: opened on first use
 * (concurrent callers share one connect, which goes on for the others when one gives up), kept
 * while in use, closed after `idleTimeToLive` unused, and all closed with the provider's scope.
 * A lease is a reference held in a scope of its own, closed by `release`. It costs more than the
 * hand-written pool this replaced, whose synchronous lease was nearly free: measured with a
 * connection that answers at once, about 20 µs of CPU per call (most of it `RcMap.get` and its
 * release), under 1% of the time of a `tools/call` to a local server (`npm run bench:tools`).
 *
 * A connection found broken (the server closed it, the child died, the session expired), or a
 * connect that failed, is dropped so that the next caller connects again. That is why the map
 * is keyed by an identity's current `Slot`, not by the identity: this version of `RcMap`
 * cleans up an entry invalidated while borrowed by its key, so when its last user let go it
 * would remove a newer entry under the same key from the map (or leave the old one open)
 * (Effect-TS/effect#7515). A dropped slot's key is never used again.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Hash from "effect/Hash"
import * as RcMap from "effect/RcMap"
import * as Scope from "effect/Scope"
import type { Connection } from "./mcpConnection.js"
import type { McpFailure } from "./mcpErrors.js"
import type { Identity } from "./mcpIdentity.js"

/** One connection (made or to be made) of an identity: the map's key. Equal only to itself. */
class Slot implements Equal.Equal {
  /** Set once connected. */
  connection: Connection | undefined = undefined
  constructor(readonly identity: Identity, readonly generation: number) {}
  [Equal.symbol](that: Equal.Equal): boolean {
    return this === that
  }
  [Hash.symbol](): number {
    return this.generation
  }
}

/** A use of one identity's connection. */
export interface Lease {
  readonly slot: Slot
  /** Holds the reference: closing it lets the connection go. */
  readonly scope: Scope.CloseableScope
}

export interface Pool {
  /** Whether the identity's connection is open now, so that a lease would not wait. */
  readonly isOpen: (identity: Identity) => boolean
  /**
   * The identity's connection, connecting if needed. `onLeased` gets the lease as soon as it is
   * taken (before anything can interrupt), and the caller must `release` it once done, whether
   * the connection came or not.
   */
  readonly lease: (identity: Identity, onLeased: (lease: Lease) => void) => Effect.Effect<Connection, McpFailure>
  /** Gives a lease back; the connection closes when unused for `idleTimeToLive`, or now if dropped. */
  readonly release: (lease: Lease) => Effect.Effect<void>
  /** Drops a broken connection so the next lease reconnects; it closes when its users let go. */
  readonly invalidate: (lease: Lease) => Effect.Effect<void>
}

export const make = (options: {
  readonly connect: (identity: Identity) => Effect.Effect<Connection, McpFailure, Scope.Scope>
  readonly idleTimeToLive: Duration.Duration
}): Effect.Effect<Pool, never, Scope.Scope> =>
  Effect.gen(function*() {
    /** Each identity's current slot, by digest; a slot leaves it when dropped or closed. */
    const current = new Map<string, Slot>()
    let generations = 0

    const forget = (slot: Slot): void => {
      if (current.get(slot.identity.digest) === slot) current.delete(slot.identity.digest)
    }

    const connections = yield* RcMap.make({
      lookup: (slot: Slot) =>
        Effect.zipRight(
          Effect.addFinalizer(() => Effect.sync(() => forget(slot))),
          Effect.tap(options.connect(slot.identity), (connection) => {
            slot.connection = connection
          })
        ),
      idleTimeToLive: options.idleTimeToLive
    })

    const drop = (slot: Slot): Effect.Effect<void> =>
      Effect.suspend(() => {
        forget(slot)
        return RcMap.invalidate(connections, slot)
      })

    const slotOf = (identity: Identity): Slot => {
      const found = current.get(identity.digest)
      if (found !== undefined && found.connection?.closed !== true) return found
      const slot = new Slot(identity, ++generations)
      current.set(identity.digest, slot)
      return slot
    }

    const lease = (identity: Identity, onLeased: (lease: Lease) => void): Effect.Effect<Connection, McpFailure> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const previous = current.get(identity.digest)
          const slot = slotOf(identity)
          const leased = Effect.flatMap(Scope.make(), (scope) => {
            onLeased({ slot, scope })
            // A failed connect is not kept: the next caller tries again.
            return Effect.tapError(restore(Scope.extend(RcMap.get(connections, slot), scope)), () => drop(slot))
          })
          // The server went away (or the child died) while the connection was idle: drop it.
          return previous !== undefined && previous !== slot ? Effect.zipRight(drop(previous), leased) : leased
        })
      )

    return {
      isOpen: (identity) => {
        const connection = current.get(identity.digest)?.connection
        return connection !== undefined && !connection.closed
      },
      lease,
      release: (held) => Scope.close(held.scope, Exit.void),
      invalidate: (held) => drop(held.slot)
    } satisfies Pool
  })
