/**
 * The events a run emits, with the seed's wire names (`type`). Tool execution is a stream of
 * `ToolEvent`s; an agent run is a stream of `AgentEvent`s, which include the tool events.
 * Every event carries the `contextId` and `taskId` it was given and an ISO-8601 `timestamp`.
 * Events are Schema classes, so they encode to JSON for SSE and A2A unchanged.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { ToolErrorReason } from "./Errors.js"
import { FinishReason, QueryTier, RouteAttempt, ToolCall, Usage } from "./Message.js"

const base = {
  contextId: Schema.String,
  taskId: Schema.String,
  timestamp: Schema.String
}

const toolBase = {
  ...base,
  toolCallId: Schema.String,
  toolName: Schema.String
}

const Arguments = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** A tool call began. Arguments named sensitive by the tool are already redacted. @since 0.1.0 */
export class ToolStartEvent extends Schema.Class<ToolStartEvent>("ToolStartEvent")({
  type: Schema.tag("tool-start"),
  ...toolBase,
  arguments: Arguments
}) {}

/** A tool reported progress (`progress` of `total`, when known). @since 0.1.0 */
export class ToolProgressEvent extends Schema.Class<ToolProgressEvent>("ToolProgressEvent")({
  type: Schema.tag("tool-progress"),
  ...toolBase,
  progress: Schema.optional(Schema.Number),
  total: Schema.optional(Schema.Number),
  message: Schema.optional(Schema.String)
}) {}

/** A tool finished; `result` is JSON-compatible data. @since 0.1.0 */
export class ToolCompleteEvent extends Schema.Class<ToolCompleteEvent>("ToolCompleteEvent")({
  type: Schema.tag("tool-complete"),
  ...toolBase,
  result: Schema.Unknown
}) {}

/**
 * A tool failed. This is the terminal event `Toolbox` emits for a `ToolError`, so the agent can
 * tell the model and go on. `reason` is the `ToolError` reason.
 *
 * @since 0.1.0
 */
export class ToolErrorEvent extends Schema.Class<ToolErrorEvent>("ToolErrorEvent")({
  type: Schema.tag("tool-error"),
  ...toolBase,
  reason: ToolErrorReason,
  error: Schema.String
}) {}

/**
 * A tool waits for input from outside: a client-executed tool for its result, a remote agent for
 * an answer. `answeredBy: "callback"` means the provider's own callback will answer, so a caller
 * that pauses runs for input need not pause for it; otherwise the caller must deliver it.
 *
 * @since 0.1.0
 */
export class ToolInputRequiredEvent extends Schema.Class<ToolInputRequiredEvent>("ToolInputRequiredEvent")({
  type: Schema.tag("tool-input-required"),
  ...toolBase,
  arguments: Arguments,
  message: Schema.optional(Schema.String),
  answeredBy: Schema.optional(Schema.Literal("callback", "caller"))
}) {}

/** @since 0.1.0 */
export const ToolEvent = Schema.Union(
  ToolStartEvent,
  ToolProgressEvent,
  ToolCompleteEvent,
  ToolErrorEvent,
  ToolInputRequiredEvent
)
export type ToolEvent = typeof ToolEvent.Type

/** A run started. @since 0.1.0 */
export class TaskCreatedEvent extends Schema.Class<TaskCreatedEvent>("TaskCreatedEvent")({
  type: Schema.tag("task-created"),
  ...base,
  agentId: Schema.String
}) {}

/** @since 0.1.0 */
export const TaskState = Schema.Literal("working", "waiting-input", "completed", "failed", "canceled")
export type TaskState = typeof TaskState.Type

/** The run changed state; `message` says why when it is not obvious. @since 0.1.0 */
export class TaskStatusEvent extends Schema.Class<TaskStatusEvent>("TaskStatusEvent")({
  type: Schema.tag("task-status"),
  ...base,
  status: TaskState,
  message: Schema.optional(Schema.String)
}) {}

/** The router's decision for one model call. @since 0.1.0 */
export class RouteSelectedEvent extends Schema.Class<RouteSelectedEvent>("RouteSelectedEvent")({
  type: Schema.tag("route-selected"),
  ...base,
  tier: QueryTier,
  provider: Schema.String,
  score: Schema.Number,
  signals: Schema.Array(Schema.String),
  forced: Schema.optional(Schema.Boolean),
  fallbacksTried: Schema.optional(Schema.Array(RouteAttempt))
}) {}

/** A piece of the answer text, as it arrives. @since 0.1.0 */
export class ContentDeltaEvent extends Schema.Class<ContentDeltaEvent>("ContentDeltaEvent")({
  type: Schema.tag("content-delta"),
  ...base,
  delta: Schema.String
}) {}

/**
 * A piece of the model's reasoning, as it arrives: the thinking some models stream beside (and
 * before) the answer. It is not part of the answer: `content-complete` and `task-complete` carry
 * the answer alone, and the conversation keeps no reasoning.
 *
 * @since 0.1.0
 */
export class ReasoningDeltaEvent extends Schema.Class<ReasoningDeltaEvent>("ReasoningDeltaEvent")({
  type: Schema.tag("reasoning-delta"),
  ...base,
  delta: Schema.String
}) {}

/** One model step finished: its whole text and the tool calls it made. @since 0.1.0 */
export class ContentCompleteEvent extends Schema.Class<ContentCompleteEvent>("ContentCompleteEvent")({
  type: Schema.tag("content-complete"),
  ...base,
  content: Schema.String,
  toolCalls: Schema.optional(Schema.Array(ToolCall)),
  finishReason: Schema.optional(FinishReason)
}) {}

/** Token usage of one model step. @since 0.1.0 */
export class LlmUsageEvent extends Schema.Class<LlmUsageEvent>("LlmUsageEvent")({
  type: Schema.tag("llm-usage"),
  ...base,
  step: Schema.Number,
  usage: Usage,
  provider: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String)
}) {}

/** The run finished; `usage` is summed over all steps. @since 0.1.0 */
export class TaskCompleteEvent extends Schema.Class<TaskCompleteEvent>("TaskCompleteEvent")({
  type: Schema.tag("task-complete"),
  ...base,
  content: Schema.String,
  steps: Schema.Number,
  usage: Usage
}) {}

/** @since 0.1.0 */
export const AgentEvent = Schema.Union(
  TaskCreatedEvent,
  TaskStatusEvent,
  RouteSelectedEvent,
  ContentDeltaEvent,
  ReasoningDeltaEvent,
  ContentCompleteEvent,
  LlmUsageEvent,
  TaskCompleteEvent,
  ToolStartEvent,
  ToolProgressEvent,
  ToolCompleteEvent,
  ToolErrorEvent,
  ToolInputRequiredEvent
)
export type AgentEvent = typeof AgentEvent.Type

/** A time in epoch milliseconds in the events' timestamp format (ISO-8601). @since 0.1.0 */
export const timestampOf = (millis: number): string => new Date(millis).toISOString()
