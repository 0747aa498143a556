import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Agent from "../../src/agent/Agent.js"
import * as ConversationStore from "../../src/agent/ConversationStore.js"
import { ProviderError, ToolError } from "../../src/domain/Errors.js"
import type { AgentEvent, ToolEvent } from "../../src/domain/Events.js"
import type { ExecutionContext } from "../../src/domain/ExecutionContext.js"
import type { ToolCall } from "../../src/domain/Message.js"
import * as Message from "../../src/domain/Message.js"
import * as Bedrock from "../../src/providers/Bedrock.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as OpenAiCompatible from "../../src/providers/OpenAiCompatible.js"
import * as TestModel from "../../src/providers/TestModel.js"
import * as TierRouter from "../../src/router/TierRouter.js"
import * as ClientTools from "../../src/tools/ClientTools.js"
import { localTools, tool } from "../../src/tools/LocalTools.js"
import * as ToolboxModule from "../../src/tools/Toolbox.js"
import { Toolbox, type Service as ToolboxService } from "../../src/tools/Toolbox.js"
import {
  toolCompleteEvent,
  toolErrorEvent,
  toolInputRequiredEvent,
  type ToolProvider,
  toolStartEvent
} from "../../src/tools/ToolProvider.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import { trackedWork } from "../fixtures/trackedWork.js"
import * as BedrockServer from "../peers/BedrockServer.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

type Handler = (args: Record<string, unknown>, context: ExecutionContext) => Effect.Effect<unknown, string>

/** A Toolbox fake at the Layer boundary: each tool is an effect; "client" tools wait forever. */
const fakeToolbox = (
  handlers: Record<string, Handler>,
  clientTools: ReadonlyArray<string> = [],
  askingTools: ReadonlyArray<string> = []
): ToolboxService => {
  const names = [...Object.keys(handlers), ...clientTools, ...askingTools]
  const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent> => {
    if (askingTools.includes(call.name)) {
      return Stream.fromEffect(toolInputRequiredEvent(context, call, call.arguments, "Which city did you mean?"))
    }
    if (clientTools.includes(call.name)) {
      return Stream.concat(
        Stream.fromEffect(toolInputRequiredEvent(context, call)),
        Stream.never
      )
    }
    const handler = handlers[call.name]
    if (handler === undefined) {
      return Stream.fromEffect(
        toolErrorEvent(context, call, new ToolError({ reason: "NotFound", toolName: call.name, toolCallId: call.id, message: `Unknown tool ${call.name}` }))
      )
    }
    return Stream.concat(
      Stream.fromEffect(toolStartEvent(context, call)),
      Stream.fromEffect(
        handler(call.arguments, context).pipe(
          Effect.matchEffect({
            onFailure: (message) => toolErrorEvent(context, call, message),
            onSuccess: (result) => toolCompleteEvent(context, call, result)
          })
        )
      )
    )
  }
  return {
    getTools: Effect.succeed(names.map((name) => ({ name, description: name, parameters: { type: "object" } }))),
    execute,
    executeBatch: (calls, context) => Stream.mergeAll(calls.map((call) => execute(call, context)), { concurrency: 8 })
  }
}

const toolboxLayer = (
  handlers: Record<string, Handler>,
  clientTools: ReadonlyArray<string> = [],
  askingTools: ReadonlyArray<string> = []
) => Layer.succeed(Toolbox, fakeToolbox(handlers, clientTools, askingTools))

const types = (events: ReadonlyArray<AgentEvent>) => events.map((event) => event.type)

const collect = <E, R>(stream: Stream.Stream<AgentEvent, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const echo: Handler = (args) => Effect.succeed({ echoed: args.text })

describe("Agent.run", () => {
  it.effect("streams a text answer from task-created to task-complete", () =>
    Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "hello" }))
      expect(types(events)).toEqual([
        "task-created",
        "task-status",
        "content-delta",
        "content-delta",
        "content-complete",
        "llm-usage",
        "task-status",
        "task-complete"
      ])
      const last = events.at(-1)!
      expect(last.type === "task-complete" && last.content).toBe("Hello there")
      const ids = new Set(events.map((event) => `${event.contextId}/${event.taskId}`))
      expect(ids.size).toBe(1)
    }).pipe(Effect.provide(Layer.merge(TestModel.layer([{ text: "Hello there" }]), toolboxLayer({})))))

  it.effect("traces a run for a tracer that records spans: Agent.run, then one Agent.step per model call", () => {
    const { spans, tracer } = recordingTracer()
    return Effect.gen(function*() {
      yield* collect(Agent.run({ prompt: "go" }))
      const run = spans.find((span) => span.name === "Agent.run")!
      const steps = spans.filter((span) => span.name === "Agent.step")
      expect(steps.map((span) => Object.fromEntries(span.attributes))).toEqual([{ step: 1, tools: 1 }, { step: 2, tools: 1 }])
      for (const step of steps) {
        expect(step.parent._tag === "Some" && step.parent.value).toBe(run)
        expect(step.status._tag).toBe("Ended")
      }
      expect(run.status._tag).toBe("Ended")
    }).pipe(
      Effect.provide(Layer.merge(
        TestModel.layer([{ toolCalls: [{ name: "echo", arguments: { text: "a" } }] }, { text: "done" }]),
        toolboxLayer({ echo })
      )),
      Effect.withTracer(tracer)
    )
  })

  it.effect("makes no spans under Effect's built-in tracer, which records nothing", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const spanName: Handler = () =>
        Effect.map(Effect.option(Effect.currentSpan), (span) => {
          seen.push(Option.match(span, { onNone: () => "none", onSome: (current) => current.name }))
          return "ok"
        })
      yield* collect(Agent.run({ prompt: "go" })).pipe(
        Effect.provide(Layer.merge(
          TestModel.layer([{ toolCalls: [{ name: "span_name", arguments: {} }] }, { text: "done" }]),
          toolboxLayer({ span_name: spanName })
        )),
        Effect.withSpan("caller")
      )
      expect(seen).toEqual(["caller"])
    }))

  it.effect("executes tool calls and feeds the results back in call order", () => {
    const model = TestModel.make([
      {
        toolCalls: [
          { name: "slow", arguments: { text: "a" }, id: "c1" },
          { name: "echo", arguments: { text: "b" }, id: "c2" }
        ]
      },
      { text: "done" }
    ])
    const order: Array<string> = []
    const slow: Handler = (args) =>
      Effect.sleep("10 millis").pipe(Effect.zipRight(Effect.sync(() => order.push("slow"))), Effect.as(args.text))
    const fast: Handler = (args) => Effect.sync(() => order.push("echo")).pipe(Effect.as({ echoed: args.text }))
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(collect(Agent.run({ prompt: "go" })))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("20 millis")
      const events = yield* Fiber.join(fiber)
      expect(order).toEqual(["echo", "slow"])
      const second = model.requests[1]!.messages
      expect(second.map((message) => message.role)).toEqual(["user", "assistant", "tool", "tool"])
      expect(second[2]).toMatchObject({ role: "tool", toolCallId: "c1", content: "a" })
      expect(second[3]).toMatchObject({ role: "tool", toolCallId: "c2", content: JSON.stringify({ echoed: "b" }) })
      expect(types(events).filter((type) => type.startsWith("tool-"))).toEqual([
        "tool-start",
        "tool-start",
        "tool-complete",
        "tool-complete"
      ])
    }).pipe(
      Effect.provide(Layer.merge(LanguageModel.layer(model.service), toolboxLayer({ slow, echo: fast })))
    )
  })

  it.effect("runs a step's local calls at most `concurrency` at once; fractions round down, Infinity is no bound", () =>
    Effect.gen(function*() {
      const { maxInFlight: peak, work } = yield* trackedWork
      const toolbox = yield* ToolboxModule.make([localTools([work])])
      for (const [concurrency, expected] of [[2.5, 2], [Infinity, 3]] as const) {
        yield* Ref.set(peak, 0)
        const model = TestModel.make([
          { toolCalls: [1, 2, 3].map((n) => ({ name: "work", arguments: { n }, id: `c${n}` })) },
          { text: "done" }
        ])
        const fiber = yield* Effect.fork(
          collect(Agent.run({ prompt: "go", concurrency })).pipe(
            Effect.provide(Layer.merge(LanguageModel.layer(model.service), Layer.succeed(Toolbox, toolbox)))
          )
        )
        yield* TestClock.adjust("1 minute")
        const events = yield* Fiber.join(fiber)
        expect(yield* Ref.get(peak)).toBe(expected)
        expect(model.requests[1]!.messages.filter((m) => m.role === "tool").map((m) => m.content)).toEqual(["10", "20", "30"])
        expect(events.at(-1)?.type).toBe("task-complete")
      }
    }))

  it.effect("a call that fails fast does not cut short a sibling of the same batching provider", () =>
    Effect.gen(function*() {
      const execute: ToolProvider["execute"] = (call, context) =>
        call.name === "fail"
          ? Stream.fail(new ToolError({ reason: "ExecutionFailed", toolName: call.name, toolCallId: call.id, message: "boom" }))
          : Stream.fromEffect(Effect.as(Effect.sleep("1 second"), undefined)).pipe(
            Stream.flatMap(() => Stream.fromEffect(toolCompleteEvent(context, call, "slow result")))
          )
      const batching: ToolProvider = {
        name: "remote",
        getTools: Effect.succeed(["fail", "slow"].map((name) => ({ name, description: name, parameters: { type: "object" } }))),
        getTool: () => Effect.succeed(Option.none()),
        execute,
        executeBatch: (calls, context) => Stream.mergeAll(calls.map((call) => execute(call, context)), { concurrency: 8 })
      }
      const toolbox = yield* ToolboxModule.make([batching])
      const model = TestModel.make([
        { toolCalls: [{ name: "fail", id: "c1" }, { name: "slow", id: "c2" }] },
        { text: "done" }
      ])
      const fiber = yield* Effect.fork(
        collect(Agent.run({ prompt: "go" })).pipe(
          Effect.provide(Layer.merge(LanguageModel.layer(model.service), Layer.succeed(Toolbox, toolbox)))
        )
      )
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      const results = model.requests[1]!.messages.filter((m) => m.role === "tool").map((m) => m.content)
      expect(results).toEqual(["Error (ExecutionFailed): boom", "slow result"])
    }))

  it.effect("stops at maxSteps and makes one last call without tools for the answer", () => {
    const model = TestModel.make([
      { toolCalls: [{ name: "echo", arguments: { text: "1" } }] },
      { toolCalls: [{ name: "echo", arguments: { text: "2" } }] },
      { text: "final answer" }
    ])
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "loop", maxSteps: 2 }))
      expect(model.requests.map((request) => request.tools.length)).toEqual([1, 1, 0])
      const last = events.at(-1)!
      expect(last.type === "task-complete" && [last.content, last.steps]).toEqual(["final answer", 2])
    }).pipe(Effect.provide(Layer.merge(LanguageModel.layer(model.service), toolboxLayer({ echo }))))
  })

  it.effect("ends the run when a stopWhen tool is called", () => {
    const model = TestModel.make([
      { text: "submitting", toolCalls: [{ name: "submit", arguments: { answer: 42 } }] },
      { text: "never asked" }
    ])
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "solve", stopWhen: "submit" }))
      expect(model.requests).toHaveLength(1)
      expect(events.some((event) => event.type === "tool-complete")).toBe(true)
      expect(events.at(-1)?.type).toBe("task-complete")
    }).pipe(
      Effect.provide(Layer.merge(LanguageModel.layer(model.service), toolboxLayer({ submit: () => Effect.succeed("ok") })))
    )
  })

  it.effect("reports invalid tool-argument JSON and unknown tools to the model so it can repair", () => {
    const model = TestModel.make([
      {
        toolCalls: [
          { name: "echo", rawArguments: "{\"text\": ", id: "bad" },
          { name: "nope", arguments: {}, id: "missing" }
        ]
      },
      { toolCalls: [{ name: "echo", arguments: { text: "fixed" }, id: "good" }] },
      { text: "repaired" }
    ])
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "x" }))
      const errors = events.filter((event) => event.type === "tool-error")
      expect(errors.map((event) => event.type === "tool-error" && event.reason)).toEqual(["InvalidArguments", "NotFound"])
      const toolMessages = model.requests[1]!.messages.filter((message) => message.role === "tool")
      expect(toolMessages[0]!.content).toMatch(/^Error \(InvalidArguments\): Tool arguments are not valid JSON/)
      expect(toolMessages[1]!.content).toMatch(/^Error \(NotFound\)/)
      expect(events.at(-1)?.type).toBe("task-complete")
    }).pipe(Effect.provide(Layer.merge(LanguageModel.layer(model.service), toolboxLayer({ echo }))))
  })

  it.effect("stops with a failed task-status after three identical failing calls in a row", () => {
    const failingCall = { toolCalls: [{ name: "flaky", arguments: { n: 1 } }] }
    const model = TestModel.make([failingCall, failingCall, failingCall, { text: "unreachable" }])
    return Effect.gen(function*() {
      const seen: Array<AgentEvent> = []
      const exit = yield* Agent.run({ prompt: "x" }).pipe(
        Stream.runForEach((event) => Effect.sync(() => seen.push(event))),
        Effect.exit
      )
      expect(model.requests).toHaveLength(3)
      const status = seen.filter((event) => event.type === "task-status").at(-1)
      expect(status?.type === "task-status" && [status.status, status.message]).toEqual([
        "failed",
        expect.stringContaining("flaky failed 3 times in a row")
      ])
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("RepeatedToolFailure")
    }).pipe(
      Effect.provide(Layer.merge(LanguageModel.layer(model.service), toolboxLayer({ flaky: () => Effect.fail("boom") })))
    )
  })

  it.effect("a tool that succeeds with text looking like an error is not counted as failing", () => {
    const call = { toolCalls: [{ name: "lint", arguments: { file: "a.ts" } }] }
    const model = TestModel.make([call, call, call, { text: "three lint reports" }])
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "lint it" }))
      expect(events.at(-1)).toMatchObject({ type: "task-complete", content: "three lint reports" })
      expect(model.requests).toHaveLength(4)
    }).pipe(
      Effect.provide(
        Layer.merge(
          LanguageModel.layer(model.service),
          toolboxLayer({ lint: () => Effect.succeed("Error (TS2322): a.ts line 3") })
        )
      )
    )
  })

  it.effect("fails with task-status failed and a typed AgentError when the model fails, and the next run works", () => {
    const error = new ProviderError({ reason: "ServerError", providerId: "p", retryable: true, message: "upstream 500" })
    const model = TestModel.make([{ fail: error }, { text: "recovered" }])
    return Effect.gen(function*() {
      const seen: Array<AgentEvent> = []
      const failure = yield* Agent.run({ prompt: "x" }).pipe(
        Stream.runForEach((event) => Effect.sync(() => seen.push(event))),
        Effect.flip
      )
      expect(failure.reason).toBe("ModelFailed")
      expect(failure.cause).toEqual(error)
      expect(seen.at(-1)?.type === "task-status" && seen.at(-1)).toMatchObject({ status: "failed" })
      const events = yield* collect(Agent.run({ prompt: "again" }))
      expect(events.at(-1)).toMatchObject({ type: "task-complete", content: "recovered" })
    }).pipe(Effect.provide(Layer.merge(LanguageModel.layer(model.service), toolboxLayer({}))))
  })

  it.effect("sums usage over the steps in task-complete", () =>
    Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "x" }))
      const last = events.at(-1)!
      expect(last.type === "task-complete" && last.usage).toEqual({ inputTokens: 30, outputTokens: 7 })
    }).pipe(
      Effect.provide(
        Layer.merge(
          TestModel.layer([
            { toolCalls: [{ name: "echo", arguments: { text: "1" } }], usage: { inputTokens: 10, outputTokens: 2 } },
            { text: "ok", usage: { inputTokens: 20, outputTokens: 5 } }
          ]),
          toolboxLayer({ echo })
        )
      )
    ))

  it.effect("emits route-selected from a routed model's route chunk", () => {
    const routed = LanguageModel.make({
      id: "router",
      name: "router",
      stream: () =>
        Stream.make(
          {
            _tag: "route" as const,
            tier: "complex" as const,
            provider: "openai",
            score: 0.7,
            confidence: 0.8,
            signals: ["kw:design"],
            forced: false,
            fallbacksTried: [{ provider: "litellm", reason: "ServerError" }]
          },
          { _tag: "text-delta" as const, delta: "hi" },
          { _tag: "finish" as const, finishReason: "stop" as const }
        )
    })
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "design a system" }))
      expect(events.find((event) => event.type === "route-selected")).toMatchObject({
        tier: "complex",
        provider: "openai",
        signals: ["kw:design"],
        fallbacksTried: [{ provider: "litellm", reason: "ServerError" }]
      })
    }).pipe(Effect.provide(Layer.merge(LanguageModel.layer(routed), toolboxLayer({}))))
  })

  it.effect("interrupting the consumer interrupts the tool fibers in flight", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Ref.make(false)
      const hang: Handler = () =>
        Deferred.succeed(started, undefined).pipe(
          Effect.zipRight(Effect.never),
          Effect.onInterrupt(() => Ref.set(interrupted, true))
        )
      const fiber = yield* Agent.run({ prompt: "x" }).pipe(
        Stream.runDrain,
        Effect.provide(
          Layer.merge(TestModel.layer([{ toolCalls: [{ name: "hang", arguments: {} }] }]), toolboxLayer({ hang }))
        ),
        Effect.fork
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(yield* Ref.get(interrupted)).toBe(true)
    }))

  it.effect("200 concurrent runs each receive exactly their own events", () =>
    Effect.gen(function*() {
      const model = LanguageModel.make({
        id: "echo",
        name: "echo",
        stream: (messages) =>
          Stream.make(
            { _tag: "text-delta" as const, delta: `answer:${messages.at(-1)!.content}` },
            { _tag: "finish" as const, finishReason: "stop" as const }
          )
      })
      const results = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) =>
          collect(Agent.run({ prompt: `q${i}`, context: { contextId: `ctx-${i}` } })).pipe(
            Effect.map((events) => ({ i, events }))
          ),
        { concurrency: "unbounded" }
      ).pipe(Effect.provide(Layer.merge(LanguageModel.layer(model), toolboxLayer({}))))
      for (const { events, i } of results) {
        expect(events.every((event) => event.contextId === `ctx-${i}`)).toBe(true)
        expect(events.at(-1)).toMatchObject({ type: "task-complete", content: `answer:q${i}` })
      }
    }))

  it.effect("tells the model when a tool ends asking for input nobody in the run can give", () => {
    const model = TestModel.make([
      { toolCalls: [{ name: "remote_agent", arguments: { prompt: "weather in Springfield" }, id: "r1" }] },
      { text: "Which Springfield do you mean?" }
    ])
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "weather?" }))
      const statuses = events.flatMap((event) => event.type === "task-status" ? [event.status] : [])
      expect(statuses).toEqual(["working", "waiting-input", "working", "completed"])
      expect(model.requests[1]!.messages.at(-1)).toMatchObject({
        role: "tool",
        toolCallId: "r1",
        content: expect.stringMatching(/^Input required: Which city did you mean\? Ask the user/)
      })
    }).pipe(Effect.provide(Layer.merge(LanguageModel.layer(model.service), toolboxLayer({}, [], ["remote_agent"]))))
  })

  it.effect("rejects a run with nothing to answer", () =>
    Effect.gen(function*() {
      const error = yield* Agent.run({}).pipe(Stream.runDrain, Effect.flip)
      expect(error.reason).toBe("InvalidInput")
    }).pipe(Effect.provide(Layer.merge(TestModel.layer([]), toolboxLayer({})))))
})

describe("Agent.make", () => {
  it.effect("keeps each conversation's history across runs", () => {
    const model = TestModel.make([{ text: "first answer" }, { text: "second answer" }])
    return Effect.gen(function*() {
      const agent = yield* Agent.make({ name: "helper", system: "be brief", toolbox: fakeToolbox({}) })
      yield* collect(agent.run({ prompt: "one", contextId: "c" }))
      yield* collect(agent.run({ prompt: "two", contextId: "c" }))
      expect(model.requests[1]!.messages.map((message) => [message.role, message.content])).toEqual([
        ["system", "be brief"],
        ["user", "one"],
        ["assistant", "first answer"],
        ["user", "two"]
      ])
      expect((yield* agent.history("c")).map((message) => message.content)).toEqual([
        "one",
        "first answer",
        "two",
        "second answer"
      ])
    }).pipe(Effect.provide(LanguageModel.layer(model.service)))
  })

  it.effect("pauses on a client tool and resumes with its result", () => {
    const model = TestModel.make([
      { toolCalls: [{ name: "ask_user", arguments: { question: "color?" }, id: "ask1" }] },
      { text: "You chose blue" }
    ])
    return Effect.gen(function*() {
      const agent = yield* Agent.make({ name: "a", toolbox: fakeToolbox({}, ["ask_user"]) })
      const first = yield* collect(agent.run({ prompt: "pick", contextId: "c1" }))
      expect(first.at(-2)?.type).toBe("tool-input-required")
      expect(first.at(-1)).toMatchObject({ type: "task-status", status: "waiting-input" })
      const second = yield* collect(agent.resume("c1", { toolCallId: "ask1", result: { success: true, result: "blue" } }))
      expect(second.at(-1)).toMatchObject({ type: "task-complete", content: "You chose blue" })
      expect(second.every((event) => event.taskId === first[0]!.taskId)).toBe(true)
      expect(model.requests[1]!.messages.at(-1)).toMatchObject({ role: "tool", toolCallId: "ask1", content: "blue" })
      const again = yield* agent.resume("c1", { toolCallId: "ask1", result: { success: true, result: "red" } }).pipe(
        Stream.runDrain,
        Effect.flip
      )
      expect(again.reason).toBe("NotWaiting")
    }).pipe(Effect.provide(LanguageModel.layer(model.service)))
  })

  it.effect("does not pause for a client tool that its callback answers", () => {
    const model = TestModel.make([
      { toolCalls: [{ name: "confirm", arguments: {}, id: "k1" }] },
      { text: "confirmed" }
    ])
    return Effect.gen(function*() {
      const provider = ClientTools.ClientToolProvider({
        tools: [{ name: "confirm", description: "Ask the user", parameters: { type: "object", properties: {} } }],
        onInputRequired: () => Effect.succeed({ success: true as const, result: "yes" })
      })
      const toolbox = yield* ToolboxModule.make([provider])
      const agent = yield* Agent.make({ name: "a", toolbox })
      const events = yield* collect(agent.run({ prompt: "go", contextId: "cb" }))
      expect(events.at(-1)).toMatchObject({ type: "task-complete", content: "confirmed" })
      expect(model.requests[1]!.messages.at(-1)).toMatchObject({ role: "tool", toolCallId: "k1", content: "yes" })
    }).pipe(Effect.provide(LanguageModel.layer(model.service)))
  })

  it.effect("a declined client result is reported with its reason, in the event and to the model", () => {
    const model = TestModel.make([
      { toolCalls: [{ name: "ask_user", arguments: {}, id: "ask2" }] },
      { text: "understood" }
    ])
    return Effect.gen(function*() {
      const agent = yield* Agent.make({ name: "a", toolbox: fakeToolbox({}, ["ask_user"]) })
      yield* collect(agent.run({ prompt: "pick", contextId: "c2" }))
      const events = yield* collect(
        agent.resume("c2", { toolCallId: "ask2", result: { success: false, error: "user said no", reason: "InputRejected" } })
      )
      expect(events.find((event) => event.type === "tool-error")).toMatchObject({
        toolCallId: "ask2",
        reason: "InputRejected",
        error: "user said no"
      })
      expect(model.requests[1]!.messages.at(-1)).toMatchObject({
        role: "tool",
        toolCallId: "ask2",
        content: "Error (InputRejected): user said no"
      })
    }).pipe(Effect.provide(LanguageModel.layer(model.service)))
  })

  it.scoped("resumes a paused run after a restart with the file store", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const toolbox = fakeToolbox({}, ["confirm"])
      {
        const store = yield* ConversationStore.makeFile({ directory })
        const agent = yield* Agent.make({ name: "a", toolbox, store })
        yield* collect(agent.run({ prompt: "delete it?", contextId: "persist" })).pipe(
          Effect.provide(TestModel.layer([{ toolCalls: [{ name: "confirm", arguments: {}, id: "k1" }] }]))
        )
      }
      const store = yield* ConversationStore.makeFile({ directory })
      expect(Option.getOrThrow(yield* store.load("persist")).pending?.waiting).toEqual(["k1"])
      const restarted = yield* Agent.make({ name: "a", toolbox, store })
      const events = yield* collect(
        restarted.resume("persist", { toolCallId: "k1", result: { success: true, result: "yes" } })
      ).pipe(Effect.provide(TestModel.layer([{ text: "deleted" }])))
      expect(events.at(-1)).toMatchObject({ type: "task-complete", content: "deleted" })
      expect(Option.getOrThrow(yield* store.load("persist")).pending).toBeUndefined()
    }).pipe(Effect.provide(NodeContext.layer)))

  it("trims history without separating a tool call from its result", () => {
    const history = [
      { role: "user" as const, content: "u1" },
      { role: "assistant" as const, content: "", toolCalls: [{ id: "t", name: "x", arguments: {} }] },
      { role: "tool" as const, content: "r", toolCallId: "t" },
      { role: "assistant" as const, content: "a1" },
      { role: "user" as const, content: "u2" },
      { role: "assistant" as const, content: "", toolCalls: [{ id: "t2", name: "x", arguments: {} }] },
      { role: "tool" as const, content: "r2", toolCallId: "t2" },
      { role: "assistant" as const, content: "a2" }
    ]
    const trimmed = ConversationStore.trim(history, 5)
    expect(trimmed.map((message) => message.content)).toEqual(["u2", "", "r2", "a2"])
    for (let limit = 1; limit <= history.length; limit++) {
      const kept = ConversationStore.trim(history, limit)
      expect(kept[0]!.role).toBe("user")
      for (const [index, message] of kept.entries()) {
        if (message.role === "tool") expect(kept[index - 1]?.toolCalls ?? kept[index - 2]?.toolCalls).toBeDefined()
      }
    }
  })
})

describe("Agent.run: the stop tool's invalid arguments", () => {
  const finalAnswer = tool({
    name: "final_answer",
    description: "Gives the final answer and ends the run.",
    parameters: Schema.Struct({ answer: Schema.String }),
    handler: ({ answer }) => Effect.succeed({ answer })
  })
  const tools = ToolboxModule.layer([localTools([finalAnswer])])
  const toolMessage = (request: TestModel.Request) => request.messages.at(-1)

  it.effect("a stop-tool call whose arguments fail its Schema goes back to the model, which repairs it", () => {
    const model = TestModel.make([
      { toolCalls: [{ name: "final_answer", arguments: { answer: 42 }, id: "bad" }] },
      { toolCalls: [{ name: "final_answer", arguments: { answer: "42" }, id: "good" }] }
    ])
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "solve", stopWhen: "final_answer" }))
      expect(model.requests).toHaveLength(2)
      expect(toolMessage(model.requests[1]!)).toMatchObject({
        role: "tool",
        toolCallId: "bad",
        content: expect.stringContaining("InvalidArguments")
      })
      expect(events.filter((event) => event.type === "tool-complete").map((event) => event.toolCallId)).toEqual(["good"])
      expect(events.at(-1)).toMatchObject({ type: "task-complete", steps: 2 })
    }).pipe(Effect.provide(Layer.merge(LanguageModel.layer(model.service), tools)))
  })

  it.effect("a stop-tool call whose arguments are not JSON goes back to the model, which repairs it", () => {
    const model = TestModel.make([
      { toolCalls: [{ name: "final_answer", rawArguments: "{\"answer\": ", id: "broken" }] },
      { toolCalls: [{ name: "final_answer", arguments: { answer: "42" }, id: "good" }] }
    ])
    return Effect.gen(function*() {
      const events = yield* collect(Agent.run({ prompt: "solve", stopWhen: "final_answer" }))
      expect(model.requests).toHaveLength(2)
      expect(toolMessage(model.requests[1]!)).toMatchObject({
        role: "tool",
        toolCallId: "broken",
        content: expect.stringContaining("InvalidArguments")
      })
      expect(events.filter((event) => event.type === "tool-complete").map((event) => event.toolCallId)).toEqual(["good"])
      expect(events.at(-1)).toMatchObject({ type: "task-complete", steps: 2 })
    }).pipe(Effect.provide(Layer.merge(LanguageModel.layer(model.service), tools)))
  })
})

describe("Agent.run against the local OpenAI-compatible and Bedrock servers", () => {
  const openAi = (server: OpenAiServer.OpenAiServer, options: Partial<OpenAiCompatible.ProviderOptions> = {}) =>
    OpenAiCompatible.liteLLMProvider({ id: "local", model: "test-model", baseUrl: server.url, ...options }).pipe(
      Layer.provide(NodeHttpClient.layerUndici)
    )
  const bedrock = (server: BedrockServer.BedrockServer, options: Partial<Bedrock.BedrockProviderConfig> = {}) =>
    Bedrock.bedrockProvider({
      model: "anthropic.claude-test-v1:0",
      region: "us-east-1",
      endpoint: server.endpoint,
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret-key" },
      ...options
    })
  const weather = tool({
    name: "get_weather",
    description: "Current weather for a city.",
    parameters: Schema.Struct({ city: Schema.String }),
    handler: ({ city }) => Effect.succeed({ city, celsius: 21 })
  })
  const weatherTools = ToolboxModule.layer([localTools([weather])])
  /** The stream's deltas in order, as [type, delta]. */
  const deltas = (events: ReadonlyArray<AgentEvent>) =>
    events.flatMap((event) =>
      event.type === "reasoning-delta" || event.type === "content-delta" ? [[event.type, event.delta]] : []
    )

  it.scoped("an OpenAI-compatible server's reasoning_content (or reasoning) deltas arrive as reasoning-delta events before the answer", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.sse(OpenAiServer.reasoningChunks(["Two and two ", "make four."], ["It is ", "4."])),
          OpenAiServer.sse(OpenAiServer.reasoningChunks(["Easy."], ["4."], { field: "reasoning" }))
        ]
      })
      const first = yield* collect(Agent.run({ prompt: "2 + 2?" }).pipe(Stream.provideLayer(Layer.merge(openAi(server), weatherTools))))
      expect(deltas(first)).toEqual([
        ["reasoning-delta", "Two and two "],
        ["reasoning-delta", "make four."],
        ["content-delta", "It is "],
        ["content-delta", "4."]
      ])
      const reasoning = first.find((event) => event.type === "reasoning-delta")!
      expect([reasoning.contextId, reasoning.taskId]).toEqual([first[0]!.contextId, first[0]!.taskId])
      // The answer is the answer alone: reasoning is neither in it nor in the conversation.
      expect(first.at(-1)).toMatchObject({ type: "task-complete", content: "It is 4." })
      const second = yield* collect(Agent.run({ prompt: "2 + 2?" }).pipe(Stream.provideLayer(Layer.merge(openAi(server), weatherTools))))
      expect(deltas(second)).toEqual([["reasoning-delta", "Easy."], ["content-delta", "4."]])
    }))

  it.scoped("Bedrock's reasoningContent deltas arrive as reasoning-delta events before the answer", () =>
    Effect.gen(function*() {
      const server = yield* BedrockServer.make
      yield* server.enqueue(BedrockServer.reasoningStream(["The user ", "greets me."], ["Hello", "!"]))
      const events = yield* collect(Agent.run({ prompt: "Hi" }).pipe(Stream.provideLayer(Layer.merge(bedrock(server), weatherTools))))
      expect(deltas(events)).toEqual([
        ["reasoning-delta", "The user "],
        ["reasoning-delta", "greets me."],
        ["content-delta", "Hello"],
        ["content-delta", "!"]
      ])
      expect(events.at(-1)).toMatchObject({ type: "task-complete", content: "Hello!" })
    }))

  it.scoped("with stream: false the OpenAI-compatible server receives stream: false and the run completes a tool loop", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.json(OpenAiServer.toolCallCompletion([{ id: "call_1", name: "get_weather", arguments: { city: "Oslo" } }])),
          OpenAiServer.json(OpenAiServer.textCompletion("It is 21 °C in Oslo."))
        ]
      })
      const events = yield* collect(
        Agent.run({ prompt: "Weather in Oslo?" }).pipe(Stream.provideLayer(Layer.merge(openAi(server, { stream: false }), weatherTools)))
      )
      expect(server.completions.map((request) => request.body.stream)).toEqual([false, false])
      expect(server.completions[0]!.body.tools.map((entry: { function: { name: string } }) => entry.function.name)).toEqual(["get_weather"])
      expect(server.completions[1]!.body.messages.at(-1)).toEqual({
        role: "tool",
        content: "{\"city\":\"Oslo\",\"celsius\":21}",
        tool_call_id: "call_1",
        name: "get_weather"
      })
      expect(events.filter((event) => event.type === "tool-complete").map((event) => event.toolCallId)).toEqual(["call_1"])
      expect(events.at(-1)).toMatchObject({ type: "task-complete", content: "It is 21 °C in Oslo.", steps: 2 })
    }))

  it.scoped("with stream: false Bedrock is asked through Converse and the run completes a tool loop", () =>
    Effect.gen(function*() {
      const server = yield* BedrockServer.make
      yield* server.enqueue(
        BedrockServer.converse({ toolUses: [{ toolUseId: "tu-1", name: "get_weather", input: { city: "Oslo" } }], stopReason: "tool_use" }),
        BedrockServer.converse({ text: "It is 21 °C in Oslo." })
      )
      const events = yield* collect(
        Agent.run({ prompt: "Weather in Oslo?" }).pipe(Stream.provideLayer(Layer.merge(bedrock(server, { stream: false }), weatherTools)))
      )
      expect((yield* server.requests).map((request) => request.operation)).toEqual(["converse", "converse"])
      expect(events.filter((event) => event.type === "tool-complete").map((event) => event.toolCallId)).toEqual(["tu-1"])
      expect(events.at(-1)).toMatchObject({ type: "task-complete", content: "It is 21 °C in Oslo.", steps: 2 })
    }))

  it.scoped("a message with image parts is routed by its text, and the model it is routed to receives the image", () =>
    Effect.gen(function*() {
      const small = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["from small"])) })
      const large = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["from large"])) })
      const smallLayer = OpenAiCompatible.liteLLMProvider({ id: "small", model: "small-model", baseUrl: small.url })
      const largeLayer = OpenAiCompatible.liteLLMProvider({ id: "large", model: "large-model", baseUrl: large.url })
      const router = TierRouter.fromLayers({
        tiers: { simple: smallLayer, moderate: smallLayer, complex: largeLayer, reasoning: largeLayer }
      }).pipe(Layer.provide(NodeHttpClient.layerUndici))
      const image = { type: "image", url: "https://example.com/proof.png" } as const
      const ask = (text: string) =>
        collect(Agent.run({ messages: [Message.user([{ type: "text", text }, image])] }).pipe(Stream.provideLayer(Layer.merge(router, weatherTools))))
      const greeting = yield* ask("Hi!")
      const proof = yield* ask("Prove that the square root of two is irrational, then analyse each step of the proof rigorously.")
      const routeOf = (events: ReadonlyArray<AgentEvent>) => events.find((event) => event.type === "route-selected")
      expect(routeOf(greeting)).toMatchObject({ tier: "simple", provider: "small" })
      expect(routeOf(proof)).toMatchObject({ provider: "large" })
      expect(proof.at(-1)).toMatchObject({ type: "task-complete", content: "from large" })
      expect(large.completions[0]!.body.messages).toEqual([{
        role: "user",
        content: [
          { type: "text", text: "Prove that the square root of two is irrational, then analyse each step of the proof rigorously." },
          { type: "image_url", image_url: { url: "https://example.com/proof.png" } }
        ]
      }])
    }))
})
