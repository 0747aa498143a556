/**
 * The read protocol: a run hands out its elements a chunk at a time through `next`, says when
 * nothing is left (`done`, so the reader need not pull once more to learn it), and is closed
 * exactly once however the reading ended. A tool provider's runner, the toolbox's direct path
 * and the agent's event streams are all read this way, so the pull loop is written here once:
 * as one stream stage, or run chunk by chunk without a stream.
 *
 * @internal
 */
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"

/** A run read directly. Nothing starts before the first `next`. */
export interface Reads<A, E, R = never> {
  /** The next elements, waiting while none are ready; `undefined` once the run is over. */
  readonly next: Effect.Effect<Chunk.Chunk<A> | undefined, E, R>
  /** Whether the run is over with nothing left to read. */
  readonly done: boolean
  /** Stops whatever still runs; called exactly once, however the reading ended. */
  readonly close: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
}

/** Reads as one stream stage, opened when the stream runs and pulled until the run is over. */
export const toStream = <A, E, R>(open: () => Reads<A, E, R>): Stream.Stream<A, E, R> =>
  Stream.fromChannel(Channel.suspend(() => {
    const reads = open()
    const loop: Channel.Channel<Chunk.Chunk<A>, unknown, E, unknown, void, unknown, R> = Channel.flatMap(
      Channel.fromEffect(reads.next),
      (chunk) =>
        chunk === undefined ? Channel.void : reads.done ? Channel.write(chunk) : Channel.zipRight(Channel.write(chunk), loop)
    )
    return Channel.ensuringWith(loop, (exit) => reads.close(exit))
  }))

/** Calls `f` on each chunk, in order, closing the reads however it ends. */
export const runForEach = <A, E, R, E2, R2>(
  reads: Reads<A, E, R>,
  f: (chunk: Chunk.Chunk<A>) => Effect.Effect<unknown, E2, R2>
): Effect.Effect<void, E | E2, R | R2> =>
  Effect.uninterruptibleMask((restore) => {
    const loop: Effect.Effect<void, E | E2, R | R2> = Effect.flatMap(
      reads.next,
      (chunk) => chunk === undefined ? Effect.void : Effect.zipRight(f(chunk), reads.done ? Effect.void : loop)
    )
    return Effect.onExit(restore(loop), (exit) => reads.close(exit))
  })
