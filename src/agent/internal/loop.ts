/**
 * The agent loop's core, shared by `Agent.run` and the conversational agents of `Agent.make`:
 * call the model, stream its text, run the tool calls it makes, feed the results back, repeat.
 * It talks to the outside world only through `emit`.
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { AgentError, type ProviderError, type RoutingError, ToolError } from "../../domain/Errors.js"
import {
  ContentCompleteEvent,
  ContentDeltaEvent,
  LlmUsageEvent,
  RouteSelectedEvent,
  TaskCompleteEvent,
  type AgentEvent,
  type TaskState,
  TaskStatusEvent,
  type ToolEvent
} from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import {
  addUsage,
  type ChatChunk,
  type FinishReason,
  type Message,
  type QueryTier,
  type ToolCall,
  type ToolDefinition,
  type Usage,
  protectToolCall,
  toolResult
} from "../../domain/Message.js"
import { showArguments } from "../../domain/Redaction.js"
import { withSpan } from "../../internal/tracing.js"
import type * as LanguageModel from "../../providers/LanguageModel.js"
import * as Resilience from "../../providers/Resilience.js"
import * as Toolbox from "../../tools/Toolbox.js"
import { runReads, toolErrorEvent } from "../../tools/ToolProvider.js"

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

/** Whether the same call failing this many times in a row stops the run. */
const maxRepeatedFailures = 3

const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis).toISOString())

const base = (context: ExecutionContext, timestamp: string) => ({
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

const modelFailure = (context: ExecutionContext, error: ProviderError | RoutingError): AgentError =>
  new AgentError({
    reason: error._tag === "RoutingError" ? "NoProvider" : "ModelFailed",
    contextId: context.contextId,
    taskId: context.taskId,
    message: error._tag === "RoutingError"
      ? `No model provider could serve the request: ${error.message}`
      : `The model call failed (${error.providerId}: ${error.reason}): ${error.message}`,
    cause: error
  })

interface StepResult {
  readonly text: string
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly usage: Usage
  readonly finishReason: FinishReason
  readonly tier: QueryTier | undefined
  readonly provider: string | undefined
  readonly model: string | undefined
}

const nextTier: Record<QueryTier, QueryTier | undefined> = {
  simple: "moderate",
  moderate: "complex",
  complex: "reasoning",
  reasoning: undefined
}

/**
 * One model call, streamed into events. A stall (timeout) before any text reached the caller is
 * escalated once to the next tier up, when the router chose the tier itself.
 */
const callModel = (
  state: State,
  settings: Settings,
  deps: Deps,
  tools: ReadonlyArray<ToolDefinition>,
  forcedTier: QueryTier | undefined
): Effect.Effect<StepResult, ProviderError | RoutingError> =>
  Effect.suspend(() => {
    let text = ""
    const toolCalls: Array<ToolCall> = []
    let usage: Usage = {}
    let finishReason: FinishReason = "other"
    let tier: QueryTier | undefined
    let provider: string | undefined
    let model: string | undefined
    let forced = false
    // Only a provider of the user's own could leave sensitive values unprotected; the kernel's
    // protect them as they parse.
    const guarded = tools.some((definition) => definition.sensitive !== undefined && definition.sensitive.length > 0)
    const options: LanguageModel.ChatOptions = {
      ...settings.chatOptions,
      ...(tools.length > 0 && settings.toolChoice !== undefined ? { toolChoice: settings.toolChoice } : {}),
      ...(forcedTier !== undefined ? { tier: forcedTier } : {})
    }
    // Chunks are handled a batch at a time: one clock read and one offer per batch, not per chunk.
    const handle = (chunks: Chunk.Chunk<ChatChunk>, timestamp: string) => {
      const events: Array<AgentEvent> = []
      for (const chunk of chunks) {
        switch (chunk._tag) {
          case "text-delta":
            text += chunk.delta
            events.push(new ContentDeltaEvent({ ...base(state.context, timestamp), delta: chunk.delta }, true))
            break
          case "route":
            tier = chunk.tier
            provider = chunk.provider
            forced = chunk.forced
            events.push(
              new RouteSelectedEvent({
                ...base(state.context, timestamp),
                tier: chunk.tier,
                provider: chunk.provider,
                score: chunk.score,
                signals: chunk.signals,
                forced: chunk.forced,
                fallbacksTried: chunk.fallbacksTried
              }, true)
            )
            break
          case "tool-call-end":
            toolCalls.push(guarded ? protectToolCall(chunk.toolCall, tools) : chunk.toolCall)
            break
          case "usage":
            usage = addUsage(usage, chunk.usage)
            break
          case "finish":
            finishReason = chunk.finishReason
            model = chunk.model
            break
          default:
            break
        }
      }
      return events.length === 0 ? Effect.void : deps.emitAll(events)
    }
    // Without a stream when the provider offers it (the kernel's own providers do); measurably
    // cheaper per step, and the same chunks.
    return Resilience.runForEachChunk(
      deps.model,
      state.messages,
      tools,
      options,
      (chunks) => Effect.flatMap(now, (timestamp) => handle(chunks, timestamp))
    ).pipe(
      Effect.map((): StepResult => ({ text, toolCalls, usage, finishReason, tier, provider, model })),
      Effect.catchAll((error) => {
        const escalateTo = tier !== undefined && !forced ? nextTier[tier] : undefined
        return error._tag === "ProviderError" && error.reason === "Timeout" && text === "" && escalateTo !== undefined
          ? Effect.zipRight(
            Effect.logWarning(`Model stalled on tier ${tier}; escalating to ${escalateTo}`),
            callModel(state, settings, deps, tools, escalateTo)
          )
          : Effect.fail(error)
      })
    )
  })

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
const executeCalls = (state: State, settings: Settings, deps: Deps, calls: ReadonlyArray<ToolCall>) =>
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
