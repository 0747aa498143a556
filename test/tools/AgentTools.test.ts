import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type { ToolError } from "../../src/domain/Errors.js"
import type { ToolEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import * as AgentTools from "../../src/tools/AgentTools.js"
import type { ToolProvider } from "../../src/tools/ToolProvider.js"
import * as Peers from "../peers/A2aAgents.js"

const context = ExecutionContext.make({ contextId: "conversation-7", taskId: "task-3", agentId: "host" })

const callFor = (provider: ToolProvider, prompt: unknown, id = "call-1") => ({
  id,
  name: provider.name,
  arguments: { prompt }
})

const run = (provider: ToolProvider, prompt: unknown, ctx = context) =>
  provider.execute(callFor(provider, prompt), ctx).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

const runError = (provider: ToolProvider, prompt: unknown) =>
  Effect.flip(run(provider, prompt))

const peer = (behaviour: Peers.Behaviour, extra: Partial<Peers.PeerOptions> = {}) =>
  Peers.serve({ name: "Research Copilot!", description: "Finds answers.", behaviour, ...extra })

const compact = (events: ReadonlyArray<ToolEvent>) =>
  events.map((event) => {
    switch (event.type) {
      case "tool-progress":
        return [event.type, event.message]
      case "tool-complete":
        return [event.type, event.result]
      case "tool-input-required":
        return [event.type, event.message]
      default:
        return [event.type]
    }
  })

/** A URL on 127.0.0.1 where nothing listens any more. */
const deadUrl = Effect.async<string>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(`http://127.0.0.1:${port}`)))
  })
})

describe("AgentToolProvider", () => {
  it.scoped("offers the agent as one tool named and described from its card, taking { prompt }", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.streaming, {
        skills: [{ id: "search", name: "Web search", description: "Searches the web" }]
      })
      const provider = yield* AgentTools.fromUrl(agent.url)
      const tools = yield* provider.getTools
      expect(tools).toHaveLength(1)
      expect(tools[0]!.name).toBe("Research_Copilot")
      expect(tools[0]!.description).toBe("Finds answers.\nSkills:\n- Web search: Searches the web")
      expect(tools[0]!.parameters).toMatchObject({ type: "object", required: ["prompt"] })
      expect(Option.isSome(yield* provider.getTool("Research_Copilot"))).toBe(true)
      expect(AgentTools.toolNameFor("ümlaut agent / v2 ".repeat(10))).toMatch(/^[a-zA-Z0-9_-]{1,64}$/)
    }))

  it.scoped("streams status updates as tool-progress and completes with the artifacts' text and data", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.streaming)
      const provider = AgentTools.from({ name: "Research Copilot", description: "Finds answers.", url: agent.url })
      const events = yield* run(provider, "What is the answer?")
      expect(compact(events)).toEqual([
        ["tool-start"],
        ["tool-progress", "Looking it up"],
        ["tool-progress", "Almost there"],
        ["tool-complete", { text: "The answer is 42.", data: [{ answer: 42 }] }]
      ])
      for (const event of events) {
        expect(event).toMatchObject({
          contextId: "conversation-7",
          taskId: "task-3",
          toolCallId: "call-1",
          toolName: "Research_Copilot"
        })
      }
      expect(agent.observed.prompts).toEqual(["What is the answer?"])
    }))

  it.scoped("leaves out status parts marked as the remote model's reasoning: not progress, not the answer", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.thinksAloud)
      const provider = AgentTools.from({ name: "Thinker", description: "Thinks.", url: agent.url })
      const events = yield* run(provider, "What is the answer?")
      expect(compact(events)).toEqual([["tool-start"], ["tool-progress", "Looking it up"], ["tool-complete", "Done: 42."]])
    }))

  it.scoped("sends the ExecutionContext's contextId as the A2A message's contextId", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.echo)
      const provider = AgentTools.from({ name: "Echo", description: "Echoes.", url: agent.url })
      const events = yield* run(provider, "hello")
      expect(events.at(-1)).toMatchObject({ type: "tool-complete", result: "echo: hello" })
      expect(agent.observed.contextIds).toEqual(["conversation-7"])
    }))

  it.scoped("maps failed, rejected, canceled and auth-required to typed ToolErrors with the agent's message", () =>
    Effect.gen(function*() {
      const cases = [
        ["FAILED", "database exploded", "ExecutionFailed"],
        ["REJECTED", "I do not do taxes", "InputRejected"],
        ["CANCELED", "operator stopped me", "ExecutionFailed"],
        ["AUTH_REQUIRED", "log in to the wiki first", "Unauthorized"]
      ] as const
      for (const [state, text, reason] of cases) {
        const agent = yield* peer(Peers.endsIn(state, text))
        const provider = AgentTools.from({ name: "Worker", description: "Works.", url: agent.url })
        const error = yield* runError(provider, "do it")
        expect(error._tag).toBe("ToolError")
        expect(error.reason).toBe(reason)
        expect(error.message).toContain(text)
        expect(error).toMatchObject({ toolName: "Worker", toolCallId: "call-1" })
      }
    }))

  it.scoped("ends with tool-input-required, and the next call in the same context continues the remote task", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.asksForInput)
      const provider = AgentTools.from({ name: "Weather", description: "Weather.", url: agent.url })
      const first = yield* run(provider, "What is the weather?")
      expect(compact(first)).toEqual([["tool-start"], ["tool-input-required", "Which city?"]])
      const second = yield* run(provider, "Paris")
      expect(compact(second)).toEqual([["tool-start"], ["tool-complete", "Sunny in Paris"]])
      expect(agent.observed.createdTasks).toHaveLength(1)
      expect(agent.observed.prompts).toEqual(["What is the weather?", "Paris"])
    }))

  it.scoped("interrupting the call cancels the remote task, and the server sees the cancel", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.slow)
      const provider = AgentTools.from({ name: "Slow", description: "Slow.", url: agent.url })
      const started = yield* Deferred.make<void>()
      const fiber = yield* provider.execute(callFor(provider, "take your time"), context).pipe(
        Stream.runForEach((event) => event.type === "tool-progress" ? Deferred.succeed(started, undefined) : Effect.void),
        Effect.fork
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(agent.observed.createdTasks).toHaveLength(1)
      expect(agent.observed.cancelledTasks).toEqual(agent.observed.createdTasks)
      expect(agent.observed.methods).toEqual(["SendStreamingMessage", "CancelTask"])
    }))

  it.scoped("a call past its timeout fails with Timeout and cancels the remote task", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.slow)
      const provider = AgentTools.from({ name: "Slow", description: "Slow.", url: agent.url, timeout: "1 minute" })
      const started = yield* Deferred.make<void>()
      const fiber = yield* provider.execute(callFor(provider, "take your time"), context).pipe(
        Stream.runForEach((event) => event.type === "tool-progress" ? Deferred.succeed(started, undefined) : Effect.void),
        Effect.flip,
        Effect.fork
      )
      yield* Deferred.await(started)
      yield* TestClock.adjust("1 minute")
      const error: ToolError = yield* Fiber.join(fiber)
      expect(error.reason).toBe("Timeout")
      expect(agent.observed.cancelledTasks).toEqual(agent.observed.createdTasks)
    }))

  it.scoped("falls back to /.well-known/agent.json when agent-card.json is missing", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.echo, { name: "Legacy Path Agent", cardFile: "agent.json" })
      const provider = yield* AgentTools.fromUrl(agent.url)
      expect(provider.name).toBe("Legacy_Path_Agent")
      const events = yield* run(provider, "ping")
      expect(events.at(-1)).toMatchObject({ type: "tool-complete", result: "echo: ping" })
    }))

  it.scoped("sends the caller's access token as a bearer token; a refusal is Unauthorized; the token shows in no event or error", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.echo)
      const provider = AgentTools.from({ name: "Echo", description: "Echoes.", url: agent.url })
      const userContext = ExecutionContext.make({
        contextId: "c-user",
        taskId: "t-user",
        agentId: "host",
        accessToken: "user-token-1234"
      })
      const events = yield* run(provider, "hi", userContext)
      expect(agent.observed.authorization).toEqual(["Bearer user-token-1234"])
      expect(JSON.stringify(events)).not.toContain("user-token-1234")

      const refusing = yield* Peers.serve({ name: "Guarded", description: "x", behaviour: Peers.echo, requireBearer: "other" })
      const guarded = AgentTools.from({ name: "Guarded", description: "x", url: refusing.url })
      const error = yield* Effect.flip(
        guarded.execute(callFor(guarded, "hi"), userContext).pipe(Stream.runDrain)
      )
      expect(error.reason).toBe("Unauthorized")
      expect(JSON.stringify(error)).not.toContain("user-token-1234")
    }))

  it.scoped("applies static headers and header functions of the caller's identity", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.echo)
      const provider = AgentTools.from({
        name: "Echo",
        description: "Echoes.",
        url: agent.url,
        headers: (auth) => ({ Authorization: `Token for ${auth?.userId ?? "nobody"}` })
      })
      const userContext = ExecutionContext.make({ contextId: "c", taskId: "t", agentId: "a", userId: "ada" })
      yield* run(provider, "hi", userContext)
      const fixed = AgentTools.from({
        name: "Echo",
        description: "Echoes.",
        url: agent.url,
        headers: { authorization: Redacted.make("Bearer service-key-9") }
      })
      yield* run(fixed, "hi")
      expect(agent.observed.authorization).toEqual(["Token for ada", "Bearer service-key-9"])
    }))

  it.scoped("rejects arguments without a prompt with InvalidArguments naming the field", () =>
    Effect.gen(function*() {
      const agent = yield* peer(Peers.echo)
      const provider = AgentTools.from({ name: "Echo", description: "Echoes.", url: agent.url })
      const error = yield* runError(provider, 42)
      expect(error.reason).toBe("InvalidArguments")
      expect(error.message).toContain("prompt")
      expect(agent.observed.methods).toEqual([])
    }))

  it.effect("a dead server gives ToolError Transport with the URL and what to do", () =>
    Effect.gen(function*() {
      const url = yield* deadUrl
      const cardError = yield* Effect.flip(AgentTools.fromUrl(url))
      expect(cardError.reason).toBe("Transport")
      expect(cardError.message).toContain(url)
      expect(cardError.message).toContain("ECONNREFUSED")
      expect(cardError.message).toContain("Check that the agent is running")

      const provider = AgentTools.from({ name: "Gone", description: "Gone.", url })
      const callError = yield* runError(provider, "anyone there?")
      expect(callError.reason).toBe("Transport")
      expect(callError.message).toContain(url)
    }))
})
