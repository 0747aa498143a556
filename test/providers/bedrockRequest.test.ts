import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ProviderError } from "../../src/domain/Errors.js"
import * as Message from "../../src/domain/Message.js"
import type { ChatChunk } from "../../src/domain/Message.js"
import * as Bedrock from "../../src/providers/Bedrock.js"
import type * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as BedrockServer from "../peers/BedrockServer.js"

// What the Bedrock provider sends for content parts and `stream: false`, through the real AWS
// SDK against the local Converse/ConverseStream server.

const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
const jpeg = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k="
const modelId = "anthropic.claude-test-v1:0"

const setup = (overrides: Partial<Bedrock.BedrockConfig> = {}) =>
  Effect.gen(function*() {
    const server = yield* BedrockServer.make
    const model = yield* Bedrock.make({
      model: modelId,
      region: "us-east-1",
      endpoint: server.endpoint,
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret-key" },
      ...overrides
    })
    return { server, model }
  })

const collectChunks = (stream: Stream.Stream<ChatChunk, LanguageModel.ModelError>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const refusal = <A>(effect: Effect.Effect<A, LanguageModel.ModelError>) =>
  Effect.map(Effect.flip(effect), (error) => error as ProviderError)

const bodyOf = (request: BedrockServer.RecordedRequest) => request.body as { readonly messages: ReadonlyArray<unknown> }

describe("Bedrock content parts", () => {
  it.scoped("a user message's images go as image blocks of their bytes, the format from the media type, beside its text", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue(BedrockServer.textStream(["Two cats."]), BedrockServer.converse({ text: "Two cats." }))
      const message = Message.user([
        { type: "text", text: "What is in these pictures?" },
        { type: "image", data: png, mediaType: "image/png" },
        { type: "image", data: jpeg, mediaType: "image/jpeg" }
      ])
      yield* collectChunks(model.stream([message]))
      yield* model.chat([message])
      const expected = [{
        role: "user",
        content: [
          { text: "What is in these pictures?" },
          { image: { format: "png", source: { bytes: png } } },
          { image: { format: "jpeg", source: { bytes: jpeg } } }
        ]
      }]
      const requests = yield* server.requests
      expect(requests.map((request) => [request.operation, bodyOf(request).messages])).toEqual([
        ["converse-stream", expected],
        ["converse", expected]
      ])
    }))

  it.scoped("an image given by URL is refused with InvalidRequest saying to pass base64 data, before anything is sent", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      const conversation = [Message.user([{ type: "text", text: "A cat?" }, { type: "image", url: "https://example.com/cat.png" }])]
      const streamed = yield* refusal(collectChunks(model.stream(conversation)))
      const whole = yield* refusal(model.chat(conversation))
      for (const error of [streamed, whole]) {
        expect([error._tag, error.reason, error.retryable, error.providerId]).toEqual(["ProviderError", "InvalidRequest", false, "bedrock"])
        expect(error.message).toContain("Message 0 has an image given by URL; Bedrock takes images only as bytes")
        expect(error.message).toContain("Pass the image as { type: \"image\", data: <base64>, mediaType }")
      }
      expect(yield* server.requests).toEqual([])
    }))

  it.scoped("with images: false, an image is refused with InvalidRequest before sending; text parts still go", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup({ images: false })
      const error = yield* refusal(model.chat([Message.user([{ type: "image", data: png, mediaType: "image/png" }])]))
      expect(error.reason).toBe("InvalidRequest")
      expect(error.message).toContain("this Bedrock provider is configured without images (images: false)")
      expect(yield* server.requests).toEqual([])
      yield* server.enqueue(BedrockServer.converse({ text: "ok" }))
      yield* model.chat([Message.user([{ type: "text", text: "one" }, { type: "text", text: "" }, { type: "text", text: "two" }])])
      expect(bodyOf((yield* server.requests)[0]!).messages).toEqual([{ role: "user", content: [{ text: "one" }, { text: "two" }] }])
    }))

  it.scoped("an image in a system, assistant or tool message is refused; their text parts go as text", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      const image = { type: "image", data: png, mediaType: "image/png" } as const
      for (const message of [
        { role: "system", content: [image] },
        { role: "assistant", content: [image] },
        { role: "tool", content: [image], toolCallId: "call_1" }
      ] as const) {
        const error = yield* refusal(model.chat([Message.user("Hi"), message]))
        expect(error.message).toContain(`Message 1 (role "${message.role}") has an image; images can only be sent in user messages`)
      }
      expect(yield* server.requests).toEqual([])
      yield* server.enqueue(BedrockServer.converse({ text: "ok" }))
      yield* model.chat([
        { role: "system", content: [{ type: "text", text: "Be brief." }] },
        Message.user("Hi"),
        { role: "assistant", content: [{ type: "text", text: "Hello." }] },
        Message.user("Again")
      ])
      const body = (yield* server.requests)[0]!.body as Record<string, unknown>
      expect([body.system, body.messages]).toEqual([
        [{ text: "Be brief." }],
        [
          { role: "user", content: [{ text: "Hi" }] },
          { role: "assistant", content: [{ text: "Hello." }] },
          { role: "user", content: [{ text: "Again" }] }
        ]
      ])
    }))
})

describe("Bedrock stream: false", () => {
  const weather: Message.ToolDefinition = {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  }

  it.scoped("the provider's stream: false asks Converse for the whole answer and yields its chunks, reasoning first", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup({ stream: false })
      yield* server.enqueue(BedrockServer.converse({
        reasoning: "The user wants Oslo's weather.",
        toolUses: [{ toolUseId: "tu-1", name: "get_weather", input: { city: "Oslo" } }],
        stopReason: "tool_use"
      }))
      const chunks = yield* collectChunks(model.stream([Message.user("Weather in Oslo?")], [weather]))
      const call = { id: "tu-1", name: "get_weather", arguments: { city: "Oslo" } }
      expect(chunks).toEqual([
        { _tag: "reasoning-delta", delta: "The user wants Oslo's weather." },
        { _tag: "tool-call-start", index: 0, id: "tu-1", name: "get_weather" },
        { _tag: "tool-call-end", index: 0, toolCall: call },
        { _tag: "usage", usage: { inputTokens: 5, outputTokens: 3, totalTokens: 8 } },
        { _tag: "finish", finishReason: "tool_calls", model: modelId }
      ])
      expect((yield* server.requests).map((request) => request.operation)).toEqual(["converse"])
    }))

  it.scoped("a request's stream option overrides the provider's, both ways", () =>
    Effect.gen(function*() {
      const streaming = yield* setup()
      yield* streaming.server.enqueue(BedrockServer.converse({ text: "whole" }))
      yield* collectChunks(streaming.model.stream([Message.user("x")], undefined, { stream: false }))
      expect((yield* streaming.server.requests).map((request) => request.operation)).toEqual(["converse"])
      const whole = yield* setup({ stream: false })
      yield* whole.server.enqueue(BedrockServer.textStream(["streamed"]))
      yield* collectChunks(whole.model.stream([Message.user("x")], undefined, { stream: true }))
      expect((yield* whole.server.requests).map((request) => request.operation)).toEqual(["converse-stream"])
    }))
})
