/**
 * How a tool call that did not finish ends: the one rule the toolbox, local tools and MCP calls
 * follow. The model needs an answer for every call it made, so a call whose run failed, was
 * interrupted or crashed still ends with a `tool-error`: its own `ToolError` when it failed, an
 * `ExecutionFailed` saying it was interrupted, or — for a defect, which is a bug but must not
 * bring the agent down — an `ExecutionFailed` saying it crashed, the defect logged at error
 * level with its cause.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { ToolError } from "../../domain/Errors.js"
import type { ToolCall } from "../../domain/Message.js"
import { toolError } from "./callEvents.js"

/** Takes credentials out of a text that may quote a call's arguments. */
export type Scrub = (text: string) => string

export const noScrub: Scrub = (text) => text

export const interrupted = (call: ToolCall): ToolError =>
  toolError(call, "ExecutionFailed", `Tool "${call.name}" was interrupted before it finished.`)

export const crashed = (call: ToolCall, defect: unknown, scrub: Scrub = noScrub): ToolError =>
  toolError(call, "ExecutionFailed", scrub(`Tool "${call.name}" crashed: ${describe(defect)}`))

export const endedWithoutResult = (call: ToolCall): ToolError =>
  toolError(call, "ExecutionFailed", `Tool "${call.name}" ended without a result.`)

/** Whether a run that stopped with `cause` crashed (rather than failing or being interrupted). */
export const isCrash = (cause: Cause.Cause<unknown>): boolean =>
  Option.isNone(Cause.failureOption(cause)) && !Cause.isInterruptedOnly(cause)

/** What a call ends with when its run stopped with `cause`; see `logCrash` for a defect's log line. */
export const settle = (call: ToolCall, cause: Cause.Cause<ToolError>, scrub: Scrub = noScrub): ToolError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return failure.value
  return Cause.isInterruptedOnly(cause) ? interrupted(call) : crashed(call, Cause.squash(cause), scrub)
}

/** The log line for calls that crashed: error level, the cause in full, the calls named. */
export const logCrash = (
  calls: ReadonlyArray<ToolCall>,
  contextId: string,
  cause: Cause.Cause<unknown>,
  scrub: Scrub = noScrub
): Effect.Effect<void> =>
  Effect.logError(`${crashedNames(calls)} crashed`, scrub(Cause.pretty(cause))).pipe(
    Effect.annotateLogs({
      toolNames: calls.map((call) => call.name).join(","),
      toolCallIds: calls.map((call) => call.id).join(","),
      contextId
    })
  )

const crashedNames = (calls: ReadonlyArray<ToolCall>): string =>
  calls.length === 1 ? `Tool "${calls[0]!.name}"` : `Tools ${calls.map((call) => `"${call.name}"`).join(", ")}`

/** A short, readable account of an unknown failure or defect. */
export const describe = (error: unknown): string => {
  if (typeof error === "string") return error
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : undefined
    const message = "message" in error && typeof error.message === "string" && error.message !== ""
      ? error.message
      : undefined
    if (message !== undefined) return tag !== undefined && !message.startsWith(tag) ? `${tag}: ${message}` : message
    if (tag !== undefined) return tag
    if (error instanceof Error) return error.name
  }
  try {
    return JSON.stringify(error)?.slice(0, 500) ?? String(error)
  } catch {
    return String(error)
  }
}
