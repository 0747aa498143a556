import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ToolError } from "../../src/domain/Errors.js"
import type { ToolEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import type { ToolCall } from "../../src/domain/Message.js"
import { localTools, tool } from "../../src/tools/LocalTools.js"
import type { ToolProvider } from "../../src/tools/ToolProvider.js"

const context = ExecutionContext.make({ contextId: "ctx-1", taskId: "task-1", agentId: "agent-1" })
const callOf = (name: string, args: Record<string, unknown>, id = "call-1"): ToolCall => ({ id, name, arguments: args })

const echo = tool({
  name: "echo",
  description: "Echo text back.",
  parameters: Schema.Struct({ text: Schema.String, times: Schema.optional(Schema.Number) }),
  handler: ({ text, times }) => Effect.succeed({ echoed: text.repeat(times ?? 1) })
})

const collect = <R>(provider: ToolProvider<R>, call: ToolCall) =>
  Stream.runCollect(provider.execute(call, context)).pipe(Effect.map(Chunk.toReadonlyArray))

const failureOf = <R>(provider: ToolProvider<R>, call: ToolCall) =>
  Stream.runCollect(provider.execute(call, context)).pipe(Effect.flip)

class Greeter extends Context.Tag("test/Greeter")<Greeter, { readonly greet: (name: string) => string }>() {}

const captureLogs = (into: Array<{ level: string; text: string }>) =>
  Logger.add(Logger.make(({ logLevel, message }) => {
    into.push({ level: logLevel.label, text: Array.isArray(message) ? message.join(" ") : String(message) })
  }))

describe("tool", () => {
  it("offers the parameters as an object JSON Schema without $schema", () => {
    expect(echo.definition).toEqual({
      name: "echo",
      description: "Echo text back.",
      parameters: {
        type: "object",
        required: ["text"],
        properties: { text: { type: "string" }, times: { type: "number" } },
        additionalProperties: false
      }
    })
  })

  it("inlines a Schema.Class so the JSON Schema has type object at its root", () => {
    class Point extends Schema.Class<Point>("Point")({ x: Schema.Number, y: Schema.Number }) {}
    const plot = tool({ name: "plot", description: "Plot", parameters: Point, handler: () => Effect.void })
    expect(plot.definition.parameters).toMatchObject({ type: "object", required: ["x", "y"] })
    expect(plot.definition.parameters).not.toHaveProperty("$ref")
  })

  it("offers a tool without parameters as an empty object schema", () => {
    const now = tool({ name: "now", description: "Time", parameters: Schema.Struct({}), handler: () => Effect.void })
    expect(now.definition.parameters).toEqual({ type: "object", properties: {}, required: [], additionalProperties: false })
  })

  it("throws at definition when the parameters are not an object schema", () => {
    expect(() => tool({ name: "n", description: "d", parameters: Schema.String, handler: () => Effect.void })).toThrow(
      /must be an object schema/
    )
  })

  it("throws at definition when the name is not one model APIs accept", () => {
    expect(() => tool({ name: "has space", description: "d", parameters: Schema.Struct({}), handler: () => Effect.void }))
      .toThrow(/invalid tool name "has space"/)
  })
})

describe("localTools", () => {
  it.effect("emits tool-start with the arguments then tool-complete with the handler's value", () =>
    Effect.gen(function*() {
      const events = yield* collect(localTools([echo]), callOf("echo", { text: "ab", times: 2 }))
      expect(events.map((event) => event.type)).toEqual(["tool-start", "tool-complete"])
      expect(events[0]).toMatchObject({ arguments: { text: "ab", times: 2 }, toolCallId: "call-1", toolName: "echo" })
      expect(events[1]).toMatchObject({ result: { echoed: "abab" }, contextId: "ctx-1", taskId: "task-1" })
    }))

  it.effect("lists its tools and finds one by name", () =>
    Effect.gen(function*() {
      const provider = localTools([echo], { name: "mine" })
      expect(provider.name).toBe("mine")
      expect((yield* provider.getTools).map((definition) => definition.name)).toEqual(["echo"])
      expect(yield* provider.getTool("echo")).toEqual(Option.some(echo.definition))
      expect(yield* provider.getTool("nope")).toEqual(Option.none())
    }))

  it.effect("streams progress reports in order, before tool-complete", () =>
    Effect.gen(function*() {
      const steps = tool({
        name: "steps",
        description: "Counts",
        parameters: Schema.Struct({}),
        handler: (_, { progress }) =>
          Effect.gen(function*() {
            yield* progress({ progress: 1, total: 2, message: "first" })
            yield* progress({ progress: 2, total: 2 })
            return "done"
          })
      })
      const events = yield* collect(localTools([steps]), callOf("steps", {}))
      expect(events.map((event) => event.type)).toEqual(["tool-start", "tool-progress", "tool-progress", "tool-complete"])
      expect(events[1]).toMatchObject({ progress: 1, total: 2, message: "first", toolCallId: "call-1" })
      expect(events[2]).toMatchObject({ progress: 2, total: 2 })
    }))

  it.effect("delivers a progress event while the handler is still running", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const slow = tool({
        name: "slow",
        description: "Waits",
        parameters: Schema.Struct({}),
        handler: (_, { progress }) => Effect.zipRight(progress({ message: "started" }), Deferred.await(release))
      })
      const seen = yield* Stream.take(localTools([slow]).execute(callOf("slow", {}), context), 2).pipe(Stream.runCollect)
      expect(Chunk.toReadonlyArray(seen).map((event) => event.type)).toEqual(["tool-start", "tool-progress"])
    }))

  it.effect("reports arguments that do not match the schema as InvalidArguments naming each field", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(localTools([echo]), callOf("echo", { text: 5, times: "x", extra: true }))
      expect(error.reason).toBe("InvalidArguments")
      expect(error.message).toContain(`Invalid arguments for tool "echo"`)
      expect(error.message).toMatch(/text: Expected string, actual 5/)
      expect(error.message).toMatch(/times: Expected number, actual "x"/)
      expect(error.message).toMatch(/extra: is unexpected/)
      expect(error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: "text" })]))
    }))

  it.effect("names a missing field and the path of a nested one", () =>
    Effect.gen(function*() {
      const order = tool({
        name: "order",
        description: "Orders",
        parameters: Schema.Struct({ items: Schema.Array(Schema.Struct({ sku: Schema.String })) }),
        handler: () => Effect.void
      })
      const missing = yield* failureOf(localTools([order]), callOf("order", {}))
      expect(missing.message).toMatch(/items: is missing/)
      const nested = yield* failureOf(localTools([order]), callOf("order", { items: [{ sku: "a" }, { sku: 1 }] }))
      expect(nested.message).toMatch(/items\[1\]\.sku: Expected string, actual 1/)
    }))

  it.effect("reports a call whose arguments were not valid JSON as InvalidArguments with that message", () =>
    Effect.gen(function*() {
      const call: ToolCall = { ...callOf("echo", {}), argumentsError: "Tool arguments are not valid JSON: {\"text\":" }
      const error = yield* failureOf(localTools([echo]), call)
      expect(error).toMatchObject({ reason: "InvalidArguments", message: call.argumentsError, toolCallId: "call-1" })
    }))

  it.effect("stops a handler past its timeout with a Timeout error and interrupts it", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const sleepy = tool({
        name: "sleepy",
        description: "Sleeps",
        parameters: Schema.Struct({}),
        timeout: "2 seconds",
        handler: () => Effect.onInterrupt(Effect.sleep("1 minute"), () => Ref.set(interrupted, true))
      })
      const fiber = yield* Effect.fork(failureOf(localTools([sleepy]), callOf("sleepy", {})))
      yield* TestClock.adjust("1999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ reason: "Timeout", toolName: "sleepy" })
      expect(error.message).toContain("2s")
      expect(yield* Ref.get(interrupted)).toBe(true)
    }))

  it.effect("applies the provider's default timeout to tools without their own, and none with Duration.infinity", () =>
    Effect.gen(function*() {
      const sleepy = tool({
        name: "sleepy",
        description: "Sleeps",
        parameters: Schema.Struct({}),
        handler: () => Effect.as(Effect.sleep("10 minutes"), "woke")
      })
      const bounded = yield* Effect.fork(failureOf(localTools([sleepy]), callOf("sleepy", {})))
      const unbounded = yield* Effect.fork(collect(localTools([sleepy], { timeout: Duration.infinity }), callOf("sleepy", {})))
      yield* TestClock.adjust("60 seconds")
      expect((yield* Fiber.join(bounded)).reason).toBe("Timeout")
      yield* TestClock.adjust("10 minutes")
      expect((yield* Fiber.join(unbounded)).at(-1)).toMatchObject({ type: "tool-complete", result: "woke" })
    }))

  it.effect("keeps a ToolError the handler fails with", () =>
    Effect.gen(function*() {
      const denied = tool({
        name: "denied",
        description: "Denies",
        parameters: Schema.Struct({}),
        handler: ({}, { call }) =>
          Effect.fail(new ToolError({ reason: "Unauthorized", toolName: call.name, toolCallId: call.id, message: "no" }))
      })
      expect(yield* failureOf(localTools([denied]), callOf("denied", {}))).toMatchObject({
        reason: "Unauthorized",
        message: "no"
      })
    }))

  it.effect("turns any other handler failure into ExecutionFailed with its message", () =>
    Effect.gen(function*() {
      class DiskFull extends Schema.TaggedError<DiskFull>()("DiskFull", { message: Schema.String }) {}
      const write = tool({
        name: "write",
        description: "Writes",
        parameters: Schema.Struct({}),
        handler: () => Effect.fail(new DiskFull({ message: "no space left on /tmp" }))
      })
      const error = yield* failureOf(localTools([write]), callOf("write", {}))
      expect(error).toMatchObject({ reason: "ExecutionFailed", message: `Tool "write" failed: DiskFull: no space left on /tmp` })
    }))

  it.effect("reports a defect as ExecutionFailed 'crashed' and logs it at error level with its cause", () =>
    Effect.gen(function*() {
      const logs: Array<{ level: string; text: string }> = []
      const buggy = tool({
        name: "buggy",
        description: "Crashes",
        parameters: Schema.Struct({}),
        handler: () =>
          Effect.sync((): number => {
            throw new TypeError("cannot read properties of undefined")
          })
      })
      const error = yield* failureOf(localTools([buggy]), callOf("buggy", {})).pipe(Effect.provide(captureLogs(logs)))
      expect(error).toMatchObject({
        reason: "ExecutionFailed",
        message: `Tool "buggy" crashed: cannot read properties of undefined`
      })
      const logged = logs.find((log) => log.text.includes(`Tool "buggy" crashed`))
      expect(logged?.level).toBe("ERROR")
      expect(logged?.text).toContain("TypeError: cannot read properties of undefined")
    }))

  it.effect("runs handlers with the services provided by a Layer, and shows the requirement in the type", () =>
    Effect.gen(function*() {
      const greet = tool({
        name: "greet",
        description: "Greets",
        parameters: Schema.Struct({ name: Schema.String }),
        handler: ({ name }) => Effect.map(Greeter, (greeter) => greeter.greet(name))
      })
      const provider = localTools([echo, greet])
      expectTypeOf(provider).toEqualTypeOf<ToolProvider<Greeter>>()
      const events = yield* collect(provider, callOf("greet", { name: "Ada" })).pipe(
        Effect.provide(Layer.succeed(Greeter, { greet: (name) => `Bonjour, ${name}` }))
      )
      expect(events.at(-1)).toMatchObject({ type: "tool-complete", result: "Bonjour, Ada" })
    }))

  it("rejects two tools with one name when the provider is built", () => {
    expect(() => localTools([echo, echo])).toThrow(/two tools are named "echo"/)
  })

  it.effect("fails an unknown tool name with NotFound", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(localTools([echo]), callOf("missing", {}))
      expect(error).toMatchObject({ reason: "NotFound", toolName: "missing" })
    }))

  it.effect("interrupting the stream interrupts the handler", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const hang = tool({
        name: "hang",
        description: "Hangs",
        parameters: Schema.Struct({}),
        handler: () =>
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          )
      })
      const fiber = yield* Effect.fork(collect(localTools([hang]), callOf("hang", {})))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(yield* Deferred.isDone(interrupted)).toBe(true)
    }))
})

describe("sensitive arguments", () => {
  const login = tool({
    name: "login",
    description: "Logs in",
    parameters: Schema.Struct({ user: Schema.String, password: Schema.String, pin: Schema.optional(Schema.Number) }),
    sensitive: ["password", "pin"],
    handler: ({ password, user }, { progress }) =>
      Effect.zipRight(
        progress({ message: `trying ${password}` }),
        user === "bad" ? Effect.fail(new Error(`wrong password ${password} for ${user}`)) : Effect.succeed("ok")
      )
  })
  const secret = "hunter2-very-secret"
  const leaks = (events: ReadonlyArray<ToolEvent> | ToolError) => JSON.stringify(events).includes(secret)

  it.effect("are redacted in tool-start and progress events, while the handler sees the real value", () =>
    Effect.gen(function*() {
      const events = yield* collect(localTools([login]), callOf("login", { user: "ada", password: secret, pin: 12345 }))
      expect(events[0]).toMatchObject({ type: "tool-start", arguments: { user: "ada", password: "<redacted>", pin: "<redacted>" } })
      expect(events[1]).toMatchObject({ type: "tool-progress", message: "trying <redacted>" })
      expect(events.at(-1)).toMatchObject({ type: "tool-complete", result: "ok" })
      expect(leaks(events)).toBe(false)
      expect(JSON.stringify(events)).not.toContain("12345")
    }))

  it.effect("are redacted in a handler's error message", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(localTools([login]), callOf("login", { user: "bad", password: secret }))
      expect(error.message).toBe(`Tool "login" failed: wrong password <redacted> for bad`)
    }))

  it.effect("are redacted in an InvalidArguments message that would quote them", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(localTools([login]), callOf("login", { user: "ada", password: secret, pin: secret }))
      expect(error.reason).toBe("InvalidArguments")
      expect(error.message).toMatch(/pin: Expected number, actual "<redacted>"/)
      expect(leaks(error)).toBe(false)
    }))

  it.effect("are not quoted back when the model's JSON was invalid", () =>
    Effect.gen(function*() {
      const call: ToolCall = {
        ...callOf("login", {}),
        argumentsError: `Tool arguments are not valid JSON: {"password":"${secret}"`
      }
      const error = yield* failureOf(localTools([login]), call)
      expect(error.reason).toBe("InvalidArguments")
      expect(leaks(error)).toBe(false)
    }))
})

describe("localTools executeBatch", () => {
  const batch = <R>(provider: ToolProvider<R>, calls: ReadonlyArray<ToolCall>) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Stream.runCollect(provider.executeBatch!(calls, context)))
      yield* TestClock.adjust("1 minute")
      return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
    })

  const byCall = (events: ReadonlyArray<ToolEvent>) => {
    const out = new Map<string, Array<string>>()
    for (const event of events) out.set(event.toolCallId, [...(out.get(event.toolCallId) ?? []), event.type])
    return out
  }

  it.effect("runs many calls through one stream, each ending with exactly one terminal event; a failure is its tool-error event", () =>
    Effect.gen(function*() {
      const broken = tool({
        name: "broken",
        description: "Fails",
        parameters: Schema.Struct({}),
        handler: () => Effect.fail(new Error("out of paper"))
      })
      const events = yield* batch(localTools([echo, broken]), [
        callOf("echo", { text: "a" }, "ok"),
        callOf("echo", { text: 1 }, "invalid"),
        callOf("broken", {}, "failing"),
        callOf("missing", {}, "unknown"),
        callOf("echo", { text: "b" }, "ok-2")
      ])
      expect(Object.fromEntries(byCall(events))).toEqual({
        ok: ["tool-start", "tool-complete"],
        invalid: ["tool-start", "tool-error"],
        failing: ["tool-start", "tool-error"],
        unknown: ["tool-error"],
        "ok-2": ["tool-start", "tool-complete"]
      })
      const errors = events.filter((event) => event.type === "tool-error")
      expect(errors.map((event) => [event.toolCallId, event.reason])).toEqual([
        ["invalid", "InvalidArguments"],
        ["failing", "ExecutionFailed"],
        ["unknown", "NotFound"]
      ])
      expect(errors[1]).toMatchObject({ error: `Tool "broken" failed: out of paper`, contextId: "ctx-1", taskId: "task-1" })
      expect(events.find((event) => event.toolCallId === "ok-2")).toMatchObject({ toolName: "echo" })
    }))

  it.effect("runs at most 8 calls at once, and streams each call's progress while it runs", () =>
    Effect.gen(function*() {
      const inFlight = yield* Ref.make(0)
      const maxInFlight = yield* Ref.make(0)
      const work = tool({
        name: "work",
        description: "Works for a second",
        parameters: Schema.Struct({ n: Schema.Number }),
        handler: ({ n }, { progress }) =>
          Ref.updateAndGet(inFlight, (x) => x + 1).pipe(
            Effect.flatMap((now) => Ref.update(maxInFlight, (max) => Math.max(max, now))),
            Effect.zipRight(progress({ message: `working on ${n}` })),
            Effect.zipRight(Effect.sleep("1 second")),
            Effect.ensuring(Ref.update(inFlight, (x) => x - 1)),
            Effect.as(n)
          )
      })
      const calls = Array.from({ length: 20 }, (_, i) => callOf("work", { n: i }, `call-${i}`))
      const provider = localTools([work])
      // Before any handler finishes, the first calls' progress is already out.
      const early = yield* Stream.take(provider.executeBatch!(calls, context), 2).pipe(Stream.runCollect)
      expect(Chunk.toReadonlyArray(early).map((event) => event.type)).toEqual(["tool-start", "tool-progress"])
      yield* Ref.set(maxInFlight, 0)
      const events = yield* batch(provider, calls)
      expect(yield* Ref.get(maxInFlight)).toBe(8)
      for (const [i, call] of calls.entries()) {
        expect(byCall(events).get(call.id)).toEqual(["tool-start", "tool-progress", "tool-complete"])
        expect(events.find((event) => event.toolCallId === call.id && event.type === "tool-complete")).toMatchObject({
          result: i
        })
      }
    }))

  it.effect("stops a call past its timeout with a Timeout tool-error and interrupts it; the others complete", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make<ReadonlyArray<number>>([])
      const nap = tool({
        name: "nap",
        description: "Sleeps for some seconds",
        parameters: Schema.Struct({ seconds: Schema.Number }),
        timeout: "3 seconds",
        handler: ({ seconds }) =>
          Effect.as(Effect.sleep(`${seconds} seconds`), seconds).pipe(
            Effect.onInterrupt(() => Ref.update(interrupted, (all) => [...all, seconds]))
          )
      })
      const events = yield* batch(localTools([nap]), [
        callOf("nap", { seconds: 1 }, "short"),
        callOf("nap", { seconds: 10 }, "long"),
        callOf("nap", { seconds: 2 }, "medium")
      ])
      expect(Object.fromEntries(byCall(events))).toEqual({
        short: ["tool-start", "tool-complete"],
        long: ["tool-start", "tool-error"],
        medium: ["tool-start", "tool-complete"]
      })
      expect(events.find((event) => event.type === "tool-error")).toMatchObject({ toolCallId: "long", reason: "Timeout" })
      expect(yield* Ref.get(interrupted)).toEqual([10])
    }))

  it.effect("interrupting the stream interrupts every running handler", () =>
    Effect.gen(function*() {
      const started = yield* Ref.make(0)
      const interrupted = yield* Ref.make(0)
      const hang = tool({
        name: "hang",
        description: "Hangs",
        parameters: Schema.Struct({}),
        handler: () =>
          Effect.zipRight(Ref.update(started, (n) => n + 1), Effect.never).pipe(
            Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1))
          )
      })
      const calls = Array.from({ length: 3 }, (_, i) => callOf("hang", {}, `call-${i}`))
      const fiber = yield* Effect.fork(Stream.runCollect(localTools([hang]).executeBatch!(calls, context)))
      while ((yield* Ref.get(started)) < 3) yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      expect(yield* Ref.get(interrupted)).toBe(3)
    }))

  it.effect("redacts sensitive arguments in a batch as in a single call", () =>
    Effect.gen(function*() {
      const login = tool({
        name: "login",
        description: "Logs in",
        parameters: Schema.Struct({ user: Schema.String, password: Schema.String }),
        sensitive: ["password"],
        handler: ({ password, user }, { progress }) =>
          Effect.zipRight(
            progress({ message: `trying ${password}` }),
            user === "bad" ? Effect.fail(new Error(`wrong password ${password}`)) : Effect.succeed("ok")
          )
      })
      const secret = "hunter2-very-secret"
      const events = yield* batch(localTools([login]), [
        callOf("login", { user: "ada", password: secret }, "good"),
        callOf("login", { user: "bad", password: secret }, "bad")
      ])
      expect(JSON.stringify(events)).not.toContain(secret)
      expect(events.find((event) => event.type === "tool-error")).toMatchObject({ error: `Tool "login" failed: wrong password <redacted>` })
    }))
})
