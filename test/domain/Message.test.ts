import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Message from "../../src/domain/Message.js"

const roundTrip = <A, I>(schema: Schema.Schema<A, I>, value: A): A =>
  Schema.decodeUnknownSync(schema)(JSON.parse(JSON.stringify(Schema.encodeSync(schema)(value))))

describe("Message.parseToolArguments", () => {
  it("decodes a JSON object", () => {
    expect(Message.parseToolArguments("{\"query\":\"effect\",\"limit\":3,\"opts\":{\"deep\":[1]}}")).toStrictEqual({
      arguments: { query: "effect", limit: 3, opts: { deep: [1] } }
    })
  })

  it("treats empty or blank input as no arguments, without an error", () => {
    expect(Message.parseToolArguments("")).toStrictEqual({ arguments: {} })
    expect(Message.parseToolArguments("  \n")).toStrictEqual({ arguments: {} })
  })

  it("reports invalid JSON with the parser's complaint and the raw text", () => {
    const parsed = Message.parseToolArguments("{\"query\": \"eff")
    expect(parsed.arguments).toStrictEqual({})
    expect(parsed.argumentsError).toMatch(/^Tool arguments are not valid JSON \(.+\): \{"query": "eff$/)
  })

  it("cuts the raw text of long invalid JSON to 200 characters", () => {
    const raw = `{${"x".repeat(500)}`
    const parsed = Message.parseToolArguments(raw)
    expect(parsed.argumentsError).toContain(`${raw.slice(0, 200)}…`)
    expect(parsed.argumentsError).not.toContain(raw.slice(0, 201))
  })

  it.each([
    ["[1,2]", "an array"],
    ["null", "null"],
    ["\"text\"", "a string"],
    ["42", "a number"],
    ["true", "a boolean"]
  ])("rejects %s, which is not an object, naming what it got", (raw, got) => {
    expect(Message.parseToolArguments(raw)).toStrictEqual({
      arguments: {},
      argumentsError: `Tool arguments must be a JSON object, got ${got}.`
    })
  })
})

describe("Message.addUsage", () => {
  it("adds the figures both sides reported", () => {
    expect(Message.addUsage({ inputTokens: 10, outputTokens: 2 }, { inputTokens: 5, outputTokens: 1 })).toStrictEqual({
      inputTokens: 15,
      outputTokens: 3
    })
  })

  it("keeps a figure neither side reported undefined (absent), never 0", () => {
    const sum = Message.addUsage({ inputTokens: 10 }, { outputTokens: 4 })
    expect(sum).toStrictEqual({ inputTokens: 10, outputTokens: 4 })
    expect("totalTokens" in sum).toBe(false)
    expect(Message.addUsage({}, {})).toStrictEqual({})
  })

  it("counts a figure one side reported as that side's value", () => {
    expect(Message.addUsage({ reasoningTokens: 7 }, {})).toStrictEqual({ reasoningTokens: 7 })
    expect(Message.addUsage({}, { cachedInputTokens: 3 })).toStrictEqual({ cachedInputTokens: 3 })
  })
})

describe("Message constructors and schemas", () => {
  const call = { id: "call-1", name: "search", arguments: { query: "effect" } }

  it("builds messages of each role; an assistant message without tool calls has no toolCalls field", () => {
    expect(Message.system("be brief")).toStrictEqual({ role: "system", content: "be brief" })
    expect(Message.user("hi")).toStrictEqual({ role: "user", content: "hi" })
    expect(Message.assistant("ok", [])).toStrictEqual({ role: "assistant", content: "ok" })
    expect(Message.assistant("", [call])).toStrictEqual({ role: "assistant", content: "", toolCalls: [call] })
    expect(Message.toolResult("call-1", "search", "3 hits")).toStrictEqual({
      role: "tool",
      content: "3 hits",
      toolCallId: "call-1",
      name: "search"
    })
  })

  it("round-trips messages, responses and every kind of stream chunk through JSON", () => {
    const messages = [Message.user("hi"), Message.assistant("", [{ ...call, argumentsError: "bad" }])]
    expect(roundTrip(Schema.Array(Message.Message), messages)).toStrictEqual(messages)
    const response: Message.LLMResponse = {
      type: "tool_calls",
      toolCalls: [call],
      usage: { inputTokens: 1 },
      finishReason: "tool_calls",
      model: "m",
      metadata: { "x-litellm-model-id": "abc" }
    }
    expect(roundTrip(Message.LLMResponse, response)).toStrictEqual(response)
    const chunks: ReadonlyArray<Message.ChatChunk> = [
      Message.TextDelta.make({ delta: "He" }),
      Message.ReasoningDelta.make({ delta: "think" }),
      Message.ToolCallStart.make({ index: 0, id: "call-1", name: "search" }),
      Message.ToolCallDelta.make({ index: 0, argumentsDelta: "{\"q\":" }),
      Message.ToolCallEnd.make({ index: 0, toolCall: call }),
      Message.UsageChunk.make({ usage: { outputTokens: 2 } }),
      Message.Finish.make({ finishReason: "stop" }),
      Message.RouteChunk.make({
        tier: "simple",
        provider: "ollama",
        score: 0.1,
        confidence: 0.9,
        signals: [],
        forced: false,
        fallbacksTried: []
      })
    ]
    expect(roundTrip(Schema.Array(Message.ChatChunk), chunks)).toStrictEqual(chunks)
    expect(new Set(chunks.map((chunk) => chunk._tag)).size).toBe(Message.ChatChunk.members.length)
  })

  it("rejects a message with an unknown role", () => {
    expect(Either.isLeft(Schema.decodeUnknownEither(Message.Message)({ role: "robot", content: "x" }))).toBe(true)
  })
})

describe("Message content parts", () => {
  const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
  const decode = Schema.decodeUnknownEither(Message.Message)
  const problemOf = (content: unknown): string => {
    const decoded = decode({ role: "user", content })
    if (Either.isRight(decoded)) throw new Error(`expected a refusal, decoded ${JSON.stringify(decoded.right)}`)
    return decoded.left.message
  }

  it("takes text, an image by URL and an image as base64 with its media type, and still a plain string", () => {
    const parts = [
      { type: "text", text: "What is in these pictures?" },
      { type: "image", url: "https://example.com/cat.png" },
      { type: "image", data: png, mediaType: "image/png" }
    ] as const
    const message = Message.user(parts)
    expect(message).toStrictEqual({ role: "user", content: parts })
    expect(roundTrip(Message.Message, message)).toStrictEqual(message)
    expect(roundTrip(Message.Message, Message.user("hi"))).toStrictEqual({ role: "user", content: "hi" })
    expect(Either.isRight(decode({ role: "user", content: [{ type: "image", url: `data:image/png;base64,${png}` }] }))).toBe(true)
  })

  it("refuses an unknown media type, data that is not base64 (a data: URL among them) and a url that is not http(s) or data:", () => {
    expect(problemOf([{ type: "image", data: png, mediaType: "image/bmp" }])).toContain("image/webp")
    expect(problemOf([{ type: "image", data: `data:image/png;base64,${png}`, mediaType: "image/png" }])).toContain(
      "pass a data: URL as { type: \"image\", url } instead"
    )
    expect(problemOf([{ type: "image", data: "not base64!", mediaType: "image/png" }])).toContain("standard base64")
    expect(problemOf([{ type: "image", data: "", mediaType: "image/png" }])).toContain("non-empty")
    expect(problemOf([{ type: "image", url: "file:///etc/passwd" }])).toContain("must be an http(s) or data: URL, not file:")
    expect(problemOf([{ type: "image", url: "cat.png" }])).toContain("must be a URL")
    expect(problemOf([{ type: "video", url: "https://example.com/a.mp4" }])).toBeTypeOf("string")
  })

  it("textOf reads a string, or the text parts joined by line breaks with the images left out", () => {
    expect(Message.textOf(Message.user("plain"))).toBe("plain")
    expect(Message.textOf(Message.user([
      { type: "text", text: "first" },
      { type: "image", url: "https://example.com/cat.png" },
      { type: "text", text: "second" }
    ]))).toBe("first\nsecond")
    expect(Message.textOf(Message.user([{ type: "image", data: png, mediaType: "image/png" }]))).toBe("")
  })

  it("hasImages tells a message with an image part from one without", () => {
    expect(Message.hasImages(Message.user("a picture of a cat"))).toBe(false)
    expect(Message.hasImages(Message.user([{ type: "text", text: "a cat" }]))).toBe(false)
    expect(Message.hasImages(Message.user([{ type: "image", url: "https://example.com/cat.png" }]))).toBe(true)
  })

  it("an answer's reasoning round-trips with it", () => {
    const response: Message.LLMResponse = { type: "text", content: "4", reasoning: "2 + 2", usage: {}, finishReason: "stop" }
    expect(roundTrip(Message.LLMResponse, response)).toStrictEqual(response)
  })
})
