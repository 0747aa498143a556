import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ContentCompleteEvent, ContentDeltaEvent, TaskCompleteEvent, TaskCreatedEvent } from "../../src/domain/Events.js"
import * as EventLog from "../../src/storage/EventLog.js"
import * as Storage from "../../src/storage/Storage.js"
import { freshDatabase } from "./postgresDatabase.js"

const ids = (taskId: string) => ({ contextId: "context-1", taskId, timestamp: "2026-01-01T00:00:00.000Z" })
const created = (taskId: string) => new TaskCreatedEvent({ ...ids(taskId), agentId: "agent" })
const delta = (taskId: string, text: string) => new ContentDeltaEvent({ ...ids(taskId), delta: text })
const complete = (taskId: string, content: string) => new ContentCompleteEvent({ ...ids(taskId), content })
const finished = (taskId: string) => new TaskCompleteEvent({ ...ids(taskId), content: "done", steps: 1, usage: {} })

const sqlLog = (storage: Effect.Effect<Storage.Service, unknown, Scope.Scope>) =>
  (options?: EventLog.Options) => Effect.flatMap(storage, (service) => Effect.provideService(EventLog.makeSql(options), Storage.Storage, service))

const backends: ReadonlyArray<{ readonly name: string; readonly open: (options?: EventLog.Options) => Effect.Effect<EventLog.Service, unknown, Scope.Scope> }> = [
  { name: "memory", open: EventLog.makeMemory },
  {
    name: "SQLite",
    open: sqlLog(Effect.gen(function*() {
      const directory = yield* FileSystem.FileSystem.pipe(Effect.flatMap((fs) => fs.makeTempDirectoryScoped()))
      return yield* Storage.make({ url: `sqlite:${directory}/kernel.db` })
    }).pipe(Effect.provide(NodeContext.layer)))
  },
  { name: "PostgreSQL", open: sqlLog(Effect.flatMap(freshDatabase, Storage.make)) }
]

describe.each(backends)("EventLog ($name)", ({ open }) => {
  it.scoped("a task's events read back in the order they were appended, numbered from 1", () =>
    Effect.gen(function*() {
      const log = yield* open()
      const seqs = yield* log.append(created("t1"), complete("t1", "Hello"))
      yield* log.append(finished("t1"))
      expect(seqs).toEqual([1, 2])
      const entries = yield* log.read("t1")
      expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3])
      expect(entries.map((entry) => entry.event)).toEqual([created("t1"), complete("t1", "Hello"), finished("t1")])
    }))

  it.scoped("read from a sequence number returns that event and the later ones only", () =>
    Effect.gen(function*() {
      const log = yield* open()
      yield* log.append(created("t1"), complete("t1", "a"), complete("t1", "b"), finished("t1"))
      expect((yield* log.read("t1", { from: 3 })).map((entry) => entry.seq)).toEqual([3, 4])
      expect(yield* log.read("t1", { from: 5 })).toEqual([])
      expect((yield* log.read("t1", { from: 2, limit: 1 })).map((entry) => entry.seq)).toEqual([2])
    }))

  it.scoped("each task has its own log, also when one append carries events of two tasks", () =>
    Effect.gen(function*() {
      const log = yield* open()
      yield* log.append(created("t1"), created("t2"), finished("t1"))
      expect((yield* log.read("t1")).map((entry) => entry.event.type)).toEqual(["task-created", "task-complete"])
      expect((yield* log.read("t2")).map((entry) => entry.seq)).toEqual([1])
      expect(yield* log.read("unknown")).toEqual([])
    }))

  it.scoped("concurrent appends to one task get distinct, gap-free sequence numbers", () =>
    Effect.gen(function*() {
      const log = yield* open()
      yield* Effect.forEach(Array.from({ length: 20 }, (_, index) => index), (index) => log.append(complete("t1", `part ${index}`)), {
        concurrency: 8
      })
      const entries = yield* log.read("t1")
      expect(entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 20 }, (_, index) => index + 1))
      expect(new Set(entries.map((entry) => (entry.event as ContentCompleteEvent).content)).size).toBe(20)
    }))

  it.scoped("cleanup deletes the logs whose last event is older than the retention, and keeps the others", () =>
    Effect.gen(function*() {
      const log = yield* open({ retention: "30 days" })
      yield* log.append(created("old"))
      yield* TestClock.adjust("20 days")
      yield* log.append(created("recent"))
      yield* TestClock.adjust("11 days")
      expect(yield* log.cleanup).toBe(1)
      expect(yield* log.read("old")).toEqual([])
      expect((yield* log.read("recent")).map((entry) => entry.seq)).toEqual([1])
      expect(yield* log.cleanup).toBe(0)
    }))

  it.scoped("recording logs a run's events as they pass, without the deltas", () =>
    Effect.gen(function*() {
      const log = yield* open()
      const events = [created("t1"), delta("t1", "Hel"), delta("t1", "lo"), complete("t1", "Hello"), finished("t1")]
      const passed = yield* Stream.runCollect(Stream.fromIterable(events).pipe(EventLog.recording(log)))
      expect(Chunk.toReadonlyArray(passed)).toEqual(events)
      expect((yield* log.read("t1")).map((entry) => entry.event.type)).toEqual(["task-created", "content-complete", "task-complete"])
    }))
})
