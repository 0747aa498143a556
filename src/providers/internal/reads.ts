/**
 * A provider's answer as reads (`LanguageModel.Reads`): turned into one channel stage, made from
 * a provider's `stream` when it has no reads of its own, and run chunk by chunk without a stream.
 * Shared by `LanguageModel.make` (which derives `stream` from `open`), `Resilience` and the
 * router.
 */
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ChatChunk } from "../../domain/Message.js"
import type { ModelError, Reads } from "../LanguageModel.js"

/** Reads as a channel: each chunk is written out until the end; `close` runs however it ends. */
export const readsChannel = (
  reads: Reads
): Channel.Channel<Chunk.Chunk<ChatChunk>, unknown, ModelError, unknown, void, unknown> => {
  const loop: Channel.Channel<Chunk.Chunk<ChatChunk>, unknown, ModelError, unknown, void, unknown> = Channel.flatMap(
    Channel.fromEffect(reads.next),
    (chunk) => chunk === undefined ? Channel.void : chunk.length === 0 ? loop : Channel.zipRight(Channel.write(chunk), loop)
  )
  return Channel.ensuringWith(loop, reads.close)
}

/** Reads as a stream of one channel stage. */
export const readsStream = <R>(open: Effect.Effect<Reads, ModelError, R>): Stream.Stream<ChatChunk, ModelError, R> =>
  Stream.fromChannel(Channel.unwrap(Effect.map(open, readsChannel)))

/** A `stream` read as reads (a channel executor in a scope of its own). */
export const streamReads = (stream: Stream.Stream<ChatChunk, ModelError>): Effect.Effect<Reads> =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.map(Scope.extend(Channel.toPull(Stream.toChannel(stream)), scope), (pull) => ({
      next: Effect.map(pull, (read) => read._tag === "Right" ? read.right : undefined),
      close: (exit) => Scope.close(scope, exit)
    })))

/** Runs `f` on every chunk of reads, in order, closing them however it ends. */
export const runReads = <E, R>(
  open: Effect.Effect<Reads, ModelError>,
  f: (chunk: Chunk.Chunk<ChatChunk>) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, ModelError | E, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(restore(open), (reads) => {
      const loop: Effect.Effect<void, ModelError | E, R> = Effect.flatMap(
        reads.next,
        (chunk) => chunk === undefined ? Effect.void : chunk.length === 0 ? loop : Effect.zipRight(f(chunk), loop)
      )
      return Effect.onExit(restore(loop), reads.close)
    })
  )
