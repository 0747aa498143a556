import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { ToolEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../../src/domain/Message.js"
import { ClientToolProvider, ClientToolResults, clientTools } from "../../src/tools/ClientTools.js"
import type { ToolProvider } from "../../src/tools/ToolProvider.js"

const context = ExecutionContext.make({ contextId: "ctx-1", taskId: "task-1", agentId: "agent-1" })
const confirm: ToolDefinition = {
  name: "confirm",
  description: "Ask the user to confirm",
  parameters: { type: "object", properties: { question: { type: "string" } } }
}
const call: ToolCall = { id: "call-9", name: "confirm", arguments: { question: "Delete it?" } }

const run = <R>(provider: ToolProvider<R>, toolCall: ToolCall = call) =>
  Stream.runCollect(provider.execute(toolCall, context)).pipe(Effect.map(Chunk.toReadonlyArray))

/** Waits (yielding to other fibers) until `id` is among the pending calls. */
const awaitPending = (id: string) =>
  Effect.flatMap(ClientToolResults, (results) =>
    results.pending.pipe(
      Effect.tap(() => Effect.yieldNow()),
      Effect.repeat({ until: (pending) => pending.some((entry) => entry.toolCallId === id) })
    ))

const types = (events: ReadonlyArray<ToolEvent>) => events.map((event) => event.type)

describe("ClientToolProvider with onInputRequired", () => {
  it.effect("emits tool-start and tool-input-required, then tool-complete with the Effect's result", () =>
    Effect.gen(function*() {
      const seen: Array<ToolCall> = []
      const provider = ClientToolProvider({
        tools: [confirm],
        onInputRequired: (toolCall) => Effect.sync(() => seen.push(toolCall)).pipe(Effect.as({ success: true, result: "yes" }))
      })
      const events = yield* run(provider)
      expect(types(events)).toEqual(["tool-start", "tool-input-required", "tool-complete"])
      expect(events[1]).toMatchObject({
        toolCallId: "call-9",
        toolName: "confirm",
        arguments: { question: "Delete it?" },
        answeredBy: "callback"
      })
      expect(events[2]).toMatchObject({ result: "yes", contextId: "ctx-1", taskId: "task-1" })
      expect(seen).toEqual([call])
    }))

  it.effect("accepts a Promise of the seed's ToolResult, extra fields included", () =>
    Effect.gen(function*() {
      const provider = clientTools([confirm], {
        onInputRequired: async (toolCall) => ({ toolCallId: toolCall.id, toolName: toolCall.name, success: true, result: 42 })
      })
      expectTypeOf(provider).toEqualTypeOf<ToolProvider<never>>()
      const events = yield* run(provider)
      expect(events.at(-1)).toMatchObject({ type: "tool-complete", result: 42 })
    }))

  it.effect("fails a { success: false } result with InputRejected, or with the reason it names", () =>
    Effect.gen(function*() {
      const declined = ClientToolProvider({
        tools: [confirm],
        onInputRequired: () => Effect.succeed({ success: false as const, error: "the user said no" })
      })
      expect(yield* Effect.flip(run(declined))).toMatchObject({ reason: "InputRejected", message: "the user said no" })
      const broken = ClientToolProvider({
        tools: [confirm],
        onInputRequired: () => Promise.resolve({ success: false as const, error: "crashed", reason: "ExecutionFailed" as const })
      })
      expect((yield* Effect.flip(run(broken))).reason).toBe("ExecutionFailed")
    }))

  it.effect("reports a rejected Promise or an invalid result as ExecutionFailed", () =>
    Effect.gen(function*() {
      const rejecting = ClientToolProvider({ tools: [confirm], onInputRequired: () => Promise.reject(new Error("socket closed")) })
      expect(yield* Effect.flip(run(rejecting))).toMatchObject({
        reason: "ExecutionFailed",
        message: `The client callback for tool "confirm" failed: socket closed`
      })
      const invalid = ClientToolProvider({ tools: [confirm], onInputRequired: () => Effect.succeed({ ok: 1 } as never) })
      expect((yield* Effect.flip(run(invalid))).message).toContain("returned an invalid result")
    }))

  it.effect("times out after the default 5 minutes and aborts the callback's signal", () =>
    Effect.gen(function*() {
      let signal: AbortSignal | undefined
      const provider = ClientToolProvider({
        tools: [confirm],
        onInputRequired: (_, __, abort) => {
          signal = abort
          return Effect.never
        }
      })
      const fiber = yield* Effect.fork(Effect.flip(run(provider)))
      yield* TestClock.adjust("299 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toMatchObject({ reason: "Timeout", toolCallId: "call-9" })
      expect(signal?.aborted).toBe(true)
    }))
})

describe("ClientToolProvider with ClientToolResults", () => {
  const provider = ClientToolProvider({ tools: [confirm], timeout: "1 minute" })

  it.effect("waits for a result submitted from another fiber", () =>
    Effect.gen(function*() {
      expectTypeOf(provider).toEqualTypeOf<ToolProvider<ClientToolResults>>()
      const results = yield* ClientToolResults
      const fiber = yield* Effect.fork(run(provider))
      yield* awaitPending("call-9")
      yield* results.submit("call-9", { success: true, result: { confirmed: true } })
      const events = yield* Fiber.join(fiber)
      expect(types(events)).toEqual(["tool-start", "tool-input-required", "tool-complete"])
      expect(events[1]).toMatchObject({ answeredBy: "caller" })
      expect(events[2]).toMatchObject({ toolCallId: "call-9", result: { confirmed: true } })
      expect(yield* results.pending).toEqual([])
    }).pipe(Effect.provide(ClientToolResults.layer)))

  it.effect("is already waiting when tool-input-required is emitted, so a host can answer at once", () =>
    Effect.gen(function*() {
      const results = yield* ClientToolResults
      const events = yield* provider.execute(call, context).pipe(
        Stream.tap((event) =>
          event.type === "tool-input-required" ? results.submit(event.toolCallId, { success: true, result: "ok" }) : Effect.void
        ),
        Stream.runCollect
      )
      expect(Chunk.toReadonlyArray(events).at(-1)).toMatchObject({ type: "tool-complete", result: "ok" })
    }).pipe(Effect.provide(ClientToolResults.layer)))

  it.effect("lists the waiting call in pending with its context", () =>
    Effect.gen(function*() {
      const results = yield* ClientToolResults
      const fiber = yield* Effect.fork(run(provider))
      yield* awaitPending("call-9")
      expect(yield* results.pending).toEqual([{
        toolCallId: "call-9",
        toolName: "confirm",
        arguments: { question: "Delete it?" },
        contextId: "ctx-1",
        taskId: "task-1",
        agentId: "agent-1",
        since: "1970-01-01T00:00:00.000Z"
      }])
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(ClientToolResults.layer)))

  it.effect("times out with Timeout and then refuses a late result as timed out", () =>
    Effect.gen(function*() {
      const results = yield* ClientToolResults
      const fiber = yield* Effect.fork(Effect.flip(run(provider)))
      yield* awaitPending("call-9")
      yield* TestClock.adjust("1 minute")
      expect(yield* Fiber.join(fiber)).toMatchObject({ reason: "Timeout", toolName: "confirm" })
      expect(yield* results.pending).toEqual([])
      const late = yield* Effect.flip(results.submit("call-9", { success: true, result: 1 }))
      expect(late).toMatchObject({ reason: "InputRejected", toolName: "confirm" })
      expect(late.message).toContain("already timed out")
    }).pipe(Effect.provide(ClientToolResults.layer)))

  it.effect("refuses a result for an unknown call, naming the calls that are waiting", () =>
    Effect.gen(function*() {
      const results = yield* ClientToolResults
      const fiber = yield* Effect.fork(run(provider))
      yield* awaitPending("call-9")
      const error = yield* Effect.flip(results.submit("call-404", { success: true, result: 1 }))
      expect(error).toMatchObject({ reason: "InputRejected", toolCallId: "call-404" })
      expect(error.message).toBe(`No client tool call "call-404" is waiting for a result. Waiting: call-9.`)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(ClientToolResults.layer)))

  it.effect("refuses a second result for a call already answered", () =>
    Effect.gen(function*() {
      const results = yield* ClientToolResults
      const fiber = yield* Effect.fork(run(provider))
      yield* awaitPending("call-9")
      yield* results.submit("call-9", { success: true, result: 1 })
      yield* Fiber.join(fiber)
      const error = yield* Effect.flip(results.submit("call-9", { success: true, result: 2 }))
      expect(error.message).toContain("already answered")
    }).pipe(Effect.provide(ClientToolResults.layer)))

  it.effect("refuses a result of the wrong shape and keeps waiting", () =>
    Effect.gen(function*() {
      const results = yield* ClientToolResults
      const fiber = yield* Effect.fork(run(provider))
      yield* awaitPending("call-9")
      const error = yield* Effect.flip(results.submit("call-9", { success: "yes" } as never))
      expect(error.reason).toBe("InvalidArguments")
      expect((yield* results.pending).map((entry) => entry.toolCallId)).toEqual(["call-9"])
      yield* results.submit("call-9", { success: true, result: "fine" })
      expect((yield* Fiber.join(fiber)).at(-1)).toMatchObject({ result: "fine" })
    }).pipe(Effect.provide(ClientToolResults.layer)))

  it.effect("interruption cancels the wait and removes the pending entry", () =>
    Effect.gen(function*() {
      const results = yield* ClientToolResults
      const fiber = yield* Effect.fork(run(provider))
      yield* awaitPending("call-9")
      yield* Fiber.interrupt(fiber)
      expect(yield* results.pending).toEqual([])
      const error = yield* Effect.flip(results.submit("call-9", { success: true, result: 1 }))
      expect(error.message).toContain("already cancelled")
    }).pipe(Effect.provide(ClientToolResults.layer)))
})

describe("ClientToolProvider checks", () => {
  it("rejects two tools with one name when the provider is built", () => {
    expect(() => ClientToolProvider({ tools: [confirm, confirm] })).toThrow(/two tools are named "confirm"/)
  })

  it.effect("lists its tools and fails an unknown name with NotFound", () =>
    Effect.gen(function*() {
      const provider = ClientToolProvider({ tools: [confirm], onInputRequired: () => Effect.never })
      expect(yield* provider.getTools).toEqual([confirm])
      const error = yield* Effect.flip(run(provider, { ...call, name: "other" }))
      expect(error).toMatchObject({ reason: "NotFound", toolName: "other" })
    }))

  it.effect("reports a call whose arguments were not valid JSON as InvalidArguments without asking the client", () =>
    Effect.gen(function*() {
      let asked = false
      const provider = ClientToolProvider({
        tools: [confirm],
        onInputRequired: () => Effect.sync(() => (asked = true)).pipe(Effect.as({ success: true, result: 1 }))
      })
      const error = yield* Effect.flip(run(provider, { ...call, argumentsError: "not JSON" }))
      expect(error).toMatchObject({ reason: "InvalidArguments", message: "not JSON" })
      expect(asked).toBe(false)
    }))
})
