/**
 * The model provider service (the seeds' `Provider` / `LLMProvider`). Code that needs a model
 * asks for `LanguageModel`; which model answers is decided by the Layer provided: one
 * provider's Layer, the `TierRouter`, or a scripted model in tests.
 *
 * @since 0.1.0
 */
import type * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type { ProviderError, RoutingError } from "../domain/Errors.js"
import type { ChatChunk, FinishReason, LLMResponse, Message, QueryTier, ToolCall, ToolDefinition, Usage } from "../domain/Message.js"
import { addUsage } from "../domain/Message.js"
import * as internalReads from "./internal/reads.js"

/**
 * How the model may use the tools offered: pick freely, never, at least one, or one named tool.
 *
 * @since 0.1.0
 */
export type ToolChoice = "auto" | "none" | "required" | { readonly tool: string }

/**
 * Per-request options. `tier` forces a routing tier (the router skips its classifier); plain
 * providers ignore it. `maxAttempts` caps the retry policy for one request. `stream: false`
 * asks the provider for the whole answer in one piece (for endpoints that cannot stream tool
 * calls); it still arrives as the same chunks.
 *
 * @since 0.1.0
 */
export interface ChatOptions {
  readonly model?: string
  readonly temperature?: number
  readonly maxTokens?: number
  readonly toolChoice?: ToolChoice
  readonly tier?: QueryTier
  /**
   * At most this many attempts for this request, below the provider's own policy. The router
   * asks for one while other providers remain, so a dead provider is left at once.
   */
  readonly maxAttempts?: number
  /** `false`: have the answer sent whole rather than streamed (default: the provider's setting). */
  readonly stream?: boolean
}

/**
 * Bounds on what a provider reads of a server's answers; every field is optional. A provider
 * reads a body only up to its bound and stops there, so an answer of any size costs at most the
 * bound, on every attempt. Past `maxResponseBytes` (an answer sent whole, default 8 MiB) or
 * `maxEventBytes` (one event of a streamed answer: one SSE event, or one event-stream message;
 * default 1 MiB) the call fails with a `ProviderError` `InvalidResponse` that is not retried. Of
 * an error answer (a non-2xx status) at most `maxErrorBodyBytes` are read (default 64 KiB): the
 * error keeps the reason its status gives, with an excerpt of what was read.
 *
 * @since 0.1.0
 */
export interface ResponseLimits {
  readonly maxResponseBytes?: number
  readonly maxErrorBodyBytes?: number
  readonly maxEventBytes?: number
}

/**
 * A model's failure: a provider's own error, or the router's when no provider could serve.
 *
 * @since 0.1.0
 */
export type ModelError = ProviderError | RoutingError

/** @since 0.1.0 */
export interface Service {
  /** Unique provider id, used in the tier mapping (`openai`, `litellm`, …). */
  readonly id: string
  /** Human-readable name for logs and UIs (`OpenAI (gpt-4.1)`). */
  readonly name: string
  /** One complete answer. */
  readonly chat: (
    messages: ReadonlyArray<Message>,
    tools?: ReadonlyArray<ToolDefinition>,
    options?: ChatOptions
  ) => Effect.Effect<LLMResponse, ModelError>
  /** The answer as it is generated. Interrupting the stream closes the request. */
  readonly stream: (
    messages: ReadonlyArray<Message>,
    tools?: ReadonlyArray<ToolDefinition>,
    options?: ChatOptions
  ) => Stream.Stream<ChatChunk, ModelError>
  /** Whether the provider can serve now. Cached; never costs a generation. */
  readonly isAvailable: Effect.Effect<boolean>
  /**
   * Optional: the provider's primitive, the answer as reads, which the agent, the resilience
   * policy and the router read directly instead of running `stream` (every provider of the
   * kernel has one). It stands for the `stream` it names: a copy of the service
   * (`{ ...model, name }`) keeps it, and a copy whose `stream` was replaced is read through that
   * `stream`.
   */
  readonly reads?: { readonly open: OpenReads; readonly stream: Service["stream"] } | undefined
}

/**
 * One answer of a provider as reads: each read gives the next chunks (possibly none yet),
 * `undefined` at the end, or the failure; `close` releases what the answer holds and is called
 * exactly once, however reading ended.
 *
 * @since 0.1.0
 */
export interface Reads {
  readonly next: Effect.Effect<Chunk.Chunk<ChatChunk> | undefined, ModelError>
  readonly close: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
  /**
   * Whether `next` completes now, without waiting for anything: such a read needs no timeout,
   * and runs without a fiber of its own.
   */
  readonly ready?: () => boolean
}

/**
 * Opens one answer as reads. What it reads must be what the provider's `stream` streams, with
 * the same failures.
 *
 * @since 0.1.0
 */
export type OpenReads = (
  messages: ReadonlyArray<Message>,
  tools: ReadonlyArray<ToolDefinition> | undefined,
  options: ChatOptions | undefined
) => Effect.Effect<Reads, ModelError>

/**
 * The provider's reads, when they stand for its own `stream` (see `Service.reads`).
 *
 * @since 0.1.0
 */
export const readsOf = (service: Service): OpenReads | undefined => {
  const reads = service.reads
  return reads !== undefined && reads.stream === service.stream ? reads.open : undefined
}

/**
 * Opens one answer of `service` as reads: directly through its `reads`, else by reading its
 * `stream`.
 *
 * @since 0.1.0
 */
export const open = (
  service: Service,
  messages: ReadonlyArray<Message>,
  tools: ReadonlyArray<ToolDefinition> | undefined,
  options: ChatOptions | undefined
): Effect.Effect<Reads, ModelError> => {
  const direct = readsOf(service)
  return direct !== undefined ? direct(messages, tools, options) : internalReads.streamReads(service.stream(messages, tools, options))
}

/**
 * Runs `f` on every chunk of one answer of `service`, in order, and completes when the answer
 * does: `Stream.runForEachChunk(service.stream(messages, tools, options), f)`, for less. A
 * provider with `reads` is read directly, without running a stream at all (running one is a
 * channel executor with stages of its own, which for a short answer costs more than the rest of
 * the call); any other is read through its stream.
 *
 * @since 0.1.0
 */
export const runForEachChunk = <E, R>(
  service: Service,
  messages: ReadonlyArray<Message>,
  tools: ReadonlyArray<ToolDefinition> | undefined,
  options: ChatOptions | undefined,
  f: (chunk: Chunk.Chunk<ChatChunk>) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, ModelError | E, R> => {
  const direct = readsOf(service)
  return direct === undefined
    ? Stream.runForEachChunk(service.stream(messages, tools, options), f)
    : internalReads.runReads(direct(messages, tools, options), f)
}

/**
 * @since 0.1.0
 */
export class LanguageModel extends Context.Tag("effect-agent-kernel/LanguageModel")<LanguageModel, Service>() {}

/**
 * Builds a provider from its primitive: `open` (the answer as reads, see `Reads`), from which
 * `stream` is derived, or `stream` itself. `chat` defaults to collecting the stream and
 * `isAvailable` to `true`. This is how a custom provider is written; with `open`, the agent
 * reads answers without running a stream.
 *
 * @example
 * ```ts
 * const echo = LanguageModel.make({
 *   id: "echo",
 *   name: "Echo",
 *   stream: (messages) => Stream.make(
 *     { _tag: "text-delta", delta: messages.at(-1)?.content ?? "" },
 *     { _tag: "finish", finishReason: "stop" }
 *   )
 * })
 * ```
 * @since 0.1.0
 */
export const make = (
  options:
    & {
      readonly id: string
      readonly name: string
      readonly chat?: Service["chat"]
      readonly isAvailable?: Effect.Effect<boolean>
    }
    & (
      | { readonly open: OpenReads; readonly stream?: Service["stream"] }
      | { readonly open?: undefined; readonly stream: Service["stream"] }
    )
): Service => {
  const { open } = options
  const stream: Service["stream"] = options.stream ??
    ((messages, tools, chatOptions) => internalReads.readsStream(open!(messages, tools, chatOptions)))
  return {
    id: options.id,
    name: options.name,
    stream,
    chat: options.chat ?? ((messages, tools, chatOptions) => collect(stream(messages, tools, chatOptions))),
    isAvailable: options.isAvailable ?? Effect.succeed(true),
    ...(open !== undefined ? { reads: { open, stream } } : {})
  }
}

/**
 * The Layer of a provider built with `make`.
 *
 * @since 0.1.0
 */
export const layer = (service: Service): Layer.Layer<LanguageModel> => Layer.succeed(LanguageModel, service)

/**
 * Folds streamed chunks into one `LLMResponse`.
 *
 * @since 0.1.0
 */
export const collect = <E, R>(stream: Stream.Stream<ChatChunk, E, R>): Effect.Effect<LLMResponse, E, R> =>
  Stream.runFold(stream, emptyAccumulator(), accumulate).pipe(Effect.map(toResponse))

interface Accumulator {
  text: string
  toolCalls: Array<ToolCall>
  usage: Usage
  finishReason: FinishReason
  model: string | undefined
  metadata: Record<string, string> | undefined
}

const emptyAccumulator = (): Accumulator => ({
  text: "",
  toolCalls: [],
  usage: {},
  finishReason: "other",
  model: undefined,
  metadata: undefined
})

const accumulate = (acc: Accumulator, chunk: ChatChunk): Accumulator => {
  switch (chunk._tag) {
    case "text-delta":
      acc.text += chunk.delta
      break
    case "tool-call-end":
      acc.toolCalls.push(chunk.toolCall)
      break
    case "usage":
      acc.usage = addUsage(acc.usage, chunk.usage)
      break
    case "finish":
      acc.finishReason = chunk.finishReason
      if (chunk.model !== undefined) acc.model = chunk.model
      if (chunk.metadata !== undefined) acc.metadata = { ...acc.metadata, ...chunk.metadata }
      break
    default:
      break
  }
  return acc
}

const toResponse = (acc: Accumulator): LLMResponse => {
  const hasCalls = acc.toolCalls.length > 0
  return {
    type: hasCalls ? "tool_calls" : "text",
    content: acc.text,
    ...(hasCalls ? { toolCalls: acc.toolCalls } : {}),
    usage: acc.usage,
    finishReason: acc.finishReason,
    ...(acc.model !== undefined ? { model: acc.model } : {}),
    ...(acc.metadata !== undefined ? { metadata: acc.metadata } : {})
  }
}

/**
 * Turns a complete response into the chunks a stream would have produced (for providers or
 * test models that only answer whole).
 *
 * @since 0.1.0
 */
export const responseToChunks = (response: LLMResponse): ReadonlyArray<ChatChunk> => {
  const chunks: Array<ChatChunk> = []
  if (response.content !== undefined && response.content !== "") {
    chunks.push({ _tag: "text-delta", delta: response.content })
  }
  response.toolCalls?.forEach((toolCall, index) => {
    chunks.push({ _tag: "tool-call-start", index, id: toolCall.id, name: toolCall.name })
    chunks.push({ _tag: "tool-call-end", index, toolCall })
  })
  chunks.push({ _tag: "usage", usage: response.usage })
  chunks.push({
    _tag: "finish",
    finishReason: response.finishReason,
    ...(response.model !== undefined ? { model: response.model } : {}),
    ...(response.metadata !== undefined ? { metadata: response.metadata } : {})
  })
  return chunks
}
