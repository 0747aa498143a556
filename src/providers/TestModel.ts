/**
 * A scripted `LanguageModel` for tests: each model call takes the next entry of a script — a
 * reply (text and/or tool calls) or a failure — and streams it as a real provider would. Use it
 * to test your own agents without a network.
 *
 * @example
 * ```ts
 * const model = TestModel.layer([
 *   { toolCalls: [{ name: "echo", arguments: { text: "hi" } }] },
 *   { text: "done" }
 * ])
 * ```
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { ProviderError } from "../domain/Errors.js"
import type { ChatChunk, FinishReason, Message, ToolDefinition, Usage } from "../domain/Message.js"
import { decodeToolCall, sensitiveFieldsOf } from "../domain/Message.js"
import type { ModelError } from "./LanguageModel.js"
import { LanguageModel, make as makeModel, type ChatOptions, type Service } from "./LanguageModel.js"

/** One scripted answer. @since 0.1.0 */
export interface Reply {
  readonly text?: string
  readonly toolCalls?: ReadonlyArray<{
    readonly name: string
    readonly arguments?: Record<string, unknown>
    /** Raw argument text, to script malformed JSON. Overrides `arguments`. */
    readonly rawArguments?: string
    readonly id?: string
  }>
  readonly usage?: Usage
  readonly finishReason?: FinishReason
}

/** A script entry: a reply, a failure, or a function of the request. @since 0.1.0 */
export type Entry =
  | Reply
  | { readonly fail: ModelError }
  | ((request: Request) => Reply | { readonly fail: ModelError })

/** What the model was asked. @since 0.1.0 */
export interface Request {
  readonly messages: ReadonlyArray<Message>
  readonly tools: ReadonlyArray<ToolDefinition>
  readonly options: ChatOptions
}

/** A scripted model and the requests it received. @since 0.1.0 */
export interface TestModel {
  readonly service: Service
  readonly requests: ReadonlyArray<Request>
}

/**
 * Builds a scripted model. When the script runs out, a call fails with `ProviderError`
 * `InvalidRequest` saying so (a test asked the model more often than it expected).
 *
 * @since 0.1.0
 */
export const make = (script: ReadonlyArray<Entry>, options: { readonly id?: string } = {}): TestModel => {
  const requests: Array<Request> = []
  const id = options.id ?? "test"
  let next = 0
  const service = makeModel({
    id,
    name: `Test model (${id})`,
    stream: (messages, tools = [], chatOptions = {}) =>
      Stream.suspend(() => {
        const request: Request = { messages: [...messages], tools: [...tools], options: chatOptions }
        requests.push(request)
        const entry = script[next++]
        if (entry === undefined) {
          return Stream.fail(
            new ProviderError({
              reason: "InvalidRequest",
              providerId: id,
              retryable: false,
              message: `The test model's script has ${script.length} entries and all were used; add a reply for call ${next}.`
            })
          )
        }
        const resolved = typeof entry === "function" ? entry(request) : entry
        if ("fail" in resolved) return Stream.fail(resolved.fail)
        return Stream.fromIterable(replyToChunks(resolved, next, tools))
      })
  })
  return { service, requests }
}

/** The Layer of a scripted model. @since 0.1.0 */
export const layer = (script: ReadonlyArray<Entry>, options: { readonly id?: string } = {}): Layer.Layer<LanguageModel> =>
  Layer.succeed(LanguageModel, make(script, options).service)

/**
 * The chunks of a reply: the text as word-sized deltas, then each tool call as start, delta and
 * end, then usage and finish.
 *
 * @since 0.1.0
 */
export const replyToChunks = (
  reply: Reply,
  callNumber: number,
  tools?: ReadonlyArray<ToolDefinition>
): ReadonlyArray<ChatChunk> => {
  const chunks: Array<ChatChunk> = []
  if (reply.text !== undefined && reply.text !== "") {
    for (const piece of reply.text.match(/\S+\s*|\s+/g) ?? []) chunks.push({ _tag: "text-delta", delta: piece })
  }
  reply.toolCalls?.forEach((call, index) => {
    const id = call.id ?? `call_${callNumber}_${index}`
    const raw = call.rawArguments ?? JSON.stringify(call.arguments ?? {})
    chunks.push({ _tag: "tool-call-start", index, id, name: call.name })
    // As the kernel's providers do: no raw fragments for a tool with sensitive fields.
    if ((sensitiveFieldsOf(tools, call.name)?.length ?? 0) === 0) chunks.push({ _tag: "tool-call-delta", index, argumentsDelta: raw })
    chunks.push({ _tag: "tool-call-end", index, toolCall: decodeToolCall(id, call.name, raw, tools) })
  })
  chunks.push({ _tag: "usage", usage: reply.usage ?? { inputTokens: 10, outputTokens: 5, totalTokens: 15 } })
  chunks.push({
    _tag: "finish",
    finishReason: reply.finishReason ?? ((reply.toolCalls?.length ?? 0) > 0 ? "tool_calls" : "stop")
  })
  return chunks
}

/** A model that fails every call with the given error (for failure-path tests). @since 0.1.0 */
export const failing = (error: ModelError): Layer.Layer<LanguageModel> =>
  Layer.succeed(LanguageModel, makeModel({ id: "failing", name: "Failing model", stream: () => Stream.fail(error), isAvailable: Effect.succeed(false) }))
