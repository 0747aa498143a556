/**
 * What a run is made of, shared by the loop's parts: its settings, what it talks to, where it
 * stands between steps, how it ended, and the events that say so.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { AgentError } from "../../domain/Errors.js"
import { type AgentEvent, type TaskState, TaskStatusEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import { type Message, type QueryTier, type ToolCall, type Usage } from "../../domain/Message.js"
import type * as LanguageModel from "../../providers/LanguageModel.js"
import * as Toolbox from "../../tools/Toolbox.js"

/** How a run behaves; all resolved to concrete values by the caller. */
export interface Settings {
  readonly maxSteps: number
  readonly toolChoice: LanguageModel.ToolChoice | undefined
  readonly stopWhen: (call: ToolCall) => boolean
  readonly tier: QueryTier | undefined
  readonly concurrency: number
  readonly chatOptions: Omit<LanguageModel.ChatOptions, "toolChoice" | "tier">
  /** "wait": a client tool's wait happens inside the run; "pause": the run ends and is resumed. */
  readonly inputRequired: "wait" | "pause"
}

export interface Deps {
  readonly model: LanguageModel.Service
  readonly toolbox: Toolbox.Service
  readonly emit: (event: AgentEvent) => Effect.Effect<unknown>
  readonly emitAll: (events: Iterable<AgentEvent>) => Effect.Effect<unknown>
}

/** Where a run stands between steps. */
export interface State {
  readonly context: ExecutionContext
  readonly messages: Array<Message>
  /** Model calls made with tools offered so far. */
  step: number
  usage: Usage
  /** Consecutive failures per identical call (name and arguments). */
  readonly failures: Map<string, number>
}

/** How a run ended. */
export type Outcome =
  | { readonly _tag: "Completed"; readonly content: string }
  | {
    readonly _tag: "Paused"
    readonly toolCalls: ReadonlyArray<ToolCall>
    readonly waiting: ReadonlyArray<string>
    readonly results: Record<string, Message>
  }

/** Now, as events stamp it. */
export const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis).toISOString())

/** The fields every event of the run carries. */
export const base = (context: ExecutionContext, timestamp: string) => ({
  contextId: context.contextId,
  taskId: context.taskId,
  timestamp
})

/** Emits a `task-status` event. */
export const emitStatus = (deps: Deps, context: ExecutionContext, status: TaskState, message?: string) =>
  Effect.flatMap(now, (timestamp) =>
    deps.emit(
      new TaskStatusEvent({ ...base(context, timestamp), status, ...(message !== undefined ? { message } : {}) }, true)
    ))

/** Ends a run as failed: a `task-status` event, then the error. */
export const failRun = (deps: Deps, context: ExecutionContext, error: AgentError) =>
  Effect.zipRight(emitStatus(deps, context, "failed", error.message), Effect.fail(error))

