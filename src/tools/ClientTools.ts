/**
 * Tools the caller runs (seed 001's `ClientToolProvider`): a browser rendering a UI, a user
 * confirming an action. Executing one emits `tool-input-required` and waits for the result,
 * which arrives through the seed's `onInputRequired` callback or through the
 * `ClientToolResults` service, whose `submit` a host calls (for example from an HTTP endpoint).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import type { ToolProvider, ToolResult } from "./ToolProvider.js"
import { toolError, toolInputRequiredEvent, toolResultToEvents, toolStartEvent } from "./ToolProvider.js"
import { showArguments } from "../domain/Redaction.js"
import * as WaitingCalls from "./internal/clientResults.js"

/**
 * The wire shape of a client's answer, for hosts that decode one from a request body. Extra
 * fields (the seed's `toolCallId`, `toolName`) are ignored.
 *
 * @since 0.1.0
 */
export const ToolResultSchema: typeof WaitingCalls.ToolResultSchema = WaitingCalls.ToolResultSchema

/** A client tool call waiting for its result. @since 0.1.0 */
export interface PendingClientCall {
  readonly toolCallId: string
  readonly toolName: string
  readonly arguments: Record<string, unknown>
  readonly contextId: string
  readonly taskId: string
  readonly agentId: string
  /** When the wait began (ISO-8601). */
  readonly since: string
}

/**
 * The registry of client tool calls waiting for a result: hosts `submit` answers and read
 * `pending`; client tool providers `register` their calls.
 *
 * @since 0.1.0
 */
export interface ClientToolResultsService {
  /**
   * Delivers a client's result. Refused with `ToolError` `InputRejected` when no call with that
   * id is waiting (unknown, already answered, timed out or cancelled; the message says which),
   * and with `InvalidArguments` when the result is not `{ success: true, result }` or
   * `{ success: false, error }`.
   */
  readonly submit: (toolCallId: string, result: ToolResult) => Effect.Effect<void, ToolError>
  /** The calls waiting now, oldest first. */
  readonly pending: Effect.Effect<ReadonlyArray<PendingClientCall>>
  /**
   * Used by the provider: registers `call` as waiting and returns the wait, which fails with
   * `Timeout` after `timeout`. Closing the scope removes the entry, so an interrupted call can
   * no longer be answered.
   */
  readonly register: (
    call: ToolCall,
    context: ExecutionContext,
    timeout: Duration.Duration
  ) => Effect.Effect<Effect.Effect<ToolResult, ToolError>, ToolError, Scope.Scope>
}

/**
 * Where client tool results are delivered. A host hands each `tool-input-required` event to
 * its client and calls `submit` with the answer; `pending` lists the calls still waiting.
 *
 * @example
 * ```ts
 * // In an HTTP handler: POST /tool-results/:toolCallId
 * const results = yield* ClientToolResults
 * yield* results.submit(toolCallId, { success: true, result: body })
 * ```
 * @since 0.1.0
 */
export class ClientToolResults extends Context.Tag("effect-agent-kernel/ClientToolResults")<
  ClientToolResults,
  ClientToolResultsService
>() {
  /** Builds an empty registry of waiting calls. */
  static readonly make: Effect.Effect<ClientToolResultsService> = WaitingCalls.make
  /** One registry shared by every client tool provider that uses it. */
  static readonly layer: Layer.Layer<ClientToolResults> = Layer.effect(ClientToolResults, WaitingCalls.make)
}

/**
 * The seed's callback: asked to produce the result of a call, as an `Effect` or a `Promise`.
 * `signal` aborts when the call is interrupted or times out.
 *
 * @since 0.1.0
 */
export type OnInputRequired<R = never> = (
  call: ToolCall,
  context: ExecutionContext,
  signal: AbortSignal
) => Effect.Effect<ToolResult, unknown, R> | PromiseLike<ToolResult>

/** @since 0.1.0 */
export interface ClientToolOptions {
  readonly tools: ReadonlyArray<ToolDefinition>
  /** The provider's name (default `"client"`). */
  readonly name?: string
  /** How long to wait for the client's answer (default 5 minutes). */
  readonly timeout?: Duration.DurationInput
}

/**
 * A provider of client-executed tools. Each call emits `tool-start`, then
 * `tool-input-required` with the call's id, name and arguments, then waits (at most `timeout`,
 * default 5 minutes, else `ToolError` `Timeout`). With `onInputRequired` the callback supplies
 * the result; without it the provider needs `ClientToolResults` and the call waits for its
 * `submit`, registered before `tool-input-required` is emitted so a host can answer at once.
 * `{ success: true, result }` becomes `tool-complete`; `{ success: false, error, reason? }`
 * fails with the given reason, else `InputRejected` (the client declined or could not do it).
 * Interrupting the stream cancels the wait. Duplicate tool names throw when the provider is
 * built.
 *
 * @example
 * ```ts
 * const ui = ClientToolProvider({ tools: [{ name: "confirm", description: "Ask the user", parameters: { type: "object", properties: {} } }] })
 * const toolbox = Toolbox.layer([ui]).pipe(Layer.provide(ClientToolResults.layer))
 * ```
 * @since 0.1.0
 */
export function ClientToolProvider<R = never>(
  options: ClientToolOptions & { readonly onInputRequired: OnInputRequired<R> }
): ToolProvider<R>
export function ClientToolProvider(options: ClientToolOptions): ToolProvider<ClientToolResults>
export function ClientToolProvider<R>(
  options: ClientToolOptions & { readonly onInputRequired?: OnInputRequired<R> }
): ToolProvider<R | ClientToolResults> {
  const providerName = options.name ?? "client"
  const timeout = Duration.decode(options.timeout ?? "5 minutes")
  const byName = new Map<string, ToolDefinition>()
  for (const definition of options.tools) {
    if (byName.has(definition.name)) {
      throw new Error(
        `ClientToolProvider("${providerName}"): two tools are named "${definition.name}"; tool names must be unique within a provider.`
      )
    }
    byName.set(definition.name, definition)
  }
  const definitions: ReadonlyArray<ToolDefinition> = [...options.tools]
  const callback = options.onInputRequired

  const awaitResult = (
    call: ToolCall,
    context: ExecutionContext
  ): Effect.Effect<Effect.Effect<ToolResult, ToolError, R>, ToolError, ClientToolResults | Scope.Scope> =>
    callback === undefined
      ? Effect.flatMap(ClientToolResults, (results) => results.register(call, context, timeout))
      : Effect.succeed(
        Effect.timeoutFail(viaCallback(callback, call, context), {
          duration: timeout,
          onTimeout: () => WaitingCalls.timedOut(call, timeout)
        })
      )

  const execute = (
    call: ToolCall,
    context: ExecutionContext
  ): Stream.Stream<ToolEvent, ToolError, R | ClientToolResults> => {
    if (!byName.has(call.name)) {
      return Stream.fail(toolError(call, "NotFound", `Tool "${call.name}" is not offered by provider "${providerName}".`))
    }
    if (call.argumentsError !== undefined) {
      return Stream.concat(
        Stream.fromEffect(toolStartEvent(context, call)),
        Stream.fail(toolError(call, "InvalidArguments", call.argumentsError))
      )
    }
    return Stream.unwrapScoped(
      Effect.map(awaitResult(call, context), (wait) =>
        Stream.fromIterableEffect(Effect.all([
          toolStartEvent(context, call),
          toolInputRequiredEvent(context, call, showArguments(call.arguments), undefined, callback !== undefined ? "callback" : "caller")
        ])).pipe(
          Stream.concat(
            Stream.unwrap(
              wait.pipe(
                Effect.map((result) => toolResultToEvents(context, call, withDefaultReason(result))),
                Effect.withSpan("ClientTools.call", {
                  attributes: { "tool.name": call.name, "tool.call_id": call.id, "agent.context_id": context.contextId }
                })
              )
            )
          )
        ))
    )
  }

  return {
    name: providerName,
    getTools: Effect.succeed(definitions),
    getTool: (name) => Effect.succeed(Option.fromNullable(byName.get(name))),
    execute
  }
}

/**
 * `ClientToolProvider` with the tools as the first argument.
 *
 * @example
 * ```ts
 * const ui = clientTools([confirmDefinition], { onInputRequired: (call) => askUser(call) })
 * ```
 * @since 0.1.0
 */
export function clientTools<R = never>(
  tools: ReadonlyArray<ToolDefinition>,
  options: Omit<ClientToolOptions, "tools"> & { readonly onInputRequired: OnInputRequired<R> }
): ToolProvider<R>
export function clientTools(
  tools: ReadonlyArray<ToolDefinition>,
  options?: Omit<ClientToolOptions, "tools">
): ToolProvider<ClientToolResults>
export function clientTools<R>(
  tools: ReadonlyArray<ToolDefinition>,
  options?: Omit<ClientToolOptions, "tools"> & { readonly onInputRequired?: OnInputRequired<R> }
): ToolProvider<R | ClientToolResults> {
  return ClientToolProvider<R>({ ...options, tools } as ClientToolOptions & {
    readonly onInputRequired: OnInputRequired<R>
  })
}

const viaCallback = <R>(
  callback: OnInputRequired<R>,
  call: ToolCall,
  context: ExecutionContext
): Effect.Effect<ToolResult, ToolError, R> => {
  const failed = (error: unknown) =>
    toolError(
      call,
      "ExecutionFailed",
      `The client callback for tool "${call.name}" failed: ${error instanceof Error ? error.message : String(error)}`
    )
  return Effect.suspend(() => {
    const controller = new AbortController()
    const answer = callback(call, context, controller.signal)
    const result: Effect.Effect<unknown, unknown, R> = Effect.isEffect(answer)
      ? answer
      : Effect.tryPromise({ try: () => Promise.resolve(answer), catch: (error) => error })
    return result.pipe(
      Effect.mapError(failed),
      Effect.flatMap((value) => {
        const decoded = WaitingCalls.decodeResult(value)
        return decoded._tag === "Right"
          ? Effect.succeed(decoded.right)
          : Effect.fail(
            toolError(
              call,
              "ExecutionFailed",
              `The client callback for tool "${call.name}" returned an invalid result: ${
                ParseResult.TreeFormatter.formatErrorSync(decoded.left)
              }`
            )
          )
      }),
      Effect.onInterrupt(() => Effect.sync(() => controller.abort()))
    )
  })
}

const withDefaultReason = (result: ToolResult): ToolResult =>
  result.success || result.reason !== undefined ? result : { ...result, reason: "InputRejected" }
