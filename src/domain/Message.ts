/**
 * The conversation data model: messages, tool calls, tool definitions, usage and the
 * provider-independent response and streaming chunk shapes.
 *
 * Data only: every value here is a Schema so it can cross a wire (SSE, A2A, a JSON file)
 * unchanged.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { Content } from "./ContentPart.js"
import { protectArguments } from "./Redaction.js"

export * from "./ContentPart.js"

/**
 * A tool invocation requested by the model. `arguments` is always decoded JSON (an object).
 * When the model produced arguments that are not valid JSON (or not an object), the provider
 * still yields the call with `arguments: {}` and `argumentsError` describing what was wrong;
 * the agent reports that back to the model as an `InvalidArguments` tool error instead of
 * crashing.
 *
 * @since 0.1.0
 */
export const ToolCall = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  argumentsError: Schema.optional(Schema.String)
})
export type ToolCall = typeof ToolCall.Type

/** Who speaks a message. @since 0.1.0 */
export const Role = Schema.Literal("system", "user", "assistant", "tool")
export type Role = typeof Role.Type


/**
 * A message of the conversation (seed 003). `toolCalls` appear on assistant messages,
 * `toolCallId` on tool messages. `content` is a string, or an array of parts (text and images)
 * for a user message that shows the model pictures; code that only needs the text reads it with
 * `textOf`, which works for both.
 *
 * @since 0.1.0
 */
export const Message = Schema.Struct({
  role: Role,
  content: Content,
  toolCalls: Schema.optional(Schema.Array(ToolCall)),
  toolCallId: Schema.optional(Schema.String),
  /** For tool messages: the tool's name (some providers want it beside the id). */
  name: Schema.optional(Schema.String)
})
export type Message = typeof Message.Type

/**
 * The text of a message: its content when that is a string, else its text parts joined with
 * line breaks (images left out).
 *
 * @since 0.1.0
 */
export const textOf = (message: { readonly content: Content }): string => {
  const content = message.content
  if (typeof content === "string") return content
  let text = ""
  let first = true
  for (const part of content) {
    if (part.type !== "text") continue
    text = first ? part.text : `${text}\n${part.text}`
    first = false
  }
  return text
}

/** Whether a message carries an image part. @since 0.1.0 */
export const hasImages = (message: { readonly content: Content }): boolean =>
  typeof message.content !== "string" && message.content.some((part) => part.type === "image")

/** A system message. @since 0.1.0 */
export const system = (content: string): Message => ({ role: "system", content })
/**
 * A user message: text, or parts (text and images).
 *
 * @example
 * ```ts
 * Message.user([
 *   { type: "text", text: "What is in this picture?" },
 *   { type: "image", data: pngBase64, mediaType: "image/png" }
 * ])
 * ```
 * @since 0.1.0
 */
export const user = (content: Content): Message => ({ role: "user", content })
/** An assistant message, with the tool calls it made if any. @since 0.1.0 */
export const assistant = (content: string, toolCalls?: ReadonlyArray<ToolCall>): Message =>
  toolCalls !== undefined && toolCalls.length > 0 ? { role: "assistant", content, toolCalls } : {
    role: "assistant",
    content
  }
/** The result of one tool call, fed back to the model. @since 0.1.0 */
export const toolResult = (toolCallId: string, name: string, content: string): Message => ({
  role: "tool",
  content,
  toolCallId,
  name
})

/**
 * A tool the model may call. `parameters` is a JSON Schema object (for local tools it is made
 * from an Effect Schema with `JSONSchema.make`). `sensitive` names the argument fields that hold
 * secrets (an API key a pairing tool takes, say): providers never send it to the model, and
 * wrap those values in `Redacted` as they parse the call, so that no event, history entry,
 * error or later request shows them.
 *
 * @since 0.1.0
 */
export const ToolDefinition = Schema.Struct({
  name: Schema.String,
  description: Schema.String,
  parameters: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  sensitive: Schema.optional(Schema.Array(Schema.String))
})
export type ToolDefinition = typeof ToolDefinition.Type

/**
 * Token usage. A figure the provider did not report stays `undefined`, never 0.
 *
 * @since 0.1.0
 */
export const Usage = Schema.Struct({
  inputTokens: Schema.optional(Schema.Number),
  outputTokens: Schema.optional(Schema.Number),
  totalTokens: Schema.optional(Schema.Number),
  cachedInputTokens: Schema.optional(Schema.Number),
  reasoningTokens: Schema.optional(Schema.Number)
})
export type Usage = typeof Usage.Type

/**
 * Adds two usages; a field stays `undefined` only when neither side reported it.
 *
 * @since 0.1.0
 */
export const addUsage = (a: Usage, b: Usage): Usage => {
  const out: { -readonly [K in keyof Usage]: Usage[K] } = {}
  for (const key of usageKeys) {
    const x = a[key]
    const y = b[key]
    if (x !== undefined || y !== undefined) out[key] = (x ?? 0) + (y ?? 0)
  }
  return out
}
const usageKeys = ["inputTokens", "outputTokens", "totalTokens", "cachedInputTokens", "reasoningTokens"] as const

/**
 * Why the model stopped. `other` covers provider-specific reasons we do not model.
 *
 * @since 0.1.0
 */
export const FinishReason = Schema.Literal("stop", "length", "tool_calls", "content_filter", "error", "other")
export type FinishReason = typeof FinishReason.Type

/**
 * A complete model answer (seed 003): text or tool calls, with usage and the finish reason.
 * `reasoning` is the reasoning text a model reported beside its answer, when it did.
 * `metadata` holds provider response headers worth keeping (for example `x-litellm-*`).
 *
 * @since 0.1.0
 */
export const LLMResponse = Schema.Struct({
  type: Schema.Literal("text", "tool_calls"),
  content: Schema.optional(Schema.String),
  reasoning: Schema.optional(Schema.String),
  toolCalls: Schema.optional(Schema.Array(ToolCall)),
  usage: Usage,
  finishReason: FinishReason,
  model: Schema.optional(Schema.String),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})
export type LLMResponse = typeof LLMResponse.Type

/**
 * Streaming parts of a model answer. Tool-call arguments stream by `index`: a `tool-call-start`
 * carries the id and name, `tool-call-delta`s carry argument fragments, and `tool-call-end`
 * carries the assembled, decoded call.
 *
 * @since 0.1.0
 */
export const TextDelta = Schema.TaggedStruct("text-delta", { delta: Schema.String })
/** Reasoning text some models stream beside the answer. @since 0.1.0 */
export const ReasoningDelta = Schema.TaggedStruct("reasoning-delta", { delta: Schema.String })
/** The first fragment of a streamed tool call: its id and name. @since 0.1.0 */
export const ToolCallStart = Schema.TaggedStruct("tool-call-start", {
  index: Schema.Number,
  id: Schema.String,
  name: Schema.String
})
/** A fragment of a streamed tool call's argument text. @since 0.1.0 */
export const ToolCallDelta = Schema.TaggedStruct("tool-call-delta", {
  index: Schema.Number,
  argumentsDelta: Schema.String
})
/** A streamed tool call, assembled and decoded. @since 0.1.0 */
export const ToolCallEnd = Schema.TaggedStruct("tool-call-end", { index: Schema.Number, toolCall: ToolCall })
/** Token usage, reported once per answer (OpenAI sends it after the finish reason). @since 0.1.0 */
export const UsageChunk = Schema.TaggedStruct("usage", { usage: Usage })
/** The end of an answer: why it stopped, the model that answered, response metadata. @since 0.1.0 */
export const Finish = Schema.TaggedStruct("finish", {
  finishReason: FinishReason,
  model: Schema.optional(Schema.String),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})


/**
 * The four routing tiers, cheapest first.
 *
 * @since 0.1.0
 */
export const QueryTier = Schema.Literal("simple", "moderate", "complex", "reasoning")
export type QueryTier = typeof QueryTier.Type

/** A provider the router tried or skipped before the one that served, and why. @since 0.1.0 */
export const RouteAttempt = Schema.Struct({ provider: Schema.String, reason: Schema.String })
export type RouteAttempt = typeof RouteAttempt.Type

/**
 * Emitted first by a routed stream (never by a plain provider): which tier the request was
 * classified into and which provider serves it. The agent turns it into a `route-selected`
 * event.
 *
 * @since 0.1.0
 */
export const RouteChunk = Schema.TaggedStruct("route", {
  tier: QueryTier,
  provider: Schema.String,
  score: Schema.Number,
  confidence: Schema.Number,
  signals: Schema.Array(Schema.String),
  forced: Schema.Boolean,
  fallbacksTried: Schema.Array(RouteAttempt)
})

/** Any streamed part of an answer. @since 0.1.0 */
export const ChatChunk = Schema.Union(
  TextDelta,
  ReasoningDelta,
  ToolCallStart,
  ToolCallDelta,
  ToolCallEnd,
  UsageChunk,
  Finish,
  RouteChunk
)
export type ChatChunk = typeof ChatChunk.Type

/**
 * Decodes a tool call's raw argument string. Empty input means "no arguments"; anything that is
 * not a JSON object yields `argumentsError` with a message the model can act on. The values of
 * `sensitive` fields come back wrapped in `Redacted`; when the tool has sensitive fields and the
 * text is not valid JSON, the message does not quote the text (it may hold the secret).
 *
 * @since 0.1.0
 */
export const parseToolArguments = (
  raw: string,
  sensitive?: ReadonlyArray<string>
): { readonly arguments: Record<string, unknown>; readonly argumentsError?: string } => {
  if (raw.trim() === "") return { arguments: {} }
  try {
    const value: unknown = JSON.parse(raw)
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      return { arguments: protectArguments(value as Record<string, unknown>, sensitive) }
    }
    return { arguments: {}, argumentsError: `Tool arguments must be a JSON object, got ${describeJson(value)}.` }
  } catch (error) {
    if (sensitive !== undefined && sensitive.length > 0) {
      return {
        arguments: {},
        argumentsError: `Tool arguments are not valid JSON (${raw.length} characters, ${unquotedReason}`
      }
    }
    const excerpt = raw.length > 200 ? `${raw.slice(0, 200)}…` : raw
    return {
      arguments: {},
      argumentsError: `Tool arguments are not valid JSON (${(error as Error).message}): ${excerpt}`
    }
  }
}

/**
 * The sensitive fields of the tool named `name` among `tools`, for `parseToolArguments`.
 *
 * @since 0.1.0
 */
export const sensitiveFieldsOf = (
  tools: ReadonlyArray<ToolDefinition> | undefined,
  name: string
): ReadonlyArray<string> | undefined => {
  if (tools === undefined) return undefined
  for (const definition of tools) if (definition.name === name) return definition.sensitive
  return undefined
}

/**
 * A tool call decoded from its wire form: arguments parsed (see `parseToolArguments`) with the
 * sensitive fields of its tool, found among the `tools` the request offered, protected.
 *
 * @since 0.1.0
 */
export const decodeToolCall = (
  id: string,
  name: string,
  rawArguments: string,
  tools: ReadonlyArray<ToolDefinition> | undefined
): ToolCall => {
  const parsed = parseToolArguments(rawArguments, sensitiveFieldsOf(tools, name))
  return parsed.argumentsError === undefined
    ? { id, name, arguments: parsed.arguments }
    : { id, name, arguments: parsed.arguments, argumentsError: parsed.argumentsError }
}

/**
 * A tool call with the sensitive fields of its tool protected (see `parseToolArguments`), for
 * calls from a provider that did not protect them itself. When the tool has sensitive fields
 * and the call's arguments could not be parsed, the parse message (which may quote the text) is
 * replaced. Returns the same call when there is nothing to protect.
 *
 * @since 0.1.0
 */
export const protectToolCall = (call: ToolCall, tools: ReadonlyArray<ToolDefinition> | undefined): ToolCall => {
  const sensitive = sensitiveFieldsOf(tools, call.name)
  if (sensitive === undefined || sensitive.length === 0) return call
  if (call.argumentsError !== undefined) {
    return call.argumentsError.endsWith(unquotedReason)
      ? call
      : { ...call, arguments: {}, argumentsError: `Tool arguments are not valid JSON (${unquotedReason}` }
  }
  const args = protectArguments(call.arguments, sensitive)
  return args === call.arguments ? call : { ...call, arguments: args }
}

const unquotedReason = "not repeated here because this tool takes sensitive values)."

const describeJson = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
