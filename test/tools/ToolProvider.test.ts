import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ToolError } from "../../src/domain/Errors.js"
import { ToolEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import type { ToolCall } from "../../src/domain/Message.js"
import * as ToolProvider from "../../src/tools/ToolProvider.js"

const context = ExecutionContext.make({ contextId: "ctx-7", taskId: "task-3", agentId: "agent-1" })
const call: ToolCall = { id: "call-42", name: "search", arguments: { query: "effect", apiKey: "sk-secret" } }
const ids = { contextId: "ctx-7", taskId: "task-3", toolCallId: "call-42", toolName: "search" }

describe("ToolProvider helpers", () => {
  it.effect("every event helper stamps the given contextId, taskId, toolCallId and toolName", () =>
    Effect.gen(function*() {
      const events = yield* Effect.all([
        ToolProvider.toolStartEvent(context, call),
        ToolProvider.toolProgressEvent(context, call, { progress: 1, total: 2, message: "half" }),
        ToolProvider.toolCompleteEvent(context, call, { hits: 3 }),
        ToolProvider.toolInputRequiredEvent(context, call),
        ToolProvider.toolErrorEvent(context, call, "boom")
      ])
      for (const event of events) expect(event).toMatchObject(ids)
      expect(events.map((event) => event.type)).toEqual([
        "tool-start",
        "tool-progress",
        "tool-complete",
        "tool-input-required",
        "tool-error"
      ])
    }))

  it.effect("timestamps come from the Clock, as ISO-8601", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2025, 0, 2, 3, 4, 5, 600))
      const event = yield* ToolProvider.toolStartEvent(context, call)
      expect(event.timestamp).toBe("2025-01-02T03:04:05.600Z")
    }))

  it.effect("toolStartEvent shows the arguments it is given instead of the call's own", () =>
    Effect.gen(function*() {
      const plain = yield* ToolProvider.toolStartEvent(context, call)
      const redacted = yield* ToolProvider.toolStartEvent(context, call, { query: "effect", apiKey: "<redacted>" })
      expect(plain.arguments).toEqual(call.arguments)
      expect(redacted.arguments).toEqual({ query: "effect", apiKey: "<redacted>" })
    }))

  it.effect("toolProgressEvent carries only the progress fields given", () =>
    Effect.gen(function*() {
      const event = yield* ToolProvider.toolProgressEvent(context, call, { message: "working" })
      expect(event.message).toBe("working")
      expect("progress" in event).toBe(false)
      expect("total" in event).toBe(false)
    }))

  it.effect("toolInputRequiredEvent carries the arguments and an optional message", () =>
    Effect.gen(function*() {
      const event = yield* ToolProvider.toolInputRequiredEvent(context, call, { query: "x" }, "pick one")
      expect(event.arguments).toEqual({ query: "x" })
      expect(event.message).toBe("pick one")
    }))

  it.effect("toolErrorEvent keeps a ToolError's reason and message", () =>
    Effect.gen(function*() {
      const error = ToolProvider.toolError(call, "Timeout", "search timed out after 30s")
      const event = yield* ToolProvider.toolErrorEvent(context, call, error)
      expect(event).toMatchObject({ ...ids, type: "tool-error", reason: "Timeout", error: "search timed out after 30s" })
    }))

  it.effect("toolErrorEvent reports a plain string as ExecutionFailed", () =>
    Effect.gen(function*() {
      const event = yield* ToolProvider.toolErrorEvent(context, call, "disk full")
      expect(event.reason).toBe("ExecutionFailed")
      expect(event.error).toBe("disk full")
    }))

  it("toolError fills in the call's name and id and omits absent details", () => {
    const error = ToolProvider.toolError(call, "InvalidArguments", "query: is missing")
    expect(error).toBeInstanceOf(ToolError)
    expect(error).toMatchObject({ reason: "InvalidArguments", toolName: "search", toolCallId: "call-42" })
    expect("details" in error).toBe(false)
    expect(ToolProvider.toolError(call, "ExecutionFailed", "x", { code: 7 }).details).toEqual({ code: 7 })
  })

  it.effect("toolResultToEvents turns a success into one tool-complete event with the result", () =>
    Effect.gen(function*() {
      const events = yield* Stream.runCollect(
        ToolProvider.toolResultToEvents(context, call, { success: true, result: { echoed: "hi" } })
      )
      expect(Chunk.toReadonlyArray(events)).toHaveLength(1)
      expect(Chunk.unsafeHead(events)).toMatchObject({ ...ids, type: "tool-complete", result: { echoed: "hi" } })
    }))

  it.effect("toolResultToEvents fails a failure result with ExecutionFailed unless it names a reason", () =>
    Effect.gen(function*() {
      const plain = yield* Stream.runCollect(
        ToolProvider.toolResultToEvents(context, call, { success: false, error: "no such file" })
      ).pipe(Effect.flip)
      expect(plain).toMatchObject({ reason: "ExecutionFailed", message: "no such file", toolCallId: "call-42" })
      const rejected = yield* Stream.runCollect(
        ToolProvider.toolResultToEvents(context, call, { success: false, error: "user said no", reason: "InputRejected" })
      ).pipe(Effect.flip)
      expect(rejected.reason).toBe("InputRejected")
    }))

  it.effect("events made by the helpers encode to JSON through the ToolEvent schema", () =>
    Effect.gen(function*() {
      const event = yield* ToolProvider.toolCompleteEvent(context, call, { list: [1, 2] })
      const json = JSON.parse(JSON.stringify(Schema.encodeSync(ToolEvent)(event)))
      expect(json).toMatchObject({ ...ids, type: "tool-complete", result: { list: [1, 2] } })
    }))

  it.effect("isTerminal is true only for tool-complete and tool-error", () =>
    Effect.gen(function*() {
      const [start, progress, complete, input, error] = yield* Effect.all([
        ToolProvider.toolStartEvent(context, call),
        ToolProvider.toolProgressEvent(context, call, {}),
        ToolProvider.toolCompleteEvent(context, call, null),
        ToolProvider.toolInputRequiredEvent(context, call),
        ToolProvider.toolErrorEvent(context, call, "x")
      ])
      expect([start, progress, complete, input, error].map(ToolProvider.isTerminal)).toEqual([
        false,
        false,
        true,
        false,
        true
      ])
    }))
})
