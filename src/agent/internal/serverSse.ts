/**
 * The SDK's answer to a streaming request as a Server-Sent Events response, and what happens to
 * the SDK's stream when the client leaves before it ends: `onClientGone` runs, whether the client
 * left while the first event was awaited or while the stream was being written.
 */
import { formatSSEErrorEvent, formatSSEEvent, SSE_HEADERS } from "@a2a-js/sdk"
import { JsonRpcTransportHandler } from "@a2a-js/sdk/server"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { UnknownException } from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

export type EventIterator = AsyncIterator<unknown, unknown, undefined>

export const sseResponse = (
  iterator: EventIterator,
  onClientGone: Effect.Effect<void>
): Effect.Effect<HttpServerResponse.HttpServerResponse, UnknownException> =>
  Effect.gen(function*() {
    // The first event decides between an SSE stream and a plain JSON-RPC error.
    const first = yield* Effect.tryPromise(() => iterator.next()).pipe(Effect.onInterrupt(() => onClientGone))
    const rest = Stream.repeatEffectOption(
      Effect.tryPromise(() => iterator.next()).pipe(
        Effect.mapError(Option.some),
        Effect.flatMap((next) => (next.done ? Effect.fail(Option.none()) : Effect.succeed(next.value)))
      )
    )
    const events = (first.done ? Stream.empty : Stream.concat(Stream.make(first.value), rest)).pipe(
      Stream.map(formatSSEEvent),
      Stream.catchAll((error) => Stream.make(formatSSEErrorEvent(rpcError(error.error)))),
      Stream.ensuringWith((exit) => (Exit.isInterrupted(exit) ? onClientGone : closeIterator(iterator))),
      Stream.encodeText
    )
    return HttpServerResponse.stream(events, {
      contentType: SSE_HEADERS["Content-Type"],
      headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
    })
  })

/** `return()` on a generator parked in `next()` waits for its next event, so do not wait. */
export const closeIterator = (iterator: EventIterator): Effect.Effect<void> =>
  Effect.sync(() => void iterator.return?.(undefined).catch(() => undefined))

/**
 * Reads the SDK's stream to its end, discarding it: the SDK records a task's events in the task
 * store as this stream is read, so a stream left unread would leave the task's last state
 * (its cancellation) unrecorded.
 */
export const drainIterator = (iterator: EventIterator): Effect.Effect<void> =>
  Effect.tryPromise(() => iterator.next()).pipe(
    Effect.repeat({ until: (next) => next.done === true }),
    Effect.ignore
  )

export const rpcError = (error: unknown) => ({ jsonrpc: "2.0", id: null, error: JsonRpcTransportHandler.mapToJSONRPCError(error) })
