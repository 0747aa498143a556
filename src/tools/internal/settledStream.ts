/**
 * A provider's stream as the toolbox runs it when the provider has no runner of its own.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { ToolError } from "../../domain/Errors.js"
import type { ToolEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"
import { recording } from "../../internal/tracing.js"
import { isTerminal, toolErrorEvent } from "../ToolProvider.js"
import * as Settlement from "./settlement.js"

/**
 * Makes a provider's stream end every call with exactly one terminal event: failures, defects
 * and interruptions become `tool-error` events for the calls still open, and a stream that
 * ends early closes the rest with "ended without a result". The provider's stream runs in a
 * `Toolbox.execute` span, with the toolbox's captured services. One read loop does the
 * bookkeeping, so a call costs one stage here rather than a map, a catch and a concatenation.
 */
export const settledStream = (
  calls: ReadonlyArray<ToolCall>,
  context: ExecutionContext,
  stream: Stream.Stream<ToolEvent, ToolError>,
  services: Context.Context<never> | undefined,
  attributes: Record<string, unknown>
): Stream.Stream<ToolEvent> =>
  Stream.fromChannel(Channel.suspend(() => {
    const open = new Map<string, ToolCall>()
    const asked = new Set<string>()
    for (const call of calls) open.set(call.id, call)
    const closeAll = (errorFor: (call: ToolCall) => ToolError): Channel.Channel<Chunk.Chunk<ToolEvent>> => {
      const remaining = Array.from(open.values())
      open.clear()
      return remaining.length === 0 ? Channel.void : Channel.flatMap(
        Channel.fromEffect(Effect.forEach(remaining, (call) => toolErrorEvent(context, call, errorFor(call)))),
        (events) => Channel.write(Chunk.unsafeFromArray(events))
      )
    }
    const loop: Channel.Channel<Chunk.Chunk<ToolEvent>, Chunk.Chunk<ToolEvent>, never, ToolError, unknown, unknown> =
      Channel.readWithCause({
        onInput: (chunk: Chunk.Chunk<ToolEvent>) => {
          for (const event of chunk) {
            if (isTerminal(event)) open.delete(event.toolCallId)
            else if (event.type === "tool-input-required") asked.add(event.toolCallId)
          }
          return Channel.zipRight(Channel.write(chunk), loop)
        },
        onFailure: (cause: Cause.Cause<ToolError>) => {
          if (open.size === 0) return Channel.void
          const closed = closeAll((call) => Settlement.settle(call, cause))
          return Settlement.isCrash(cause)
            ? Channel.zipRight(Channel.fromEffect(Settlement.logCrash(calls, context.contextId, cause)), closed)
            : closed
        },
        onDone: () => {
          // A call whose stream ends waiting for outside input (a remote agent's question) is
          // settled: the caller decides how to answer it.
          for (const id of asked) open.delete(id)
          return closeAll(Settlement.endedWithoutResult)
        }
      })
    return inSpan(Channel.pipeTo(Stream.toChannel(stream), loop), attributes, services)
  }))

/**
 * Runs a channel in a `Toolbox.execute` span (ended when the channel ends) with the given
 * services added: `Stream.withSpan` and `Stream.provideSomeContext` in one stage, without the
 * scope `Stream.withSpan` opens. The span is made only for a tracer that records it (see
 * `internal/tracing.ts`).
 */
const inSpan = <A>(
  channel: Channel.Channel<A, unknown, never, unknown, unknown, unknown>,
  attributes: Record<string, unknown>,
  services: Context.Context<never> | undefined
): Channel.Channel<A, unknown, never, unknown, unknown, unknown> =>
  Channel.unwrap(Effect.withFiberRuntime((fiber) => {
    if (!recording(fiber)) {
      return Effect.succeed(
        services === undefined
          ? channel
          : Channel.mapInputContext(channel, (outer: Context.Context<never>) => Context.merge(outer, services))
      )
    }
    return Effect.flatMap(
      Effect.makeSpan("Toolbox.execute", { captureStackTrace: false, attributes }),
      (span) =>
        Effect.map(FiberRef.get(FiberRef.currentTracerTimingEnabled), (timing) =>
          Channel.ensuringWith(
            Channel.mapInputContext(channel, (outer: Context.Context<never>) =>
              Context.add(services === undefined ? outer : Context.merge(outer, services), Tracer.ParentSpan, span)),
            (exit) =>
              Effect.clockWith((clock) =>
                Effect.sync(() => span.end(timing ? clock.unsafeCurrentTimeNanos() : BigInt(0), exit))
              )
          ))
    )
  }))
