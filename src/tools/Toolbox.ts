/**
 * Many tool providers as one: lookup by name and batch execution. A provider's typed failure
 * becomes a terminal `tool-error` event here, so the agent can tell the model and go on.
 *
 * @since 0.1.0
 */
import type * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import { checkConcurrency, Dispatch } from "./internal/toolboxDispatch.js"
import * as ToolIndex from "./internal/toolIndex.js"
import type { Reads, ToolProvider } from "./ToolProvider.js"
import { runReads } from "./ToolProvider.js"

/**
 * The toolbox the agent uses: every provider's tools under one lookup. Its methods need nothing
 * from the environment; the providers' requirements were captured when it was built.
 *
 * @since 0.1.0
 */
export interface Service {
  /** All tools of all providers. */
  readonly getTools: Effect.Effect<ReadonlyArray<ToolDefinition>, ToolError>
  /** Runs one call. Never fails: every failure ends the stream with a `tool-error` event. */
  readonly execute: (call: ToolCall, context: ExecutionContext) => Stream.Stream<ToolEvent>
  /** Runs many calls with bounded concurrency (default 8), events interleaved as they happen. */
  readonly executeBatch: (
    calls: ReadonlyArray<ToolCall>,
    context: ExecutionContext,
    options?: { readonly concurrency?: number }
  ) => Stream.Stream<ToolEvent>
  /**
   * Optional: the direct path the agent reads a step's calls through without running a stream.
   * It stands for the `executeBatch` it names: a copy of the service keeps it, and a copy whose
   * `executeBatch` was replaced is run through its own `executeBatch`.
   */
  readonly reads?: { readonly open: OpenReads; readonly executeBatch: Service["executeBatch"] } | undefined
}

/**
 * Opens calls as one run of reads, or `undefined` when they need the toolbox's streams.
 *
 * @since 0.1.0
 */
export type OpenReads = (
  calls: ReadonlyArray<ToolCall>,
  context: ExecutionContext,
  concurrency: number | undefined
) => Reads | undefined

/** The `Toolbox` service; build it with `make` or `layer`. @since 0.1.0 */
export class Toolbox extends Context.Tag("effect-agent-kernel/Toolbox")<Toolbox, Service>() {}

/** What a list of providers needs from the environment: the union of their requirements. @since 0.1.0 */
export type Requirements<P> = P extends ToolProvider<infer R> ? R : never

/** How a toolbox runs batches. @since 0.1.0 */
export interface Options {
  /** How many calls `executeBatch` runs at once unless told otherwise (default 8). */
  readonly concurrency?: number
}

/**
 * Builds a toolbox from providers, capturing their requirements now so the service's methods
 * need nothing. At start-up every provider must list its tools, and two providers offering one
 * tool name fail with a `ToolError` naming the tool and both providers. The name → provider
 * index is rebuilt each time `getTools` runs (MCP servers change their tools); a provider whose
 * listing then fails keeps its last known tools (logged as a warning), so one flaky server does
 * not stop the agent, while a new name clash fails `getTools`.
 *
 * `execute` never fails: an unknown name gives a `tool-error` event (`NotFound`, listing some
 * available names); a provider's `ToolError` becomes a terminal `tool-error` event; a defect is
 * logged at error level and reported as `ExecutionFailed` (one buggy tool must not crash the
 * agent); a stream that ends without a result gets a `tool-error` saying so, because the model
 * needs an answer for every call it made. `executeBatch` hands calls for a provider that has
 * its own `executeBatch` to it as one group (which counts as one of the concurrent slots). A
 * `localTools` provider is run directly (one stream stage per call, and a batch whose calls all
 * go to it is one stream, in one `Toolbox.execute` span, with every call counted against the
 * concurrency); in a batch mixing it with other providers each of its calls takes a slot.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function*() {
 *   const toolbox = yield* Toolbox.make([localTools([greet]), mcpProvider])
 *   yield* toolbox.execute(call, context).pipe(Stream.runForEach(Console.log))
 * })
 * ```
 * @since 0.1.0
 */
export const make = <const Providers extends ReadonlyArray<ToolProvider<any>>>(
  providers: Providers,
  options?: Options
): Effect.Effect<Service, ToolError, Requirements<Providers[number]>> => {
  const defaultConcurrency = checkConcurrency(options?.concurrency ?? 8)
  return Effect.gen(function*() {
    type R = Requirements<Providers[number]>
    // The span the toolbox happened to be built in must not become the parent of every tool call's span.
    const captured = Context.omit(Tracer.ParentSpan)(yield* Effect.context<R>()) as Context.Context<R>
    const typed = providers as ReadonlyArray<ToolProvider<R>>
    // Most providers need no services; merging none into the context would be wasted work per call.
    const services = captured.unsafeMap.size === 0 ? undefined : (captured as Context.Context<never>)
    const dispatch = new Dispatch(yield* ToolIndex.initial(typed), services, defaultConcurrency)
    const getTools = ToolIndex.relist(typed, () => dispatch.index).pipe(
      Effect.map((next) => {
        dispatch.index = next
        return next.definitions
      }),
      Effect.provide(captured),
      Effect.withSpan("Toolbox.getTools")
    )
    const { execute, executeBatch, readsOf } = dispatch
    return { getTools, execute, executeBatch, reads: { open: readsOf, executeBatch } } satisfies Service
  })
}

/**
 * The calls as one run of reads through the toolbox's `reads`, or `undefined` when it has none
 * or they need its streams.
 *
 * @since 0.1.0
 */
export const readsOf = (
  toolbox: Service,
  calls: ReadonlyArray<ToolCall>,
  context: ExecutionContext,
  concurrency: number | undefined
): Reads | undefined =>
  toolbox.reads !== undefined && toolbox.reads.executeBatch === toolbox.executeBatch
    ? toolbox.reads.open(calls, context, concurrency)
    : undefined

/**
 * Runs `calls` and calls `f` on their events a chunk at a time, in order, as
 * `Stream.runForEachChunk(toolbox.executeBatch(calls, context, options), f)` does, for less:
 * when one provider with a direct path (local tools, an MCP server's single call) takes them
 * all, they are read without running a stream, which for a quick tool costs more than the tool.
 * Like `executeBatch`, it never fails by itself; only `f` can.
 *
 * @example
 * ```ts
 * const results = Toolbox.runForEachChunk(toolbox, calls, context, { concurrency: 4 }, (events) =>
 *   Effect.sync(() => collected.push(...events)))
 * ```
 * @since 0.1.0
 */
export const runForEachChunk = <E, R>(
  toolbox: Service,
  calls: ReadonlyArray<ToolCall>,
  context: ExecutionContext,
  options: { readonly concurrency?: number } | undefined,
  f: (events: Chunk.Chunk<ToolEvent>) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, E, R> =>
  Effect.suspend(() => {
    const reads = readsOf(toolbox, calls, context, options?.concurrency)
    return reads === undefined
      ? Stream.runForEachChunk(toolbox.executeBatch(calls, context, options), f)
      // With `settle` the reads never fail: every failure is already a `tool-error` event.
      : runReads(reads, f) as Effect.Effect<void, E, R>
  })

/**
 * The `Toolbox` Layer over the given providers; see `make`. Its requirements are the union of
 * the providers' requirements.
 *
 * @example
 * ```ts
 * const ToolboxLive = Toolbox.layer([localTools([search])]).pipe(Layer.provide(SearchIndex.layer))
 * ```
 * @since 0.1.0
 */
export const layer = <const Providers extends ReadonlyArray<ToolProvider<any>>>(
  providers: Providers,
  options?: Options
): Layer.Layer<Toolbox, ToolError, Requirements<Providers[number]>> => Layer.effect(Toolbox, make(providers, options))
