/** Storage from the configuration: `storage.url`, the password from the secrets store, retention days. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import { TaskCreatedEvent } from "../../src/domain/Events.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import * as EventLog from "../../src/storage/EventLog.js"
import * as Storage from "../../src/storage/Storage.js"
import { freshDatabase } from "./postgresDatabase.js"

describe("Storage.layerConfig", () => {
  it.scoped("opens the PostgreSQL database of storage.url with the password stored under storage.postgres.password", () =>
    Effect.gen(function*() {
      const { url, password } = yield* freshDatabase
      const layer = Storage.layerConfig().pipe(
        Layer.provide(Layer.merge(
          ConfigManager.layerMemory({ storage: { url } }),
          SecretsManager.layerMemoryWith({ initial: { [Storage.passwordKey]: Redacted.value(password) } })
        ))
      )
      const storage = yield* Effect.provide(Storage.Storage, layer)
      expect(storage.backend).toBe("postgres")
      expect(storage.database).toBe(url)
    }))

  it.scopedLive("without the password, the server's refusal is Unauthorized and says where the password goes", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase
      const layer = Storage.layerConfig().pipe(
        Layer.provide(Layer.merge(ConfigManager.layerMemory({ storage: { url } }), SecretsManager.layerMemoryWith({ initial: {} })))
      )
      const error = yield* Effect.flip(Effect.provide(Storage.Storage, layer))
      expect(error._tag).toBe("StorageError")
      expect(error._tag === "StorageError" && error.reason).toBe("Unauthorized")
      expect(error.message).toContain("storage.postgres.password")
    }))

  it.effect("storage.url refuses a URL that carries a password, naming the key", () =>
    Effect.gen(function*() {
      const config = yield* ConfigManager.ConfigManager
      const error = yield* Effect.flip(config.set("storage.url", "postgres://agent:hunter2@db/kernel"))
      expect(error.message).toContain("storage.url")
      expect(error.message).toContain("storage.postgres.password")
      expect(error.message).not.toContain("hunter2")
      yield* config.set("storage.url", "sqlite:/var/lib/agent/kernel.db")
      yield* config.set("storage.retention.days", 7)
      expect((yield* Effect.flip(config.set("storage.retention.days", 0))).message).toContain("storage.retention.days")
    }).pipe(Effect.provide(ConfigManager.layerMemory())))

  it.scoped("EventLog.layerConfig keeps logs for storage.retention.days", () =>
    Effect.gen(function*() {
      const { url, password } = yield* freshDatabase
      const storage = yield* Storage.make({ url, password })
      const log = yield* Effect.provide(EventLog.EventLog, EventLog.layerConfig.pipe(
        Layer.provide(Layer.merge(Layer.succeed(Storage.Storage, storage), ConfigManager.layerMemory({ storage: { retention: { days: 2 } } })))
      ))
      yield* log.append(new TaskCreatedEvent({ contextId: "c", taskId: "t", timestamp: "2026-01-01T00:00:00.000Z", agentId: "a" }))
      yield* TestClock.adjust("1 day")
      expect(yield* log.cleanup).toBe(0)
      yield* TestClock.adjust("1 day")
      yield* TestClock.adjust("1 millis")
      expect(yield* log.cleanup).toBe(1)
    }))
})
