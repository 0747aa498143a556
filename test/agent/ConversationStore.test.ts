import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as ConversationStore from "../../src/agent/ConversationStore.js"
import type { Message } from "../../src/domain/Message.js"
import * as Storage from "../../src/storage/Storage.js"
import { spawnFixture } from "../fixtures/crossProcessChild.js"
import { freshDatabase } from "../storage/postgresDatabase.js"

const user = (content: string): Message => ({ role: "user", content })
const assistant = (content: string): Message => ({ role: "assistant", content })

const pending: ConversationStore.PendingStep = {
  taskId: "task-1",
  step: 2,
  toolCalls: [{ id: "call-1", name: "confirm", arguments: { question: "Proceed?" } }],
  waiting: ["call-1"],
  results: {},
  usage: { inputTokens: 10, outputTokens: 3 },
  maxSteps: 10
}

const redactedValue = (password: Redacted.Redacted<string> | undefined) =>
  password === undefined ? "-" : Redacted.value(password)

const sqliteStorage = Effect.gen(function*() {
  const directory = yield* FileSystem.FileSystem.pipe(Effect.flatMap((fs) => fs.makeTempDirectoryScoped()))
  const url = `sqlite:${directory}/kernel.db`
  return { url, password: undefined, storage: yield* Storage.make({ url }) }
}).pipe(Effect.provide(NodeContext.layer))

const postgresStorage = Effect.gen(function*() {
  const { url, password } = yield* freshDatabase
  return { url, password, storage: yield* Storage.make({ url, password }) }
})

interface Backend {
  readonly name: string
  readonly open: Effect.Effect<ConversationStore.Service, unknown, Scope.Scope>
}

const backends: ReadonlyArray<Backend> = [
  { name: "memory", open: ConversationStore.makeMemory },
  { name: "SQLite", open: Effect.flatMap(sqliteStorage, ({ storage }) => Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)) },
  { name: "PostgreSQL", open: Effect.flatMap(postgresStorage, ({ storage }) => Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)) }
]

describe.each(backends)("ConversationStore ($name)", ({ open }) => {
  it.scoped("an unknown conversation loads as none", () =>
    Effect.gen(function*() {
      const store = yield* open
      expect(Option.isNone(yield* store.load("nobody"))).toBe(true)
    }))

  it.scoped("a saved conversation loads back with its messages in order and its pending step", () =>
    Effect.gen(function*() {
      const store = yield* open
      const messages = [{ role: "system", content: "Be brief." } as const, user("Hi"), assistant("Hello"), user("Proceed?")]
      yield* store.save("c1", { messages, pending })
      expect(yield* store.load("c1")).toEqual(Option.some({ messages, pending }))
    }))

  it.scoped("each save replaces the conversation: appended turns, a cleared pending step, a trimmed head", () =>
    Effect.gen(function*() {
      const store = yield* open
      const system = { role: "system", content: "Be brief." } as const
      yield* store.save("c1", { messages: [system, user("one"), assistant("1")], pending })
      yield* store.save("c1", { messages: [system, user("one"), assistant("1"), user("two"), assistant("2")] })
      expect(yield* store.load("c1")).toEqual(
        Option.some({ messages: [system, user("one"), assistant("1"), user("two"), assistant("2")] })
      )
      const trimmed = ConversationStore.trim([system, user("one"), assistant("1"), user("two"), assistant("2"), user("three")], 4)
      yield* store.save("c1", { messages: trimmed })
      expect(yield* store.load("c1")).toEqual(Option.some({ messages: [system, user("two"), assistant("2"), user("three")] }))
    }))

  it.scoped("conversations are kept apart by contextId, and delete removes only its own", () =>
    Effect.gen(function*() {
      const store = yield* open
      yield* store.save("a", { messages: [user("for a")] })
      yield* store.save("b", { messages: [user("for b")] })
      yield* store.delete("a")
      expect(Option.isNone(yield* store.load("a"))).toBe(true)
      expect(yield* store.load("b")).toEqual(Option.some({ messages: [user("for b")] }))
    }))
})

const sqlBackends = [
  { name: "SQLite", open: sqliteStorage },
  { name: "PostgreSQL", open: postgresStorage }
] as const

describe.each(sqlBackends)("ConversationStore.makeSql ($name)", ({ open }) => {
  it.scoped("a save writes only the new messages: earlier rows keep their place, trimmed ones are deleted", () =>
    Effect.gen(function*() {
      const { storage } = yield* open
      const store = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      const rows = storage.sql<{ seq: number; message: string }>`SELECT seq, message FROM conversation_messages WHERE context_id = 'c1' ORDER BY seq`
      yield* store.save("c1", { messages: [user("one"), assistant("1")] })
      yield* store.save("c1", { messages: [user("one"), assistant("1"), user("two"), assistant("2")] })
      const afterAppend = yield* rows
      expect(afterAppend.map((row) => Number(row.seq))).toEqual([1, 2, 3, 4])
      yield* store.save("c1", { messages: [user("two"), assistant("2"), user("three")] })
      expect((yield* rows).map((row) => Number(row.seq))).toEqual([3, 4, 5])
    }))

  it.scoped("a store's next load sees what another store saved in between, before and after its own save", () =>
    Effect.gen(function*() {
      const { storage } = yield* open
      const first = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      const second = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      yield* first.save("c1", { messages: [user("one")] })
      yield* second.load("c1")
      yield* second.save("c1", { messages: [user("one"), user("two")] })
      expect(yield* first.load("c1")).toEqual(Option.some({ messages: [user("one"), user("two")] }))
      yield* second.load("c1")
      yield* first.save("c1", { messages: [user("one"), user("two"), user("three")] })
      yield* second.save("c1", { messages: [user("one"), user("two"), user("four")] })
      const expected = Option.some({ messages: [user("one"), user("two"), user("three"), user("four")] })
      expect(yield* second.load("c1")).toEqual(expected)
      expect(yield* first.load("c1")).toEqual(expected)
    }))

  it.scoped("a conversation outlives the store and the database connection", () =>
    Effect.gen(function*() {
      const { url, password } = yield* open
      const save = Effect.scoped(Effect.gen(function*() {
        const storage = yield* Storage.make({ url, password })
        const store = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
        yield* store.save("c1", { messages: [user("remember me")], pending })
      }))
      yield* save
      const storage = yield* Storage.make({ url, password })
      const store = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      expect(yield* store.load("c1")).toEqual(Option.some({ messages: [user("remember me")], pending }))
    }))

  it.scoped("a save that fails half-way leaves the conversation as it was (messages and pending step)", () =>
    Effect.gen(function*() {
      const { storage } = yield* open
      const store = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      yield* store.save("c1", { messages: [user("one")], pending })
      // The database itself refuses the second new row, after the first was written.
      yield* storage.use("adding a failing trigger", storage.backend === "sqlite"
        ? storage.sql.unsafe(`CREATE TRIGGER refuse BEFORE INSERT ON conversation_messages
            WHEN NEW.message LIKE '%refused%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`)
        : Effect.zipRight(
          storage.sql.unsafe(`CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
            IF NEW.message LIKE '%refused%' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`),
          storage.sql.unsafe(`CREATE TRIGGER refuse BEFORE INSERT ON conversation_messages FOR EACH ROW EXECUTE FUNCTION refuse()`)
        ))
      const exit = yield* Effect.exit(store.save("c1", { messages: [user("one"), assistant("accepted"), user("refused")] }))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* store.load("c1")).toEqual(Option.some({ messages: [user("one")], pending }))
    }))

  it.scoped("two processes appending to one conversation at once lose nothing and keep one order", () =>
    Effect.gen(function*() {
      const { url, password, storage } = yield* open
      const count = 40
      const [first, second] = yield* Effect.all([
        spawnFixture("../storage/fixtures/conversationAppender.ts", [url, redactedValue(password), "shared", "A", String(count)]),
        spawnFixture("../storage/fixtures/conversationAppender.ts", [url, redactedValue(password), "shared", "B", String(count)])
      ])
      yield* Effect.all([first.waitForLine("ready"), second.waitForLine("ready")], { concurrency: 2 })
      yield* Effect.all([first.send("go"), second.send("go")])
      const exits = yield* Effect.all([first.exited(), second.exited()], { concurrency: 2 })
      expect(exits.map((exit) => exit.code)).toEqual([0, 0])
      const store = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      const contents = Option.getOrThrow(yield* store.load("shared")).messages.map((message) => String(message.content))
      expect(contents).toHaveLength(2 * count)
      expect(new Set(contents).size).toBe(2 * count)
      for (const prefix of ["A", "B"]) {
        expect(contents.filter((content) => content.startsWith(`${prefix}-`))).toEqual(
          Array.from({ length: count }, (_, index) => `${prefix}-${index}`)
        )
      }
      const again = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      expect(Option.getOrThrow(yield* again.load("shared")).messages.map((message) => String(message.content))).toEqual(contents)
    }), { timeout: 60_000 })
})
