import type * as HttpClient from "@effect/platform/HttpClient"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ProviderError } from "../../src/domain/Errors.js"
import * as Message from "../../src/domain/Message.js"
import type { ChatChunk } from "../../src/domain/Message.js"
import type * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as OpenAiCompatible from "../../src/providers/OpenAiCompatible.js"
import * as Resilience from "../../src/providers/Resilience.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

// What the OpenAI-compatible provider puts on the wire for content parts, against the local
// OpenAI-compatible server.

const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

const provider = (server: OpenAiServer.OpenAiServer, overrides: Partial<OpenAiCompatible.OpenAiCompatibleConfig> = {}) =>
  OpenAiCompatible.make({ id: "test", model: "test-model", baseUrl: server.url, ...overrides })

const run = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici))

const collectChunks = (stream: Stream.Stream<ChatChunk, LanguageModel.ModelError>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toArray)

/** The chunks as the agent reads them: through the provider's reads, without a stream. */
const readChunks = (
  model: LanguageModel.Service,
  messages: ReadonlyArray<Message.Message>,
  tools?: ReadonlyArray<Message.ToolDefinition>,
  options?: LanguageModel.ChatOptions
) =>
  Effect.suspend(() => {
    const out: Array<ChatChunk> = []
    return Effect.as(
      Resilience.runForEachChunk(model, messages, tools, options, (chunk) => Effect.sync(() => out.push(...chunk))),
      out
    )
  })

const refusal = <A>(effect: Effect.Effect<A, LanguageModel.ModelError>) =>
  Effect.map(Effect.flip(effect), (error) => error as ProviderError)

const weather: Message.ToolDefinition = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

const pictures = Message.user([
  { type: "text", text: "What is in these pictures?" },
  { type: "image", url: "https://example.com/cat.png" },
  { type: "image", data: png, mediaType: "image/png" }
])

describe("OpenAI-compatible content parts", () => {
  it.effect("a user message's parts go as OpenAI's: text, image_url with the URL, and base64 bytes as a data: URL", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.textChunks(["A cat."])), OpenAiServer.json(OpenAiServer.textCompletion("A cat."))]
      })
      const model = yield* provider(server)
      yield* collectChunks(model.stream([Message.system("Be brief."), pictures]))
      yield* model.chat([pictures])
      const expected = {
        role: "user",
        content: [
          { type: "text", text: "What is in these pictures?" },
          { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
          { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } }
        ]
      }
      expect(server.completions.map((request) => request.body.messages)).toEqual([
        [{ role: "system", content: "Be brief." }, expected],
        [expected]
      ])
    })))

  it.effect("text parts of a system, assistant or tool message go as their text, joined", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["ok"])) })
      const model = yield* provider(server)
      const twoLines = [{ type: "text", text: "one" }, { type: "text", text: "two" }] as const
      yield* collectChunks(model.stream([
        { role: "system", content: twoLines },
        Message.user("Hi"),
        { role: "assistant", content: twoLines, toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Oslo" } }] },
        { role: "tool", content: twoLines, toolCallId: "call_1", name: "get_weather" }
      ], [weather]))
      expect(server.completions[0]!.body.messages).toEqual([
        { role: "system", content: "one\ntwo" },
        { role: "user", content: "Hi" },
        {
          role: "assistant",
          content: "one\ntwo",
          tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } }]
        },
        { role: "tool", content: "one\ntwo", tool_call_id: "call_1", name: "get_weather" }
      ])
    })))

  it.effect("an image outside a user message is refused with InvalidRequest before anything is sent", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["ok"])) })
      const model = yield* provider(server)
      const error = yield* refusal(collectChunks(model.stream([
        Message.user("Draw a cat"),
        { role: "assistant", content: [{ type: "image", url: "https://example.com/cat.png" }] }
      ])))
      expect([error.reason, error.retryable, error.providerId]).toEqual(["InvalidRequest", false, "test"])
      expect(error.message).toContain("Message 1 (role \"assistant\") has an image; images can only be sent in user messages")
      expect(server.completions).toHaveLength(0)
    })))

  it.effect("with images: false, a conversation with an image fails with InvalidRequest before sending; text parts still go", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["ok"])) })
      const model = yield* provider(server, { images: false })
      const streamed = yield* refusal(collectChunks(model.stream([pictures])))
      const read = yield* refusal(readChunks(model, [pictures]))
      const whole = yield* refusal(model.chat([pictures]))
      for (const error of [streamed, read, whole]) {
        expect([error.reason, error.retryable]).toEqual(["InvalidRequest", false])
        expect(error.message).toContain("Message 0 has an image, but provider \"test\" is configured without images (images: false)")
      }
      expect(server.completions).toHaveLength(0)
      yield* collectChunks(model.stream([Message.user([{ type: "text", text: "No pictures." }])]))
      expect(server.completions[0]!.body.messages).toEqual([{ role: "user", content: [{ type: "text", text: "No pictures." }] }])
    })))

  it.effect("image data that is a data: URL is refused with InvalidRequest saying how to pass it", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["ok"])) })
      const model = yield* provider(server)
      const error = yield* refusal(model.chat([
        Message.user([{ type: "image", data: `data:image/png;base64,${png}`, mediaType: "image/png" }])
      ]))
      expect(error.reason).toBe("InvalidRequest")
      expect(error.message).toContain("pass it as { type: \"image\", url }, or pass the base64 bytes alone as data")
      expect(server.completions).toHaveLength(0)
    })))
})
