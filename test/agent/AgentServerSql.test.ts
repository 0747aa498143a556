/**
 * AgentServer with its tasks in a database (the `storage` option): what a client reads survives a
 * restart of the server, and replicas sharing PostgreSQL answer for each other's tasks.
 */
import { Message, type StreamResponse, type Task } from "@a2a-js/sdk"
import { type Client, ClientFactory } from "@a2a-js/sdk/client"
import type { ServerCallContext } from "@a2a-js/sdk/server"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as AgentServer from "../../src/agent/AgentServer.js"
import { BoundedTaskStore } from "../../src/agent/internal/serverTaskStore.js"
import { SqlTaskStore } from "../../src/agent/internal/serverTaskStoreSql.js"
import { TaskCompleteEvent, TaskCreatedEvent, TaskStatusEvent } from "../../src/domain/Events.js"
import * as Storage from "../../src/storage/Storage.js"
import { freshDatabase } from "../storage/postgresDatabase.js"

const card = { name: "Kept Helper", description: "Answers, and remembers its tasks." }

/** "which?" waits for input; anything else answers "Done: <prompt>". */
const run: AgentServer.Run = (input) => {
  const ids = { contextId: input.contextId, taskId: input.taskId, timestamp: new Date().toISOString() }
  const created = new TaskCreatedEvent({ ...ids, agentId: "helper" })
  return input.prompt === "which?"
    ? Stream.make(created, new TaskStatusEvent({ ...ids, status: "waiting-input", message: "Which file?" }))
    : Stream.make(created, new TaskCompleteEvent({ ...ids, content: `Done: ${input.prompt}`, steps: 1, usage: {} }))
}

const COMPLETED = 3, INPUT_REQUIRED = 6

const clientOf = (url: string) => Effect.promise(() => new ClientFactory().createFromUrl(url))

const userMessage = (text: string) =>
  Message.fromJSON({ messageId: crypto.randomUUID(), contextId: "ctx-sql", role: "ROLE_USER", parts: [{ text }] })

const send = (client: Client, text: string) =>
  Effect.promise(async () => {
    const out: Array<StreamResponse> = []
    for await (const response of client.sendMessageStream({ tenant: "", message: userMessage(text), configuration: undefined, metadata: undefined })) {
      out.push(response)
    }
    return (out[0]!.payload!.value as Task).id
  })

const getTask = (client: Client, id: string) => Effect.promise(() => client.getTask({ tenant: "", id }))

const listAll = (client: Client) =>
  Effect.promise(() =>
    client.listTasks({
      tenant: "",
      contextId: "ctx-sql",
      status: 0,
      pageSize: 50,
      pageToken: "",
      historyLength: undefined,
      statusTimestampAfter: undefined,
      includeArtifacts: undefined
    })
  )

const textOf = (task: Task) =>
  task.artifacts.flatMap((artifact) => artifact.parts.map((part) => part.content?.$case === "text" ? part.content.value : "")).join("")

const sqliteUrl = Effect.gen(function*() {
  const directory = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
  return { url: `sqlite:${directory}/kernel.db`, password: undefined }
}).pipe(Effect.provide(NodeContext.layer))

describe.each([
  { name: "SQLite", database: sqliteUrl },
  { name: "PostgreSQL", database: freshDatabase }
])("AgentServer with storage ($name)", ({ database }) => {
  it.scoped("GetTask and SubscribeToTask answer from the database after the server restarts", () =>
    Effect.gen(function*() {
      const { url, password } = yield* database
      const [done, waiting] = yield* Effect.scoped(Effect.gen(function*() {
        const storage = yield* Storage.make({ url, password })
        const info = yield* AgentServer.make({ card, run, storage })
        const client = yield* clientOf(info.url)
        return [yield* send(client, "remember this"), yield* send(client, "which?")] as const
      }))
      const storage = yield* Storage.make({ url, password })
      const info = yield* AgentServer.make({ card, run, storage })
      const client = yield* clientOf(info.url)
      const task = yield* getTask(client, done)
      expect(task.status?.state).toBe(COMPLETED)
      expect(textOf(task)).toBe("Done: remember this")
      expect((yield* getTask(client, waiting)).status?.state).toBe(INPUT_REQUIRED)
      const resubscribed = yield* Effect.promise(async () => {
        const out: Array<StreamResponse> = []
        for await (const response of client.resubscribeTask({ tenant: "", id: waiting })) out.push(response)
        return out
      })
      expect(resubscribed.map((response) => [response.payload?.$case, (response.payload?.value as Task).status?.state])).toEqual([
        ["task", INPUT_REQUIRED]
      ])
    }))

  it.scoped("a second server sharing the database answers GetTask and ListTasks for the first one's tasks", () =>
    Effect.gen(function*() {
      const { url, password } = yield* database
      const first = yield* AgentServer.make({ card, run, storage: yield* Storage.make({ url, password }) })
      const second = yield* AgentServer.make({ card, run, storage: yield* Storage.make({ url, password }) })
      const id = yield* send(yield* clientOf(first.url), "from the first")
      const other = yield* clientOf(second.url)
      expect(textOf(yield* getTask(other, id))).toBe("Done: from the first")
      const listed = yield* listAll(other)
      expect(listed.tasks.map((task) => task.id)).toEqual([id])
      expect(listed.totalSize).toBe(1)
    }))
})

describe("SqlTaskStore", () => {
  const context = { tenant: "", user: undefined } as unknown as ServerCallContext
  const task = (id: string, state: number, second: number): Task =>
    ({
      id,
      contextId: `ctx-${id.length % 2}`,
      status: { state, timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString(), message: undefined },
      artifacts: [],
      history: [],
      metadata: undefined
    }) as unknown as Task

  it.scoped("keeps, drops and lists tasks exactly as the in-memory store does", () =>
    Effect.gen(function*() {
      const { url } = yield* sqliteUrl
      const storage = yield* Storage.make({ url })
      let now = 0
      const sql = new SqlTaskStore(storage, 4, 10_000, () => now)
      const memory = new BoundedTaskStore(4, 10_000, () => now)
      const both = (f: (store: SqlTaskStore | BoundedTaskStore) => Promise<unknown>) =>
        Effect.promise(async () => [await f(sql), await f(memory)] as const)
      const steps: ReadonlyArray<Task> = [
        task("a", 2, 1), task("bb", 3, 2), task("c", 4, 3), task("dd", 2, 4), task("e", 3, 5), task("ff", 2, 6), task("a", 3, 7)
      ]
      for (const step of steps) {
        now += 1_000
        yield* both((store) => store.save(step, context))
        const [fromSql, fromMemory] = yield* both((store) =>
          store.list({ tenant: "", contextId: "", status: 0, pageSize: 2, pageToken: "", historyLength: undefined, statusTimestampAfter: undefined, includeArtifacts: undefined }, context)
        )
        expect(fromSql).toEqual(fromMemory)
        expect(sql.hasRoom()).toBe(memory.hasRoom())
      }
      now += 10_000
      yield* both(async (store) => store.evictExpired())
      const [left, leftInMemory] = yield* both((store) =>
        store.list({ tenant: "", contextId: "", status: 0, pageSize: 50, pageToken: "", historyLength: undefined, statusTimestampAfter: undefined, includeArtifacts: undefined }, context)
      )
      expect(left).toEqual(leftInMemory)
      expect((left as { tasks: ReadonlyArray<Task> }).tasks.map((kept) => kept.id).sort()).toEqual(["dd", "ff"])
    }))
})
