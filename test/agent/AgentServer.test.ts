import { Message, type StreamResponse, type Task } from "@a2a-js/sdk"
import { type Client, ClientFactory, DefaultAgentCardResolver } from "@a2a-js/sdk/client"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as AgentServer from "../../src/agent/AgentServer.js"
import { AgentError } from "../../src/domain/Errors.js"
import {
  type AgentEvent,
  ContentDeltaEvent,
  ReasoningDeltaEvent,
  TaskCompleteEvent,
  TaskCreatedEvent,
  TaskStatusEvent,
  ToolCompleteEvent,
  ToolStartEvent
} from "../../src/domain/Events.js"
import type { AuthContext } from "../../src/domain/ExecutionContext.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import * as AgentTools from "../../src/tools/AgentTools.js"

const card = {
  name: "Kernel Helper",
  description: "Answers questions with a lookup tool.",
  version: "2.0.0",
  skills: [{ id: "qa", name: "Questions", description: "Answers questions" }]
}

/** What the scripted run saw, for assertions on the server side. */
interface Seen {
  readonly inputs: Array<AgentServer.RunInput>
  readonly interrupted: Deferred.Deferred<void>
}

/**
 * A scripted agent: "fail" fails with an AgentError, "slow" works until interrupted, "which?"
 * waits for input; anything else looks something up and answers "The answer is 42.".
 */
const scripted = (seen: Seen): AgentServer.Run => (input) => {
  seen.inputs.push(input)
  const ids = { contextId: input.contextId, taskId: input.taskId, timestamp: new Date().toISOString() }
  const tool = { ...ids, toolCallId: "tc-1", toolName: "lookup" }
  const created = new TaskCreatedEvent({ ...ids, agentId: "helper" })
  const events: ReadonlyArray<AgentEvent> = [
    created,
    new ToolStartEvent({ ...tool, arguments: { q: input.prompt } }),
    new ToolCompleteEvent({ ...tool, result: 42 }),
    new ContentDeltaEvent({ ...ids, delta: "The answer " }),
    new ContentDeltaEvent({ ...ids, delta: "is 42." }),
    new TaskCompleteEvent({ ...ids, content: "The answer is 42.", steps: 2, usage: { totalTokens: 12 } })
  ]
  switch (input.prompt) {
    case "fail":
      return Stream.concat(
        Stream.make(created),
        Stream.fail(new AgentError({ reason: "ModelFailed", message: "The model is down: try again later." }))
      )
    case "slow":
      return Stream.concat(Stream.make(created), Stream.never).pipe(
        Stream.ensuring(Deferred.succeed(seen.interrupted, undefined))
      )
    case "which?":
      return Stream.make(created, new TaskStatusEvent({ ...ids, status: "waiting-input", message: "Which file?" }))
    case "think":
      return Stream.make(
        created,
        new ReasoningDeltaEvent({ ...ids, delta: "The user wants " }),
        new ReasoningDeltaEvent({ ...ids, delta: "the answer." }),
        new ContentDeltaEvent({ ...ids, delta: "42." }),
        new TaskCompleteEvent({ ...ids, content: "42.", steps: 1, usage: {} })
      )
    default:
      return Stream.fromIterable(events)
  }
}

const serve = (options: Partial<AgentServer.Options> = {}) =>
  Effect.gen(function*() {
    const seen: Seen = { inputs: [], interrupted: yield* Deferred.make<void>() }
    const info = yield* AgentServer.make({ card, run: scripted(seen), ...options })
    return { info, seen }
  })

const clientOf = (url: string) => Effect.promise(() => new ClientFactory().createFromUrl(url))

const userMessage = (text: string, contextId = "ctx-42") =>
  Message.fromJSON({ messageId: crypto.randomUUID(), contextId, role: "ROLE_USER", parts: [{ text }] })

const request = (text: string) => ({ tenant: "", message: userMessage(text), configuration: undefined, metadata: undefined })

const collect = (client: Client, text: string, auth?: string) =>
  Effect.promise(async () => {
    const out: Array<StreamResponse> = []
    const options = auth === undefined ? undefined : { serviceParameters: { authorization: auth } }
    for await (const response of client.sendMessageStream(request(text), options)) out.push(response)
    return out
  })

const textOfParts = (parts: ReadonlyArray<{ content?: { $case: string; value: unknown } | undefined }>) =>
  parts.map((part) => (part.content?.$case === "text" ? String(part.content.value) : "")).join("")

/** Each stream response as [kind, state or text, append]. */
const compact = (responses: ReadonlyArray<StreamResponse>) =>
  responses.map((response) => {
    const payload = response.payload!
    switch (payload.$case) {
      case "task":
        return ["task", payload.value.status?.state]
      case "statusUpdate":
        return ["status", payload.value.status?.state, textOfParts(payload.value.status?.message?.parts ?? [])]
      case "artifactUpdate":
        return ["artifact", textOfParts(payload.value.artifact?.parts ?? []), payload.value.append]
      case "message":
        return ["message", textOfParts(payload.value.parts)]
    }
  })

const SUBMITTED = 1, WORKING = 2, COMPLETED = 3, FAILED = 4, CANCELED = 5, INPUT_REQUIRED = 6

describe("AgentServer", () => {
  it.scoped("serves the agent card on 127.0.0.1 at both well-known paths", () =>
    Effect.gen(function*() {
      const { info } = yield* serve()
      expect(info.url).toBe(`http://127.0.0.1:${info.port}`)
      expect(info.cardUrl).toBe(`${info.url}/.well-known/agent-card.json`)
      for (const path of ["/.well-known/agent-card.json", "/.well-known/agent.json"]) {
        const resolved = yield* Effect.promise(() => new DefaultAgentCardResolver().resolve(info.url, path))
        expect(resolved).toMatchObject({
          name: "Kernel Helper",
          description: "Answers questions with a lookup tool.",
          version: "2.0.0",
          capabilities: { streaming: true },
          supportedInterfaces: [{ url: `${info.url}/a2a/jsonrpc`, protocolBinding: "JSONRPC" }],
          skills: [{ id: "qa", name: "Questions" }]
        })
      }
    }))

  it.scoped("streams a run as task, status and artifact updates in order, ending completed with the answer", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      const client = yield* clientOf(info.url)
      const responses = yield* collect(client, "What is the answer?")
      expect(compact(responses)).toEqual([
        ["task", SUBMITTED],
        ["status", WORKING, ""],
        ["status", WORKING, "Calling tool lookup"],
        ["status", WORKING, "Tool lookup finished"],
        ["artifact", "The answer ", false],
        ["artifact", "is 42.", true],
        ["artifact", "The answer is 42.", false],
        ["status", COMPLETED, ""]
      ])
      const taskId = (responses[0]!.payload!.value as Task).id
      expect(seen.inputs).toEqual([{ prompt: "What is the answer?", contextId: "ctx-42", taskId }])
      const stored = yield* Effect.promise(() => client.getTask({ tenant: "", id: taskId }))
      expect(stored.status?.state).toBe(COMPLETED)
      expect(stored.artifacts.map((artifact) => textOfParts(artifact.parts))).toEqual(["The answer is 42."])
    }))

  it.scoped("streams the model's reasoning as working status updates whose text part is marked kind: reasoning, apart from the answer", () =>
    Effect.gen(function*() {
      const { info } = yield* serve()
      const client = yield* clientOf(info.url)
      const responses = yield* collect(client, "think")
      expect(compact(responses)).toEqual([
        ["task", SUBMITTED],
        ["status", WORKING, ""],
        ["status", WORKING, "The user wants "],
        ["status", WORKING, "the answer."],
        ["artifact", "42.", false],
        ["artifact", "42.", false],
        ["status", COMPLETED, ""]
      ])
      const reasoning = responses.flatMap((response) =>
        response.payload?.$case === "statusUpdate" && response.payload.value.status?.message !== undefined
          ? [response.payload.value]
          : []
      )
      expect(reasoning.map((update) => [update.status!.message!.parts.map((part) => part.metadata), update.metadata])).toEqual([
        [[{ kind: "reasoning" }], { event: "reasoning-delta" }],
        [[{ kind: "reasoning" }], { event: "reasoning-delta" }]
      ])
      const taskId = (responses[0]!.payload!.value as Task).id
      const stored = yield* Effect.promise(() => client.getTask({ tenant: "", id: taskId }))
      expect(stored.artifacts.map((artifact) => textOfParts(artifact.parts))).toEqual(["42."])
    }))

  it.scoped("answers a blocking message/send with the completed task", () =>
    Effect.gen(function*() {
      const { info } = yield* serve()
      const client = yield* clientOf(info.url)
      const result = (yield* Effect.promise(() => client.sendMessage(request("What is the answer?")))) as Task
      expect(result.status?.state).toBe(COMPLETED)
      expect(result.artifacts.map((artifact) => textOfParts(artifact.parts))).toEqual(["The answer is 42."])
    }))

  it.scoped("ends a run that fails with an AgentError in status failed carrying the error's message", () =>
    Effect.gen(function*() {
      const { info } = yield* serve()
      const client = yield* clientOf(info.url)
      const responses = yield* collect(client, "fail")
      expect(compact(responses).at(-1)).toEqual(["status", FAILED, "The model is down: try again later."])
    }))

  it.scoped("maps waiting-input to input-required, and a follow-up message runs again in the same task", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      const client = yield* clientOf(info.url)
      const responses = yield* collect(client, "which?")
      expect(compact(responses).at(-1)).toEqual(["status", INPUT_REQUIRED, "Which file?"])
      const taskId = (responses[0]!.payload!.value as Task).id
      const followUp = Message.fromJSON({ ...Message.toJSON(userMessage("notes.txt")) as object, taskId })
      const again = yield* Effect.promise(async () => {
        const out: Array<StreamResponse> = []
        for await (const r of client.sendMessageStream({ ...request(""), message: followUp })) out.push(r)
        return out
      })
      expect(compact(again).at(-1)).toEqual(["status", COMPLETED, ""])
      expect(seen.inputs.map((input) => [input.prompt, input.taskId])).toEqual([["which?", taskId], ["notes.txt", taskId]])
    }))

  it.scoped("tasks/cancel interrupts the run and the task ends canceled", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      const client = yield* clientOf(info.url)
      const task = yield* Effect.promise(async () => {
        for await (const response of client.sendMessageStream(request("slow"))) {
          if (response.payload?.$case === "statusUpdate") return response.payload.value.taskId
        }
        throw new Error("the stream ended before the run started")
      })
      const cancelled = yield* Effect.promise(() => client.cancelTask({ tenant: "", id: task, metadata: undefined }))
      expect(cancelled.status?.state).toBe(CANCELED)
      yield* Deferred.await(seen.interrupted)
      const stored = yield* Effect.promise(() => client.getTask({ tenant: "", id: task }))
      expect(stored.status?.state).toBe(CANCELED)
    }))

  it.scoped("enforces the bearer token: 401 without it or with a wrong one, served with the right one", () =>
    Effect.gen(function*() {
      const { info } = yield* serve({ bearerToken: Redacted.make("s3cret-token") })
      const post = (authorization?: string) =>
        Effect.promise(() =>
          fetch(`${info.url}/a2a/jsonrpc`, {
            method: "POST",
            headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
            body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "GetTask", params: { id: "x" } })
          })
        )
      expect((yield* post()).status).toBe(401)
      const wrong = yield* post("Bearer not-the-token")
      expect(wrong.status).toBe(401)
      expect(yield* Effect.promise(() => wrong.text())).not.toContain("s3cret-token")
      const client = yield* clientOf(info.url)
      const responses = yield* collect(client, "hello", "Bearer s3cret-token")
      expect(compact(responses).at(-1)).toEqual(["status", COMPLETED, ""])
    }))

  it.scoped("passes the caller's bearer token to run as authContext only with forwardCredentials", () =>
    Effect.gen(function*() {
      const plain = yield* serve()
      yield* collect(yield* clientOf(plain.info.url), "hello", "Bearer caller-token")
      expect(plain.seen.inputs[0]!.authContext).toBeUndefined()

      const forwarding = yield* serve({ forwardCredentials: true })
      yield* collect(yield* clientOf(forwarding.info.url), "hello", "Bearer caller-token")
      const forwarded = forwarding.seen.inputs[0]!.authContext as AuthContext
      expect(Redacted.isRedacted(forwarded.credentials!.accessToken)).toBe(true)
      expect(Redacted.value(forwarded.credentials!.accessToken)).toBe("caller-token")
    }))

  it.scoped("AgentToolProvider calling the served agent yields tool-progress and tool-complete with the answer", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve({ bearerToken: "user-token" })
      const provider = yield* AgentTools.fromUrl(info.cardUrl)
      expect(provider.name).toBe("Kernel_Helper")
      const context = ExecutionContext.make({ contextId: "conv-9", taskId: "t-9", agentId: "host", accessToken: "user-token" })
      const events = yield* provider.execute({ id: "call-9", name: provider.name, arguments: { prompt: "What is the answer?" } }, context)
        .pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(events.map((event) => [event.type, "message" in event ? event.message : "result" in event ? event.result : undefined]))
        .toEqual([
          ["tool-start", undefined],
          ["tool-progress", "Calling tool lookup"],
          ["tool-progress", "Tool lookup finished"],
          ["tool-complete", "The answer is 42."]
        ])
      expect(seen.inputs[0]!.contextId).toBe("conv-9")
    }))
})

describe("AgentServer: where it listens", () => {
  /** A plain Node server holding a port on 127.0.0.1 for the test's lifetime. */
  const occupiedPort = Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Http.Server>((resolve) => {
        const server = Http.createServer()
        server.listen(0, "127.0.0.1", () => resolve(server))
      })
    ),
    (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
  ).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

  it.scoped("a port in use fails with BindError PortInUse, naming the port and host and saying what to do", () =>
    Effect.gen(function*() {
      const port = yield* occupiedPort
      const error = yield* Effect.flip(serve({ port }))
      expect(error).toBeInstanceOf(AgentServer.BindError)
      expect(error).toMatchObject({ _tag: "BindError", reason: "PortInUse", host: "127.0.0.1", port })
      expect(error.message).toContain(
        `port ${port} on 127.0.0.1 is in use; stop what uses it or pick another port (port: 0 picks a free one)`
      )
    }))
})
