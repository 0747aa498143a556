/**
 * The tool provider contract (seed 001): tools come from local code, clients, MCP servers or
 * other agents, and executing one is a `Stream` of tool events whose typed failure is a
 * `ToolError`.
 *
 * @since 0.1.0
 */
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ToolError } from "../domain/Errors.js"
import {
  timestampOf,
  type ToolCompleteEvent,
  type ToolErrorEvent,
  type ToolEvent,
  type ToolInputRequiredEvent,
  type ToolProgressEvent,
  type ToolStartEvent
} from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import { showArguments } from "../domain/Redaction.js"
import * as CallEvents from "./internal/callEvents.js"
import * as InternalReads from "./internal/reads.js"

/**
 * A source of tools. `execute` emits `tool-start`, then any `tool-progress` (or
 * `tool-input-required`), then `tool-complete`; a failure ends the stream with a `ToolError`.
 * Every event carries the `contextId` and `taskId` of the context it was given. `R` is what the
 * provider's handlers need from the environment.
 *
 * @since 0.1.0
 */
export interface ToolProvider<R = never> {
  readonly name: string
  /** The tools offered. A provider that must ask a server fails with `ToolError` `Transport`. */
  readonly getTools: Effect.Effect<ReadonlyArray<ToolDefinition>, ToolError, R>
  readonly getTool: (name: string) => Effect.Effect<Option.Option<ToolDefinition>, ToolError, R>
  readonly execute: (call: ToolCall, context: ExecutionContext) => Stream.Stream<ToolEvent, ToolError, R>
  /** Optional: a provider that can run many calls better than one by one. */
  readonly executeBatch?: (
    calls: ReadonlyArray<ToolCall>,
    context: ExecutionContext
  ) => Stream.Stream<ToolEvent, ToolError, R>
  /**
   * Optional: the provider's direct path, which `Toolbox` takes instead of wrapping `execute`'s
   * stream (local tools and MCP servers have one). It stands for the `execute` it names: a copy
   * of the provider (`{ ...provider, name }`) keeps it, and a copy whose `execute` was replaced
   * is run through its own `execute`.
   */
  readonly runner?: RunnerOf<R> | undefined
}

/**
 * A tool's outcome in the seed's shape: success with a result, or failure with a message.
 *
 * @since 0.1.0
 */
export type ToolResult =
  | { readonly success: true; readonly result: unknown }
  | { readonly success: false; readonly error: string; readonly reason?: ToolError["reason"] }

const now = Effect.map(Clock.currentTimeMillis, timestampOf)

/**
 * `tool-start` for a call; pass `args` to show redacted arguments instead of the call's own.
 *
 * @since 0.1.0
 */
export const toolStartEvent = (
  context: ExecutionContext,
  call: ToolCall,
  args: Record<string, unknown> = showArguments(call.arguments)
): Effect.Effect<ToolStartEvent> =>
  Effect.map(now, (timestamp) => CallEvents.startEvent(CallEvents.callIds(context, call), timestamp, args, true))

/** @since 0.1.0 */
export const toolProgressEvent = (
  context: ExecutionContext,
  call: ToolCall,
  progress: { readonly progress?: number; readonly total?: number; readonly message?: string }
): Effect.Effect<ToolProgressEvent> =>
  Effect.map(now, (timestamp) => CallEvents.progressEvent(CallEvents.callIds(context, call), timestamp, progress, true))

/** @since 0.1.0 */
export const toolCompleteEvent = (
  context: ExecutionContext,
  call: ToolCall,
  result: unknown
): Effect.Effect<ToolCompleteEvent> =>
  Effect.map(now, (timestamp) => CallEvents.completeEvent(CallEvents.callIds(context, call), timestamp, result, true))

/** @since 0.1.0 */
export const toolInputRequiredEvent = (
  context: ExecutionContext,
  call: ToolCall,
  args: Record<string, unknown> = showArguments(call.arguments),
  message?: string,
  answeredBy?: "callback" | "caller"
): Effect.Effect<ToolInputRequiredEvent> =>
  Effect.map(now, (timestamp) =>
    CallEvents.inputRequiredEvent(CallEvents.callIds(context, call), timestamp, args, message, answeredBy, true))

/**
 * The terminal `tool-error` event for a failure (the seed's `toolErrorEvent`). A plain string is
 * reported as `ExecutionFailed`.
 *
 * @since 0.1.0
 */
export const toolErrorEvent = (
  context: ExecutionContext,
  call: ToolCall,
  error: ToolError | string
): Effect.Effect<ToolErrorEvent> =>
  Effect.map(now, (timestamp) =>
    CallEvents.errorEvent(
      CallEvents.callIds(context, call),
      timestamp,
      typeof error === "string" ? { reason: "ExecutionFailed", message: error } : error,
      true
    ))

/**
 * A `ToolError` for a call, with the call's name and id filled in.
 *
 * @since 0.1.0
 */
export const toolError: (call: ToolCall, reason: ToolError["reason"], message: string, details?: unknown) => ToolError =
  CallEvents.toolError

/**
 * Converts a `ToolResult` into events (the seed's `toolResultToEvents`): a success becomes
 * `tool-complete`; a failure ends the stream with a `ToolError` (which `Toolbox` reports as a
 * `tool-error` event).
 *
 * @since 0.1.0
 */
export const toolResultToEvents = (
  context: ExecutionContext,
  call: ToolCall,
  result: ToolResult
): Stream.Stream<ToolEvent, ToolError> =>
  result.success
    ? Stream.fromEffect(toolCompleteEvent(context, call, result.result))
    : Stream.fail(toolError(call, result.reason ?? "ExecutionFailed", result.error))

/**
 * Whether an event ends a tool call (`tool-complete` or `tool-error`).
 *
 * @since 0.1.0
 */
export const isTerminal = (event: ToolEvent): event is ToolCompleteEvent | ToolErrorEvent =>
  event.type === "tool-complete" || event.type === "tool-error"

/**
 * How `Toolbox` runs calls on a provider that has a runner: the toolbox's own work (settling
 * failures into `tool-error` events, its span, its captured services) done inside the
 * provider's single stream stage instead of stages wrapped around it.
 *
 * @since 0.1.0
 */
export interface RunOptions {
  /** Each failure becomes the call's terminal `tool-error` event instead of failing the stream. */
  readonly settle: boolean
  /** How many calls run at once. */
  readonly concurrency: number
  /** Services for the calls, added over the caller's (what the toolbox captured when built). */
  readonly services?: Context.Context<never> | undefined
  /** A span around the whole run (open until its stream ends), parent of the calls' own spans. */
  readonly span?: { readonly name: string; readonly attributes: Record<string, unknown> } | undefined
}

/**
 * A run of calls read directly, without a stream: what a runner returns. Nothing starts before
 * the first `next`; the handlers' services come from the fiber that reads.
 *
 * @since 0.1.0
 */
export interface Reads {
  /** The next events, waiting while none are ready; `undefined` once the run is over. */
  readonly next: Effect.Effect<Chunk.Chunk<ToolEvent> | undefined, ToolError>
  /** Whether the run is over with nothing left to read (the reader need not call `next` again). */
  readonly done: boolean
  /** Stops whatever still runs; called exactly once, however the reading ended. */
  readonly close: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
}

/**
 * Runs calls of one provider as one run of reads; see `RunOptions`.
 *
 * @since 0.1.0
 */
export type Runner = (calls: ReadonlyArray<ToolCall>, context: ExecutionContext, options: RunOptions) => Reads

/**
 * A run of reads as a stream: one stream stage, pulling `next` until the run is over.
 *
 * @since 0.1.0
 */
export const readsToStream = (open: () => Reads): Stream.Stream<ToolEvent, ToolError, any> => InternalReads.toStream(open)

/**
 * Calls `f` on each chunk of a run of reads, in order, closing the run however it ends.
 *
 * @since 0.1.0
 */
export const runReads = <E, R>(
  reads: Reads,
  f: (chunk: Chunk.Chunk<ToolEvent>) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, ToolError | E, R> => InternalReads.runForEach(reads, f)

/**
 * How a provider is run by `Toolbox` without wrapping its stream: `run` for any calls of it,
 * `batches` whether it runs many calls better than one by one (one run for all of them; without
 * it the runner is given one call at a time).
 *
 * @since 0.1.0
 */
export interface RunnerOf<R = never> {
  readonly run: Runner
  readonly batches: boolean
  /** The `execute` this runner does the work of. */
  readonly execute: (call: ToolCall, context: ExecutionContext) => Stream.Stream<ToolEvent, ToolError, R>
}

/**
 * The provider's runner, when it stands for the provider's own `execute` (see `runner`).
 *
 * @since 0.1.0
 */
export const runnerOf = <R>(provider: ToolProvider<R>): RunnerOf<R> | undefined => {
  const runner = provider.runner
  return runner !== undefined && runner.execute === provider.execute ? runner : undefined
}
