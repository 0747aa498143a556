/**
 * Bedrock Converse answers to domain values: whole responses to `LLMResponse`, stream events to
 * `ChatChunk`s. Pure, so the event order Bedrock uses (usage arrives after `messageStop`) is
 * covered by unit tests.
 *
 * @internal
 */
import type { ConverseResponse, ConverseStreamOutput, TokenUsage } from "@aws-sdk/client-bedrock-runtime"
import * as Either from "effect/Either"
import { ProviderError } from "../../domain/Errors.js"
import type { ChatChunk, FinishReason, LLMResponse, ToolCall, Usage } from "../../domain/Message.js"
import { decodeToolCall, sensitiveFieldsOf, type ToolDefinition } from "../../domain/Message.js"
import { responseToChunks } from "../LanguageModel.js"
import { providerId } from "./bedrockRequest.js"

/**
 * Bedrock's stop reason as a domain finish reason; unknown or missing reasons are `other`.
 *
 * @internal
 */
export const toFinishReason = (stopReason: string | undefined): FinishReason => {
  switch (stopReason) {
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "tool_use":
      return "tool_calls"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "content_filtered":
    case "guardrail_intervened":
      return "content_filter"
    case "malformed_model_output":
    case "malformed_tool_use":
      return "error"
    default:
      return "other"
  }
}

/**
 * Bedrock's token usage as domain usage; a figure Bedrock did not report stays `undefined`.
 *
 * @internal
 */
export const toUsage = (usage: TokenUsage | undefined): Usage => {
  if (usage === undefined) return {}
  return {
    ...(usage.inputTokens !== undefined ? { inputTokens: usage.inputTokens } : {}),
    ...(usage.outputTokens !== undefined ? { outputTokens: usage.outputTokens } : {}),
    ...(usage.totalTokens !== undefined ? { totalTokens: usage.totalTokens } : {}),
    ...(usage.cacheReadInputTokens !== undefined ? { cachedInputTokens: usage.cacheReadInputTokens } : {})
  }
}

const invalidResponse = (message: string): ProviderError =>
  new ProviderError({ reason: "InvalidResponse", providerId, message, retryable: false })

// Converse hands tool input over already decoded; it still has to be an object to be arguments.
const toolCallFrom = (id: string, name: string, input: unknown, tools: ReadonlyArray<ToolDefinition> | undefined): ToolCall =>
  decodeToolCall(id, name, input === undefined ? "" : JSON.stringify(input), tools)

/**
 * A complete Converse response as an `LLMResponse`: text blocks joined, reasoning blocks joined
 * as its `reasoning`, `toolUse` blocks as tool calls. A response without an output message is `InvalidResponse`.
 *
 * @internal
 */
export const fromConverseResponse = (
  response: Pick<ConverseResponse, "output" | "stopReason" | "usage">,
  modelId: string,
  tools?: ReadonlyArray<ToolDefinition>
): Either.Either<LLMResponse, ProviderError> => {
  const message = response.output?.message
  if (message === undefined) {
    return Either.left(invalidResponse(
      `Bedrock answered model ${modelId} without an output message; the endpoint may not be Bedrock Converse. Check the endpoint setting.`
    ))
  }
  let text = ""
  let reasoning = ""
  const toolCalls: Array<ToolCall> = []
  for (const block of message.content ?? []) {
    if (block.text !== undefined) text += block.text
    else if (block.reasoningContent?.reasoningText?.text !== undefined) reasoning += block.reasoningContent.reasoningText.text
    else if (block.toolUse !== undefined) {
      toolCalls.push(toolCallFrom(block.toolUse.toolUseId ?? "", block.toolUse.name ?? "", block.toolUse.input, tools))
    }
  }
  return Either.right({
    type: toolCalls.length > 0 ? "tool_calls" : "text",
    content: text,
    ...(reasoning !== "" ? { reasoning } : {}),
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    usage: toUsage(response.usage),
    finishReason: toFinishReason(response.stopReason),
    model: modelId
  })
}

/**
 * A whole answer as the chunks its stream would have been (what `stream: false` reads): its
 * reasoning first, when it has any.
 *
 * @internal
 */
export const responseChunks = (answer: LLMResponse): ReadonlyArray<ChatChunk> => {
  const chunks = responseToChunks(answer)
  return answer.reasoning === undefined ? chunks : [{ _tag: "reasoning-delta", delta: answer.reasoning }, ...chunks]
}

interface OpenToolCall {
  readonly index: number
  readonly id: string
  readonly name: string
  /** Whether its tool has sensitive fields, whose raw fragments are not passed on. */
  readonly sensitive: boolean
  input: string
}

/**
 * Folds one ConverseStream into chunks, event by event. `step` handles an event, `end` is called
 * when the event stream ends. `finish` is held back until `metadata` (which Bedrock sends after
 * `messageStop`) or the end of the stream, so usage always precedes it; a stream that ends
 * without `messageStop` is `Truncated`.
 *
 * @internal
 */
export interface StreamDecoder {
  readonly step: (event: ConverseStreamOutput) => Either.Either<ReadonlyArray<ChatChunk>, ProviderError>
  readonly end: () => Either.Either<ReadonlyArray<ChatChunk>, ProviderError>
}

/** @internal */
export const makeStreamDecoder = (modelId: string, tools?: ReadonlyArray<ToolDefinition>): StreamDecoder => {
  const open = new Map<number, OpenToolCall>()
  let toolCount = 0
  let finishReason: FinishReason | undefined
  let finished = false

  const close = (blockIndex: number): ReadonlyArray<ChatChunk> => {
    const call = open.get(blockIndex)
    if (call === undefined) return []
    open.delete(blockIndex)
    const toolCall = decodeToolCall(call.id, call.name, call.input, tools)
    return [{ _tag: "tool-call-end", index: call.index, toolCall }]
  }

  const finish = (): ReadonlyArray<ChatChunk> => {
    if (finished || finishReason === undefined) return []
    finished = true
    return [{ _tag: "finish", finishReason, model: modelId }]
  }

  const step = (event: ConverseStreamOutput): Either.Either<ReadonlyArray<ChatChunk>, ProviderError> => {
    if (event.contentBlockDelta !== undefined) {
      const blockIndex = event.contentBlockDelta.contentBlockIndex ?? 0
      const delta = event.contentBlockDelta.delta
      if (delta?.text !== undefined) {
        return Either.right(delta.text === "" ? [] : [{ _tag: "text-delta", delta: delta.text }])
      }
      if (delta?.toolUse !== undefined) {
        const call = open.get(blockIndex)
        if (call === undefined) {
          return Either.left(invalidResponse(
            `Bedrock sent tool input for content block ${blockIndex} before starting that block; the stream is malformed. Retry the request.`
          ))
        }
        const fragment = delta.toolUse.input ?? ""
        call.input += fragment
        // A tool with sensitive fields gets no raw fragments: they would carry the secret.
        return Either.right(
          fragment === "" || call.sensitive ? [] : [{ _tag: "tool-call-delta", index: call.index, argumentsDelta: fragment }]
        )
      }
      if (delta?.reasoningContent?.text !== undefined && delta.reasoningContent.text !== "") {
        return Either.right([{ _tag: "reasoning-delta", delta: delta.reasoningContent.text }])
      }
      return Either.right([])
    }
    if (event.contentBlockStart !== undefined) {
      const toolUse = event.contentBlockStart.start?.toolUse
      if (toolUse === undefined) return Either.right([])
      const name = toolUse.name ?? ""
      const call: OpenToolCall = {
        index: toolCount++,
        id: toolUse.toolUseId ?? "",
        name,
        sensitive: (sensitiveFieldsOf(tools, name)?.length ?? 0) > 0,
        input: ""
      }
      open.set(event.contentBlockStart.contentBlockIndex ?? 0, call)
      return Either.right([{ _tag: "tool-call-start", index: call.index, id: call.id, name: call.name }])
    }
    if (event.contentBlockStop !== undefined) {
      return Either.right(close(event.contentBlockStop.contentBlockIndex ?? 0))
    }
    if (event.messageStop !== undefined) {
      finishReason = toFinishReason(event.messageStop.stopReason)
      // A block Bedrock never stopped is complete once the message is.
      return Either.right([...open.keys()].flatMap(close))
    }
    if (event.metadata !== undefined) {
      const usage = toUsage(event.metadata.usage)
      const chunks: Array<ChatChunk> = Object.keys(usage).length > 0 ? [{ _tag: "usage", usage }] : []
      return Either.right([...chunks, ...finish()])
    }
    return Either.right([])
  }

  const end = (): Either.Either<ReadonlyArray<ChatChunk>, ProviderError> =>
    finishReason === undefined
      ? Either.left(
        new ProviderError({
          reason: "Truncated",
          providerId,
          message:
            `The Bedrock stream for model ${modelId} ended before messageStop; the answer is incomplete. Retry the request.`,
          retryable: true
        })
      )
      : Either.right(finish())

  return { step, end }
}
