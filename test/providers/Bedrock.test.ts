import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ProviderError } from "../../src/domain/Errors.js"
import type { ChatChunk } from "../../src/domain/Message.js"
import * as Message from "../../src/domain/Message.js"
import * as Bedrock from "../../src/providers/Bedrock.js"
import { toProviderError } from "../../src/providers/internal/bedrockErrors.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as BedrockServer from "../peers/BedrockServer.js"

const accessKeyId = "AKIDTEST"
const secretAccessKey = "test-secret-key-0123456789"
const sessionToken = "test-session-token-abcdef"
const credentials: Bedrock.StaticCredentials = {
  accessKeyId,
  secretAccessKey: Redacted.make(secretAccessKey),
  sessionToken: Redacted.make(sessionToken)
}
const modelId = "anthropic.claude-test-v1:0"

const weather: Message.ToolDefinition = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

const setup = (overrides: Partial<Bedrock.BedrockConfig> = {}) =>
  Effect.gen(function*() {
    const server = yield* BedrockServer.make
    const model = yield* Bedrock.make({
      model: modelId,
      region: "us-east-1",
      endpoint: server.endpoint,
      credentials,
      ...overrides
    })
    return { server, model }
  })

const collectChunks = (stream: Stream.Stream<ChatChunk, LanguageModel.ModelError>) =>
  Stream.runCollect(stream).pipe(Effect.map(Chunk.toReadonlyArray))

const failureOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flip(effect).pipe(Effect.map((error) => error as ProviderError))

const expectNoCredentials = (error: ProviderError) => {
  const text = JSON.stringify(error) + error.message
  expect(text).not.toContain(accessKeyId)
  expect(text).not.toContain(secretAccessKey)
  expect(text).not.toContain(sessionToken)
}

describe("Bedrock request mapping", () => {
  it("puts system prompts in system and merges consecutive turns of one role", () => {
    const result = Bedrock.toBedrockMessages([
      Message.system("Be brief."),
      Message.user("Hello"),
      Message.user("Are you there?"),
      Message.system("Answer in English.")
    ])
    expect(result).toEqual(Either.right({
      system: [{ text: "Be brief." }, { text: "Answer in English." }],
      messages: [{ role: "user", content: [{ text: "Hello" }, { text: "Are you there?" }] }]
    }))
  })

  it("maps assistant tool calls to toolUse blocks and tool results to toolResult blocks in one user turn", () => {
    const result = Bedrock.toBedrockMessages([
      Message.user("Weather in Paris and Rome?"),
      Message.assistant("", [
        { id: "call-1", name: "get_weather", arguments: { city: "Paris" } },
        { id: "call-2", name: "get_weather", arguments: { city: "Rome" } }
      ]),
      Message.toolResult("call-1", "get_weather", "sunny"),
      Message.toolResult("call-2", "get_weather", "rainy"),
      Message.user("Thanks")
    ])
    expect(result).toEqual(Either.right({
      system: [],
      messages: [
        { role: "user", content: [{ text: "Weather in Paris and Rome?" }] },
        {
          role: "assistant",
          content: [
            { toolUse: { toolUseId: "call-1", name: "get_weather", input: { city: "Paris" } } },
            { toolUse: { toolUseId: "call-2", name: "get_weather", input: { city: "Rome" } } }
          ]
        },
        {
          role: "user",
          content: [
            { toolResult: { toolUseId: "call-1", content: [{ text: "sunny" }] } },
            { toolResult: { toolUseId: "call-2", content: [{ text: "rainy" }] } },
            { text: "Thanks" }
          ]
        }
      ]
    }))
  })

  it("rejects a tool message without toolCallId with an InvalidRequest naming the message", () => {
    const result = Bedrock.toBedrockMessages([Message.user("hi"), { role: "tool", content: "42" }])
    const error = Either.isLeft(result) ? result.left : undefined
    expect([error?.reason, error?.retryable]).toEqual(["InvalidRequest", false])
    expect(error?.message).toContain("Message 1")
    expect(error?.message).toContain("toolCallId")
  })

  it("maps tools to toolSpec with inputSchema.json and each tool choice to Bedrock's", () => {
    const spec = { toolSpec: { name: "get_weather", description: "Weather for a city", inputSchema: { json: weather.parameters } } }
    expect(Bedrock.toBedrockToolConfig([weather], undefined)).toEqual(Either.right({ tools: [spec] }))
    expect(Bedrock.toBedrockToolConfig([weather], "auto")).toEqual(Either.right({ tools: [spec], toolChoice: { auto: {} } }))
    expect(Bedrock.toBedrockToolConfig([weather], "required")).toEqual(Either.right({ tools: [spec], toolChoice: { any: {} } }))
    expect(Bedrock.toBedrockToolConfig([weather], { tool: "get_weather" })).toEqual(
      Either.right({ tools: [spec], toolChoice: { tool: { name: "get_weather" } } })
    )
  })

  it("omits toolConfig for the choice none and for no tools", () => {
    expect(Bedrock.toBedrockToolConfig([weather], "none")).toEqual(Either.right(undefined))
    expect(Bedrock.toBedrockToolConfig([], undefined)).toEqual(Either.right(undefined))
    expect(Bedrock.toBedrockToolConfig(undefined, "auto")).toEqual(Either.right(undefined))
  })

  it("rejects a tool choice naming a tool that was not passed", () => {
    const result = Bedrock.toBedrockToolConfig([weather], { tool: "send_email" })
    expect(Either.isLeft(result) && result.left.reason).toBe("InvalidRequest")
    expect(Either.isLeft(result) && result.left.message).toContain("send_email")
  })

  it("applies the model override, temperature and maxTokens", () => {
    const result = Bedrock.toBedrockRequest("default-model", [Message.user("hi")], undefined, {
      model: "override-model",
      temperature: 0.2,
      maxTokens: 64
    })
    expect(result).toEqual(Either.right({
      modelId: "override-model",
      messages: [{ role: "user", content: [{ text: "hi" }] }],
      inferenceConfig: { temperature: 0.2, maxTokens: 64 }
    }))
  })

  it("rejects a conversation without any user or assistant content", () => {
    const result = Bedrock.toBedrockRequest(modelId, [Message.system("only a system prompt")], undefined, undefined)
    expect(Either.isLeft(result) && result.left.reason).toBe("InvalidRequest")
  })
})

describe("Bedrock response mapping", () => {
  it("maps every stop reason to a finish reason", () => {
    expect(Bedrock.toFinishReason("end_turn")).toBe("stop")
    expect(Bedrock.toFinishReason("stop_sequence")).toBe("stop")
    expect(Bedrock.toFinishReason("tool_use")).toBe("tool_calls")
    expect(Bedrock.toFinishReason("max_tokens")).toBe("length")
    expect(Bedrock.toFinishReason("content_filtered")).toBe("content_filter")
    expect(Bedrock.toFinishReason("guardrail_intervened")).toBe("content_filter")
    expect(Bedrock.toFinishReason("something_new")).toBe("other")
  })

  it("leaves usage figures Bedrock did not report undefined", () => {
    expect(Bedrock.toUsage({ inputTokens: 3, outputTokens: undefined, totalTokens: undefined })).toEqual({ inputTokens: 3 })
  })

  it("emits finish only after the metadata that follows messageStop", () => {
    const decoder = Bedrock.makeStreamDecoder(modelId)
    expect(decoder.step({ messageStop: { stopReason: "end_turn" } })).toEqual(Either.right([]))
    expect(decoder.step({ metadata: { usage: { inputTokens: 2, outputTokens: 1, totalTokens: 3 }, metrics: undefined } }))
      .toEqual(Either.right([
        { _tag: "usage", usage: { inputTokens: 2, outputTokens: 1, totalTokens: 3 } },
        { _tag: "finish", finishReason: "stop", model: modelId }
      ]))
    expect(decoder.end()).toEqual(Either.right([]))
  })

  it("emits finish at the end of the stream when no metadata came", () => {
    const decoder = Bedrock.makeStreamDecoder(modelId)
    decoder.step({ messageStop: { stopReason: "max_tokens" } })
    expect(decoder.end()).toEqual(Either.right([{ _tag: "finish", finishReason: "length", model: modelId }]))
  })

  it("fails with Truncated when the stream ends before messageStop", () => {
    const decoder = Bedrock.makeStreamDecoder(modelId)
    decoder.step({ contentBlockDelta: { contentBlockIndex: 0, delta: { text: "partial" } } })
    const end = decoder.end()
    expect(Either.isLeft(end) && end.left.reason).toBe("Truncated")
  })
})

describe("Bedrock error mapping", () => {
  it("removes access key ids and known secrets from messages", () => {
    const error = toProviderError(
      { name: "UnrecognizedClientException", message: `Bad Credential=AKIAABCDEFGHIJKLMNOP/2026 token ${sessionToken}` },
      [sessionToken]
    )
    expect(error.reason).toBe("Unauthorized")
    expect(error.message).not.toContain("AKIAABCDEFGHIJKLMNOP")
    expect(error.message).not.toContain(sessionToken)
  })

  it("quotes the service's message once, followed by what to do", () => {
    const error = toProviderError(
      { name: "ValidationException", message: "The model id is malformed.", $metadata: { httpStatusCode: 400 } },
      []
    )
    expect(error.message).toBe(
      "Bedrock rejected the request as invalid (ValidationException, HTTP 400): The model id is malformed. " +
        "Fix the request (messages, tools, inference settings) as the message above says."
    )
  })

  it("classifies connection errors by their code as retryable Network errors", () => {
    const error = toProviderError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), [])
    expect([error.reason, error.retryable]).toEqual(["Network", true])
  })
})

describe("Bedrock provider against a local Bedrock Runtime", () => {
  it.scoped("chat sends a signed Converse request and maps the text answer", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue(BedrockServer.converse({ text: "Hello there", usage: { inputTokens: 7, outputTokens: 2, totalTokens: 9 } }))
      const response = yield* model.chat([Message.system("Be brief."), Message.user("Hi")], undefined, { temperature: 0.5 })
      expect(response).toEqual({
        type: "text",
        content: "Hello there",
        usage: { inputTokens: 7, outputTokens: 2, totalTokens: 9 },
        finishReason: "stop",
        model: modelId
      })
      const [request] = yield* server.requests
      expect(request?.operation).toBe("converse")
      expect(request?.modelId).toBe(modelId)
      expect(String(request?.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/bedrock\//)
      expect(request?.body).toEqual({
        messages: [{ role: "user", content: [{ text: "Hi" }] }],
        system: [{ text: "Be brief." }],
        inferenceConfig: { temperature: 0.5 }
      })
      expect(model.id).toBe("bedrock")
      expect(model.name).toBe(`Bedrock (${modelId})`)
    }))

  it.scoped("chat maps toolUse blocks to tool calls and sends the tools as toolConfig", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue(BedrockServer.converse({
        toolUses: [{ toolUseId: "tu-1", name: "get_weather", input: { city: "Paris" } }],
        stopReason: "tool_use"
      }))
      const response = yield* model.chat([Message.user("Weather in Paris?")], [weather], { toolChoice: "required" })
      expect(response.type).toBe("tool_calls")
      expect(response.finishReason).toBe("tool_calls")
      expect(response.toolCalls).toEqual([{ id: "tu-1", name: "get_weather", arguments: { city: "Paris" } }])
      const [request] = yield* server.requests
      expect((request?.body as { toolConfig: unknown }).toolConfig).toEqual({
        tools: [{ toolSpec: { name: "get_weather", description: "Weather for a city", inputSchema: { json: weather.parameters } } }],
        toolChoice: { any: {} }
      })
    }))

  it.scoped("a conversation with tool calls asked without tools (or with toolChoice none) carries them as text", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      const history = [
        Message.user("Weather in Paris?"),
        Message.assistant("Let me check.", [{ id: "tu-1", name: "get_weather", arguments: { city: "Paris" } }]),
        Message.toolResult("tu-1", "get_weather", "18°C and sunny")
      ]
      // Bedrock refuses toolUse/toolResult blocks without a toolConfig (the peer enforces it too).
      yield* server.enqueue(BedrockServer.converse({ text: "It is 18°C." }), BedrockServer.converse({ text: "Sunny." }))
      expect((yield* model.chat(history)).content).toBe("It is 18°C.")
      expect((yield* model.chat(history, [weather], { toolChoice: "none" })).content).toBe("Sunny.")
      for (const request of yield* server.requests) {
        const body = request.body as { messages: unknown; toolConfig?: unknown }
        expect(body.toolConfig).toBeUndefined()
        expect(body.messages).toEqual([
          { role: "user", content: [{ text: "Weather in Paris?" }] },
          {
            role: "assistant",
            content: [{ text: "Let me check." }, { text: '[called tool get_weather (call tu-1) with {"city":"Paris"}]' }]
          },
          { role: "user", content: [{ text: "[result of tool call tu-1]\n18°C and sunny" }] }
        ])
      }
    }))

  it.scoped("stream turns text deltas into text-delta chunks, then usage, then finish", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue(BedrockServer.textStream(["Hel", "lo"], { inputTokens: 4, outputTokens: 2, totalTokens: 6 }))
      const chunks = yield* collectChunks(model.stream([Message.user("Hi")]))
      expect(chunks).toEqual([
        { _tag: "text-delta", delta: "Hel" },
        { _tag: "text-delta", delta: "lo" },
        { _tag: "usage", usage: { inputTokens: 4, outputTokens: 2, totalTokens: 6 } },
        { _tag: "finish", finishReason: "stop", model: modelId }
      ])
      const [request] = yield* server.requests
      expect(request?.operation).toBe("converse-stream")
    }))

  it.scoped("stream assembles a tool call from input fragments", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue({
        _tag: "stream",
        parts: [
          BedrockServer.event("messageStart", { role: "assistant" }),
          BedrockServer.textDelta("Let me check."),
          BedrockServer.event("contentBlockStop", { contentBlockIndex: 0 }),
          BedrockServer.event("contentBlockStart", {
            contentBlockIndex: 1,
            start: { toolUse: { toolUseId: "tu-9", name: "get_weather" } }
          }),
          BedrockServer.event("contentBlockDelta", { contentBlockIndex: 1, delta: { toolUse: { input: "{\"ci" } } }),
          BedrockServer.event("contentBlockDelta", { contentBlockIndex: 1, delta: { toolUse: { input: "ty\":\"Paris\"}" } } }),
          BedrockServer.event("contentBlockStop", { contentBlockIndex: 1 }),
          ...BedrockServer.stop("tool_use", { inputTokens: 9, outputTokens: 5, totalTokens: 14 })
        ]
      })
      const chunks = yield* collectChunks(model.stream([Message.user("Weather in Paris?")], [weather]))
      expect(chunks).toEqual([
        { _tag: "text-delta", delta: "Let me check." },
        { _tag: "tool-call-start", index: 0, id: "tu-9", name: "get_weather" },
        { _tag: "tool-call-delta", index: 0, argumentsDelta: "{\"ci" },
        { _tag: "tool-call-delta", index: 0, argumentsDelta: "ty\":\"Paris\"}" },
        {
          _tag: "tool-call-end",
          index: 0,
          toolCall: { id: "tu-9", name: "get_weather", arguments: { city: "Paris" } }
        },
        { _tag: "usage", usage: { inputTokens: 9, outputTokens: 5, totalTokens: 14 } },
        { _tag: "finish", finishReason: "tool_calls", model: modelId }
      ])
    }))

  it.scoped("stream reports usage that arrives after messageStop before finishing", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue({
        _tag: "stream",
        parts: [
          BedrockServer.textDelta("ok"),
          BedrockServer.event("messageStop", { stopReason: "end_turn" }),
          BedrockServer.event("metadata", { usage: { inputTokens: 11, outputTokens: 1, totalTokens: 12 }, metrics: { latencyMs: 3 } })
        ]
      })
      const chunks = yield* collectChunks(model.stream([Message.user("Hi")]))
      expect(chunks).toEqual([
        { _tag: "text-delta", delta: "ok" },
        { _tag: "usage", usage: { inputTokens: 11, outputTokens: 1, totalTokens: 12 } },
        { _tag: "finish", finishReason: "stop", model: modelId }
      ])
    }))

  it.scoped("invalid tool-argument JSON becomes argumentsError and the stream goes on to finish", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue({
        _tag: "stream",
        parts: [
          BedrockServer.event("contentBlockStart", { contentBlockIndex: 0, start: { toolUse: { toolUseId: "tu-1", name: "get_weather" } } }),
          BedrockServer.event("contentBlockDelta", { contentBlockIndex: 0, delta: { toolUse: { input: "{\"city\": Par" } } }),
          BedrockServer.event("contentBlockStop", { contentBlockIndex: 0 }),
          ...BedrockServer.stop("tool_use", { inputTokens: 1, outputTokens: 1, totalTokens: 2 })
        ]
      })
      const response = yield* LanguageModel.collect(model.stream([Message.user("Weather?")], [weather]))
      expect(response.finishReason).toBe("tool_calls")
      expect(response.toolCalls?.[0]?.arguments).toEqual({})
      expect(response.toolCalls?.[0]?.argumentsError).toContain("not valid JSON")
    }))
})

describe("Bedrock provider faults", () => {
  const chatFault = (reply: BedrockServer.Reply) =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue(reply)
      const error = yield* failureOf(model.chat([Message.user("Hi")]))
      expectNoCredentials(error)
      return { error, requests: yield* server.requests }
    })

  const streamFault = (parts: ReadonlyArray<BedrockServer.StreamPart>) =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue({ _tag: "stream", parts })
      const error = yield* failureOf(collectChunks(model.stream([Message.user("Hi")])))
      expectNoCredentials(error)
      return error
    })

  it.scoped("throttling is RateLimited, retryable, with the server's Retry-After", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault(BedrockServer.awsError(429, "ThrottlingException", "Too many requests", { "retry-after": "2" }))
      expect(error).toBeInstanceOf(ProviderError)
      expect([error.reason, error.retryable, error.status, error.retryAfterMs]).toEqual(["RateLimited", true, 429, 2000])
      expect(error.providerId).toBe("bedrock")
    }))

  it.scoped("validation is InvalidRequest and not retryable", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault(BedrockServer.awsError(400, "ValidationException", "temperature must be <= 1"))
      expect([error.reason, error.retryable, error.status]).toEqual(["InvalidRequest", false, 400])
      expect(error.message).toContain("temperature must be <= 1")
    }))

  it.scoped("validation that says the input is too long is ContextTooLong", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault(BedrockServer.awsError(400, "ValidationException", "Input is too long for requested model."))
      expect([error.reason, error.retryable]).toEqual(["ContextTooLong", false])
    }))

  it.scoped("access denied is Unauthorized and not retryable", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault(
        BedrockServer.awsError(403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
      )
      expect([error.reason, error.retryable, error.status]).toEqual(["Unauthorized", false, 403])
    }))

  it.scoped("an unrecognized client is Unauthorized and the echoed access key is not in the error", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault(BedrockServer.awsError(
        403,
        "UnrecognizedClientException",
        `The security token included in the request is invalid. Credential=${accessKeyId}/20260101/us-east-1/bedrock/aws4_request token=${sessionToken}`
      ))
      expect(error.reason).toBe("Unauthorized")
      expect(error.message).toContain("The security token included in the request is invalid")
    }))

  it.scoped("an unknown model is NotFound", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault(BedrockServer.awsError(404, "ResourceNotFoundException", "Model not found"))
      expect([error.reason, error.retryable, error.status]).toEqual(["NotFound", false, 404])
    }))

  it.scoped("a model timeout is Timeout and retryable", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault(BedrockServer.awsError(408, "ModelTimeoutException", "Model timed out"))
      expect([error.reason, error.retryable, error.status]).toEqual(["Timeout", true, 408])
    }))

  it.scoped("service unavailable is a retryable ServerError, and the SDK itself does not retry", () =>
    Effect.gen(function*() {
      const { error, requests } = yield* chatFault(BedrockServer.awsError(503, "ServiceUnavailableException", "Try later"))
      expect([error.reason, error.retryable, error.status]).toEqual(["ServerError", true, 503])
      expect(requests).toHaveLength(1)
    }))

  it.scoped("a 500 without an error type is a retryable ServerError", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault({ _tag: "raw", status: 500, headers: { "content-type": "text/plain" }, body: "oops" })
      expect([error.reason, error.retryable, error.status]).toEqual(["ServerError", true, 500])
    }))

  it.scoped("a reset before any answer is a retryable Network error", () =>
    Effect.gen(function*() {
      const { error } = yield* chatFault({ _tag: "reset" })
      expect([error.reason, error.retryable]).toEqual(["Network", true])
    }))

  it.scoped("a stream refused before its first event is classified like a chat (throttling is RateLimited)", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue(BedrockServer.awsError(429, "ThrottlingException", "Too many requests"))
      const error = yield* failureOf(collectChunks(model.stream([Message.user("Hi")])))
      expect([error.reason, error.retryable, error.status]).toEqual(["RateLimited", true, 429])
      expectNoCredentials(error)
    }))

  it.scoped("an in-stream ModelStreamErrorException is a retryable ServerError", () =>
    Effect.gen(function*() {
      const error = yield* streamFault([
        BedrockServer.textDelta("Hel"),
        BedrockServer.exception("modelStreamErrorException", "The model stream failed", { originalStatusCode: 500 })
      ])
      expect([error.reason, error.retryable]).toEqual(["ServerError", true])
    }))

  it.scoped("an in-stream throttlingException is RateLimited", () =>
    Effect.gen(function*() {
      const error = yield* streamFault([BedrockServer.textDelta("Hel"), BedrockServer.exception("throttlingException", "Slow down")])
      expect([error.reason, error.retryable]).toEqual(["RateLimited", true])
    }))

  it.scoped("a stream that ends without messageStop is Truncated", () =>
    Effect.gen(function*() {
      const error = yield* streamFault([BedrockServer.textDelta("Hel"), BedrockServer.textDelta("lo")])
      expect(error.reason).toBe("Truncated")
    }))

  it.scoped("a connection reset mid-stream is a retryable Network error", () =>
    Effect.gen(function*() {
      const error = yield* streamFault([BedrockServer.textDelta("Hel"), { _tag: "reset" }])
      expect([error.reason, error.retryable]).toEqual(["Network", true])
    }))

  it.scoped("a corrupted event-stream frame is InvalidResponse", () =>
    Effect.gen(function*() {
      const error = yield* streamFault([
        BedrockServer.textDelta("Hel"),
        { _tag: "corrupt", type: "contentBlockDelta", body: { contentBlockIndex: 0, delta: { text: "lo" } } }
      ])
      expect([error.reason, error.retryable]).toEqual(["InvalidResponse", false])
      expect(error.message).toContain("checksum")
    }))

  it.scoped("interrupting a stream mid-answer closes the connection", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue({ _tag: "stream", parts: [BedrockServer.textDelta("Hel"), { _tag: "stall" }] })
      const firstChunk = yield* Deferred.make<void>()
      const fiber = yield* model.stream([Message.user("Hi")]).pipe(
        Stream.tap(() => Deferred.succeed(firstChunk, undefined)),
        Stream.runDrain,
        Effect.fork
      )
      yield* Deferred.await(firstChunk)
      yield* Fiber.interrupt(fiber)
      yield* server.socketClosed(0)
    }))

  it.scoped("interrupting a chat that has no answer yet closes the connection", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      yield* server.enqueue({ _tag: "stall" })
      const fiber = yield* Effect.fork(model.chat([Message.user("Hi")]))
      yield* server.received(0)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      yield* server.socketClosed(0)
    }))
})

describe("Bedrock bounds on what the server sends", () => {
  const MiB = 1024 * 1024
  // Says only what came instead: an answer here is megabytes, too much for a failure message.
  const rejection = <A>(effect: Effect.Effect<A, LanguageModel.ModelError>) =>
    Effect.flatMap(Effect.either(effect), (result) =>
      result._tag === "Left" && result.left._tag === "ProviderError"
        ? Effect.succeed(result.left as ProviderError)
        : Effect.dieMessage(`expected a ProviderError, got ${result._tag === "Right" ? "an answer" : result.left._tag}`))
  const provide = (server: BedrockServer.BedrockServer, limits?: Bedrock.BedrockConfig["limits"]) =>
    Effect.provide(Bedrock.bedrockProvider({
      model: modelId,
      region: "us-east-1",
      endpoint: server.endpoint,
      credentials,
      resilience: { baseDelay: "1 millis", maxDelay: "1 millis" },
      ...(limits !== undefined ? { limits } : {})
    }))
  const settled = (server: BedrockServer.BedrockServer) =>
    server.socketClosed(0).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" }))

  it.live("a 20 MB Converse answer past maxResponseBytes is InvalidResponse, read no further and not retried", () =>
    Effect.gen(function*() {
      const server = yield* BedrockServer.make
      const huge = BedrockServer.converse({ text: "x".repeat(20 * MiB) })
      yield* server.enqueue(
        {
          _tag: "raw",
          status: 200,
          headers: { "content-type": "application/json" },
          body: JSON.stringify(huge._tag === "converse" ? huge.body : undefined),
          chunkSize: 64 * 1024
        },
        BedrockServer.converse({ text: "a retry would get this" })
      )
      const error = yield* LanguageModel.LanguageModel.pipe(
        Effect.flatMap((model) => rejection(model.chat([Message.user("Hi")]))),
        provide(server, { maxResponseBytes: MiB })
      )
      expect([error.reason, error.retryable]).toEqual(["InvalidResponse", false])
      expect(error.message).toContain("larger than the limit of 1 MiB (maxResponseBytes)")
      expect(error.message).toContain("raise limits.maxResponseBytes")
      yield* settled(server)
      const requests = yield* server.requests
      expect([requests.length, requests[0]!.abortedByClient()]).toEqual([1, true])
    }).pipe(Effect.scoped), 30_000)

  it.live("of a 20 MB error body only maxErrorBodyBytes are read: the error keeps its AWS type, with a short excerpt", () =>
    Effect.gen(function*() {
      const server = yield* BedrockServer.make
      yield* server.enqueue({
        _tag: "raw",
        status: 500,
        headers: { "content-type": "application/json", "x-amzn-errortype": "InternalServerException" },
        body: JSON.stringify({ message: `upstream failed: ${"y".repeat(20 * MiB)}` }),
        chunkSize: 64 * 1024
      })
      const error = yield* LanguageModel.LanguageModel.pipe(
        Effect.flatMap((model) => rejection(model.chat([Message.user("Hi")], undefined, { maxAttempts: 1 }))),
        provide(server)
      )
      expect([error.reason, error.status, error.retryable]).toEqual(["ServerError", 500, true])
      expect(error.message).toContain("InternalServerException")
      expect(error.message).toContain("upstream failed: yyy")
      expect(error.message.length).toBeLessThan(1000)
      yield* settled(server)
      expect((yield* server.requests)[0]!.abortedByClient()).toBe(true)
    }).pipe(Effect.scoped), 30_000)

  it.live("an event-stream message longer than maxEventBytes (1 MiB by default) is InvalidResponse and not retried", () =>
    Effect.gen(function*() {
      const server = yield* BedrockServer.make
      yield* server.enqueue(
        BedrockServer.textStream(["x".repeat(2 * MiB)]),
        BedrockServer.textStream(["a retry would get this"])
      )
      const error = yield* LanguageModel.LanguageModel.pipe(
        Effect.flatMap((model) => rejection(collectChunks(model.stream([Message.user("Hi")])))),
        provide(server)
      )
      expect([error.reason, error.retryable]).toEqual(["InvalidResponse", false])
      expect(error.message).toContain("an event-stream message larger than the limit of 1 MiB (maxEventBytes)")
      expect(yield* server.requests).toHaveLength(1)
    }).pipe(Effect.scoped), 30_000)
})

describe("Bedrock availability", () => {
  it.scoped("is available when the static credentials resolve, without calling the model", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      expect(yield* model.isAvailable).toBe(true)
      expect(yield* server.requests).toHaveLength(0)
    }))

  it.scoped("caches the answer for the health TTL", () =>
    Effect.gen(function*() {
      let failing = true
      const { model } = yield* setup({
        healthTtl: "30 seconds",
        credentials: () =>
          failing
            ? Promise.reject(new Error("no credentials yet"))
            : Promise.resolve({ accessKeyId, secretAccessKey })
      })
      expect(yield* model.isAvailable).toBe(false)
      failing = false
      expect(yield* model.isAvailable).toBe(false)
      yield* TestClock.adjust("31 seconds")
      expect(yield* model.isAvailable).toBe(true)
    }))

  it.scoped("learns from a call rejected as unauthorized", () =>
    Effect.gen(function*() {
      const { model, server } = yield* setup()
      expect(yield* model.isAvailable).toBe(true)
      yield* server.enqueue(BedrockServer.awsError(403, "UnrecognizedClientException", "The security token is invalid"))
      yield* Effect.flip(model.chat([Message.user("Hi")]))
      expect(yield* model.isAvailable).toBe(false)
    }))

  it.scoped("is unavailable when the endpoint is not a URL, and calls say how to fix it", () =>
    Effect.gen(function*() {
      const model = yield* Bedrock.make({ model: modelId, region: "us-east-1", endpoint: "not a url", credentials })
      expect(yield* model.isAvailable).toBe(false)
      const error = yield* failureOf(model.chat([Message.user("Hi")]))
      expect(error.reason).toBe("InvalidRequest")
      expect(error.message).toContain("not a URL")
    }))
})

describe("bedrockProvider", () => {
  // The retry timing belongs to Resilience's tests; here only the retry itself matters, so the
  // delays are tiny and real.
  it.live("retries a 500 and succeeds with the second answer (Resilience applied)", () =>
    Effect.gen(function*() {
      const server = yield* BedrockServer.make
      yield* server.enqueue(
        BedrockServer.awsError(500, "InternalServerException", "transient"),
        BedrockServer.converse({ text: "second time lucky" })
      )
      const layer = Bedrock.bedrockProvider({
        model: modelId,
        region: "us-east-1",
        endpoint: server.endpoint,
        credentials,
        resilience: { maxAttempts: 3, baseDelay: "5 millis", maxDelay: "5 millis" }
      })
      const response = yield* LanguageModel.LanguageModel.pipe(
        Effect.flatMap((model) => model.chat([Message.user("Hi")])),
        Effect.provide(layer)
      )
      expect(response.content).toBe("second time lucky")
      expect(yield* server.requests).toHaveLength(2)
    }).pipe(Effect.scoped))

  describe("a stream of events that carry no answer", () => {
    // Events that decode to no chunk (an empty text delta), every 50 ms for ten seconds.
    const drip = Array.from({ length: 200 }, () => [{ _tag: "delay", ms: 50 } as const, BedrockServer.textDelta("")]).flat()
    const streamWith = (parts: ReadonlyArray<BedrockServer.StreamPart>, resilience: Bedrock.BedrockProviderConfig["resilience"]) =>
      Effect.gen(function*() {
        const server = yield* BedrockServer.make
        yield* server.enqueue({ _tag: "stream", parts })
        const layer = Bedrock.bedrockProvider({
          model: modelId,
          region: "us-east-1",
          endpoint: server.endpoint,
          credentials,
          resilience: { maxAttempts: 1, ...resilience }
        })
        const seen: Array<ChatChunk> = []
        const error = yield* LanguageModel.LanguageModel.pipe(
          Effect.flatMap((model) => Stream.runForEach(model.stream([Message.user("Hi")]), (chunk) => Effect.sync(() => seen.push(chunk)))),
          Effect.flip,
          Effect.provide(layer)
        )
        return { error: error as ProviderError, seen }
      }).pipe(Effect.scoped)

    it.live("does not hold off the first-chunk timeout", () =>
      Effect.gen(function*() {
        const { error } = yield* streamWith([
          BedrockServer.event("messageStart", { role: "assistant" }),
          BedrockServer.event("contentBlockStart", { contentBlockIndex: 0, start: {} }),
          ...drip
        ], { firstChunkTimeout: "300 millis" })
        expect([error._tag, error.reason, error.message.includes("first-chunk timeout")]).toEqual(["ProviderError", "Timeout", true])
      }), 20_000)

    it.live("after a first text delta, does not hold off the idle timeout", () =>
      Effect.gen(function*() {
        const { error, seen } = yield* streamWith([
          BedrockServer.event("messageStart", { role: "assistant" }),
          BedrockServer.textDelta("a"),
          ...drip
        ], { idleTimeout: "300 millis" })
        expect([error._tag, error.reason, error.message.includes("idle timeout"), seen])
          .toEqual(["ProviderError", "Timeout", true, [{ _tag: "text-delta", delta: "a" }]])
      }), 20_000)
  })

  it.live("applies the provider's rate limit: over the concurrency limit with a full queue is RateLimited at once", () =>
    Effect.gen(function*() {
      const server = yield* BedrockServer.make
      yield* server.enqueue({ _tag: "stall" })
      const layer = Bedrock.bedrockProvider({
        model: modelId,
        region: "us-east-1",
        endpoint: server.endpoint,
        credentials,
        rateLimit: { maxConcurrent: 1, maxQueue: 0 }
      })
      const [rejected, requests] = yield* Effect.gen(function*() {
        const model = yield* LanguageModel.LanguageModel
        yield* Effect.fork(model.chat([Message.user("first")]))
        yield* server.received(0)
        const error = yield* Effect.flip(model.chat([Message.user("second")]))
        return [error, yield* server.requests] as const
      }).pipe(Effect.provide(layer))
      expect(rejected._tag === "ProviderError" && rejected.reason).toBe("RateLimited")
      expect(requests).toHaveLength(1)
    }).pipe(Effect.scoped))
})
