/**
 * Each provider's health check (`LanguageModel.isAvailable`), run at most once per TTL and shared
 * by the callers that ask while it runs: what `Effect.cachedWithTTL` gives, without its
 * synchronized reference (a semaphore and some thirty runtime operations per read). The router
 * asks once per request, so a fresh answer costs a clock read and a map lookup.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"

type Entry =
  | { readonly _tag: "Known"; readonly value: boolean; readonly until: number }
  // `undefined`: the check did not finish (interrupted, or a defect); its waiters ask again.
  | { readonly _tag: "Checking"; readonly done: Deferred.Deferred<boolean | undefined> }

export class Availability {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly ttlMs: number) {}

  /** `check`'s answer for `id`, run again once `ttlMs` has passed since the last one ended. */
  readonly check = (id: string, check: Effect.Effect<boolean>): Effect.Effect<boolean> =>
    Effect.clockWith((clock) => {
      const entry = this.entries.get(id)
      if (entry?._tag === "Known" && clock.unsafeCurrentTimeMillis() < entry.until) return Effect.succeed(entry.value)
      // Uninterruptible from the entry's creation to its settling, so it never stays "Checking".
      return Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const current = this.entries.get(id)
          if (current?._tag === "Checking") return restore(this.await(id, current, check))
          const checking: Entry = { _tag: "Checking", done: Deferred.unsafeMake(FiberId.none) }
          this.entries.set(id, checking)
          return Effect.onExit(restore(check), (exit) =>
            Effect.suspend(() => {
              const value = Exit.isSuccess(exit) ? exit.value : undefined
              // A `forget` while it ran: the answer goes to its waiters, not to the cache.
              if (this.entries.get(id) === checking) {
                if (value === undefined) this.entries.delete(id)
                else this.entries.set(id, { _tag: "Known", value, until: clock.unsafeCurrentTimeMillis() + this.ttlMs })
              }
              return Deferred.succeed(checking.done, value)
            }))
        })
      )
    })

  /** Drops what is known of `id`: its next `check` runs the check again. */
  forget(id: string): void {
    this.entries.delete(id)
  }

  private await(
    id: string,
    entry: Extract<Entry, { _tag: "Checking" }>,
    check: Effect.Effect<boolean>
  ): Effect.Effect<boolean> {
    return Effect.flatMap(
      Deferred.await(entry.done),
      (value) => value === undefined ? this.check(id, check) : Effect.succeed(value)
    )
  }
}
