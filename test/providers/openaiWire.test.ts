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

// What the OpenAI-compatible provider puts on the wire for content parts and `stream: false`,
// and how it reads a whole answer, against the local OpenAI-compatible server.

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

describe("OpenAI-compatible stream: false", () => {
  const toolAnswer = OpenAiServer.json(OpenAiServer.toolCallCompletion(
    [{ id: "call_1", name: "get_weather", arguments: { city: "Oslo" } }],
    { usage: OpenAiServer.usage(9, 4) }
  ))
  const toolChunks: ReadonlyArray<ChatChunk> = [
    { _tag: "tool-call-start", index: 0, id: "call_1", name: "get_weather" },
    { _tag: "tool-call-end", index: 0, toolCall: { id: "call_1", name: "get_weather", arguments: { city: "Oslo" } } },
    { _tag: "usage", usage: { inputTokens: 9, outputTokens: 4, totalTokens: 13 } },
    { _tag: "finish", finishReason: "tool_calls", model: "test-model" }
  ]

  it.effect("the provider's stream: false sends stream: false and reads the whole answer as chunks, streamed or read", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ script: [toolAnswer, toolAnswer] })
      const model = yield* provider(server, { stream: false })
      expect(yield* collectChunks(model.stream([Message.user("Weather in Oslo?")], [weather]))).toEqual(toolChunks)
      expect(yield* readChunks(model, [Message.user("Weather in Oslo?")], [weather])).toEqual(toolChunks)
      for (const request of server.completions) {
        expect(request.body.stream).toBe(false)
        expect(request.body).not.toHaveProperty("stream_options")
        expect(request.body.tools).toHaveLength(1)
      }
    })))

  it.effect("a request's stream option overrides the provider's, both ways", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [toolAnswer, OpenAiServer.sse(OpenAiServer.textChunks(["streamed"]))]
      })
      const streaming = yield* provider(server)
      const whole = yield* provider(server, { stream: false })
      expect(yield* readChunks(streaming, [Message.user("x")], [weather], { stream: false })).toEqual(toolChunks)
      const streamed = yield* readChunks(whole, [Message.user("x")], undefined, { stream: true })
      expect(streamed.filter((chunk) => chunk._tag === "text-delta")).toEqual([{ _tag: "text-delta", delta: "streamed" }])
      expect(server.completions.map((request) => [request.body.stream, request.body.stream_options])).toEqual([
        [false, undefined],
        [true, { include_usage: true }]
      ])
    })))

  it.effect("a whole answer's reasoning_content comes first, as a reasoning-delta; chat keeps it as reasoning", () =>
    run(Effect.gen(function*() {
      const answer = OpenAiServer.json(OpenAiServer.textCompletion("4", { reasoning: "Two and two make four." }))
      const server = yield* OpenAiServer.start({ script: [answer, answer, answer] })
      const model = yield* provider(server, { stream: false })
      const expected: ReadonlyArray<ChatChunk> = [
        { _tag: "reasoning-delta", delta: "Two and two make four." },
        { _tag: "text-delta", delta: "4" },
        { _tag: "usage", usage: {} },
        { _tag: "finish", finishReason: "stop", model: "test-model" }
      ]
      expect(yield* collectChunks(model.stream([Message.user("2 + 2?")]))).toEqual(expected)
      expect(yield* readChunks(model, [Message.user("2 + 2?")])).toEqual(expected)
      const response = yield* model.chat([Message.user("2 + 2?")])
      expect([response.content, response.reasoning]).toEqual(["4", "Two and two make four."])
    })))
})
