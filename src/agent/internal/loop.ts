/**
 * The agent loop's core, shared by `Agent.run` and the conversational agents of `Agent.make`:
 * call the model, stream its text, run the tool calls it makes, feed the results back, repeat.
 * It talks to the outside world only through `emit`.
 */
import * as Effect from "effect/Effect"
import { AgentError } from "../../domain/Errors.js"
import { ContentCompleteEvent, LlmUsageEvent, TaskCompleteEvent, TaskStatusEvent } from "../../domain/Events.js"
import { addUsage, type Message, type ToolCall, toolResult } from "../../domain/Message.js"
import { showArguments } from "../../domain/Redaction.js"
import { withSpan } from "../../internal/tracing.js"
import { base, type Deps, failRun, now, type Outcome, type Settings, type State } from "./run.js"
import { callModel, modelFailure } from "./modelStep.js"
import { errorText, executeCalls } from "./toolStep.js"

export { emitStatus, failRun } from "./run.js"
export type { Deps, Outcome, Settings, State } from "./run.js"
export { errorText, resultText } from "./toolStep.js"

/** Whether the same call failing this many times in a row stops the run. */
const maxRepeatedFailures = 3

/**
 * Counts identical failing calls; succeeds with a message when one failed too often in a row.
 */
const trackFailures = (
  state: State,
  calls: ReadonlyArray<ToolCall>,
  results: ReadonlyMap<string, Message | undefined>,
  failed: ReadonlySet<string>
): string | undefined => {
  for (const call of calls) {
    const key = `${call.name}\u0000${JSON.stringify(call.arguments)}\u0000${call.argumentsError ?? ""}`
    if (failed.has(call.id)) {
      const content = results.get(call.id)?.content
      const count = (state.failures.get(key) ?? 0) + 1
      state.failures.set(key, count)
      if (count >= maxRepeatedFailures) {
        return `Stopped: ${call.name} failed ${count} times in a row with the same arguments (${content}).`
      }
    } else {
      state.failures.delete(key)
    }
  }
  return undefined
}

/**
 * Replaces the arguments of the assistant's tool calls with the redacted copies the tools
 * reported in `tool-start`, so sensitive values do not stay in the history.
 */
const redactCalls = (calls: ReadonlyArray<ToolCall>, redacted: ReadonlyMap<string, Record<string, unknown>>) =>
  calls.map((call) => {
    const args = redacted.get(call.id)
    return args === undefined || args === call.arguments ? showCall(call) : { ...call, arguments: args }
  })

/** A call as events and the history show it: protected values as the text `<redacted>`. */
const showCall = (call: ToolCall): ToolCall => {
  const shown = showArguments(call.arguments)
  return shown === call.arguments ? call : { ...call, arguments: shown }
}

/**
 * Appends the results of a step's calls in call order.
 */
export const appendResults = (
  messages: Array<Message>,
  calls: ReadonlyArray<ToolCall>,
  results: Record<string, Message> | ReadonlyMap<string, Message | undefined>
) => {
  for (const call of calls) {
    const message = results instanceof Map ? results.get(call.id) : (results as Record<string, Message>)[call.id]
    messages.push(
      message ?? toolResult(call.id, call.name, errorText("ExecutionFailed", "the tool ended without a result"))
    )
  }
}

/**
 * Runs steps until the model answers without tools, `maxSteps` is reached (then one last call
 * without tools produces the answer), a `stopWhen` tool is called, or a client tool must wait
 * ("pause" mode).
 */
export const runSteps = (
  state: State,
  settings: Settings,
  deps: Deps
): Effect.Effect<Outcome, AgentError> =>
  Effect.gen(function*() {
    const tools = yield* deps.toolbox.getTools.pipe(
      Effect.mapError((error) =>
        new AgentError({
          reason: "ToolsUnavailable",
          contextId: state.context.contextId,
          taskId: state.context.taskId,
          message: `The tools could not be listed: ${error.message}`,
          cause: error
        })
      ),
      Effect.catchAll((error) => failRun(deps, state.context, error))
    )
    while (true) {
      const final = state.step >= settings.maxSteps
      const offered = final ? [] : tools
      const result = yield* callModel(state, settings, deps, offered, settings.tier).pipe(
        withSpan("Agent.step", {
          captureStackTrace: false,
          attributes: { step: state.step + 1, tools: offered.length }
        }),
        Effect.catchAll((error) => failRun(deps, state.context, modelFailure(state.context, error)))
      )
      if (!final) state.step++
      state.usage = addUsage(state.usage, result.usage)
      const timestamp = yield* now
      yield* deps.emitAll([
        new ContentCompleteEvent({
          ...base(state.context, timestamp),
          content: result.text,
          ...(result.toolCalls.length > 0 ? { toolCalls: result.toolCalls.map(showCall) } : {}),
          finishReason: result.finishReason
        }, true),
        new LlmUsageEvent({
          ...base(state.context, timestamp),
          step: state.step,
          usage: result.usage,
          ...(result.provider !== undefined ? { provider: result.provider } : {}),
          ...(result.model !== undefined ? { model: result.model } : {})
        }, true)
      ])
      if (result.toolCalls.length === 0 || final) {
        state.messages.push({ role: "assistant", content: result.text })
        return { _tag: "Completed", content: result.text } as const
      }
      const { failed, redacted, results } = yield* executeCalls(state, settings, deps, result.toolCalls)
      const calls = redactCalls(result.toolCalls, redacted)
      state.messages.push({ role: "assistant", content: result.text, toolCalls: calls })
      const waiting = calls.filter((call) => results.has(call.id) && results.get(call.id) === undefined)
      if (waiting.length > 0) {
        const done: Record<string, Message> = {}
        for (const [id, message] of results) if (message !== undefined) done[id] = message
        return { _tag: "Paused", toolCalls: calls, waiting: waiting.map((call) => call.id), results: done } as const
      }
      appendResults(state.messages, calls, results)
      const repeated = trackFailures(state, calls, results, failed)
      if (repeated !== undefined) {
        return yield* failRun(
          deps,
          state.context,
          new AgentError({
            reason: "RepeatedToolFailure",
            contextId: state.context.contextId,
            taskId: state.context.taskId,
            message: repeated
          })
        )
      }
      // A stop-tool call that failed (its arguments invalid, say) produced no answer: the model
      // reads the error and repairs the call, as with any other tool.
      if (calls.some((call) => !failed.has(call.id) && settings.stopWhen(call))) {
        return { _tag: "Completed", content: result.text } as const
      }
    }
  })

/** Emits the closing `task-status` and `task-complete` of a completed run. */
export const complete = (state: State, deps: Deps, content: string) =>
  Effect.flatMap(now, (timestamp) =>
    deps.emitAll([
      new TaskStatusEvent({ ...base(state.context, timestamp), status: "completed" }, true),
      new TaskCompleteEvent({ ...base(state.context, timestamp), content, steps: state.step, usage: state.usage }, true)
    ]))
