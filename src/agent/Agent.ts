/**
 * The agent loop. `Agent.run` turns a prompt into a stream of `AgentEvent`s: route the query to
 * a model, stream the answer, execute tool calls, feed results back, repeat. `Agent.make` adds a
 * conversation memory per `contextId` and pausing on client tools, resumed by `resume`.
 *
 * @example
 * ```ts
 * const program = Agent.run({ prompt: "What is 2 + 2?" }).pipe(
 *   Stream.runForEach((event) => Console.log(event.type)),
 *   Effect.provide(Layer.mergeAll(TestModel.layer([{ text: "4" }]), Toolbox.layer([])))
 * )
 * ```
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { AgentError } from "../domain/Errors.js"
import { type AgentEvent, TaskCreatedEvent, TaskStatusEvent } from "../domain/Events.js"
import type { AuthContext, ExecutionContext } from "../domain/ExecutionContext.js"
import { type Message, type QueryTier, type ToolCall, toolResult } from "../domain/Message.js"
import { withSpan } from "../internal/tracing.js"
import * as LanguageModel from "../providers/LanguageModel.js"
import { Toolbox } from "../tools/Toolbox.js"
import type * as ToolboxNs from "../tools/Toolbox.js"
import { toolCompleteEvent, toolError, toolErrorEvent, type ToolResult } from "../tools/ToolProvider.js"
import * as ConversationStore from "./ConversationStore.js"
import { eventStream } from "./internal/eventStream.js"
import {
  appendResults,
  complete,
  type Deps,
  emitStatus,
  errorText,
  resultText,
  runSteps,
  type Settings,
  type State
} from "./internal/loop.js"

/**
 * When a run stops early because of a tool call: the names of tools whose call ends the run,
 * or a predicate over the call. Only a call that succeeds ends it; one that fails (arguments
 * that are not JSON or fail the tool's Schema, say) goes back to the model to repair.
 *
 * @since 0.1.0
 */
export type StopWhen = string | ReadonlyArray<string> | ((call: ToolCall) => boolean)

/** Options shared by every way of running. @since 0.1.0 */
export interface RunOptions {
  /** Model calls with tools offered before the answer is forced (default 10). */
  readonly maxSteps?: number
  readonly toolChoice?: LanguageModel.ToolChoice
  readonly stopWhen?: StopWhen
  /** Force a routing tier, bypassing the classifier. */
  readonly tier?: QueryTier
  /** Tool calls of one step run at most this many at once (default 8; rounded down, at least 1; `Infinity` for no bound). */
  readonly concurrency?: number
  readonly model?: string
  readonly temperature?: number
  readonly maxTokens?: number
}

/** @since 0.1.0 */
export interface RunInput extends RunOptions {
  readonly prompt?: string
  /** The conversation so far; `prompt`, when given too, is appended as a user message. */
  readonly messages?: ReadonlyArray<Message>
  readonly system?: string
  readonly context?: {
    readonly contextId?: string
    readonly taskId?: string
    readonly agentId?: string
    readonly authContext?: AuthContext
  }
}

const defaultMaxSteps = 10

/** A step's bound on concurrent tool calls: a whole number of at least 1 (`Infinity`: no bound). */
const concurrencyOf = (requested: number | undefined): number =>
  requested === undefined || Number.isNaN(requested)
    ? 8
    : requested === Infinity
    ? Number.MAX_SAFE_INTEGER
    : Math.max(1, Math.floor(requested))

const settingsOf = (options: RunOptions, inputRequired: Settings["inputRequired"]): Settings => {
  const stopWhen = options.stopWhen
  return {
    maxSteps: Math.max(0, options.maxSteps ?? defaultMaxSteps),
    toolChoice: options.toolChoice,
    stopWhen: stopWhen === undefined
      ? () => false
      : typeof stopWhen === "function"
      ? stopWhen
      : typeof stopWhen === "string"
      ? (call) => call.name === stopWhen
      : (call) => stopWhen.includes(call.name),
    tier: options.tier,
    concurrency: concurrencyOf(options.concurrency),
    chatOptions: {
      ...(options.model !== undefined ? { model: options.model } : {}),
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {})
    },
    inputRequired
  }
}

/**
 * A new id. Node keeps `randomUUID`'s string as a tree of pieces (several hundred bytes) until
 * something flattens it; an in-flight run holds two, so they are flattened at once.
 */
const newId = (): string => {
  const id = crypto.randomUUID()
  id.charCodeAt(0)
  return id
}

const newContext = (context: RunInput["context"] = {}): ExecutionContext => ({
  contextId: context.contextId ?? newId(),
  taskId: context.taskId ?? newId(),
  agentId: context.agentId ?? "agent",
  ...(context.authContext !== undefined ? { authContext: context.authContext } : {})
})

const start = (deps: Deps, context: ExecutionContext) =>
  Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (millis) => {
    const timestamp = new Date(millis).toISOString()
    const ids = { contextId: context.contextId, taskId: context.taskId, timestamp }
    return deps.emitAll([
      new TaskCreatedEvent({ ...ids, agentId: context.agentId }, true),
      new TaskStatusEvent({ ...ids, status: "working" }, true)
    ])
  })

/**
 * One task as a stream of its events: the model from the environment, the toolbox given, the
 * emitters of the stream, all under one span. The set-up every entry point (`run`, an agent's
 * `run` and `resume`) shares.
 */
const task = <R>(
  toolbox: Effect.Effect<ToolboxNs.Service, never, R>,
  span: { readonly name: string; readonly attributes?: Record<string, unknown> },
  body: (deps: Deps) => Effect.Effect<void, AgentError>
): Stream.Stream<AgentEvent, AgentError, LanguageModel.LanguageModel | R> =>
  eventStream((emitters) =>
    Effect.gen(function*() {
      const deps: Deps = { model: yield* LanguageModel.LanguageModel, toolbox: yield* toolbox, ...emitters }
      yield* body(deps)
    }).pipe(withSpan(span.name, { captureStackTrace: false, ...(span.attributes !== undefined ? { attributes: span.attributes } : {}) }))
  )

/** A fresh run's state. */
const stateOf = (context: ExecutionContext, messages: Array<Message>): State => ({
  context,
  messages,
  step: 0,
  usage: {},
  failures: new Map()
})

const invalidInput = (context: ExecutionContext, message: string) =>
  new AgentError({ reason: "InvalidInput", contextId: context.contextId, taskId: context.taskId, message })

const initialMessages = (input: RunInput): Array<Message> => [
  ...(input.system !== undefined ? [{ role: "system" as const, content: input.system }] : []),
  ...(input.messages ?? []),
  ...(input.prompt !== undefined ? [{ role: "user" as const, content: input.prompt }] : [])
]

/**
 * A stored conversation as the next turn continues it: a new prompt while tools wait answers
 * those calls as abandoned, so the history stays valid for the model.
 */
const continuedHistory = (conversation: ConversationStore.Conversation): Array<Message> => {
  const messages = [...conversation.messages]
  if (conversation.pending !== undefined) {
    const abandoned = { ...conversation.pending.results }
    for (const call of conversation.pending.toolCalls) {
      abandoned[call.id] ??= toolResult(call.id, call.name, "Error (InputRejected): the user moved on without providing a result.")
    }
    appendResults(messages, conversation.pending.toolCalls, abandoned)
  }
  return messages
}

/**
 * Runs one task. Client tools are waited for inside the run (a `task-status` `waiting-input`
 * is emitted while they wait). Failures end the stream with an `AgentError` after a
 * `task-status` `failed`; nothing of a failed run sticks to the next one.
 *
 * @since 0.1.0
 */
export const run = (input: RunInput): Stream.Stream<AgentEvent, AgentError, LanguageModel.LanguageModel | Toolbox> =>
  task(Toolbox, { name: "Agent.run" }, (deps) =>
    Effect.gen(function*() {
      const context = newContext(input.context)
      yield* start(deps, context)
      const messages = initialMessages(input)
      if (!messages.some((message) => message.role === "user")) {
        return yield* Effect.zipRight(
          emitStatus(deps, context, "failed", "Nothing to answer: give a prompt or a user message."),
          Effect.fail(invalidInput(context, "Agent.run needs a `prompt` or at least one user message in `messages`."))
        )
      }
      const state = stateOf(context, messages)
      const outcome = yield* runSteps(state, settingsOf(input, "wait"), deps)
      if (outcome._tag === "Completed") yield* complete(state, deps, outcome.content)
    }))

/** A conversational agent made by `make`. @since 0.1.0 */
export interface Agent {
  readonly name: string
  /** Continues the conversation `contextId` (a new one when omitted) with a user prompt. */
  readonly run: (
    input: RunOptions & {
      readonly prompt: string
      readonly contextId?: string
      readonly taskId?: string
      readonly authContext?: AuthContext
    }
  ) => Stream.Stream<AgentEvent, AgentError, LanguageModel.LanguageModel>
  /** Supplies a waiting client tool's result and continues the paused run. */
  readonly resume: (
    contextId: string,
    input: { readonly toolCallId: string; readonly result: ToolResult },
    options?: RunOptions & { readonly authContext?: AuthContext }
  ) => Stream.Stream<AgentEvent, AgentError, LanguageModel.LanguageModel>
  /** The stored history of a conversation. */
  readonly history: (contextId: string) => Effect.Effect<ReadonlyArray<Message>, AgentError>
}

/**
 * A conversational agent: its history per `contextId` is kept in a `ConversationStore` (memory
 * by default; use `ConversationStore.makeFile` to survive restarts) and trimmed to
 * `maxHistory` messages without separating tool calls from their results. A client tool that
 * needs input pauses the run (`task-status` `waiting-input`); `resume` continues it.
 *
 * @since 0.1.0
 */
export const make = (options: {
  readonly name: string
  readonly system?: string
  readonly toolbox: ToolboxNs.Service
  readonly store?: ConversationStore.Service
  readonly maxHistory?: number
}): Effect.Effect<Agent> =>
  Effect.gen(function*() {
    const store = options.store ?? (yield* ConversationStore.makeMemory)
    const maxHistory = options.maxHistory ?? 200
    const agentId = options.name
    const toolbox = Effect.succeed(options.toolbox)

    const persist = (state: State, pending?: ConversationStore.PendingStep) => {
      const history = state.messages.filter((message) => message.role !== "system")
      return store.save(state.context.contextId, {
        messages: pending === undefined ? ConversationStore.trim(history, maxHistory) : history,
        ...(pending !== undefined ? { pending } : {})
      })
    }

    const proceed = (state: State, settings: Settings, deps: Deps) =>
      Effect.gen(function*() {
        const outcome = yield* runSteps(state, settings, deps)
        if (outcome._tag === "Completed") {
          yield* persist(state)
          return yield* complete(state, deps, outcome.content)
        }
        yield* persist(state, {
          taskId: state.context.taskId,
          step: state.step,
          toolCalls: outcome.toolCalls,
          waiting: outcome.waiting,
          results: outcome.results,
          usage: state.usage,
          maxSteps: settings.maxSteps
        })
        yield* emitStatus(deps, state.context, "waiting-input", `Waiting for client tool results: ${outcome.waiting.join(", ")}`)
      })

    const withSystem = (messages: ReadonlyArray<Message>): Array<Message> => [
      ...(options.system !== undefined ? [{ role: "system" as const, content: options.system }] : []),
      ...messages
    ]

    const agent: Agent = {
      name: options.name,
      run: (input) =>
        task(toolbox, { name: "Agent.run", attributes: { agent: options.name } }, (deps) =>
          Effect.gen(function*() {
            const context = newContext({ ...input, agentId })
            yield* start(deps, context)
            const stored = yield* store.load(context.contextId)
            const history = Option.match(stored, { onNone: (): Array<Message> => [], onSome: continuedHistory })
            const state = stateOf(context, [...withSystem(history), { role: "user", content: input.prompt }])
            yield* proceed(state, settingsOf(input, "pause"), deps)
          })),
      resume: (contextId, input, runOptions = {}) =>
        task(toolbox, { name: "Agent.resume", attributes: { agent: options.name } }, (deps) =>
          Effect.gen(function*() {
            const stored = yield* store.load(contextId)
            const pending = Option.flatMap(stored, (conversation) => Option.fromNullable(conversation.pending))
            if (Option.isNone(stored) || Option.isNone(pending) || !pending.value.waiting.includes(input.toolCallId)) {
              return yield* Effect.fail(
                new AgentError({
                  reason: "NotWaiting",
                  contextId,
                  message: `No tool call ${input.toolCallId} is waiting for input in conversation ${contextId}. ` +
                    `Resume only calls announced by a tool-input-required event that have not been answered yet.`
                })
              )
            }
            const step = pending.value
            const context: ExecutionContext = {
              contextId,
              taskId: step.taskId,
              agentId,
              ...(runOptions.authContext !== undefined ? { authContext: runOptions.authContext } : {})
            }
            const call = step.toolCalls.find((candidate) => candidate.id === input.toolCallId)!
            const result = input.result
            let content: string
            if (result.success) {
              yield* deps.emit(yield* toolCompleteEvent(context, call, result.result))
              content = resultText(result.result)
            } else {
              const reason = result.reason ?? "ExecutionFailed"
              yield* deps.emit(yield* toolErrorEvent(context, call, toolError(call, reason, result.error)))
              content = errorText(reason, result.error)
            }
            const results = { ...step.results, [call.id]: toolResult(call.id, call.name, content) }
            const waiting = step.waiting.filter((id) => id !== call.id)
            const state: State = { ...stateOf(context, withSystem(stored.value.messages)), step: step.step, usage: step.usage }
            if (waiting.length > 0) {
              yield* persist(state, { ...step, waiting, results })
              return yield* emitStatus(deps, context, "waiting-input", `Waiting for client tool results: ${waiting.join(", ")}`)
            }
            yield* emitStatus(deps, context, "working")
            appendResults(state.messages, step.toolCalls, results)
            yield* proceed(state, settingsOf({ maxSteps: step.maxSteps, ...runOptions }, "pause"), deps)
          })),
      history: (contextId) =>
        Effect.map(store.load(contextId), Option.match({ onNone: () => [], onSome: (conversation) => conversation.messages }))
    }
    return agent
  })
