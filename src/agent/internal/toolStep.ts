/**
 * A step's tool calls: run with bounded concurrency (read directly when one provider with a
 * direct path takes them all), their events passed on, and each call's result turned into the
 * tool message the model reads. Calls whose arguments could not be decoded are answered at once.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { ToolError } from "../../domain/Errors.js"
import { type ToolEvent } from "../../domain/Events.js"
import { type Message, type ToolCall, toolResult } from "../../domain/Message.js"
import * as Toolbox from "../../tools/Toolbox.js"
import { runReads, toolErrorEvent } from "../../tools/ToolProvider.js"
import { type Deps, emitStatus, type Settings, type State } from "./run.js"

/** What the model reads for a tool's result. */
export const resultText = (result: unknown): string =>
  typeof result === "string" ? result : JSON.stringify(result) ?? "null"

/** What the model reads for a tool's failure. */
export const errorText = (reason: string, message: string) => `Error (${reason}): ${message}`

/**
 * Runs a step's tool calls with bounded concurrency and returns, per call id, the tool message
 * for the model — or `undefined` for a call that is waiting for client input in "pause" mode.
 * Calls whose arguments could not be decoded are not executed: the model is told what was wrong.
 */
export const executeCalls = (state: State, settings: Settings, deps: Deps, calls: ReadonlyArray<ToolCall>) =>
  Effect.gen(function*() {
    const results = new Map<string, Message | undefined>()
    const redacted = new Map<string, Record<string, unknown>>()
    const asked = new Map<string, string | undefined>()
    const failed = new Set<string>()
    let waitingInline = 0
    const onEvent = (event: ToolEvent): Effect.Effect<unknown> | undefined => {
      switch (event.type) {
        case "tool-start":
          redacted.set(event.toolCallId, event.arguments)
          return undefined
        case "tool-complete":
          results.set(event.toolCallId, toolResult(event.toolCallId, event.toolName, resultText(event.result)))
          return asked.delete(event.toolCallId) && --waitingInline === 0 ? emitStatus(deps, state.context, "working") : undefined
        case "tool-error":
          failed.add(event.toolCallId)
          results.set(event.toolCallId, toolResult(event.toolCallId, event.toolName, errorText(event.reason, event.error)))
          return asked.delete(event.toolCallId) && --waitingInline === 0 ? emitStatus(deps, state.context, "working") : undefined
        case "tool-input-required":
          if (settings.inputRequired === "pause" && pausesFor(event)) {
            results.set(event.toolCallId, undefined)
            return undefined
          }
          asked.set(event.toolCallId, event.message)
          return waitingInline++ === 0
            ? emitStatus(deps, state.context, "waiting-input", `Waiting for input for ${event.toolName}`)
            : undefined
        default:
          return undefined
      }
    }
    const onEvents = (events: Chunk.Chunk<ToolEvent>) => {
      let statuses: Array<Effect.Effect<unknown>> | undefined
      for (const event of events) {
        const status = onEvent(event)
        if (status !== undefined) (statuses ??= []).push(status)
      }
      const emitted = deps.emitAll(events)
      return statuses === undefined ? emitted : Effect.zipRight(emitted, Effect.all(statuses, { discard: true }))
    }
    // Calls whose arguments could not be decoded are answered at once, without running them.
    let valid = calls
    if (calls.some((call) => call.argumentsError !== undefined)) {
      valid = calls.filter((call) => call.argumentsError === undefined)
      yield* Effect.flatMap(
        Effect.forEach(calls.filter((call) => call.argumentsError !== undefined), (call) =>
          toolErrorEvent(
            state.context,
            call,
            new ToolError({
              reason: "InvalidArguments",
              toolName: call.name,
              toolCallId: call.id,
              message: `${call.argumentsError} Call ${call.name} again with a JSON object as arguments.`
            })
          )),
        (events) => onEvents(Chunk.unsafeFromArray(events))
      )
    }
    if (valid.length > 0) {
      // Read directly when one provider with a direct path takes every call (local tools, one
      // MCP call); otherwise each call is its own stream, so one call's failure is its own.
      const reads = settings.inputRequired === "wait"
        ? Toolbox.readsOf(deps.toolbox, valid, state.context, settings.concurrency)
        : undefined
      yield* reads !== undefined
        // Settled reads never fail: every failure is already a call's tool-error event.
        ? runReads(reads, onEvents) as Effect.Effect<void>
        : Stream.runForEachChunk(mergedCalls(state, settings, deps, valid), onEvents)
    }
    // A tool that ended asking for input nobody here can give (a remote agent's question):
    // the model is told, so it can ask the user and call again with the answer.
    for (const call of calls) {
      if (!results.has(call.id) && asked.has(call.id)) {
        const question = asked.get(call.id) ?? "the tool needs more input"
        results.set(
          call.id,
          toolResult(call.id, call.name, `Input required: ${question} Ask the user, then call ${call.name} again with their answer.`)
        )
      }
    }
    if (waitingInline > 0) yield* emitStatus(deps, state.context, "working")
    return { results, redacted, failed }
  })

/** A step's calls, each its own stream (one call, the common case, needs no merging). */
const mergedCalls = (state: State, settings: Settings, deps: Deps, calls: ReadonlyArray<ToolCall>) => {
  const streams = calls.map((call) => {
    const events = deps.toolbox.execute(call, state.context)
    // "pause": a call stops at the question it pauses for; the step's other calls go on.
    return settings.inputRequired === "pause" ? Stream.takeUntil(events, pausesFor) : events
  })
  return streams.length === 1 ? streams[0]! : Stream.mergeAll(streams, { concurrency: settings.concurrency })
}

/** Whether a run in "pause" mode pauses for this event: only when no callback will answer it. */
const pausesFor = (event: ToolEvent): boolean => event.type === "tool-input-required" && event.answeredBy !== "callback"

