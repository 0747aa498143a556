import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Events from "../../src/domain/Events.js"

const base = { contextId: "ctx-1", taskId: "task-1", timestamp: "2024-05-01T12:00:00.000Z" }
const tool = { ...base, toolCallId: "call-1", toolName: "search" }
const usage = { inputTokens: 12, outputTokens: 3, totalTokens: 15 }

/** One instance of every event class, with its wire name; optional fields filled where there are any. */
const samples = [
  ["tool-start", new Events.ToolStartEvent({ ...tool, arguments: { query: "effect", limit: 3, nested: { a: [1, null] } } })],
  ["tool-progress", new Events.ToolProgressEvent({ ...tool, progress: 2, total: 5, message: "page 2" })],
  ["tool-progress", new Events.ToolProgressEvent({ ...tool })],
  ["tool-complete", new Events.ToolCompleteEvent({ ...tool, result: { hits: ["a", "b"], count: 2 } })],
  ["tool-error", new Events.ToolErrorEvent({ ...tool, reason: "Timeout", error: "search timed out after 30 s" })],
  [
    "tool-input-required",
    new Events.ToolInputRequiredEvent({ ...tool, arguments: { choice: ["x", "y"] }, message: "pick one" })
  ],
  ["task-created", new Events.TaskCreatedEvent({ ...base, agentId: "agent-1" })],
  ["task-status", new Events.TaskStatusEvent({ ...base, status: "waiting-input", message: "needs a file" })],
  [
    "route-selected",
    new Events.RouteSelectedEvent({
      ...base,
      tier: "complex",
      provider: "openai",
      score: 0.62,
      signals: ["code", "multi-step"],
      forced: false,
      fallbacksTried: [{ provider: "litellm", reason: "RateLimited" }]
    })
  ],
  ["content-delta", new Events.ContentDeltaEvent({ ...base, delta: "Hel" })],
  ["reasoning-delta", new Events.ReasoningDeltaEvent({ ...base, delta: "The user wants" })],
  [
    "content-complete",
    new Events.ContentCompleteEvent({
      ...base,
      content: "Hello",
      toolCalls: [{ id: "call-1", name: "search", arguments: { query: "effect" } }],
      finishReason: "tool_calls"
    })
  ],
  ["llm-usage", new Events.LlmUsageEvent({ ...base, step: 1, usage, provider: "openai", model: "gpt-4.1" })],
  ["task-complete", new Events.TaskCompleteEvent({ ...base, content: "done", steps: 2, usage: {} })]
] as const

const roundTrip = <A, I>(schema: Schema.Schema<A, I>, value: A): A =>
  Schema.decodeUnknownSync(schema)(JSON.parse(JSON.stringify(Schema.encodeSync(schema)(value))))

describe("Events", () => {
  it("has a sample for every member of AgentEvent, so a new event cannot go untested", () => {
    const sampled = new Set(samples.map(([, event]) => event.constructor))
    expect(Events.AgentEvent.members.filter((member) => !sampled.has(member as never))).toEqual([])
  })

  it.each(samples)("%s encodes to JSON and decodes back equal, as the same class", (wireName, event) => {
    const json = JSON.parse(JSON.stringify(Schema.encodeSync(Events.AgentEvent)(event)))
    expect(json.type).toBe(wireName)
    expect(json).toMatchObject(base)
    const decoded = roundTrip(Events.AgentEvent, event)
    expect(decoded).toBeInstanceOf(event.constructor)
    expect(decoded).toStrictEqual(event)
  })

  it.each(samples.filter(([name]) => name.startsWith("tool-")))("%s is also a ToolEvent that round-trips", (_, event) => {
    expect(roundTrip(Events.ToolEvent, event as Events.ToolEvent)).toStrictEqual(event)
  })

  it("rejects JSON with an unknown event type or a missing contextId", () => {
    const json = Schema.encodeSync(Events.AgentEvent)(samples[0][1])
    expect(Either.isLeft(Schema.decodeUnknownEither(Events.AgentEvent)({ ...json, type: "tool-finished" }))).toBe(true)
    const { contextId: _, ...withoutContext } = json
    expect(Either.isLeft(Schema.decodeUnknownEither(Events.AgentEvent)(withoutContext))).toBe(true)
  })

  it("does not accept task events as ToolEvents", () => {
    const json = Schema.encodeSync(Events.AgentEvent)(new Events.ContentDeltaEvent({ ...base, delta: "x" }))
    expect(Either.isLeft(Schema.decodeUnknownEither(Events.ToolEvent)(json))).toBe(true)
  })

  it("formats timestamps as ISO-8601 UTC", () => {
    expect(Events.timestampOf(Date.UTC(2024, 4, 1, 12, 0, 0, 5))).toBe("2024-05-01T12:00:00.005Z")
  })
})
