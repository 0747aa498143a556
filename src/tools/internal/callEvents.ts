/**
 * What a tool call reports, built in one place: its events, stamped with the time they are
 * given, and the `ToolError` it fails with. `ToolProvider`'s public constructors validate what
 * they are handed (a caller's values may be anything at run time); the providers' own runs pass
 * `validate: false`, since every field comes from values already checked, and the Schema
 * constructor's check would only cost time on the hot path.
 *
 * @internal
 */
import { ToolError } from "../../domain/Errors.js"
import {
  ToolCompleteEvent,
  ToolErrorEvent,
  ToolInputRequiredEvent,
  ToolProgressEvent,
  ToolStartEvent
} from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"

/** The fields every event of one call carries, besides its timestamp. */
export interface CallIds {
  readonly contextId: string
  readonly taskId: string
  readonly toolCallId: string
  readonly toolName: string
}

export const callIds = (context: ExecutionContext, call: ToolCall): CallIds => ({
  contextId: context.contextId,
  taskId: context.taskId,
  toolCallId: call.id,
  toolName: call.name
})

export interface ProgressReport {
  readonly progress?: number
  readonly total?: number
  readonly message?: string
}

export const startEvent = (
  ids: CallIds,
  timestamp: string,
  args: Record<string, unknown>,
  validate = false
): ToolStartEvent => new ToolStartEvent({ ...ids, timestamp, arguments: args }, !validate)

export const progressEvent = (
  ids: CallIds,
  timestamp: string,
  progress: ProgressReport,
  validate = false
): ToolProgressEvent => new ToolProgressEvent({ ...ids, timestamp, ...progress }, !validate)

export const completeEvent = (ids: CallIds, timestamp: string, result: unknown, validate = false): ToolCompleteEvent =>
  new ToolCompleteEvent({ ...ids, timestamp, result }, !validate)

/** `tool-error` for a failure: a `ToolError`, or anything with its reason and message. */
export const errorEvent = (
  ids: CallIds,
  timestamp: string,
  error: Pick<ToolError, "reason" | "message">,
  validate = false
): ToolErrorEvent =>
  new ToolErrorEvent({ ...ids, timestamp, reason: error.reason, error: error.message }, !validate)

export const inputRequiredEvent = (
  ids: CallIds,
  timestamp: string,
  args: Record<string, unknown>,
  message: string | undefined,
  answeredBy: "callback" | "caller" | undefined,
  validate = false
): ToolInputRequiredEvent =>
  new ToolInputRequiredEvent({
    ...ids,
    timestamp,
    arguments: args,
    ...(message !== undefined ? { message } : {}),
    ...(answeredBy !== undefined ? { answeredBy } : {})
  }, !validate)

/** A `ToolError` for a call, with the call's name and id filled in. */
export const toolError = (call: ToolCall, reason: ToolError["reason"], message: string, details?: unknown): ToolError =>
  new ToolError({
    reason,
    toolName: call.name,
    toolCallId: call.id,
    message,
    ...(details !== undefined ? { details } : {})
  })
