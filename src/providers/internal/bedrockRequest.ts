/**
 * Domain requests to Bedrock Converse requests. Pure: no client, no I/O, so every rule Bedrock
 * imposes on a conversation is checked by unit tests.
 *
 * @internal
 */
import type {
  ContentBlock,
  ImageFormat,
  InferenceConfiguration,
  Message as BedrockMessage,
  SystemContentBlock,
  ToolChoice as BedrockToolChoice,
  ToolConfiguration,
  ToolUseBlock
} from "@aws-sdk/client-bedrock-runtime"
import * as Either from "effect/Either"
import { ProviderError } from "../../domain/Errors.js"
import { type Content, hasImages, type Message, textOf, type ToolDefinition } from "../../domain/Message.js"
import type { ChatOptions, ToolChoice } from "../LanguageModel.js"

/** @internal */
export const providerId = "bedrock"

/** A conversation in Bedrock's shape: system prompts apart, strictly alternating turns. @internal */
export interface BedrockConversation {
  readonly system: Array<SystemContentBlock>
  readonly messages: Array<BedrockMessage>
}

/** The fields `ConverseCommand` and `ConverseStreamCommand` share. @internal */
export interface BedrockRequest {
  readonly modelId: string
  readonly messages: Array<BedrockMessage>
  readonly system?: Array<SystemContentBlock>
  readonly toolConfig?: ToolConfiguration
  readonly inferenceConfig?: InferenceConfiguration
}

const invalidRequest = (message: string): ProviderError =>
  new ProviderError({ reason: "InvalidRequest", providerId, message, retryable: false })

type Document = NonNullable<ToolUseBlock["input"]>

// Domain arguments and JSON Schemas are JSON by construction; the SDK types them as its Document.
const asDocument = (value: Record<string, unknown>): Document => value as Document

/**
 * What a provider's configuration says about the conversations it may send. `images: false`
 * (a model that cannot see) refuses a conversation with an image before anything is sent.
 *
 * @internal
 */
export interface ConversationSettings {
  readonly images?: boolean | undefined
}

// Bedrock rejects blank text blocks, so empty content never becomes one.
const textBlocks = (content: string): Array<ContentBlock> => content === "" ? [] : [{ text: content }]

const imageFormats: Readonly<Record<string, ImageFormat>> = {
  "image/png": "png",
  "image/jpeg": "jpeg",
  "image/gif": "gif",
  "image/webp": "webp"
}

/** A user message's content as blocks: text, and images as their bytes. */
const userBlocks = (
  content: Content,
  position: number,
  settings: ConversationSettings | undefined
): Either.Either<Array<ContentBlock>, ProviderError> => {
  if (typeof content === "string") return Either.right(textBlocks(content))
  const blocks: Array<ContentBlock> = []
  for (const part of content) {
    if (part.type === "text") {
      if (part.text !== "") blocks.push({ text: part.text })
      continue
    }
    if (settings?.images === false) {
      return Either.left(invalidRequest(
        `Message ${position} has an image, but this Bedrock provider is configured without images (images: false); remove the image, or use a model that takes images with images left on.`
      ))
    }
    if ("url" in part) {
      return Either.left(invalidRequest(
        `Message ${position} has an image given by URL; Bedrock takes images only as bytes and the kernel does not fetch URLs for it. Pass the image as { type: "image", data: <base64>, mediaType }.`
      ))
    }
    const format = imageFormats[part.mediaType]
    if (format === undefined || part.data.startsWith("data:")) {
      return Either.left(invalidRequest(
        format === undefined
          ? `Message ${position} has an image of media type "${part.mediaType}"; Bedrock takes image/png, image/jpeg, image/gif or image/webp.`
          : `Message ${position} has image data that is a data: URL; pass the base64 bytes alone as data, without the "data:…;base64," prefix.`
      ))
    }
    blocks.push({ image: { format, source: { bytes: Buffer.from(part.data, "base64") } } })
  }
  return Either.right(blocks)
}

/** The text of a message that may not carry images (Bedrock takes them in user turns only). */
const textOnly = (message: Message, position: number): Either.Either<string, ProviderError> =>
  hasImages(message)
    ? Either.left(invalidRequest(
      `Message ${position} (role "${message.role}") has an image; images can only be sent in user messages. Move the image to a user message.`
    ))
    : Either.right(textOf(message))

const toTurn = (
  message: Message,
  position: number,
  settings: ConversationSettings | undefined
): Either.Either<BedrockMessage | undefined, ProviderError> => {
  switch (message.role) {
    case "user":
      return Either.map(userBlocks(message.content, position, settings), (content) => ({ role: "user", content }))
    case "assistant": {
      const toolUses: Array<ContentBlock> = (message.toolCalls ?? []).map((call) => ({
        toolUse: { toolUseId: call.id, name: call.name, input: asDocument(call.arguments) }
      }))
      return Either.map(textOnly(message, position), (text) => ({ role: "assistant", content: [...textBlocks(text), ...toolUses] }))
    }
    case "tool": {
      if (message.toolCallId === undefined || message.toolCallId === "") {
        return Either.left(invalidRequest(
          `Message ${position} has role "tool" but no toolCallId; set toolCallId to the id of the tool call it answers (Message.toolResult does this).`
        ))
      }
      const toolUseId = message.toolCallId
      // Bedrock carries tool results inside a user turn.
      return Either.map(textOnly(message, position), (text): BedrockMessage => ({
        role: "user",
        content: [{ toolResult: { toolUseId, content: text === "" ? [] : [{ text }] } }]
      }))
    }
    case "system":
      return Either.right(undefined)
  }
}

/**
 * Maps domain messages to a Bedrock conversation: system messages become `system` blocks,
 * assistant tool calls `toolUse` blocks, tool results `toolResult` blocks in a user turn, and
 * consecutive turns of one role are merged because Bedrock requires alternating roles. Turns
 * left without content (an empty user message) are dropped rather than sent blank. Images go as
 * image blocks of their bytes, in user messages only; an image given by URL is refused (Bedrock
 * cannot fetch it), as is any image when `settings.images` is `false`.
 *
 * @internal
 */
export const toBedrockMessages = (
  messages: ReadonlyArray<Message>,
  settings?: ConversationSettings
): Either.Either<BedrockConversation, ProviderError> => {
  const system: Array<SystemContentBlock> = []
  const turns: Array<BedrockMessage> = []
  for (let position = 0; position < messages.length; position++) {
    const message = messages[position]!
    if (message.role === "system") {
      const text = textOnly(message, position)
      if (Either.isLeft(text)) return Either.left(text.left)
      if (text.right !== "") system.push({ text: text.right })
      continue
    }
    const turn = toTurn(message, position, settings)
    if (Either.isLeft(turn)) return Either.left(turn.left)
    const mapped = turn.right
    if (mapped === undefined || mapped.content === undefined || mapped.content.length === 0) continue
    const previous = turns.at(-1)
    if (previous !== undefined && previous.role === mapped.role) {
      previous.content = [...(previous.content ?? []), ...mapped.content]
    } else {
      turns.push(mapped)
    }
  }
  return Either.right({ system, messages: turns })
}

const toBedrockToolChoice = (choice: Exclude<ToolChoice, "none">): BedrockToolChoice =>
  choice === "auto" ? { auto: {} } : choice === "required" ? { any: {} } : { tool: { name: choice.tool } }

/**
 * Maps tool definitions and the tool choice to Bedrock's `toolConfig`. No tools, or the choice
 * `"none"`, means no `toolConfig` at all (Bedrock has no "none" choice and rejects an empty tool
 * list); the conversation's tool blocks then go as text (`toolBlocksAsText`). A choice that
 * cannot be honoured with the tools offered is an `InvalidRequest`.
 *
 * @internal
 */
export const toBedrockToolConfig = (
  tools: ReadonlyArray<ToolDefinition> | undefined,
  choice: ToolChoice | undefined
): Either.Either<ToolConfiguration | undefined, ProviderError> => {
  if (choice === "none") return Either.right(undefined)
  const offered = tools ?? []
  if (offered.length === 0) {
    return choice === undefined || choice === "auto"
      ? Either.right(undefined)
      : Either.left(invalidRequest(
        `toolChoice ${JSON.stringify(choice)} needs at least one tool, but no tools were passed; pass the tools or drop toolChoice.`
      ))
  }
  if (typeof choice === "object" && !offered.some((tool) => tool.name === choice.tool)) {
    return Either.left(invalidRequest(
      `toolChoice names the tool "${choice.tool}", which is not among the tools passed (${
        offered.map((tool) => tool.name).join(", ")
      }); name one of them.`
    ))
  }
  return Either.right({
    tools: offered.map((tool) => ({
      toolSpec: {
        name: tool.name,
        description: tool.description,
        inputSchema: { json: asDocument(tool.parameters) }
      }
    })),
    ...(choice !== undefined ? { toolChoice: toBedrockToolChoice(choice) } : {})
  })
}

/**
 * Maps per-request options to Bedrock's `inferenceConfig`; `undefined` when none is set so the
 * model's defaults apply.
 *
 * @internal
 */
export const toInferenceConfig = (options: ChatOptions | undefined): InferenceConfiguration | undefined => {
  if (options?.temperature === undefined && options?.maxTokens === undefined) return undefined
  return {
    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {})
  }
}

/**
 * Builds the complete Converse request: the model (the per-request override wins), the
 * conversation, tools and inference settings.
 *
 * @internal
 */
export const toBedrockRequest = (
  defaultModel: string,
  messages: ReadonlyArray<Message>,
  tools: ReadonlyArray<ToolDefinition> | undefined,
  options: ChatOptions | undefined,
  settings?: ConversationSettings
): Either.Either<BedrockRequest, ProviderError> => {
  const modelId = options?.model ?? defaultModel
  if (modelId.trim() === "") {
    return Either.left(invalidRequest(
      "No Bedrock model id was given; set bedrockProvider({ model }) or the request's model option (e.g. \"anthropic.claude-3-5-haiku-20241022-v1:0\")."
    ))
  }
  return Either.gen(function*() {
    const conversation = yield* toBedrockMessages(messages, settings)
    if (conversation.messages.length === 0) {
      return yield* Either.left(invalidRequest(
        "The conversation has no user or assistant message with content; Bedrock needs at least one. Add a user message."
      ))
    }
    const toolConfig = yield* toBedrockToolConfig(tools, options?.toolChoice)
    const inferenceConfig = toInferenceConfig(options)
    return {
      modelId,
      messages: toolConfig === undefined ? toolBlocksAsText(conversation.messages) : conversation.messages,
      ...(conversation.system.length > 0 ? { system: conversation.system } : {}),
      ...(toolConfig !== undefined ? { toolConfig } : {}),
      ...(inferenceConfig !== undefined ? { inferenceConfig } : {})
    }
  })
}

/**
 * Bedrock refuses `toolUse` and `toolResult` blocks in a request without a `toolConfig`, which
 * is what a request offering no tools (or `toolChoice: "none"`) is: an agent's last, tool-less
 * step after tool calls, say. Such a conversation keeps its tool calls and results as text, so
 * the model still reads what happened and cannot call anything.
 *
 * @internal
 */
export const toolBlocksAsText = (messages: Array<BedrockMessage>): Array<BedrockMessage> => {
  if (!messages.some((message) => message.content?.some((block) => block.toolUse !== undefined || block.toolResult !== undefined))) {
    return messages
  }
  return messages.map((message) => ({
    ...message,
    content: (message.content ?? []).map((block): ContentBlock => {
      if (block.toolUse !== undefined) {
        const { input, name, toolUseId } = block.toolUse
        return { text: `[called tool ${name} (call ${toolUseId}) with ${JSON.stringify(input ?? {})}]` }
      }
      if (block.toolResult !== undefined) {
        const text = (block.toolResult.content ?? []).map((part) => part.text ?? JSON.stringify(part.json ?? "")).join("\n")
        return { text: `[result of tool call ${block.toolResult.toolUseId}]${text === "" ? "" : `\n${text}`}` }
      }
      return block
    })
  }))
}
