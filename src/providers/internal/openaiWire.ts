/**
 * The OpenAI chat-completions wire format: domain messages, tools and options to a request
 * body, and a complete (non-streamed) response body back to an `LLMResponse`.
 */
import { ProviderError } from "../../domain/Errors.js"
import type { ContentPart, FinishReason, LLMResponse, Message, ToolCall, ToolDefinition, Usage } from "../../domain/Message.js"
import { decodeToolCall, textOf } from "../../domain/Message.js"
import type { ChatOptions } from "../LanguageModel.js"
import type { OpenAiCompatibleConfig } from "../OpenAiCompatible.js"

/** What the wire format needs of the provider's configuration. */
export type WireSettings = Pick<OpenAiCompatibleConfig, "id" | "model" | "images" | "stream">

/**
 * The request body for `/v1/chat/completions`, or the `InvalidRequest` that keeps a
 * conversation the provider cannot take from being sent. `stream` says whether the caller reads
 * the answer as it streams; the provider's and the request's `stream: false` then ask for the
 * whole answer instead (`stream: false` on the wire), read all the same.
 */
export const requestBody = (
  settings: WireSettings,
  messages: ReadonlyArray<Message>,
  tools: ReadonlyArray<ToolDefinition> | undefined,
  options: ChatOptions | undefined,
  stream: boolean
): Record<string, unknown> | ProviderError => {
  const wire: Array<Record<string, unknown>> = []
  for (let position = 0; position < messages.length; position++) {
    const message = messages[position]!
    const content = message.content
    const mapped = typeof content === "string" ? toWireMessage(message, content) : withParts(settings, message, content, position)
    if (mapped instanceof ProviderError) return mapped
    wire.push(mapped)
  }
  const body: Record<string, unknown> = {
    model: options?.model ?? settings.model,
    messages: wire
  }
  if (tools !== undefined && tools.length > 0) {
    body.tools = tools.map((tool) => ({
      type: "function",
      function: { name: tool.name, description: tool.description, parameters: tool.parameters }
    }))
  }
  if (options?.temperature !== undefined) body.temperature = options.temperature
  if (options?.maxTokens !== undefined) body.max_tokens = options.maxTokens
  if (options?.toolChoice !== undefined) {
    body.tool_choice = typeof options.toolChoice === "string"
      ? options.toolChoice
      : { type: "function", function: { name: options.toolChoice.tool } }
  }
  if (stream) {
    if ((options?.stream ?? settings.stream) === false) {
      body.stream = false
    } else {
      body.stream = true
      body.stream_options = { include_usage: true }
    }
  }
  return body
}

const toWireMessage = (message: Message, content: string): Record<string, unknown> => {
  switch (message.role) {
    case "tool":
      return {
        role: "tool",
        content,
        tool_call_id: message.toolCallId ?? "",
        ...(message.name !== undefined ? { name: message.name } : {})
      }
    case "assistant": {
      const calls = message.toolCalls
      if (calls === undefined || calls.length === 0) return { role: "assistant", content }
      return {
        role: "assistant",
        content: content === "" ? null : content,
        tool_calls: calls.map((call) => ({
          id: call.id,
          type: "function",
          function: { name: call.name, arguments: JSON.stringify(call.arguments) }
        }))
      }
    }
    default:
      return { role: message.role, content }
  }
}

/**
 * A message whose content is parts: a user message's parts as OpenAI's (text, and `image_url`
 * with the URL or the bytes as a `data:` URL); any other role's text, which may carry no image.
 */
const withParts = (
  settings: WireSettings,
  message: Message,
  parts: ReadonlyArray<ContentPart>,
  position: number
): Record<string, unknown> | ProviderError => {
  for (const part of parts) {
    if (part.type !== "image") continue
    if (message.role !== "user") {
      return invalidRequest(
        settings,
        `Message ${position} (role "${message.role}") has an image; images can only be sent in user messages. Move the image to a user message.`
      )
    }
    if (settings.images === false) {
      return invalidRequest(
        settings,
        `Message ${position} has an image, but provider "${settings.id}" is configured without images (images: false); remove the image, or use a model that takes images with images left on.`
      )
    }
    if ("data" in part && part.data.startsWith("data:")) {
      return invalidRequest(
        settings,
        `Message ${position} has image data that is a data: URL; pass it as { type: "image", url }, or pass the base64 bytes alone as data.`
      )
    }
  }
  return message.role === "user" ? { role: "user", content: parts.map(wirePart) } : toWireMessage(message, textOf(message))
}

const wirePart = (part: ContentPart): Record<string, unknown> =>
  part.type === "text"
    ? { type: "text", text: part.text }
    : { type: "image_url", image_url: { url: "url" in part ? part.url : `data:${part.mediaType};base64,${part.data}` } }

const invalidRequest = (settings: WireSettings, message: string): ProviderError =>
  new ProviderError({ reason: "InvalidRequest", providerId: settings.id, retryable: false, message })

/** OpenAI's finish reasons in the domain's vocabulary. */
export const finishReason = (value: unknown): FinishReason => {
  switch (value) {
    case "stop":
      return "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool_calls"
    case "content_filter":
      return "content_filter"
    default:
      return "other"
  }
}

/** Usage as reported; a figure the server left out stays `undefined`. */
export const usage = (value: unknown): Usage | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const raw = value as Record<string, unknown>
  const out: { -readonly [K in keyof Usage]: Usage[K] } = {}
  if (typeof raw.prompt_tokens === "number") out.inputTokens = raw.prompt_tokens
  if (typeof raw.completion_tokens === "number") out.outputTokens = raw.completion_tokens
  if (typeof raw.total_tokens === "number") out.totalTokens = raw.total_tokens
  const prompt = raw.prompt_tokens_details as Record<string, unknown> | null | undefined
  if (typeof prompt?.cached_tokens === "number") out.cachedInputTokens = prompt.cached_tokens
  const completion = raw.completion_tokens_details as Record<string, unknown> | null | undefined
  if (typeof completion?.reasoning_tokens === "number") out.reasoningTokens = completion.reasoning_tokens
  return out
}

/**
 * A decoded tool call from its wire shape, with `argumentsError` for arguments that are not
 * JSON, and the sensitive fields of its tool (among the request's `tools`) protected.
 */
export const toolCall = (
  id: string,
  name: string,
  rawArguments: string,
  tools?: ReadonlyArray<ToolDefinition>
): ToolCall => decodeToolCall(id, name, rawArguments, tools)

/**
 * Decodes a complete chat-completion body. Returns a string describing what is wrong when the
 * body is not a chat completion.
 */
export const decodeCompletion = (
  body: unknown,
  metadata: Record<string, string> | undefined,
  tools?: ReadonlyArray<ToolDefinition>
): LLMResponse | string => {
  if (typeof body !== "object" || body === null) return "the body is not a JSON object"
  const raw = body as Record<string, unknown>
  const choices = raw.choices
  if (!Array.isArray(choices) || choices.length === 0) return "the body has no `choices`"
  const choice = choices[0] as Record<string, unknown> | null
  const message = choice?.message as Record<string, unknown> | null | undefined
  if (typeof message !== "object" || message === null) return "the first choice has no `message`"
  const content = typeof message.content === "string" ? message.content : ""
  const reasoning = message.reasoning_content ?? message.reasoning
  const calls: Array<ToolCall> = []
  if (Array.isArray(message.tool_calls)) {
    for (const [index, wire] of (message.tool_calls as Array<Record<string, unknown> | null>).entries()) {
      const fn = wire?.function as Record<string, unknown> | null | undefined
      if (typeof fn?.name !== "string") return `tool call ${index} has no function name`
      const args = typeof fn.arguments === "string"
        ? fn.arguments
        : fn.arguments === undefined || fn.arguments === null
        ? ""
        : JSON.stringify(fn.arguments)
      calls.push(toolCall(typeof wire?.id === "string" ? wire.id : `call_${index}`, fn.name, args, tools))
    }
  }
  const hasCalls = calls.length > 0
  return {
    type: hasCalls ? "tool_calls" : "text",
    content,
    ...(typeof reasoning === "string" && reasoning !== "" ? { reasoning } : {}),
    ...(hasCalls ? { toolCalls: calls } : {}),
    usage: usage(raw.usage) ?? {},
    finishReason: finishReason(choice?.finish_reason),
    ...(typeof raw.model === "string" ? { model: raw.model } : {}),
    ...(metadata !== undefined ? { metadata } : {})
  }
}
