/**
 * Many tool providers as one: lookup by name and batch execution. A provider's typed failure
 * becomes a terminal `tool-error` event here, so the agent can tell the model and go on.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"

/** @since 0.1.0 */
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
}

/** @since 0.1.0 */
export class Toolbox extends Context.Tag("effect-agent-kernel/Toolbox")<Toolbox, Service>() {}
