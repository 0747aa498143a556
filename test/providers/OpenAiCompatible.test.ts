import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import * as TestClock from "effect/TestClock"
import { Readable } from "node:stream"
import type { ProviderError } from "../../src/domain/Errors.js"
import * as Message from "../../src/domain/Message.js"
import type { ChatChunk } from "../../src/domain/Message.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import { nodeBody } from "../../src/providers/internal/openaiBody.js"
import { SseEvents } from "../../src/providers/internal/sseEvents.js"
import * as OpenAiCompatible from "../../src/providers/OpenAiCompatible.js"
import * as Resilience from "../../src/providers/Resilience.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

const KEY = "sk-test-0123456789abcdef"

const provider = (server: OpenAiServer.OpenAiServer, overrides: Partial<OpenAiCompatible.OpenAiCompatibleConfig> = {}) =>
  OpenAiCompatible.make({ id: "test", model: "test-model", baseUrl: server.url, apiKey: Redacted.make(KEY), ...overrides })

const run = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici))

const collectChunks = (stream: Stream.Stream<ChatChunk, LanguageModel.ModelError>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toArray)

const liveYield = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))

/** Waits (in real time) until the TestClock holds a sleep ending exactly at `at`. */
const awaitSleepAt = (at: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (Chunk.some(yield* TestClock.sleeps(), (end) => end === at)) return
      yield* liveYield
    }
    return yield* Effect.dieMessage(`no sleep ending at ${at} was registered`)
  })

const failureOf = <A>(effect: Effect.Effect<A, LanguageModel.ModelError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) && result.left._tag === "ProviderError"
      ? Effect.succeed(result.left as ProviderError)
      : Effect.dieMessage(`expected a ProviderError, got ${JSON.stringify(result)}`))

const weather: Message.ToolDefinition = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

describe("OpenAiCompatible", () => {
  it.effect("chat posts the conversation to /v1/chat/completions and returns the text with usage", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.json(OpenAiServer.textCompletion("Hello!", { usage: OpenAiServer.usage(12, 3) }))]
      })
      const model = yield* provider(server)
      const response = yield* model.chat([Message.system("Be brief."), Message.user("Hi")])
      expect(response).toEqual({
        type: "text",
        content: "Hello!",
        usage: { inputTokens: 12, outputTokens: 3, totalTokens: 15 },
        finishReason: "stop",
        model: "test-model"
      })
      const [request] = server.completions
      expect(request!.path).toBe("/v1/chat/completions")
      expect(request!.headers.authorization).toBe(`Bearer ${KEY}`)
      expect(request!.body).toEqual({
        model: "test-model",
        messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }]
      })
    })))

  it.effect("chat maps tools, tool messages and options, and decodes the tool calls it gets back", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.json(OpenAiServer.toolCallCompletion([
          { id: "call_2", name: "get_weather", arguments: { city: "Oslo" } }
        ]))]
      })
      const model = yield* provider(server)
      const response = yield* model.chat(
        [
          Message.user("Weather in Paris, then Oslo?"),
          Message.assistant("", [{ id: "call_1", name: "get_weather", arguments: { city: "Paris" } }]),
          Message.toolResult("call_1", "get_weather", "{\"temp\":21}")
        ],
        [weather],
        { model: "other-model", temperature: 0.2, maxTokens: 50, toolChoice: { tool: "get_weather" } }
      )
      expect(response.type).toBe("tool_calls")
      expect(response.toolCalls).toEqual([{ id: "call_2", name: "get_weather", arguments: { city: "Oslo" } }])
      expect(response.finishReason).toBe("tool_calls")
      expect(server.completions[0]!.body).toEqual({
        model: "other-model",
        messages: [
          { role: "user", content: "Weather in Paris, then Oslo?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }]
          },
          { role: "tool", content: "{\"temp\":21}", tool_call_id: "call_1", name: "get_weather" }
        ],
        tools: [{ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: weather.parameters } }],
        temperature: 0.2,
        max_tokens: 50,
        tool_choice: { type: "function", function: { name: "get_weather" } }
      })
    })))

  it.effect("stream yields text deltas and tool calls assembled from fragments by index", () =>
    run(Effect.gen(function*() {
      const events = [
        ...OpenAiServer.textChunks(["Let me ", "check."], { finishReason: null }).slice(0, 3),
        ...OpenAiServer.toolCallChunks([
          { id: "call_a", name: "get_weather", arguments: "", fragments: ["{\"ci", "ty\": \"Pa", "ris\"}"] },
          { id: "call_b", name: "get_weather", arguments: "", fragments: ["{\"city\":", "\"Oslo\"}"] }
        ]).slice(1)
      ]
      const server = yield* OpenAiServer.start({ script: [OpenAiServer.sse([OpenAiServer.comment(), ...events])] })
      const model = yield* provider(server)
      const chunks = yield* collectChunks(model.stream([Message.user("Weather?")], [weather]))
      expect(chunks).toEqual([
        { _tag: "text-delta", delta: "Let me " },
        { _tag: "text-delta", delta: "check." },
        { _tag: "tool-call-start", index: 0, id: "call_a", name: "get_weather" },
        { _tag: "tool-call-delta", index: 0, argumentsDelta: "{\"ci" },
        { _tag: "tool-call-delta", index: 0, argumentsDelta: "ty\": \"Pa" },
        { _tag: "tool-call-delta", index: 0, argumentsDelta: "ris\"}" },
        { _tag: "tool-call-start", index: 1, id: "call_b", name: "get_weather" },
        { _tag: "tool-call-delta", index: 1, argumentsDelta: "{\"city\":" },
        { _tag: "tool-call-delta", index: 1, argumentsDelta: "\"Oslo\"}" },
        {
          _tag: "tool-call-end",
          index: 0,
          toolCall: { id: "call_a", name: "get_weather", arguments: { city: "Paris" } }
        },
        { _tag: "tool-call-end", index: 1, toolCall: { id: "call_b", name: "get_weather", arguments: { city: "Oslo" } } },
        { _tag: "finish", finishReason: "tool_calls", model: "test-model" }
      ])
      const body = server.completions[0]!.body
      expect(body.stream).toBe(true)
      expect(body.stream_options).toEqual({ include_usage: true })
    })))

  it.effect("usage the server does not report stays undefined; reported usage is kept", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.sse(OpenAiServer.textChunks(["a"])),
          OpenAiServer.sse(OpenAiServer.textChunks(["b"], { usage: { prompt_tokens: 7 } })),
          OpenAiServer.sse(OpenAiServer.textChunks(["c"], {
            usage: { ...OpenAiServer.usage(5, 2), prompt_tokens_details: { cached_tokens: 4 } }
          }))
        ]
      })
      const model = yield* provider(server)
      const none = yield* LanguageModel.collect(model.stream([Message.user("x")]))
      const partial = yield* LanguageModel.collect(model.stream([Message.user("x")]))
      const full = yield* LanguageModel.collect(model.stream([Message.user("x")]))
      expect(none.usage).toEqual({})
      expect(partial.usage).toEqual({ inputTokens: 7 })
      expect(partial.usage.outputTokens).toBeUndefined()
      expect(full.usage).toEqual({ inputTokens: 5, outputTokens: 2, totalTokens: 7, cachedInputTokens: 4 })
    })))

  it.effect("a 429 with Retry-After is retried only once the Retry-After has elapsed", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.status(429, { error: { message: "slow down" } }, { "retry-after": "2" }),
          OpenAiServer.sse(OpenAiServer.textChunks(["ok"]))
        ]
      })
      const model = yield* provider(server)
      const fiber = yield* Effect.fork(LanguageModel.collect(model.stream([Message.user("x")])))
      yield* server.waitForRequests(1, "/v1/chat/completions")
      yield* awaitSleepAt(2000)
      yield* TestClock.adjust("1999 millis")
      yield* liveYield
      expect(server.completions).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      const response = yield* Fiber.join(fiber)
      expect(response.content).toBe("ok")
      expect(server.completions).toHaveLength(2)
    })))

  it.effect("a 500 is retried with backoff and the next answer is returned", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.status(500, "upstream exploded"),
          OpenAiServer.json(OpenAiServer.textCompletion("recovered"))
        ]
      })
      const model = yield* provider(server)
      const fiber = yield* Effect.fork(model.chat([Message.user("x")]))
      yield* server.waitForRequests(1, "/v1/chat/completions")
      // Backoff for the first retry is 250-500 ms (500 ms base, jitter in [0.5, 1]).
      for (let waited = 0; server.completions.length < 2 && waited < 500; waited += 50) {
        yield* TestClock.adjust("50 millis")
        yield* liveYield
      }
      const response = yield* Fiber.join(fiber)
      expect(response.content).toBe("recovered")
      expect(server.completions).toHaveLength(2)
    })))

  it.effect("a 401 is Unauthorized, not retried, and its message never contains the key", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.status(401, { error: { message: `Incorrect API key provided: ${KEY}` } })]
      })
      const model = yield* provider(server, { id: "openai" })
      const error = yield* failureOf(model.chat([Message.user("x")]))
      expect(error.reason).toBe("Unauthorized")
      expect(error.retryable).toBe(false)
      expect(error.status).toBe(401)
      expect(error.message).toContain("scripts/pair.ts openai")
      expect(error.message).toContain("Incorrect API key provided")
      expect(JSON.stringify(error)).not.toContain(KEY)
      expect(String(error)).not.toContain(KEY)
      expect(server.completions).toHaveLength(1)
    })))

  it.effect("HTTP statuses map to the documented reasons", () =>
    run(Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [number, string, string]> = [
        [400, "bad field", "InvalidRequest"],
        [400, "This model's maximum context length is 8192 tokens", "ContextTooLong"],
        [403, "forbidden", "Unauthorized"],
        [404, "no such model", "NotFound"],
        [408, "timeout", "Timeout"],
        [504, "gateway timeout", "Timeout"],
        [503, "unavailable", "ServerError"]
      ]
      const server = yield* OpenAiServer.start({
        script: cases.map(([status, text]) => OpenAiServer.status(status, { error: { message: text } }))
      })
      const model = yield* provider(server, { resilience: { maxAttempts: 1 } })
      for (const [status, , reason] of cases) {
        const error = yield* failureOf(model.chat([Message.user("x")]))
        expect([status, error.reason, error.status]).toEqual([status, reason, status])
      }
    })))

  it.effect("no response headers before the first-chunk timeout fails with Timeout", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ script: [OpenAiServer.hang] })
      const model = yield* provider(server, { resilience: { maxAttempts: 1 } })
      const fiber = yield* Effect.fork(failureOf(LanguageModel.collect(model.stream([Message.user("x")]))))
      yield* server.waitForRequests(1, "/v1/chat/completions")
      yield* awaitSleepAt(30_000)
      yield* TestClock.adjust("30 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("first-chunk timeout")
    })))

  it.effect("a stall mid-stream fails with Timeout once the between-chunks timeout elapses", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.textChunks(["a", "b", "c"]), { stallAfter: 2 })]
      })
      const model = yield* provider(server)
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(failureOf(
        Stream.runForEach(model.stream([Message.user("x")]), () => Deferred.succeed(first, undefined))
      ))
      yield* Deferred.await(first)
      yield* TestClock.adjust("59999 millis")
      yield* liveYield
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("idle timeout")
      expect(server.completions).toHaveLength(1)
    })))

  it.effect("malformed JSON in an SSE data line is InvalidResponse", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse([OpenAiServer.raw("data: {\"choices\": [\n\n")])]
      })
      const model = yield* provider(server)
      const error = yield* failureOf(LanguageModel.collect(model.stream([Message.user("x")])))
      expect(error.reason).toBe("InvalidResponse")
      expect(error.message).toContain("malformed JSON")
      expect(server.completions).toHaveLength(1)
    })))

  it.effect("an in-band error event becomes the ProviderError its code names", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse([
          ...OpenAiServer.textChunks(["partial"], { finishReason: null }),
          OpenAiServer.data({ error: { message: "Context window exceeded", code: "context_length_exceeded" } })
        ], { eventDelayMs: 10 })]
      })
      const model = yield* provider(server)
      const error = yield* failureOf(LanguageModel.collect(model.stream([Message.user("x")])))
      expect(error.reason).toBe("ContextTooLong")
      expect(error.message).toContain("Context window exceeded")
    })))

  it.effect("a stream that ends without [DONE] and without a finish reason is Truncated", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.textChunks(["half an answ"], { finishReason: null }), { done: false })]
      })
      const model = yield* provider(server)
      const error = yield* failureOf(LanguageModel.collect(model.stream([Message.user("x")])))
      expect(error.reason).toBe("Truncated")
    })))

  it.effect("a stream that ends after its finish reason but without [DONE] completes", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.textChunks(["whole"]), { done: false })]
      })
      const model = yield* provider(server)
      const response = yield* LanguageModel.collect(model.stream([Message.user("x")]))
      expect([response.content, response.finishReason]).toEqual(["whole", "stop"])
    })))

  it.effect("keep-alive comments and unknown event types are skipped", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse([
          OpenAiServer.comment("ping"),
          OpenAiServer.data({ type: "vendor.progress" }, "progress"),
          ...OpenAiServer.textChunks(["fine"])
        ])]
      })
      const model = yield* provider(server)
      const response = yield* LanguageModel.collect(model.stream([Message.user("x")]))
      expect(response.content).toBe("fine")
    })))

  it.effect("tool arguments that are not JSON yield argumentsError and the stream still completes", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.toolCallChunks([
          { id: "call_x", name: "get_weather", arguments: "", fragments: ["{\"city\": \"Par", "is\""] }
        ]))]
      })
      const model = yield* provider(server)
      const response = yield* LanguageModel.collect(model.stream([Message.user("x")], [weather]))
      expect(response.finishReason).toBe("tool_calls")
      const [call] = response.toolCalls!
      expect(call!.arguments).toEqual({})
      expect(call!.argumentsError).toContain("not valid JSON")
    })))

  it.effect("a connection reset mid-stream is Network and is not retried after the first chunk", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.textChunks(["a", "b", "c"]), { resetAfter: 2, eventDelayMs: 30 })]
      })
      const model = yield* provider(server)
      const seen: Array<ChatChunk> = []
      const error = yield* failureOf(Stream.runForEach(model.stream([Message.user("x")]), (chunk) => Effect.sync(() => seen.push(chunk))))
      expect(error.reason).toBe("Network")
      expect(error.retryable).toBe(true)
      expect(seen).toEqual([{ _tag: "text-delta", delta: "a" }])
      expect(server.completions).toHaveLength(1)
    })))

  it.effect("a finished stream leaves its connection open for the next request", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          // The body ends a little after [DONE], as real servers do it: in two writes.
          OpenAiServer.sse([...OpenAiServer.textChunks(["one"]), OpenAiServer.raw("data: [DONE]\n\n")], {
            done: false,
            eventDelayMs: 20
          }),
          OpenAiServer.sse(OpenAiServer.textChunks(["two"]))
        ]
      })
      const model = yield* provider(server)
      yield* LanguageModel.collect(model.stream([Message.user("x")]))
      // undici hands a finished connection back to its pool asynchronously.
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 20)))
      yield* LanguageModel.collect(model.stream([Message.user("x")]))
      const [first, second] = server.completions
      expect(first!.abortedByClient()).toBe(false)
      expect(second!.remotePort).toBe(first!.remotePort)
    })))

  it.live("interrupting a stream closes its socket on the server", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.textChunks(["a", "b", "c"]), { stallAfter: 2 })]
      })
      const model = yield* provider(server)
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(Stream.runForEach(model.stream([Message.user("x")]), () => Deferred.succeed(first, undefined)))
      yield* Deferred.await(first)
      yield* Fiber.interrupt(fiber)
      const request = server.completions[0]!
      yield* Effect.promise(() => request.closed).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" }))
      expect(request.abortedByClient()).toBe(true)
    })))

  it.effect("isAvailable asks GET /v1/models once per TTL, however often it is called", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start()
      const model = yield* provider(server)
      const answers = yield* Effect.all(Array.from({ length: 5 }, () => model.isAvailable), { concurrency: "unbounded" })
      expect(answers).toEqual([true, true, true, true, true])
      expect(yield* model.isAvailable).toBe(true)
      expect(server.requests.map((request) => request.path)).toEqual(["/v1/models"])
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`)
      yield* TestClock.adjust("30 seconds")
      expect(yield* model.isAvailable).toBe(true)
      expect(server.requests.filter((request) => request.path === "/v1/models")).toHaveLength(2)
    })))

  it.effect("health is learned from real calls: a 401 marks the provider unavailable without a probe", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.json(OpenAiServer.textCompletion("hi")), OpenAiServer.status(401, "bad key")]
      })
      const model = yield* provider(server)
      yield* model.chat([Message.user("x")])
      expect(yield* model.isAvailable).toBe(true)
      yield* Effect.either(model.chat([Message.user("x")]))
      expect(yield* model.isAvailable).toBe(false)
      expect(server.requests.some((request) => request.path === "/v1/models")).toBe(false)
    })))

  it.effect("the LiteLLM liveliness check uses /health/liveliness and a failing server is unavailable", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start()
      const live = yield* provider(server, { healthCheck: "liteLLMLiveliness" })
      expect(yield* live.isAvailable).toBe(true)
      expect(server.requests.map((request) => request.path)).toEqual(["/health/liveliness"])
      const down = yield* OpenAiServer.start({ models: OpenAiServer.status(503, "down") })
      expect(yield* (yield* provider(down)).isAvailable).toBe(false)
    })))

  it.effect("x-litellm and rate-limit response headers are kept as metadata", () =>
    run(Effect.gen(function*() {
      const headers = { "x-litellm-model-id": "abc123", "x-litellm-response-cost": "0.0004", "x-powered-by": "test" }
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.json(OpenAiServer.textCompletion("hi"), { headers }),
          OpenAiServer.sse(OpenAiServer.textChunks(["hi"]), { headers: { ...headers, "x-ratelimit-remaining-requests": "9" } })
        ]
      })
      const model = yield* provider(server)
      const chat = yield* model.chat([Message.user("x")])
      expect(chat.metadata).toEqual({ "x-litellm-model-id": "abc123", "x-litellm-response-cost": "0.0004" })
      const chunks = yield* collectChunks(model.stream([Message.user("x")]))
      expect(chunks.at(-1)).toEqual({
        _tag: "finish",
        finishReason: "stop",
        model: "test-model",
        metadata: { "x-litellm-model-id": "abc123", "x-litellm-response-cost": "0.0004", "x-ratelimit-remaining-requests": "9" }
      })
    })))

  it.effect("x-ratelimit-remaining-requests: 0 makes the next request wait for the reset", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.json(OpenAiServer.textCompletion("one"), {
            headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s" }
          }),
          OpenAiServer.json(OpenAiServer.textCompletion("two"))
        ]
      })
      const model = yield* provider(server, { rateLimit: {} })
      yield* model.chat([Message.user("x")])
      const fiber = yield* Effect.fork(model.chat([Message.user("x")]))
      yield* awaitSleepAt(20_000)
      yield* TestClock.adjust("19 seconds")
      yield* liveYield
      expect(server.completions).toHaveLength(1)
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).content).toBe("two")
      expect(server.completions).toHaveLength(2)
    })))

  it.effect("the key comes from the option, else the SecretsManager, else the environment, else none", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: () => OpenAiServer.json(OpenAiServer.textCompletion("ok"))
      })
      const secrets = Layer.succeed(SecretsManager.SecretsManager, {
        resolveProviderKey: (id: string) => Effect.succeed(Option.some(Redacted.make(`stored-${id}`)))
      } as unknown as SecretsManager.Service)
      const env = ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "from-env"]]))
      const ask = (model: LanguageModel.Service) => model.chat([Message.user("x")])
      const base = { id: "openai", model: "m", baseUrl: `${server.url}/v1/` } as const
      yield* ask(yield* OpenAiCompatible.make({ ...base, apiKey: Redacted.make("from-option") })).pipe(Effect.provide(secrets))
      yield* ask(yield* OpenAiCompatible.make(base).pipe(Effect.provide(secrets)))
      yield* ask(yield* OpenAiCompatible.make(base)).pipe(Effect.withConfigProvider(env))
      yield* ask(yield* OpenAiCompatible.make(base)).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      expect(server.completions.map((request) => request.headers.authorization)).toEqual([
        "Bearer from-option",
        "Bearer stored-openai",
        "Bearer from-env",
        undefined
      ])
      expect(server.completions.every((request) => request.path === "/v1/chat/completions")).toBe(true)
    })))

  it.effect("the presets are Layers with their ids, names and base URLs", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ script: [OpenAiServer.json(OpenAiServer.textCompletion("hi"))] })
      const model = yield* LanguageModel.LanguageModel.pipe(
        Effect.provide(OpenAiCompatible.liteLLMProvider({ model: "gpt-4o", baseUrl: server.url, apiKey: Redacted.make(KEY) }))
      )
      expect([model.id, model.name]).toEqual(["litellm", "LiteLLM (gpt-4o)"])
      expect((yield* model.chat([Message.user("x")])).content).toBe("hi")
      const ollama = yield* LanguageModel.LanguageModel.pipe(Effect.provide(OpenAiCompatible.ollamaProvider({ model: "llama3" })))
      const openai = yield* LanguageModel.LanguageModel.pipe(
        Effect.provide(OpenAiCompatible.openAIProvider({ model: "gpt-4.1", id: "work-openai", name: "Work" }))
      )
      expect([ollama.id, ollama.name, openai.id, openai.name]).toEqual(["ollama", "Ollama (llama3)", "work-openai", "Work"])
    })))

  it.effect("a base URL that is not a URL gives every call an InvalidRequest saying what to fix", () =>
    run(Effect.gen(function*() {
      const model = yield* OpenAiCompatible.make({ id: "broken", model: "m", baseUrl: "localhost:4000" })
      const error = yield* failureOf(model.chat([Message.user("x")]))
      expect(error.reason).toBe("InvalidRequest")
      expect(error.message).toContain("localhost:4000")
      expect(yield* model.isAvailable).toBe(false)
    })))

  describe("the direct read paths", () => {
    const events = OpenAiServer.toolCallChunks([
      { id: "call_1", name: "get_weather", arguments: "", fragments: ["{\"city\":", "\"Paris\"}"] }
    ], { usage: OpenAiServer.usage(7, 2) })
    const expected: Array<ChatChunk> = [
      { _tag: "tool-call-start", index: 0, id: "call_1", name: "get_weather" },
      { _tag: "tool-call-delta", index: 0, argumentsDelta: "{\"city\":" },
      { _tag: "tool-call-delta", index: 0, argumentsDelta: "\"Paris\"}" },
      { _tag: "tool-call-end", index: 0, toolCall: { id: "call_1", name: "get_weather", arguments: { city: "Paris" } } },
      { _tag: "usage", usage: { inputTokens: 7, outputTokens: 2, totalTokens: 9 } },
      { _tag: "finish", finishReason: "tool_calls", model: "test-model" }
    ]
    const sseText = events.map((event) => event.kind === "data" ? `data: ${event.data}\n\n` : "").join("") +
      "data: [DONE]\n\n"
    const viaForEach = (model: LanguageModel.Service) =>
      Effect.suspend(() => {
        const seen: Array<ChatChunk> = []
        return Effect.as(
          Resilience.runForEachChunk(model, [Message.user("x")], [weather], undefined, (chunk) =>
            Effect.sync(() => seen.push(...chunk))),
          seen
        )
      })
    // Every way of reading an answer: the raw provider's and the policy's, each as a stream and
    // as reads without a stream.
    const everyWay = (server: OpenAiServer.OpenAiServer) =>
      Effect.gen(function*() {
        const raw = yield* OpenAiCompatible.makeRaw({ id: "test", model: "test-model", baseUrl: server.url })
        const full = yield* provider(server)
        return [
          yield* collectChunks(raw.stream([Message.user("x")], [weather])),
          yield* viaForEach(raw),
          yield* collectChunks(full.stream([Message.user("x")], [weather])),
          yield* viaForEach(full)
        ]
      })

    it.effect("with undici, a streamed body is read from its Readable", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({ script: [OpenAiServer.sse(events)] })
        const client = yield* HttpClient.HttpClient
        const response = yield* client.execute(HttpClientRequest.post(`${server.url}/v1/chat/completions`))
        const readable = nodeBody(response)
        expect(readable).toBeInstanceOf(Readable)
        readable!.destroy()
      })))

    it.effect("an answer reads the same every way, over undici and over another client", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.start({ script: () => OpenAiServer.sse(events) })
        const undici = yield* everyWay(server).pipe(Effect.provide(NodeHttpClient.layerUndici))
        const fetched = yield* everyWay(server).pipe(Effect.provide(FetchHttpClient.layer))
        expect([...undici, ...fetched]).toEqual(Array(8).fill(expected))
      }).pipe(Effect.scoped))

    it.effect("a body cut into pieces of a few bytes, lines split across reads, reads the same every way", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({
          script: () => ({
            kind: "raw",
            status: 200,
            body: sseText,
            headers: { "content-type": "text/event-stream" },
            chunkSize: 7
          })
        })
        expect(yield* everyWay(server)).toEqual(Array(4).fill(expected))
      })))

    it.live("interrupting runForEachChunk closes the socket on the server", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({
          script: [OpenAiServer.sse(OpenAiServer.textChunks(["a", "b", "c"]), { stallAfter: 2 })]
        })
        const model = yield* provider(server)
        const first = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          Resilience.runForEachChunk(model, [Message.user("x")], undefined, undefined, () => Deferred.succeed(first, undefined))
        )
        yield* Deferred.await(first)
        yield* Fiber.interrupt(fiber)
        const request = server.completions[0]!
        yield* Effect.promise(() => request.closed).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" })
        )
        expect(request.abortedByClient()).toBe(true)
      })))

    it.live("with the live clock, a stall fails with the idle timeout and closes the socket", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({
          script: [OpenAiServer.sse(OpenAiServer.textChunks(["a", "b", "c"]), { stallAfter: 2 })]
        })
        const model = yield* provider(server, { resilience: { idleTimeout: "100 millis" } })
        const seen: Array<ChatChunk> = []
        const error = yield* failureOf(
          Resilience.runForEachChunk(model, [Message.user("x")], undefined, undefined, (chunk) => Effect.sync(() => seen.push(...chunk)))
        )
        expect([error.reason, seen]).toEqual(["Timeout", [{ _tag: "text-delta", delta: "a" }]])
        expect(error.message).toContain("idle timeout")
        yield* Effect.promise(() => server.completions[0]!.closed).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" })
        )
      })))

    it.live("after [DONE], a body that does not end is waited for no longer than the idle timeout", () =>
      run(Effect.gen(function*() {
        const events = [...OpenAiServer.textChunks(["all"]), OpenAiServer.raw("data: [DONE]\n\n: trailing\n\n")]
        const server = yield* OpenAiServer.start({
          script: () => OpenAiServer.sse(events, { done: false, stallAfter: events.length })
        })
        const model = yield* provider(server, { resilience: { idleTimeout: "100 millis" } })
        for (const read of [viaForEach(model), collectChunks(model.stream([Message.user("x")], [weather]))]) {
          const error = yield* failureOf(read)
          expect(error.message).toContain("idle timeout")
        }
        expect(server.completions).toHaveLength(2)
      })))

    it.live("after [DONE], more of the body already at hand while it has not ended does not block the next read", () =>
      run(Effect.gen(function*() {
        const events = [
          ...OpenAiServer.textChunks(["all"]),
          OpenAiServer.raw("data: [DONE]\n\n"),
          OpenAiServer.raw(": trailing\n\n")
        ]
        const server = yield* OpenAiServer.start({
          script: [OpenAiServer.sse(events, { done: false, eventDelayMs: 20, stallAfter: events.length })]
        })
        const model = yield* provider(server, { resilience: { idleTimeout: "300 millis" } })
        // A slow consumer: the trailing comment arrives while the finish chunk is being handled.
        const error = yield* failureOf(
          Resilience.runForEachChunk(model, [Message.user("x")], undefined, undefined, (chunk) =>
            Chunk.some(chunk, (item) => item._tag === "finish") ? Effect.sleep("150 millis") : Effect.void)
        )
        expect(error.message).toContain("idle timeout")
      })))

    it.live("part of an event already at hand, the rest of which never comes, is waited for no longer than the idle timeout", () =>
      run(Effect.gen(function*() {
        const events = [...OpenAiServer.textChunks(["a"], { finishReason: null }), OpenAiServer.raw("data: {\"choi")]
        const server = yield* OpenAiServer.start({
          script: [OpenAiServer.sse(events, { done: false, eventDelayMs: 20, stallAfter: events.length })]
        })
        const model = yield* provider(server, { resilience: { idleTimeout: "300 millis" } })
        const error = yield* failureOf(
          Resilience.runForEachChunk(model, [Message.user("x")], undefined, undefined, () => Effect.sleep("150 millis"))
        )
        expect(error.message).toContain("idle timeout")
      })))

    describe("a server that drips bytes without an answer", () => {
      it.live("keep-alive comments alone do not hold off the first-chunk timeout", () =>
        run(Effect.gen(function*() {
          const server = yield* OpenAiServer.start({
            script: [OpenAiServer.sse([], { keepAliveEveryMs: 50 })]
          })
          const model = yield* provider(server, { resilience: { firstChunkTimeout: "300 millis", maxAttempts: 1 } })
          const error = yield* failureOf(LanguageModel.collect(model.stream([Message.user("x")])))
          expect([error._tag, error.reason, error.message.includes("first-chunk timeout")])
            .toEqual(["ProviderError", "Timeout", true])
        })), 20_000)

      it.live("after a first text chunk, keep-alive comments alone do not hold off the idle timeout", () =>
        run(Effect.gen(function*() {
          const server = yield* OpenAiServer.start({
            script: [OpenAiServer.sse(OpenAiServer.textChunks(["a"], { finishReason: null }), { keepAliveEveryMs: 50 })]
          })
          const model = yield* provider(server, { resilience: { idleTimeout: "300 millis", maxAttempts: 1 } })
          const seen: Array<ChatChunk> = []
          const error = yield* failureOf(
            Resilience.runForEachChunk(model, [Message.user("x")], undefined, undefined, (chunk) =>
              Effect.sync(() => seen.push(...chunk)))
          )
          expect([error._tag, error.reason, error.message.includes("idle timeout"), seen])
            .toEqual(["ProviderError", "Timeout", true, [{ _tag: "text-delta", delta: "a" }]])
        })), 20_000)

      it.live("a body sent one byte at a time does not hold off the first-chunk timeout", () =>
        run(Effect.gen(function*() {
          const body = `data: ${
            JSON.stringify({ model: "test-model", choices: [{ index: 0, delta: { content: "hi" }, finish_reason: "stop" }] })
          }\n\ndata: [DONE]\n\n`
          const server = yield* OpenAiServer.start({
            script: [{
              kind: "raw",
              status: 200,
              body,
              headers: { "content-type": "text/event-stream" },
              chunkSize: 1,
              pieceDelayMs: 20
            }]
          })
          const model = yield* provider(server, { resilience: { firstChunkTimeout: "300 millis", maxAttempts: 1 } })
          const error = yield* failureOf(LanguageModel.collect(model.stream([Message.user("x")])))
          expect([error._tag, error.reason, error.message.includes("first-chunk timeout")])
            .toEqual(["ProviderError", "Timeout", true])
        })), 20_000)
    })

    it.live("with the live clock, no headers before the first-chunk timeout is a Timeout, retried", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({
          script: (request) => request.index === 0 ? OpenAiServer.hang : OpenAiServer.sse(OpenAiServer.textChunks(["late"]))
        })
        const model = yield* provider(server, {
          resilience: { firstChunkTimeout: "150 millis", baseDelay: "1 millis", maxAttempts: 5 }
        })
        const response = yield* LanguageModel.collect(model.stream([Message.user("x")]))
        expect(response.content).toBe("late")
        expect(server.completions.length).toBeGreaterThanOrEqual(2)
        yield* Effect.promise(() => server.completions[0]!.closed).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" })
        )
      })))

    it.live("interrupting runForEachChunk before the answer's headers closes the socket on the server", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({ script: [OpenAiServer.hang] })
        const model = yield* provider(server)
        const fiber = yield* Effect.fork(viaForEach(model))
        yield* server.waitForRequests(1, "/v1/chat/completions")
        yield* Fiber.interrupt(fiber)
        yield* Effect.promise(() => server.completions[0]!.closed).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" })
        )
        expect(server.completions[0]!.abortedByClient()).toBe(true)
      })))

    it.live("a read stopped by its timeout aborts the request, and is not taken as a sign the server is down", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({ script: [OpenAiServer.hang] })
        const model = yield* provider(server, { resilience: { firstChunkTimeout: "100 millis", maxAttempts: 1 } })
        const error = yield* failureOf(viaForEach(model))
        expect([error.reason, error.message.includes("first-chunk timeout")]).toEqual(["Timeout", true])
        yield* Effect.promise(() => server.completions[0]!.closed).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" })
        )
        // The verdict comes from asking the server, which answers, not from the timeout.
        expect(yield* model.isAvailable).toBe(true)
        expect(server.requests.some((request) => request.path === "/v1/models")).toBe(true)
      })))

    it.effect("answers read directly leave their connection open for the next request", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({ script: () => OpenAiServer.sse(events) })
        const model = yield* provider(server)
        for (let i = 0; i < 3; i++) yield* viaForEach(model)
        yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 20)))
        yield* viaForEach(model)
        expect(server.completions.every((request) => !request.abortedByClient())).toBe(true)
        expect(new Set(server.completions.map((request) => request.remotePort)).size).toBeLessThan(4)
      })))
  })

  describe("bounds on what the server sends", () => {
    const MiB = 1024 * 1024
    // Says only what came instead: an answer here is megabytes, too much for a failure message.
    const rejection = <A>(effect: Effect.Effect<A, LanguageModel.ModelError>) =>
      Effect.flatMap(Effect.either(effect), (result) =>
        result._tag === "Left" && result.left._tag === "ProviderError"
          ? Effect.succeed(result.left as ProviderError)
          : Effect.dieMessage(`expected a ProviderError, got ${result._tag === "Right" ? "an answer" : result.left._tag}`))
    const closedBy = (request: OpenAiServer.RecordedRequest) =>
      Effect.promise(() => request.closed).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "socket still open" })
      )
    // Written in pieces, so that no Content-Length announces the size: the bound is met while reading.
    const bigBody = (status: number, contentType: string, body: string): OpenAiServer.Step => ({
      kind: "raw",
      status,
      body,
      headers: { "content-type": contentType },
      chunkSize: 64 * 1024
    })

    it.live("a 20 MB answer sent whole, past maxResponseBytes, is InvalidResponse, read no further and not retried", () =>
      run(Effect.gen(function*() {
        const body = JSON.stringify(OpenAiServer.textCompletion("x".repeat(20 * MiB)))
        for (const call of ["chat", "stream"] as const) {
          const server = yield* OpenAiServer.start({ script: () => bigBody(200, "application/json", body) })
          const model = yield* provider(server, { limits: { maxResponseBytes: MiB }, resilience: { baseDelay: "1 millis" } })
          const error = yield* rejection(
            call === "chat"
              ? model.chat([Message.user("x")])
              : LanguageModel.collect(model.stream([Message.user("x")]))
          )
          expect([call, error.reason, error.retryable]).toEqual([call, "InvalidResponse", false])
          expect(error.message).toContain("larger than the limit of 1 MiB (maxResponseBytes)")
          expect(error.message).toContain("raise limits.maxResponseBytes")
          yield* closedBy(server.completions[0]!)
          expect([server.completions.length, server.completions[0]!.abortedByClient()]).toEqual([1, true])
        }
      })), 30_000)

    it.live("of a 20 MB error body only maxErrorBodyBytes are read: the error keeps its status's reason, with a short excerpt", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({
          script: [bigBody(500, "text/plain", `upstream failed: ${"y".repeat(20 * MiB)}`)]
        })
        const model = yield* provider(server, { resilience: { maxAttempts: 1 } })
        const error = yield* rejection(model.chat([Message.user("x")]))
        expect([error.reason, error.status, error.retryable]).toEqual(["ServerError", 500, true])
        expect(error.message).toContain("upstream failed: yyy")
        expect(error.message.length).toBeLessThan(1000)
        yield* closedBy(server.completions[0]!)
        expect(server.completions[0]!.abortedByClient()).toBe(true)
      })), 30_000)

    it.live("a stream event longer than maxEventBytes (1 MiB by default) is InvalidResponse and not retried", () =>
      run(Effect.gen(function*() {
        const huge = OpenAiServer.textChunks(["x".repeat(2 * MiB)])
        const server = yield* OpenAiServer.start({ script: () => OpenAiServer.sse(huge) })
        const model = yield* provider(server, { resilience: { baseDelay: "1 millis" } })
        const error = yield* rejection(LanguageModel.collect(model.stream([Message.user("x")])))
        expect([error.reason, error.retryable]).toEqual(["InvalidResponse", false])
        expect(error.message).toContain("a stream event larger than the limit of 1 MiB (maxEventBytes)")
        expect(server.completions).toHaveLength(1)
      })), 30_000)

    it.live("a stream event under a configured maxEventBytes is read, one over it is not", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({
          script: [
            OpenAiServer.sse(OpenAiServer.textChunks(["x".repeat(1000)])),
            OpenAiServer.sse(OpenAiServer.textChunks(["x".repeat(5000)]))
          ]
        })
        const model = yield* provider(server, { limits: { maxEventBytes: 4096 }, resilience: { maxAttempts: 1 } })
        const read = yield* LanguageModel.collect(model.stream([Message.user("x")]))
        const error = yield* rejection(LanguageModel.collect(model.stream([Message.user("x")])))
        expect([read.content?.length, error.reason]).toEqual([1000, "InvalidResponse"])
        expect(error.message).toContain("limit of 4 KiB (maxEventBytes)")
      })))
  })

  describe("tracing", () => {
    it.effect("with Effect's built-in tracer the request carries no trace headers", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({ script: [OpenAiServer.sse(OpenAiServer.textChunks(["hi"]))] })
        const model = yield* provider(server)
        yield* LanguageModel.collect(model.stream([Message.user("x")]))
        expect(server.completions[0]!.headers.traceparent).toBeUndefined()
      })))

    it.effect("with a tracer provided, the HTTP request is a span under LanguageModel.stream and carries its trace", () =>
      run(Effect.gen(function*() {
        const server = yield* OpenAiServer.start({ script: [OpenAiServer.sse(OpenAiServer.textChunks(["hi"]))] })
        const { spans, tracer: recording } = recordingTracer()
        const model = yield* provider(server)
        yield* LanguageModel.collect(model.stream([Message.user("x")])).pipe(Effect.withTracer(recording))
        const stream = spans.find((span) => span.name === "LanguageModel.stream")!
        const http = spans.find((span) => span.attributes.get("http.request.method") === "POST")!
        expect(Option.map(http.parent, (parent) => parent.spanId)).toEqual(Option.some(stream.spanId))
        expect(server.completions[0]!.headers.traceparent).toContain(http.traceId)
      })))
  })

  it.effect("a key in the environment is read per request", () =>
    run(Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ script: () => OpenAiServer.json(OpenAiServer.textCompletion("ok")) })
      const model = yield* OpenAiCompatible.make({ id: "envtest", model: "m", baseUrl: server.url })
      const ask = model.chat([Message.user("x")])
      yield* Effect.acquireUseRelease(
        Effect.sync(() => {
          process.env.ENVTEST_API_KEY = "sk-env-first"
        }),
        () =>
          Effect.gen(function*() {
            yield* ask
            process.env.ENVTEST_API_KEY = "sk-env-second"
            yield* ask
            delete process.env.ENVTEST_API_KEY
            yield* ask
          }),
        () =>
          Effect.sync(() => {
            delete process.env.ENVTEST_API_KEY
          })
      )
      expect(server.completions.map((request) => request.headers.authorization)).toEqual([
        "Bearer sk-env-first",
        "Bearer sk-env-second",
        undefined
      ])
    })))

  describe("SSE splitting (the streaming fast path)", () => {
    /** The SSE specification's event dispatch, written plainly as the oracle. */
    const specEvents = (text: string): Array<readonly [string, string]> => {
      const events: Array<readonly [string, string]> = []
      const lines = text.split(/\r\n|\r|\n/)
      lines.pop()
      let data = ""
      let name = ""
      for (const line of lines) {
        if (line === "") {
          if (data !== "") events.push([name || "message", data.slice(0, -1)])
          data = ""
          name = ""
          continue
        }
        const colon = line.indexOf(":")
        const field = colon < 0 ? line : line.slice(0, colon)
        const raw = colon < 0 ? "" : line.slice(colon + 1)
        const value = raw.startsWith(" ") ? raw.slice(1) : raw
        if (field === "data") data += `${value}\n`
        else if (field === "event") name = value
      }
      return events
    }

    const value = fc.string({ unit: fc.constantFrom("a", "b", " ", ":", "{", "}", "\"", "é", "😀", "[DONE]") })
    const line = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(fc.constantFrom("data:", "data: "), value).map(([field, text]) => field + text) },
      { weight: 3, arbitrary: fc.constant("") },
      { weight: 1, arbitrary: value.map((text) => `:${text}`) },
      { weight: 1, arbitrary: fc.constantFrom("event: error", "event: progress", "id: 7", "retry: 10", "data") }
    )
    const terminator = fc.oneof({ weight: 6, arbitrary: fc.constant("\n") }, fc.constant("\r\n"), fc.constant("\r"))
    const streamText = fc.array(fc.tuple(line, terminator), { maxLength: 40 }).map((lines) =>
      lines.map(([text, end]) => text + end).join("")
    )

    it("any stream, split anywhere, yields the events the specification defines", () => {
      fc.assert(
        fc.property(streamText, fc.array(fc.nat(), { maxLength: 8 }), (text, cuts) => {
          const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b)
          const ends = [...points, text.length]
          const pieces = [0, ...points].map((from, i) => text.slice(from, ends[i]))
          const seen: Array<readonly [string, string]> = []
          const splitter = new SseEvents((event, data) => {
            seen.push([event, data])
            return true
          })
          for (const piece of pieces) expect(splitter.feed(piece)).toBeUndefined()
          expect(seen).toEqual(specEvents(text))
        }),
        { numRuns: 500 }
      )
    })
  })
})
