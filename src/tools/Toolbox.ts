/**
 * Many tool providers as one: lookup by name and batch execution. A provider's typed failure
 * becomes a terminal `tool-error` event here, so the agent can tell the model and go on.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import { recording } from "../internal/tracing.js"
import type { Reads, Runner, ToolProvider } from "./ToolProvider.js"
import * as Settlement from "./internal/settlement.js"
import { isTerminal, readsToStream, runnerOf, runReads, toolError, toolErrorEvent } from "./ToolProvider.js"

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

interface Index {
  readonly owner: ReadonlyMap<string, ToolProvider<any>>
  readonly definitions: ReadonlyArray<ToolDefinition>
  /** Each provider's last successful listing, kept when a later listing fails. */
  readonly listings: ReadonlyArray<ReadonlyArray<ToolDefinition>>
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

    const initial = yield* Effect.forEach(
      typed,
      (provider) => Effect.mapError(provider.getTools, (error) => listingFailed(provider, error)),
      { concurrency: "unbounded" }
    )
    // The hot path reads this index synchronously; `getTools` swaps in a complete new one.
    let index: Index = yield* buildIndex(typed, initial)

    const getTools = Effect.forEach(typed, (provider) => Effect.either(provider.getTools), {
      concurrency: "unbounded"
    }).pipe(
      Effect.flatMap((results) =>
        Effect.forEach(results, (result, i) =>
          Either.match(result, {
            onRight: Effect.succeed,
            onLeft: (error) =>
              Effect.as(
                Effect.logWarning(
                  `Tool provider "${typed[i]!.name}" could not list its tools; keeping its last known list`,
                  error.message
                ),
                index.listings[i]!
              )
          }))
      ),
      Effect.flatMap((listings) => buildIndex(typed, listings)),
      Effect.map((next) => {
        index = next
        return next.definitions
      }),
      Effect.provide(captured),
      Effect.withSpan("Toolbox.getTools")
    )

    // Most providers need no services; merging none into the context would be wasted work per call.
    const services = captured.unsafeMap.size === 0 ? undefined : (captured as Context.Context<never>)

    const spanOf = (provider: ToolProvider<R>, calls: ReadonlyArray<ToolCall>, context: ExecutionContext) => ({
      "tool.provider": provider.name,
      "tool.name": calls.length === 1 ? calls[0]!.name : calls.map((call) => call.name),
      "tool.call_id": calls.length === 1 ? calls[0]!.id : calls.map((call) => call.id),
      "agent.context_id": context.contextId
    })

    const run = (
      provider: ToolProvider<R>,
      calls: ReadonlyArray<ToolCall>,
      context: ExecutionContext,
      stream: Stream.Stream<ToolEvent, ToolError, R>
    ): Stream.Stream<ToolEvent> =>
      settle(calls, context, stream as Stream.Stream<ToolEvent, ToolError>, services, spanOf(provider, calls, context))

    // A provider with a runner (local tools, MCP) settles its calls and opens the span itself:
    // one run of reads per call (or per batch) instead of its stream wrapped in the toolbox's.
    const readsWith = (
      provider: ToolProvider<R>,
      runner: Runner,
      calls: ReadonlyArray<ToolCall>,
      context: ExecutionContext,
      concurrency: number
    ): Reads =>
      runner(calls, context, {
        settle: true,
        concurrency,
        services,
        span: { name: "Toolbox.execute", attributes: spanOf(provider, calls, context) }
      })

    // The calls as one run of reads, when one provider with a runner takes them all at once.
    const readsOf: OpenReads = (calls, context, concurrency) => {
      if (calls.length === 0) return undefined
      const provider = index.owner.get(calls[0]!.name)
      const runner = provider === undefined ? undefined : runnerOf(provider)
      if (runner === undefined) return undefined
      if (calls.length === 1) return readsWith(provider!, runner.run, calls, context, 1)
      if (runner.batches !== true || !calls.every((call) => index.owner.get(call.name) === provider)) return undefined
      return readsWith(provider!, runner.run, calls, context, checkConcurrency(concurrency ?? defaultConcurrency))
    }

    const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent> =>
      Stream.suspend(() => {
        const provider = index.owner.get(call.name)
        if (provider === undefined) return Stream.fromEffect(toolErrorEvent(context, call, notFound(call, index)))
        const reads = readsOf([call], context, 1)
        return reads !== undefined
          ? readsToStream(() => reads) as Stream.Stream<ToolEvent>
          : run(provider, [call], context, provider.execute(call, context))
      })

    const executeBatch: Service["executeBatch"] = (calls, context, batchOptions) =>
      Stream.suspend(() => {
        const concurrency = batchOptions?.concurrency === undefined
          ? defaultConcurrency
          : checkConcurrency(batchOptions.concurrency)
        if (calls.length === 1) return execute(calls[0]!, context)
        // The common batch: every call for one provider that batches through its runner (local
        // tools), run as one stream with the batch's concurrency.
        const reads = readsOf(calls, context, concurrency)
        if (reads !== undefined) return readsToStream(() => reads) as Stream.Stream<ToolEvent>
        return Stream.mergeAll(plan(calls, index).map((unit) =>
          unit.provider?.executeBatch === undefined || unit.calls.length === 1
            ? execute(unit.calls[0]!, context)
            : run(unit.provider, unit.calls, context, unit.provider.executeBatch(unit.calls, context))
        ), { concurrency })
      })

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

const checkConcurrency = (concurrency: number): number => {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`Toolbox: concurrency must be a whole number of at least 1, got ${concurrency}.`)
  }
  return concurrency
}

const listingFailed = (provider: ToolProvider<any>, error: ToolError): ToolError =>
  new ToolError({ ...error, message: `Tool provider "${provider.name}" could not list its tools: ${error.message}` })

const buildIndex = (
  providers: ReadonlyArray<ToolProvider<any>>,
  listings: ReadonlyArray<ReadonlyArray<ToolDefinition>>
): Effect.Effect<Index, ToolError> => {
  const owner = new Map<string, ToolProvider<any>>()
  const definitions: Array<ToolDefinition> = []
  for (let i = 0; i < providers.length; i++) {
    const provider = providers[i]!
    for (const definition of listings[i]!) {
      const first = owner.get(definition.name)
      if (first !== undefined) {
        return Effect.fail(
          new ToolError({
            reason: "ExecutionFailed",
            toolName: definition.name,
            toolCallId: "",
            message: first === provider
              ? `Tool provider "${provider.name}" offers the tool "${definition.name}" twice; tool names must be unique.`
              : `The tool "${definition.name}" is offered by two providers, "${first.name}" and "${provider.name}"; ` +
                `remove one, rename it, or prefix one provider's tool names.`
          })
        )
      }
      owner.set(definition.name, provider)
      definitions.push(definition)
    }
  }
  return Effect.succeed({ owner, definitions, listings })
}

const namesShown = 10

const notFound = (call: ToolCall, index: Index): ToolError => {
  const names = index.definitions.map((definition) => definition.name)
  const shown = names.slice(0, namesShown).join(", ")
  const more = names.length > namesShown ? ` (and ${names.length - namesShown} more)` : ""
  return toolError(
    call,
    "NotFound",
    names.length === 0
      ? `Unknown tool "${call.name}": no tools are available.`
      : `Unknown tool "${call.name}". Available tools: ${shown}${more}. Call one of these by its exact name.`
  )
}

/** Groups a batch into units of work: one call, or all calls for a provider with its own batching. */
const plan = (
  calls: ReadonlyArray<ToolCall>,
  index: Index
): ReadonlyArray<{ readonly provider: ToolProvider<any> | undefined; readonly calls: Array<ToolCall> }> => {
  const units: Array<{ readonly provider: ToolProvider<any> | undefined; readonly calls: Array<ToolCall> }> = []
  const grouped = new Map<ToolProvider<any>, Array<ToolCall>>()
  for (const call of calls) {
    const provider = index.owner.get(call.name)
    // A provider that batches through its runner runs each call of a mixed batch in its own
    // slot, as `execute` does, so the batch's concurrency still counts every call.
    if (provider?.executeBatch === undefined || (provider !== undefined && runnerOf(provider)?.batches === true)) {
      units.push({ provider, calls: [call] })
      continue
    }
    const group = grouped.get(provider)
    if (group !== undefined) {
      group.push(call)
    } else {
      const created = [call]
      grouped.set(provider, created)
      units.push({ provider, calls: created })
    }
  }
  return units
}

/**
 * Makes a provider's stream end every call with exactly one terminal event: failures, defects
 * and interruptions become `tool-error` events for the calls still open, and a stream that
 * ends early closes the rest with "ended without a result". The provider's stream runs in a
 * `Toolbox.execute` span, with the toolbox's captured services. One read loop does the
 * bookkeeping, so a call costs one stage here rather than a map, a catch and a concatenation.
 */
const settle = (
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
