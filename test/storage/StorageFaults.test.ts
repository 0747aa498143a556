/**
 * What a broken database looks like to a caller: each fault is a `StorageError` with a reason to
 * switch on, naming the database (never the password) and saying what to do.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createServer } from "node:net"
import * as ConversationStore from "../../src/agent/ConversationStore.js"
import * as Storage from "../../src/storage/Storage.js"
import { spawnFixture } from "../fixtures/crossProcessChild.js"
import { freshDatabase } from "./postgresDatabase.js"

const tempDirectory = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())

/** A port on 127.0.0.1 where nothing listens: taken from the system, then released. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })
)

describe("Storage faults", () => {
  it.scopedLive("a file that is not a SQLite database is Corrupt, named, and left as it was", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDirectory}/kernel.db`
      const garbage = new TextEncoder().encode("these are not the pages of a database\n".repeat(200))
      yield* fs.writeFile(path, garbage)
      const error = yield* Effect.flip(Storage.make({ url: `sqlite:${path}` }))
      expect(error.reason).toBe("Corrupt")
      expect(error.database).toBe(path)
      expect(error.message).toContain(path)
      expect(error.message).toContain("move it aside")
      expect(Buffer.from(yield* fs.readFile(path)).equals(Buffer.from(garbage))).toBe(true)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a SQLite file another process holds an exclusive lock on is Locked after the busy timeout", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDirectory}/kernel.db`
      yield* Effect.scoped(Storage.make({ url: `sqlite:${path}` }))
      const holder = yield* spawnFixture("../storage/fixtures/sqliteLockHolder.ts", [path])
      yield* holder.waitForLine("locked")
      const error = yield* Effect.flip(Storage.make({ url: `sqlite:${path}`, busyTimeout: "200 millis" }))
      expect(error.reason).toBe("Locked")
      expect(error.database).toBe(path)
      expect(error.message).toContain("another program holds a lock on it for more than 200 ms")
      expect(error.message).toContain("close the other program")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a SQLite database that cannot grow is DiskFull, and the save that hit it left nothing behind", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDirectory}/kernel.db`
      const storage = yield* Storage.make({ url: `sqlite:${path}` })
      const store = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      yield* store.save("c1", { messages: [{ role: "user", content: "small" }] })
      // The database may not grow past its current size: the next large write fails as a full disk does.
      const [pages] = yield* storage.use("reading the size", storage.sql<{ page_count: number }>`PRAGMA page_count`)
      yield* storage.use("capping the size", storage.sql.unsafe(`PRAGMA max_page_count = ${pages!.page_count}`))
      const big = Array.from({ length: 50 }, (_, index) => ({ role: "user" as const, content: `${index} ${"x".repeat(4_000)}` }))
      const error = yield* Effect.flip(store.save("c1", { messages: [{ role: "user", content: "small" }, ...big] }))
      expect(error.cause?._tag).toBe("StorageError")
      expect(error.cause?._tag === "StorageError" && error.cause.reason).toBe("DiskFull")
      expect(error.message).toContain(path)
      expect(error.message).toContain("free some space")
      // A store of its own, so the load reads the database rather than trusting what the failed save knew.
      const reopened = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, storage)
      const loaded = yield* reopened.load("c1")
      expect(loaded._tag === "Some" ? loaded.value.messages : []).toEqual([{ role: "user", content: "small" }])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a PostgreSQL server that does not answer is Unreachable, naming the URL", () =>
    Effect.gen(function*() {
      const url = `postgres://agent@127.0.0.1:${yield* closedPort}/kernel`
      const error = yield* Effect.flip(Storage.make({ url, password: Redacted.make("never-shown-1"), connectTimeout: "2 seconds" }))
      expect(error.reason).toBe("Unreachable")
      expect(error.database).toBe(url)
      expect(error.message).toContain(url)
      expect(error.message).toContain("check that it runs")
      expect(JSON.stringify(error)).not.toContain("never-shown-1")
    }))

  it.scopedLive("a wrong PostgreSQL password is Unauthorized, says where the password goes, and is never shown", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase
      const error = yield* Effect.flip(Storage.make({ url, password: Redacted.make("wrong-secret-829") }))
      expect(error.reason).toBe("Unauthorized")
      expect(error.database).toBe(url)
      expect(error.message).toContain("storage.postgres.password")
      expect(JSON.stringify(error)).not.toContain("wrong-secret-829")
      expect(String(error)).not.toContain("wrong-secret-829")
    }))
})
