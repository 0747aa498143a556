/**
 * The connections of one provider, one per identity, reference-counted: opened on first use
 * (concurrent callers share one connect), kept while in use, closed after `idleTimeToLive`
 * without use, and all closed with the provider's scope. A live connection can be leased
 * synchronously (`tryLease`), so a tool call on an open connection does no Effect work to get it.
 *
 * Hand-written rather than on Effect's `RcMap`, by measurement. On an `RcMap` (a lease being a
 * scope per call holding an `RcMap.get`), the tools benchmark (`npm run bench:tools`, rounds
 * alternating with this pool) put a `tools/call` through the toolbox at 1.17 times the raw SDK
 * call at p50 against 1.10 to 1.11 with this pool, and its client CPU at 1.40 times the raw
 * call's against 1.26 to 1.31: about 6% of a call, where 2% was the most it could cost. Keyed
 * by identity, `RcMap` 3.22 also mishandles a connection dropped while still in use: when its
 * last user lets go, it removes the newer connection under the same key, or leaves the old one
 * open (Effect-TS/effect#7515); here a dropped connection closes then, and only it.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import type { Connection } from "./mcpConnection.js"
import type { McpFailure } from "./mcpErrors.js"
import type { Identity } from "./mcpIdentity.js"

/** One identity's connection and who uses it. */
export interface Lease {
  readonly identity: Identity
  /** Set once connected. */
  connection: Connection | undefined
  readonly ready: Deferred.Deferred<Connection, McpFailure>
  /** Holds the connection's resources; closing it closes the connection. */
  readonly scope: Scope.CloseableScope
  refCount: number
  expiresAt: number
  idle: Fiber.RuntimeFiber<void> | undefined
  /** No longer in the pool: closed when its last user lets go. */
  removed: boolean
}

export interface Pool {
  /** A lease on the identity's connection when it is open now; `undefined` otherwise. */
  readonly tryLease: (identity: Identity) => Lease | undefined
  /**
   * The identity's connection, connecting if needed. `onLeased` gets the lease as soon as it is
   * taken (before anything can interrupt), and the caller must `release` it once done, whether
   * the connection came or not.
   */
  readonly lease: (identity: Identity, onLeased: (lease: Lease) => void) => Effect.Effect<Connection, McpFailure>
  /** Gives a lease back; the connection closes when unused for `idleTimeToLive`, or now if removed. */
  readonly release: (lease: Lease) => Effect.Effect<void>
  /** Removes a broken connection so the next lease reconnects; it closes when its users let go. */
  readonly invalidate: (lease: Lease) => Effect.Effect<void>
}

interface Options {
  readonly connect: (identity: Identity) => Effect.Effect<Connection, McpFailure, Scope.Scope>
  readonly idleTimeToLive: Duration.Duration
}

/** A pool in the current scope: closing the scope closes every connection. */
export const make = (options: Options): Effect.Effect<Pool, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = new ConnectionPool(options, yield* Effect.scope, yield* Effect.clock)
    yield* Effect.addFinalizer(() => pool.shutdown)
    return pool
  })

class ConnectionPool implements Pool {
  private readonly leases = new Map<string, Lease>()
  private readonly ttl: number
  private closed = false

  constructor(
    private readonly options: Options,
    private readonly poolScope: Scope.Scope,
    private readonly clock: Clock.Clock
  ) {
    this.ttl = Duration.toMillis(options.idleTimeToLive)
  }

  readonly shutdown: Effect.Effect<void> = Effect.suspend(() => {
    this.closed = true
    const all = Array.from(this.leases.values())
    for (const lease of all) this.remove(lease)
    return Effect.forEach(all, (lease) => this.close(lease), { discard: true })
  })

  readonly tryLease = (identity: Identity): Lease | undefined => {
    const lease = this.leases.get(identity.digest)
    if (lease === undefined || lease.connection === undefined || lease.connection.closed) return undefined
    lease.refCount++
    return lease
  }

  readonly lease = (identity: Identity, onLeased: (lease: Lease) => void): Effect.Effect<Connection, McpFailure> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (this.closed) return Effect.interrupt
        let found = this.leases.get(identity.digest)
        let dropped: Effect.Effect<void> = Effect.void
        if (found?.connection?.closed === true) {
          // The server went away (or the child died): drop it and connect again.
          this.remove(found)
          if (found.refCount === 0) dropped = this.close(found)
          found = undefined
        }
        return Effect.zipRight(
          dropped,
          Effect.flatMap(found !== undefined ? Effect.succeed(found) : this.open(identity), (taken) => {
            taken.refCount++
            onLeased(taken)
            return restore(Deferred.await(taken.ready))
          })
        )
      })
    )

  readonly release = (lease: Lease): Effect.Effect<void> => {
    lease.refCount--
    if (lease.refCount > 0) return Effect.void
    if (lease.removed || this.closed) return this.close(lease)
    lease.expiresAt = this.clock.unsafeCurrentTimeMillis() + this.ttl
    if (lease.idle !== undefined) return Effect.void
    // Releases run in finalizers, which are uninterruptible; the timer must not inherit that.
    return Effect.flatMap(Effect.forkIn(Effect.interruptible(this.expire(lease)), this.poolScope), (fiber) =>
      Effect.sync(() => {
        if (fiber.unsafePoll() === null) lease.idle = fiber
      }))
  }

  readonly invalidate = (lease: Lease): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (lease.removed) return Effect.void
      this.remove(lease)
      return lease.refCount === 0 ? this.close(lease) : Effect.void
    })

  /** Opens a lease: the connect runs in the pool's scope, so a caller that gives up does not stop it for others. */
  private open(identity: Identity): Effect.Effect<Lease> {
    return Effect.flatMap(Scope.fork(this.poolScope, ExecutionStrategy.sequential), (scope) => {
      const lease: Lease = {
        identity,
        connection: undefined,
        ready: Deferred.unsafeMake<Connection, McpFailure>(FiberId.none),
        scope,
        refCount: 0,
        expiresAt: 0,
        idle: undefined,
        removed: false
      }
      this.leases.set(identity.digest, lease)
      return Scope.extend(this.options.connect(identity), scope).pipe(
        Effect.exit,
        Effect.flatMap((exit) => {
          if (Exit.isSuccess(exit)) lease.connection = exit.value
          // A failed connect is not kept: the next caller tries again.
          else this.remove(lease)
          return Deferred.done(lease.ready, exit)
        }),
        Effect.forkIn(scope),
        Effect.as(lease)
      )
    })
  }

  /** Sleeps until the lease has been unused for `idleTimeToLive`, then closes it; stops if it is used again. */
  private expire(lease: Lease): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (lease.refCount > 0 || lease.removed) {
        lease.idle = undefined
        return Effect.void
      }
      const remaining = lease.expiresAt - this.clock.unsafeCurrentTimeMillis()
      if (remaining > 0) return Effect.zipRight(this.clock.sleep(Duration.millis(remaining)), this.expire(lease))
      lease.idle = undefined
      this.remove(lease)
      return Scope.close(lease.scope, Exit.void)
    })
  }

  private close(lease: Lease): Effect.Effect<void> {
    const idle = lease.idle
    lease.idle = undefined
    return Effect.zipRight(
      Scope.close(lease.scope, Exit.void),
      idle === undefined ? Effect.void : Fiber.interrupt(idle)
    )
  }

  private remove(lease: Lease): void {
    lease.removed = true
    if (this.leases.get(lease.identity.digest) === lease) this.leases.delete(lease.identity.digest)
  }
}
