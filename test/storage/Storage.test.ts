import { describe, expect, it } from "@effect/vitest"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Storage from "../../src/storage/Storage.js"
import { freshDatabase } from "./postgresDatabase.js"

describe("Storage", () => {
  it.scoped("opens a SQLite file at a sqlite: URL, in WAL mode, with the schema in place", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const storage = yield* Storage.make({ url: `sqlite:${directory}/nested/kernel.db` })
      expect(storage.backend).toBe("sqlite")
      expect(storage.database).toBe(`${directory}/nested/kernel.db`)
      const [mode] = yield* storage.use("reading the journal mode", storage.sql<{ journal_mode: string }>`PRAGMA journal_mode`)
      expect(mode?.journal_mode).toBe("wal")
      const tables = yield* storage.use("listing tables", storage.sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      expect(tables.map((table) => table.name)).toEqual(expect.arrayContaining(["conversations", "conversation_messages", "run_events", "a2a_tasks"]))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("opens PostgreSQL at a postgres:// URL with the password given apart", () =>
    Effect.gen(function*() {
      const { url, password } = yield* freshDatabase
      const storage = yield* Storage.make({ url, password })
      expect(storage.backend).toBe("postgres")
      const rows = yield* storage.use("counting", storage.sql<{ n: string }>`SELECT COUNT(*) AS n FROM conversations`)
      expect(Number(rows[0]?.n)).toBe(0)
    }))
})

describe("Storage.parseUrl", () => {
  it.effect("no URL is the SQLite file under $XDG_DATA_HOME, else under ~/.local/share", () =>
    Effect.sync(() => {
      expect(Storage.defaultSqlitePath({ XDG_DATA_HOME: "/data", HOME: "/home/ada" })).toBe("/data/effect-agent-kernel/kernel.db")
      expect(Storage.defaultSqlitePath({ HOME: "/home/ada" })).toBe("/home/ada/.local/share/effect-agent-kernel/kernel.db")
    }))

  it.effect("sqlite:<path> names a file and postgres:// a server", () =>
    Effect.gen(function*() {
      expect(yield* Storage.parseUrl("sqlite:/var/lib/agent/kernel.db")).toEqual({ backend: "sqlite", path: "/var/lib/agent/kernel.db" })
      expect(yield* Storage.parseUrl("postgres://agent@db:5432/kernel")).toEqual({ backend: "postgres", url: "postgres://agent@db:5432/kernel" })
    }))

  it.effect("a URL carrying a password is refused without repeating the password", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Storage.parseUrl("postgres://agent:hunter2secret@db:5432/kernel"))
      expect(error.reason).toBe("Unauthorized")
      expect(error.message).toContain(Storage.passwordKey)
      expect(JSON.stringify(error)).not.toContain("hunter2secret")
      expect(error.database).toBe("postgres://agent@db:5432/kernel")
    }))

  it.effect("any other URL is refused with the two forms it could take", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Storage.parseUrl("mysql://db/kernel"))
      expect(error.message).toContain("sqlite:<path>")
      expect(error.message).toContain("postgres://")
    }))
})

describe("Storage migrations", () => {
  it.scoped("a database written by a newer kernel is refused as TooNew and left untouched", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const url = `sqlite:${directory}/kernel.db`
      yield* Effect.scoped(Effect.gen(function*() {
        const storage = yield* Storage.make({ url })
        yield* storage.use("pretending to be newer", storage.sql`INSERT INTO kernel_migrations (migration_id, name) VALUES (99, 'from_the_future')`)
      }))
      const before = yield* fs.readFile(`${directory}/kernel.db`)
      const error = yield* Effect.flip(Storage.make({ url }))
      expect(error.reason).toBe("TooNew")
      expect(error.database).toBe(`${directory}/kernel.db`)
      expect(error.message).toContain("newer version of effect-agent-kernel")
      expect(error.message).toContain("upgrade")
      expect(yield* fs.readFile(`${directory}/kernel.db`)).toEqual(before)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("opening an up-to-date database again runs no migration and keeps its rows", () =>
    Effect.gen(function*() {
      const { url, password } = yield* freshDatabase
      yield* Effect.scoped(Effect.flatMap(Storage.make({ url, password }), (storage) =>
        storage.use("writing", storage.sql`INSERT INTO run_logs (task_id, next_seq, updated_at) VALUES ('t', 1, 0)`)))
      const storage = yield* Storage.make({ url, password })
      const migrations = yield* storage.use("reading", storage.sql<{ n: string }>`SELECT COUNT(*) AS n FROM kernel_migrations`)
      const logs = yield* storage.use("reading", storage.sql<{ n: string }>`SELECT COUNT(*) AS n FROM run_logs`)
      expect(Number(migrations[0]?.n)).toBe(1)
      expect(Number(logs[0]?.n)).toBe(1)
    }))
})
