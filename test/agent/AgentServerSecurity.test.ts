/**
 * What an AgentServer refuses and lets go: runs whose client left, oversized bodies, tasks kept
 * past their time or beyond the cap, requests for foreign hosts and from foreign web origins.
 * Every request here is a real HTTP request to a server on 127.0.0.1.
 */
import { Message, type Task } from "@a2a-js/sdk"
import { type Client, ClientFactory } from "@a2a-js/sdk/client"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Http from "node:http"
import * as AgentServer from "../../src/agent/AgentServer.js"
import { type AgentEvent, TaskCompleteEvent, TaskCreatedEvent, ToolStartEvent } from "../../src/domain/Events.js"

const card = { name: "Guarded Helper", description: "Answers, within limits." }

const COMPLETED = 3, CANCELED = 5

/** What the scripted agent saw and did, for server-side assertions. */
interface Seen {
  readonly prompts: Array<string>
  /** Set with the task id when a "wait" run is inside its tool call. */
  readonly toolStarted: Deferred.Deferred<string>
  /** Set when that tool call was interrupted. */
  readonly toolInterrupted: Deferred.Deferred<void>
  /** Lets a "wait" run's tool call finish. */
  readonly release: Deferred.Deferred<void>
}

/**
 * A scripted agent: "wait" starts a tool call that lasts until released (or interrupted);
 * anything else answers "done." at once.
 */
const scripted = (seen: Seen): AgentServer.Run => (input) => {
  seen.prompts.push(input.prompt)
  const ids = { contextId: input.contextId, taskId: input.taskId, timestamp: new Date().toISOString() }
  const created = new TaskCreatedEvent({ ...ids, agentId: "guarded" })
  const complete = new TaskCompleteEvent({ ...ids, content: "done.", steps: 1, usage: {} })
  if (input.prompt !== "wait") return Stream.make(created, complete)
  const toolCall = Deferred.succeed(seen.toolStarted, input.taskId).pipe(
    Effect.zipRight(Deferred.await(seen.release)),
    Effect.onInterrupt(() => Deferred.succeed(seen.toolInterrupted, undefined)),
    Effect.as(complete as AgentEvent)
  )
  return Stream.concat(
    Stream.make(created, new ToolStartEvent({ ...ids, toolCallId: "tc-1", toolName: "lookup", arguments: {} })),
    Stream.fromEffect(toolCall)
  )
}

const serve = (options: Partial<AgentServer.Options> = {}) =>
  Effect.gen(function*() {
    const seen: Seen = {
      prompts: [],
      toolStarted: yield* Deferred.make<string>(),
      toolInterrupted: yield* Deferred.make<void>(),
      release: yield* Deferred.make<void>()
    }
    const info = yield* AgentServer.make({ card, run: scripted(seen), ...options })
    return { info, seen }
  })

const clientOf = (url: string) => Effect.promise(() => new ClientFactory().createFromUrl(url))

const userMessage = (text: string) =>
  Message.fromJSON({ messageId: crypto.randomUUID(), contextId: "ctx-7", role: "ROLE_USER", parts: [{ text }] })

/** A JSON-RPC send as the SDK's client writes it. */
const rpcBody = (method: "SendMessage" | "SendStreamingMessage", text: string, configuration?: object) =>
  JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method,
    params: { message: Message.toJSON(userMessage(text)), ...(configuration === undefined ? {} : { configuration }) }
  })

const rpcHeaders = { "content-type": "application/json", "a2a-version": "1.0" }

/** Runs a message to its end through the SDK client and returns its task id. */
const runToEnd = (client: Client, text: string) =>
  Effect.promise(async () => {
    let taskId = ""
    for await (const response of client.sendMessageStream({ tenant: "", message: userMessage(text), configuration: undefined, metadata: undefined })) {
      if (response.payload?.$case === "task") taskId = response.payload.value.id
    }
    return taskId
  })

/** The task's state, or "gone" when the server no longer has it. */
const stateOf = (client: Client, id: string) =>
  Effect.tryPromise(() => client.getTask({ tenant: "", id })).pipe(
    Effect.map((task): number | "gone" => task.status?.state ?? 0),
    Effect.orElseSucceed(() => "gone" as const)
  )

/** A real pause, whatever the clock: the server works on its own sockets meanwhile. */
const pause = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 20)))

/** Polls `check` until `done` holds, at most 250 times; returns the last value seen. */
const eventually = <A>(check: Effect.Effect<A>, done: (value: A) => boolean) =>
  Effect.gen(function*() {
    let value = yield* check
    for (let attempt = 0; attempt < 250 && !done(value); attempt++) {
      yield* pause
      value = yield* check
    }
    return value
  })

/** A bound on a wait that would otherwise hang the test when the server misbehaves. */
const within = <A, E, R>(what: string) => (effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: "10 seconds", onTimeout: () => new Error(`${what} did not happen within 10 s`) })

interface RawAnswer {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/**
 * A request through `node:http`, which (unlike fetch) lets a test set `Host`, stream a chunked
 * body and leave a body unfinished. Succeeds with the answer as soon as it is complete.
 */
const raw = (port: number, request: {
  readonly method?: string
  readonly path?: string
  readonly headers?: Http.OutgoingHttpHeaders
  readonly chunks?: ReadonlyArray<string>
  readonly end?: boolean
}) =>
  Effect.async<RawAnswer, Error>((resume) => {
    let settled = false
    const settle = (effect: Effect.Effect<RawAnswer, Error>) => {
      if (!settled) resume(effect)
      settled = true
    }
    const outgoing = Http.request({
      host: "127.0.0.1",
      port,
      method: request.method ?? "POST",
      path: request.path ?? "/a2a/jsonrpc",
      headers: request.headers,
      agent: false
    })
    outgoing.on("response", (incoming) => {
      let body = ""
      incoming.setEncoding("utf8")
      incoming.on("data", (chunk: string) => (body += chunk))
      incoming.on("end", () => settle(Effect.succeed({ status: incoming.statusCode ?? 0, headers: incoming.headers, body })))
      incoming.on("error", (error) => settle(Effect.fail(error)))
    })
    // Writes after the server answered may fail (it closes the connection); the answer counts.
    outgoing.on("error", (error) => settle(Effect.fail(error)))
    for (const chunk of request.chunks ?? []) outgoing.write(chunk)
    if (request.end !== false) outgoing.end()
    return Effect.sync(() => outgoing.destroy())
  }).pipe(within("an answer"))

describe("AgentServer, a client that leaves", () => {
  it.scopedLive("closing a message stream interrupts the run's tool call and the task ends canceled", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      const controller = new AbortController()
      const response = yield* Effect.promise(() =>
        fetch(`${info.url}/a2a/jsonrpc`, {
          method: "POST",
          headers: rpcHeaders,
          body: rpcBody("SendStreamingMessage", "wait"),
          signal: controller.signal
        })
      )
      expect(response.headers.get("content-type")).toContain("text/event-stream")
      const taskId = yield* Deferred.await(seen.toolStarted).pipe(within("the tool call"))
      controller.abort()
      yield* Deferred.await(seen.toolInterrupted).pipe(within("the tool call's interruption"))
      const client = yield* clientOf(info.url)
      expect(yield* eventually(stateOf(client, taskId), (state) => state === CANCELED)).toBe(CANCELED)
    }))

  it.scopedLive("a blocking SendMessage whose client leaves interrupts the run and the task ends canceled", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      const controller = new AbortController()
      const sent = fetch(`${info.url}/a2a/jsonrpc`, {
        method: "POST",
        headers: rpcHeaders,
        body: rpcBody("SendMessage", "wait"),
        signal: controller.signal
      }).catch((error: unknown) => error)
      const taskId = yield* Deferred.await(seen.toolStarted).pipe(within("the tool call"))
      controller.abort()
      yield* Effect.promise(() => sent)
      yield* Deferred.await(seen.toolInterrupted).pipe(within("the tool call's interruption"))
      const client = yield* clientOf(info.url)
      expect(yield* eventually(stateOf(client, taskId), (state) => state === CANCELED)).toBe(CANCELED)
    }))

  it.scopedLive("a non-blocking SendMessage's run goes on after its client has gone, to completed", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      const answer = yield* raw(info.port, {
        headers: rpcHeaders,
        chunks: [rpcBody("SendMessage", "wait", { returnImmediately: true })]
      })
      expect(answer.status).toBe(200)
      const task = JSON.parse(answer.body).result.task as { id: string; status: { state: string } }
      const taskId = yield* Deferred.await(seen.toolStarted).pipe(within("the tool call"))
      expect(task.id).toBe(taskId)
      yield* Deferred.succeed(seen.release, undefined)
      const client = yield* clientOf(info.url)
      expect(yield* eventually(stateOf(client, taskId), (state) => state === COMPLETED)).toBe(COMPLETED)
      expect(yield* Deferred.isDone(seen.toolInterrupted)).toBe(false)
    }))
})

describe("AgentServer, limits", () => {
  it.scopedLive("refuses a body whose Content-Length is over maxBodyBytes with 413 before reading it, and runs nothing", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      // 100 MB announced, a few bytes sent: an answer can only come from the announced length.
      const answer = yield* raw(info.port, {
        headers: { ...rpcHeaders, "content-length": String(100 * 1024 * 1024) },
        chunks: [rpcBody("SendMessage", "hello").slice(0, 40)],
        end: false
      })
      expect(answer.status).toBe(413)
      expect(JSON.parse(answer.body)).toMatchObject({
        jsonrpc: "2.0",
        error: { message: expect.stringContaining("at most 1048576 bytes (AgentServer's maxBodyBytes)") }
      })
      expect(seen.prompts).toEqual([])
    }))

  it.scopedLive("refuses a chunked body as soon as it grows past maxBodyBytes with 413, and runs nothing", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve({ maxBodyBytes: 1024 })
      const body = rpcBody("SendMessage", "x".repeat(4096))
      // No Content-Length: node sends the chunks with Transfer-Encoding: chunked, and never ends.
      const answer = yield* raw(info.port, {
        headers: rpcHeaders,
        chunks: [body.slice(0, 600), body.slice(600, 1200), body.slice(1200, 1800)],
        end: false
      })
      expect(answer.status).toBe(413)
      expect(JSON.parse(answer.body).error.message).toContain("at most 1024 bytes")
      expect(seen.prompts).toEqual([])
    }))

  it.scoped("drops a finished task taskTtl after it finished, and keeps it until then", () =>
    Effect.gen(function*() {
      const { info } = yield* serve({ taskTtl: "10 minutes" })
      const client = yield* clientOf(info.url)
      const taskId = yield* runToEnd(client, "hello")
      expect(yield* stateOf(client, taskId)).toBe(COMPLETED)
      yield* TestClock.adjust("9 minutes")
      expect(yield* stateOf(client, taskId)).toBe(COMPLETED)
      yield* TestClock.adjust("1 minute")
      expect(yield* eventually(stateOf(client, taskId), (state) => state === "gone")).toBe("gone")
    }))

  it.scoped("beyond maxTasks, the oldest finished task is dropped first", () =>
    Effect.gen(function*() {
      const { info } = yield* serve({ maxTasks: 2 })
      const client = yield* clientOf(info.url)
      const first = yield* runToEnd(client, "one")
      const second = yield* runToEnd(client, "two")
      const third = yield* runToEnd(client, "three")
      expect(yield* stateOf(client, first)).toBe("gone")
      expect(yield* stateOf(client, second)).toBe(COMPLETED)
      expect(yield* stateOf(client, third)).toBe(COMPLETED)
    }))

  it.scoped("ListTasks lists the kept tasks newest first, a page at a time, without the dropped one", () =>
    Effect.gen(function*() {
      const { info } = yield* serve({ maxTasks: 3 })
      const client = yield* clientOf(info.url)
      const ids: Array<string> = []
      for (const text of ["one", "two", "three", "four"]) ids.push(yield* runToEnd(client, text))
      const list = (pageToken: string) =>
        Effect.promise(() =>
          client.listTasks({
            tenant: "",
            contextId: "ctx-7",
            status: 0,
            pageSize: 2,
            pageToken,
            historyLength: undefined,
            statusTimestampAfter: undefined,
            includeArtifacts: undefined
          })
        )
      const first = yield* list("")
      const second = yield* list(first.nextPageToken)
      const listed = [...first.tasks, ...second.tasks]
      expect([first.tasks.length, second.tasks.length, first.totalSize, second.nextPageToken]).toEqual([2, 1, 3, ""])
      expect(listed.map((task) => task.id).sort()).toEqual(ids.slice(1).sort())
      const timestamps = listed.map((task) => task.status!.timestamp)
      expect(timestamps).toEqual([...timestamps].sort().reverse())
    }))

  it.scopedLive("when all maxTasks kept tasks are in progress, a new task is rejected saying so, and the others go on", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve({ maxTasks: 1 })
      const client = yield* clientOf(info.url)
      const waiting = yield* raw(info.port, {
        headers: rpcHeaders,
        chunks: [rpcBody("SendMessage", "wait", { returnImmediately: true })]
      })
      const waitingId = (JSON.parse(waiting.body).result.task as Task).id
      yield* Deferred.await(seen.toolStarted).pipe(within("the tool call"))
      const answer = yield* raw(info.port, { headers: rpcHeaders, chunks: [rpcBody("SendMessage", "hello")] })
      const rejected = JSON.parse(answer.body).result.task
      expect(rejected.status.state).toBe("TASK_STATE_REJECTED")
      expect(rejected.status.message.parts[0].text).toContain("at most 1 tasks")
      expect(seen.prompts).toEqual(["wait"])
      yield* Deferred.succeed(seen.release, undefined)
      expect(yield* eventually(stateOf(client, waitingId), (state) => state === COMPLETED)).toBe(COMPLETED)
    }))
})

describe("AgentServer, who may call", () => {
  it.scopedLive("refuses a request for a foreign Host with 403, card included, and runs nothing", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve()
      const foreign = `evil.example:${info.port}`
      const send = yield* raw(info.port, { headers: { ...rpcHeaders, host: foreign }, chunks: [rpcBody("SendMessage", "hello")] })
      expect(send.status).toBe(403)
      expect(JSON.parse(send.body).error).toContain(`host "${foreign}"`)
      expect(JSON.parse(send.body).error).toContain("allowedHosts")
      const cardAnswer = yield* raw(info.port, { method: "GET", path: "/.well-known/agent-card.json", headers: { host: foreign } })
      expect(cardAnswer.status).toBe(403)
      expect(seen.prompts).toEqual([])
    }))

  it.scopedLive("refuses a request from a foreign web Origin with 403 and runs nothing", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve({ allowedOrigins: ["http://app.example"] })
      const answer = yield* raw(info.port, {
        headers: { ...rpcHeaders, origin: "http://evil.example" },
        chunks: [rpcBody("SendMessage", "hello")]
      })
      expect(answer.status).toBe(403)
      expect(JSON.parse(answer.body).error).toContain("http://evil.example")
      expect(JSON.parse(answer.body).error).toContain("allowedOrigins")
      expect(seen.prompts).toEqual([])
    }))

  it.scopedLive("answers the bound host, localhost, an allow-listed host, its own origin and an allow-listed origin", () =>
    Effect.gen(function*() {
      const { info, seen } = yield* serve({ allowedHosts: ["agent.internal"], allowedOrigins: ["http://app.example"] })
      const send = (headers: Http.OutgoingHttpHeaders) =>
        raw(info.port, { headers: { ...rpcHeaders, ...headers }, chunks: [rpcBody("SendMessage", "hello")] })
      const port = info.port
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `agent.internal:${port}`]) {
        const answer = yield* send({ host })
        expect([host, answer.status, JSON.parse(answer.body).result.task.status.state]).toEqual([host, 200, "TASK_STATE_COMPLETED"])
      }
      const sameOrigin = yield* send({ origin: `http://127.0.0.1:${port}` })
      expect(sameOrigin.status).toBe(200)
      const allowed = yield* send({ origin: "http://app.example" })
      expect(allowed.status).toBe(200)
      expect(allowed.headers["access-control-allow-origin"]).toBe("http://app.example")
      const preflight = yield* raw(info.port, {
        method: "OPTIONS",
        headers: { origin: "http://app.example", "access-control-request-method": "POST" }
      })
      expect(preflight.status).toBe(204)
      expect(preflight.headers["access-control-allow-methods"]).toContain("POST")
      expect(seen.prompts).toHaveLength(5)
    }))

  it.scopedLive("a served agent with a given token reports it as Info.bearerToken and one without reports none", () =>
    Effect.gen(function*() {
      const guarded = yield* serve({ bearerToken: "s3cret" })
      expect(Redacted.value(guarded.info.bearerToken!)).toBe("s3cret")
      const open = yield* serve()
      expect(open.info.bearerToken).toBeUndefined()
    }))
})
