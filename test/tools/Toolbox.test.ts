import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type * as Tracer from "effect/Tracer"
import type { ToolError } from "../../src/domain/Errors.js"
import type { ToolEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../../src/domain/Message.js"
import { localTools, tool } from "../../src/tools/LocalTools.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import { trackedWork } from "../fixtures/trackedWork.js"
import { withRecordingTracer } from "../fixtures/recordingTracer.js"
import type { ToolProvider } from "../../src/tools/ToolProvider.js"
import { toolCompleteEvent, toolError, toolInputRequiredEvent, toolStartEvent } from "../../src/tools/ToolProvider.js"

const context = ExecutionContext.make({ contextId: "ctx-1", taskId: "task-1", agentId: "agent-1" })
const definition = (name: string): ToolDefinition => ({ name, description: name, parameters: { type: "object" } })
const callOf = (name: string, id = "call-1", args: Record<string, unknown> = {}): ToolCall => ({ id, name, arguments: args })

const echo = tool({
  name: "echo",
  description: "Echo",
  parameters: Schema.Struct({ text: Schema.String }),
  handler: ({ text }) => Effect.succeed(text)
})

/** A tool answering with the names of the spans around its handler, innermost first. */
const spanPath = tool({
  name: "span_path",
  description: "Names the spans around the handler",
  parameters: Schema.Struct({}),
  handler: () =>
    Effect.map(Effect.currentSpan, (span) => {
      const names: Array<string> = []
      for (let current: Tracer.AnySpan | undefined = span; current !== undefined;) {
        names.push(current._tag === "Span" ? current.name : "external")
        current = current._tag === "Span" ? Option.getOrUndefined(current.parent) : undefined
      }
      return names
    })
})

/** A hand-written provider whose listing and execution the test controls. */
const fakeProvider = (
  name: string,
  listing: Effect.Effect<ReadonlyArray<ToolDefinition>, ToolError>,
  execute: ToolProvider["execute"] = (call) => Stream.fail(toolError(call, "ExecutionFailed", "not runnable"))
): ToolProvider => ({
  name,
  getTools: listing,
  getTool: (tool) => Effect.map(listing, (tools) => Option.fromNullable(tools.find((d) => d.name === tool))),
  execute
})

const run = (toolbox: Toolbox.Service, call: ToolCall) =>
  Stream.runCollect(toolbox.execute(call, context)).pipe(Effect.map(Chunk.toReadonlyArray))

describe("Toolbox.make", () => {
  it.effect("offers the tools of all providers, in provider order", () =>
    Effect.gen(function*() {
      const other = fakeProvider("other", Effect.succeed([definition("search"), definition("fetch")]))
      const toolbox = yield* Toolbox.make([localTools([echo]), other])
      expect((yield* toolbox.getTools).map((d) => d.name)).toEqual(["echo", "search", "fetch"])
    }))

  it.effect("fails at start-up when two providers offer one tool name, naming the tool and both providers", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Toolbox.make([fakeProvider("files", Effect.succeed([definition("read")])), fakeProvider("web", Effect.succeed([definition("read")]))])
      )
      expect(error.toolName).toBe("read")
      expect(error.message).toContain(`The tool "read" is offered by two providers, "files" and "web"`)
    }))

  it.effect("fails at start-up when a provider cannot list its tools, saying which", () =>
    Effect.gen(function*() {
      const down = fakeProvider("mcp-down", Effect.fail(toolError(callOf("*", ""), "Transport", "connection refused")))
      const error = yield* Effect.flip(Toolbox.make([down]))
      expect(error).toMatchObject({ reason: "Transport" })
      expect(error.message).toBe(`Tool provider "mcp-down" could not list its tools: connection refused`)
    }))

  it.effect("re-checks names on getTools: a clash that appears later fails it and the old index stays", () =>
    Effect.gen(function*() {
      const listing = yield* Ref.make<ReadonlyArray<ToolDefinition>>([definition("search")])
      const dynamic = fakeProvider("mcp", Ref.get(listing))
      const toolbox = yield* Toolbox.make([localTools([echo]), dynamic])
      yield* Ref.set(listing, [definition("search"), definition("echo")])
      const error = yield* Effect.flip(toolbox.getTools)
      expect(error.message).toContain(`"echo" is offered by two providers, "local" and "mcp"`)
      const events = yield* run(toolbox, callOf("echo", "call-1", { text: "still local" }))
      expect(events.at(-1)).toMatchObject({ type: "tool-complete", result: "still local" })
    }))

  it.effect("routes to tools a provider adds later once getTools has refreshed the index", () =>
    Effect.gen(function*() {
      const listing = yield* Ref.make<ReadonlyArray<ToolDefinition>>([])
      const dynamic = fakeProvider("mcp", Ref.get(listing), (call) =>
        Stream.concat(Stream.fromEffect(toolStartEvent(context, call)), Stream.fromEffect(toolCompleteEvent(context, call, "new"))))
      const toolbox = yield* Toolbox.make([dynamic])
      expect((yield* run(toolbox, callOf("fresh")))[0]).toMatchObject({ type: "tool-error", reason: "NotFound" })
      yield* Ref.set(listing, [definition("fresh")])
      yield* toolbox.getTools
      expect((yield* run(toolbox, callOf("fresh"))).at(-1)).toMatchObject({ type: "tool-complete", result: "new" })
    }))

  it.effect("keeps a provider's last known tools when its listing fails after start-up", () =>
    Effect.gen(function*() {
      const up = yield* Ref.make(true)
      const flaky = fakeProvider(
        "flaky",
        Effect.flatMap(Ref.get(up), (isUp) =>
          isUp ? Effect.succeed([definition("search")]) : Effect.fail(toolError(callOf("*", ""), "Transport", "down")))
      )
      const toolbox = yield* Toolbox.make([flaky, localTools([echo])])
      yield* Ref.set(up, false)
      expect((yield* toolbox.getTools).map((d) => d.name)).toEqual(["search", "echo"])
    }))

  it.effect("provides the providers' requirements captured when the layer is built", () =>
    Effect.gen(function*() {
      class Greeter extends Context.Tag("test/Greeter")<Greeter, string>() {}
      const greet = tool({
        name: "greet",
        description: "Greets",
        parameters: Schema.Struct({}),
        handler: () => Greeter
      })
      const layer = Toolbox.layer([localTools([greet])])
      expectTypeOf(layer).toEqualTypeOf<Layer.Layer<Toolbox.Toolbox, ToolError, Greeter>>()
      const events = yield* Effect.flatMap(Toolbox.Toolbox, (toolbox) => run(toolbox, callOf("greet"))).pipe(
        Effect.provide(layer.pipe(Layer.provide(Layer.succeed(Greeter, "hello"))))
      )
      expect(events.at(-1)).toMatchObject({ type: "tool-complete", result: "hello" })
    }))

  it.effect("runs each call in spans under the caller's span, not the span the toolbox was built in", () =>
    Effect.gen(function*() {
      const toolbox = yield* Effect.withSpan(Toolbox.make([localTools([spanPath])]), "build")
      const events = yield* Effect.withSpan(run(toolbox, callOf("span_path")), "caller")
      expect(events.at(-1)).toMatchObject({ result: ["LocalTools.call", "Toolbox.execute", "caller"] })
    }).pipe(withRecordingTracer))

  it.effect("makes no per-call spans under Effect's built-in tracer, which records nothing", () =>
    Effect.gen(function*() {
      const toolbox = yield* Effect.withSpan(Toolbox.make([localTools([spanPath])]), "build")
      const events = yield* Effect.withSpan(run(toolbox, callOf("span_path")), "caller")
      expect(events.at(-1)).toMatchObject({ result: ["caller"] })
    }))

  it("refuses a concurrency below 1", () => {
    expect(() => Toolbox.make([], { concurrency: 0 })).toThrow(/concurrency must be a whole number of at least 1/)
  })
})

describe("Toolbox.execute", () => {
  it.effect("answers an unknown tool with one NotFound tool-error event listing available tools", () =>
    Effect.gen(function*() {
      const toolbox = yield* Toolbox.make([localTools([echo])])
      const events = yield* run(toolbox, callOf("ecoh", "call-7"))
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({
        type: "tool-error",
        reason: "NotFound",
        toolCallId: "call-7",
        toolName: "ecoh",
        contextId: "ctx-1",
        taskId: "task-1"
      })
      expect((events[0] as { error: string }).error).toContain(`Unknown tool "ecoh". Available tools: echo.`)
    }))

  it.effect("turns a provider's ToolError into a terminal tool-error event instead of failing", () =>
    Effect.gen(function*() {
      const toolbox = yield* Toolbox.make([localTools([echo])])
      const events = yield* run(toolbox, callOf("echo", "call-1", { text: 3 }))
      expect(events.map((event) => event.type)).toEqual(["tool-start", "tool-error"])
      expect(events[1]).toMatchObject({ reason: "InvalidArguments", toolCallId: "call-1", toolName: "echo" })
    }))

  it.effect("ends a stream that stopped without a result with an ExecutionFailed tool-error", () =>
    Effect.gen(function*() {
      const quitter = fakeProvider("quitter", Effect.succeed([definition("quit")]), (call) =>
        Stream.fromEffect(toolStartEvent(context, call)))
      const events = yield* run(yield* Toolbox.make([quitter]), callOf("quit"))
      expect(events.map((event) => event.type)).toEqual(["tool-start", "tool-error"])
      expect(events[1]).toMatchObject({ reason: "ExecutionFailed", error: `Tool "quit" ended without a result.` })
    }))

  it.effect("leaves a call that ended asking for outside input without a made-up result", () =>
    Effect.gen(function*() {
      const asker = fakeProvider("asker", Effect.succeed([definition("ask")]), (call) =>
        Stream.fromEffect(toolInputRequiredEvent(context, call, call.arguments, "Which one?")))
      const events = yield* run(yield* Toolbox.make([asker]), callOf("ask"))
      expect(events.map((event) => event.type)).toEqual(["tool-input-required"])
    }))

  it.effect("still ends a call that failed while waiting for input with a tool-error", () =>
    Effect.gen(function*() {
      const asker = fakeProvider("asker", Effect.succeed([definition("ask")]), (call) =>
        Stream.concat(
          Stream.fromEffect(toolInputRequiredEvent(context, call)),
          Stream.fail(toolError(call, "Timeout", "no answer in time"))
        ))
      const events = yield* run(yield* Toolbox.make([asker]), callOf("ask"))
      expect(events.map((event) => event.type)).toEqual(["tool-input-required", "tool-error"])
      expect(events[1]).toMatchObject({ reason: "Timeout" })
    }))

  it.effect("reports a defect in a provider as an ExecutionFailed tool-error", () =>
    Effect.gen(function*() {
      const crashing = fakeProvider("crashing", Effect.succeed([definition("crash")]), () => Stream.die(new Error("bug")))
      const events = yield* run(yield* Toolbox.make([crashing]), callOf("crash"))
      expect(events).toEqual([expect.objectContaining({ type: "tool-error", error: `Tool "crash" crashed: bug` })])
    }))

  it.effect("ignores a failure after the call already completed", () =>
    Effect.gen(function*() {
      const late = fakeProvider("late", Effect.succeed([definition("late")]), (call) =>
        Stream.concat(Stream.fromEffect(toolCompleteEvent(context, call, 1)), Stream.fail(toolError(call, "Transport", "x"))))
      const events = yield* run(yield* Toolbox.make([late]), callOf("late"))
      expect(events.map((event) => event.type)).toEqual(["tool-complete"])
    }))
})

/** Twenty calls of a tool that works for a second, counting how many run at once. */
const tracked = Effect.map(trackedWork, ({ maxInFlight, work }) => ({
  provider: localTools([work]),
  calls: Array.from({ length: 20 }, (_, i) => callOf("work", `call-${i}`, { n: i })),
  maxInFlight
}))

describe("Toolbox.executeBatch", () => {
  const runBatch = (toolbox: Toolbox.Service, calls: ReadonlyArray<ToolCall>, concurrency?: number) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(
        Stream.runCollect(toolbox.executeBatch(calls, context, concurrency === undefined ? undefined : { concurrency }))
      )
      yield* TestClock.adjust("1 minute")
      return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
    })

  it.effect("runs at most the given number of calls at once", () =>
    Effect.gen(function*() {
      const { calls, maxInFlight, provider } = yield* tracked
      yield* runBatch(yield* Toolbox.make([provider]), calls, 3)
      expect(yield* Ref.get(maxInFlight)).toBe(3)
    }))

  it.effect("runs at most 8 calls at once by default, or the toolbox's own default", () =>
    Effect.gen(function*() {
      const first = yield* tracked
      yield* runBatch(yield* Toolbox.make([first.provider]), first.calls)
      expect(yield* Ref.get(first.maxInFlight)).toBe(8)
      const second = yield* tracked
      yield* runBatch(yield* Toolbox.make([second.provider], { concurrency: 5 }), second.calls)
      expect(yield* Ref.get(second.maxInFlight)).toBe(5)
    }))

  it.effect("gives every call its own events, carrying its ids, with exactly one terminal event each", () =>
    Effect.gen(function*() {
      const { calls, provider } = yield* tracked
      const events = yield* runBatch(yield* Toolbox.make([provider]), [...calls, callOf("nope", "call-x")], 4)
      const byCall = new Map<string, Array<ToolEvent>>()
      for (const event of events) byCall.set(event.toolCallId, [...(byCall.get(event.toolCallId) ?? []), event])
      expect(byCall.size).toBe(21)
      for (const [i, call] of calls.entries()) {
        const own = byCall.get(call.id)!
        expect(own.map((event) => event.type)).toEqual(["tool-start", "tool-complete"])
        expect(own[1]).toMatchObject({ toolName: "work", contextId: "ctx-1", taskId: "task-1", result: i * 10 })
      }
      expect(byCall.get("call-x")).toEqual([expect.objectContaining({ type: "tool-error", reason: "NotFound" })])
    }))

  it.effect("interleaves the events of concurrent calls as they happen", () =>
    Effect.gen(function*() {
      const nap = tool({
        name: "nap",
        description: "Sleeps for some seconds",
        parameters: Schema.Struct({ seconds: Schema.Number }),
        handler: ({ seconds }) => Effect.sleep(`${seconds} seconds`)
      })
      const toolbox = yield* Toolbox.make([localTools([nap])])
      const events = yield* runBatch(toolbox, [callOf("nap", "slow", { seconds: 2 }), callOf("nap", "fast", { seconds: 1 })], 2)
      expect(events.map((event) => `${event.type}:${event.toolCallId}`)).toEqual([
        "tool-start:slow",
        "tool-start:fast",
        "tool-complete:fast",
        "tool-complete:slow"
      ])
    }))

  it.effect("hands a provider's calls to its own executeBatch and closes calls it leaves open", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<string>> = []
      const batching: ToolProvider = {
        ...fakeProvider("batching", Effect.succeed([definition("a"), definition("b")])),
        executeBatch: (calls) => {
          batches.push(calls.map((call) => call.id))
          return Stream.fromEffect(toolCompleteEvent(context, calls[0]!, "first only"))
        }
      }
      const events = yield* runBatch(yield* Toolbox.make([batching, localTools([echo])]), [
        callOf("a", "call-a"),
        callOf("echo", "call-e", { text: "hi" }),
        callOf("b", "call-b")
      ])
      expect(batches).toEqual([["call-a", "call-b"]])
      const terminal = events.filter((event) => event.type === "tool-complete" || event.type === "tool-error")
      expect(terminal.map((event) => [event.toolCallId, event.type]).sort()).toEqual([
        ["call-a", "tool-complete"],
        ["call-b", "tool-error"],
        ["call-e", "tool-complete"]
      ])
    }))
})

describe("Toolbox with local tools", () => {
  it.effect("runs a batch for one local provider in spans under the caller's, each call with its own timeout", () =>
    Effect.gen(function*() {
      const nap = tool({
        name: "nap",
        description: "Sleeps for some seconds",
        parameters: Schema.Struct({ seconds: Schema.Number }),
        timeout: "3 seconds",
        handler: ({ seconds }) => Effect.as(Effect.sleep(`${seconds} seconds`), seconds)
      })
      const toolbox = yield* Effect.withSpan(Toolbox.make([localTools([nap, spanPath])]), "build")
      const fiber = yield* Effect.fork(
        Stream.runCollect(toolbox.executeBatch([
          callOf("nap", "slow", { seconds: 10 }),
          callOf("span_path", "spans"),
          callOf("nap", "quick", { seconds: 1 })
        ], context)).pipe(Effect.withSpan("caller"))
      )
      yield* TestClock.adjust("1 minute")
      const events = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      const terminal = events.filter((event) => event.type === "tool-complete" || event.type === "tool-error")
      expect(terminal.map((event) => `${event.type}:${event.toolCallId}`)).toEqual([
        "tool-complete:spans",
        "tool-complete:quick",
        "tool-error:slow"
      ])
      expect(terminal[0]).toMatchObject({ result: ["LocalTools.call", "Toolbox.execute", "caller"] })
      expect(terminal[2]).toMatchObject({ reason: "Timeout", toolName: "nap" })
    }).pipe(withRecordingTracer))

  it.effect("reports a handler that interrupts itself as an ExecutionFailed tool-error", () =>
    Effect.gen(function*() {
      const quitter = tool({ name: "quitter", description: "Gives up", parameters: Schema.Struct({}), handler: () => Effect.interrupt })
      const toolbox = yield* Toolbox.make([localTools([quitter])])
      const events = yield* run(toolbox, callOf("quitter"))
      expect(events.map((event) => event.type)).toEqual(["tool-start", "tool-error"])
      expect(events[1]).toMatchObject({ reason: "ExecutionFailed", error: `Tool "quitter" was interrupted before it finished.` })
      const batched = Chunk.toReadonlyArray(
        yield* Stream.runCollect(toolbox.executeBatch([callOf("quitter", "q-1"), callOf("quitter", "q-2")], context))
      )
      expect(batched.filter((event) => event.type === "tool-error").map((event) => event.toolCallId)).toEqual(["q-1", "q-2"])
    }))

  it.effect("keeps the concurrency bound in a batch mixing local tools and another provider", () =>
    Effect.gen(function*() {
      const inFlight = yield* Ref.make(0)
      const maxInFlight = yield* Ref.make(0)
      const busy = <A>(value: A) =>
        Ref.updateAndGet(inFlight, (x) => x + 1).pipe(
          Effect.flatMap((now) => Ref.update(maxInFlight, (max) => Math.max(max, now))),
          Effect.zipRight(Effect.sleep("1 second")),
          Effect.ensuring(Ref.update(inFlight, (x) => x - 1)),
          Effect.as(value)
        )
      const work = tool({ name: "work", description: "Works", parameters: Schema.Struct({}), handler: () => busy("local") })
      const remote = fakeProvider("remote", Effect.succeed([definition("far")]), (call) =>
        Stream.concat(
          Stream.fromEffect(toolStartEvent(context, call)),
          Stream.fromEffect(Effect.flatMap(busy("remote"), (result) => toolCompleteEvent(context, call, result)))
        ))
      const toolbox = yield* Toolbox.make([localTools([work]), remote])
      const calls = Array.from({ length: 12 }, (_, i) => i % 2 === 0 ? callOf("work", `w-${i}`) : callOf("far", `f-${i}`))
      const fiber = yield* Effect.fork(Stream.runCollect(toolbox.executeBatch(calls, context, { concurrency: 3 })))
      yield* TestClock.adjust("1 minute")
      const events = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      expect(events.filter((event) => event.type === "tool-complete")).toHaveLength(12)
      expect(yield* Ref.get(maxInFlight)).toBe(3)
    }))

  it.effect("runs a copy of a local provider whose execute was replaced through that execute", () =>
    Effect.gen(function*() {
      const original = localTools([echo])
      const wrapped: ToolProvider = {
        ...original,
        execute: (call, ctx) => Stream.fromEffect(toolCompleteEvent(ctx, call, "from the wrapper"))
      }
      const toolbox = yield* Toolbox.make([wrapped])
      expect((yield* run(toolbox, callOf("echo", "call-1", { text: "hi" }))).at(-1)).toMatchObject({
        type: "tool-complete",
        result: "from the wrapper"
      })
    }))
})

describe("the direct path is part of the interface", () => {
  const calls = [callOf("echo", "call-1", { text: "a" }), callOf("echo", "call-2", { text: "b" })]

  it.effect("a renamed copy of a local provider keeps its runner, so the toolbox reads its calls directly", () =>
    Effect.gen(function*() {
      const copy: ToolProvider = { ...localTools([echo]), name: "renamed" }
      const toolbox = yield* Toolbox.make([copy])
      const reads = Toolbox.readsOf(toolbox, calls, context, 2)
      expect(reads).toBeDefined()
      yield* reads!.close(Exit.void)
    }))

  it.effect("a spread copy of the toolbox, and one made by a user's wrapping Layer, keep the direct read", () =>
    Effect.gen(function*() {
      const toolbox = yield* Toolbox.make([localTools([echo])])
      const spread: Toolbox.Service = { ...toolbox }
      const layered = yield* Toolbox.Toolbox.pipe(
        Effect.provide(Layer.effect(Toolbox.Toolbox, Effect.map(Toolbox.Toolbox, (inner) => ({ ...inner, getTools: inner.getTools }))).pipe(
          Layer.provide(Layer.succeed(Toolbox.Toolbox, toolbox))
        ))
      )
      for (const service of [spread, layered]) {
        const reads = Toolbox.readsOf(service, calls, context, 2)
        expect(reads).toBeDefined()
        yield* reads!.close(Exit.void)
      }
    }))

  it.effect("a copy whose executeBatch was replaced is run through it, not the direct read it no longer stands for", () =>
    Effect.gen(function*() {
      const toolbox = yield* Toolbox.make([localTools([echo])])
      const wrapped: Toolbox.Service = { ...toolbox, executeBatch: (batch, ctx) => Stream.flatMap(Stream.fromIterable(batch), (call) => toolbox.execute(call, ctx)) }
      expect(Toolbox.readsOf(wrapped, calls, context, 2)).toBeUndefined()
    }))
})

describe("Toolbox.runForEachChunk", () => {
  const collect = (toolbox: Toolbox.Service, calls: ReadonlyArray<ToolCall>, concurrency?: number) =>
    Effect.gen(function*() {
      const events: Array<ToolEvent> = []
      yield* Toolbox.runForEachChunk(
        toolbox,
        calls,
        context,
        concurrency === undefined ? undefined : { concurrency },
        (chunk) => Effect.sync(() => events.push(...chunk))
      )
      return events
    })

  // The events of each call, as a sorted list (calls running at once may finish in any order).
  const shape = (events: ReadonlyArray<ToolEvent>) =>
    events.map((event) =>
      JSON.stringify({ type: event.type, id: event.toolCallId, ...(event.type === "tool-complete" ? { result: event.result } : {}) })
    ).sort()

  it.effect("reads a batch of local calls as executeBatch streams it, with the concurrency bound", () =>
    Effect.gen(function*() {
      const { calls, maxInFlight, provider } = yield* tracked
      const toolbox = yield* Toolbox.make([provider])
      const fiber = yield* Effect.fork(collect(toolbox, calls, 3))
      yield* TestClock.adjust("1 minute")
      const read = yield* Fiber.join(fiber)
      expect(yield* Ref.get(maxInFlight)).toBe(3)
      const streamed = yield* Effect.fork(Stream.runCollect(toolbox.executeBatch(calls, context, { concurrency: 3 })))
      yield* TestClock.adjust("1 minute")
      expect(shape(read)).toEqual(shape(Chunk.toReadonlyArray(yield* Fiber.join(streamed))))
      const results = Object.fromEntries(
        read.flatMap((event) => event.type === "tool-complete" ? [[event.toolCallId, event.result]] : [])
      )
      expect(results).toEqual(Object.fromEntries(calls.map((call, i) => [call.id, i * 10])))
    }))

  it.effect("reports invalid arguments, unknown tools and other providers' failures as tool-error events", () =>
    Effect.gen(function*() {
      const other = fakeProvider("other", Effect.succeed([definition("search")]))
      const toolbox = yield* Toolbox.make([localTools([echo]), other])
      const events = yield* collect(toolbox, [
        callOf("echo", "ok", { text: "hi" }),
        callOf("echo", "bad", { text: 42 }),
        callOf("search", "remote"),
        callOf("nope", "missing")
      ])
      const terminal = Object.fromEntries(
        events.filter((event) => event.type === "tool-complete" || event.type === "tool-error").map((event) => [
          event.toolCallId,
          event.type === "tool-error" ? event.reason : event.type
        ])
      )
      expect(terminal).toEqual({ ok: "tool-complete", bad: "InvalidArguments", remote: "ExecutionFailed", missing: "NotFound" })
    }))

  /** A toolbox whose one tool never ends, counting how often it was interrupted. */
  const neverEnding = Effect.gen(function*() {
    const stopped = yield* Ref.make(0)
    const slow = tool({
      name: "slow",
      description: "Never ends",
      parameters: Schema.Struct({}),
      handler: () => Effect.onInterrupt(Effect.never, () => Ref.update(stopped, (n) => n + 1))
    })
    return { stopped, toolbox: yield* Toolbox.make([localTools([slow])]) }
  })

  it.effect("interrupting the reader interrupts the handlers still running", () =>
    Effect.gen(function*() {
      const { stopped, toolbox } = yield* neverEnding
      const started = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        Toolbox.runForEachChunk(toolbox, [callOf("slow", "a"), callOf("slow", "b")], context, undefined, (chunk) =>
          Ref.update(started, (n) => n + Chunk.size(chunk)))
      )
      yield* Effect.yieldNow()
      while ((yield* Ref.get(started)) < 2) yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      expect(yield* Ref.get(stopped)).toBe(2)
    }))

  it.effect("a failure of the callback ends the read and stops the calls", () =>
    Effect.gen(function*() {
      const { stopped, toolbox } = yield* neverEnding
      const error = yield* Effect.flip(
        Toolbox.runForEachChunk(toolbox, [callOf("slow", "a")], context, undefined, () => Effect.fail("enough" as const))
      )
      expect(error).toBe("enough")
      expect(yield* Ref.get(stopped)).toBe(1)
    }))
})
