/**
 * Spans on the hot path, made only when someone can receive them.
 *
 * Effect's built-in tracer is what every fiber has unless a real one (OpenTelemetry, say) is
 * provided, and it exports nothing: its spans are only ever seen by code that asks for
 * `Effect.currentSpan`. Making one costs ~12 µs of CPU on this project's CI machine kind (random
 * ids, a copy of the fiber's refs, a scope for its end), and an agent step makes four (the step,
 * the model call, the tool batch, each tool call). So the kernel's per-call spans are made when a
 * tracer other than the built-in one is installed, and left out otherwise; one-off spans (building
 * a toolbox, connecting to a server, reading a config) are always made.
 */
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"

/** The tracer every fiber has unless a real one is provided: its spans go nowhere. */
export const builtInTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/** Whether a span made by this fiber can reach a tracer that records it. */
export const recording = (fiber: { readonly currentTracer: Tracer.Tracer }): boolean =>
  fiber.currentTracer !== builtInTracer

/** `Effect.withSpan`, when the running fiber's tracer records spans (see `recording`). */
export const withSpan = (name: string, options: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime<A, E, R>((fiber) => recording(fiber) ? Effect.withSpan(self, name, options) : self)

/** `Effect.makeSpan`, or `undefined` when the running fiber's tracer does not record spans. */
export const makeSpan = (name: string, options: Tracer.SpanOptions): Effect.Effect<Tracer.Span | undefined> =>
  Effect.withFiberRuntime((fiber) => recording(fiber) ? Effect.makeSpan(name, options) : Effect.succeed(undefined))
