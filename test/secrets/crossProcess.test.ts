import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { SecretsError } from "../../src/domain/Errors.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import { spawnFixture } from "../fixtures/crossProcessChild.js"

/** Runs with NodeContext and an empty environment (never the machine's passphrase). */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.scoped,
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
    Effect.provide(NodeContext.layer)
  )

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())

const keysOf = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}.key${i}`)

describe("SecretsManager.layerFile across processes", () => {
  it.live("two processes storing 100 keys each into one file keep all 200", () =>
    isolated(Effect.gen(function*() {
      const path = `${yield* tempDir}/secrets.enc`
      const writers = yield* Effect.all([
        spawnFixture("crossProcessWriter.ts", ["secrets", path, "procA", "100"]),
        spawnFixture("crossProcessWriter.ts", ["secrets", path, "procB", "100"])
      ])
      yield* Effect.forEach(writers, (writer) => writer.waitForLine("ready"))
      yield* Effect.forEach(writers, (writer) => writer.send("go"))
      yield* Effect.forEach(writers, (writer) => writer.waitForLine("done", "60 seconds"), { concurrency: "unbounded" })
      const secrets = yield* SecretsManager.makeFile({ path })
      const expected = [...keysOf("procA", 100), ...keysOf("procB", 100)]
      expect(yield* secrets.list()).toEqual([...expected].sort())
      const values = yield* Effect.forEach(keysOf("procB", 100), (key) => secrets.retrieve(key))
      expect(values.map(Option.map(Redacted.value))).toEqual(keysOf("procB", 100).map((_, i) => Option.some(`value-${i}`)))
    })), 90_000)

  it.live("a write waits a bounded time for a live process holding the lock, then fails with Io naming the lock file and holder", () =>
    isolated(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/secrets.enc`
      const holder = yield* spawnFixture("crossProcessLockHolder.ts", [path])
      yield* holder.waitForLine("locked")
      const secrets = yield* SecretsManager.makeFile({ path, lockTimeout: "200 millis" })
      const error = yield* Effect.flip(secrets.store("provider.openai.apiKey", "sk-never-echoed"))
      expect(error).toBeInstanceOf(SecretsError)
      expect(error.reason).toBe("Io")
      expect(error.path).toBe(path)
      expect(error.message).toContain(`${path}.lock`)
      expect(error.message).toContain(`process ${holder.pid}`)
      expect(error.message).not.toContain("sk-never-echoed")
      expect(yield* fs.exists(path)).toBe(false)
    })))

  it.live("a process killed with SIGKILL while holding the lock does not block the next writer, which takes the lock over and releases it", () =>
    isolated(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/secrets.enc`
      const holder = yield* spawnFixture("crossProcessLockHolder.ts", [path])
      yield* holder.waitForLine("locked")
      yield* holder.kill("SIGKILL")
      expect((yield* holder.exited()).signal).toBe("SIGKILL")
      expect(yield* fs.exists(`${path}.lock`)).toBe(true)
      const secrets = yield* SecretsManager.makeFile({ path })
      // The bound only keeps a lock that is never recovered from hanging the suite.
      yield* secrets.store("after.kill", "stored").pipe(
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the write was still blocked") })
      )
      expect(Option.map(yield* secrets.retrieve("after.kill"), Redacted.value)).toEqual(Option.some("stored"))
      expect(yield* fs.exists(`${path}.lock`)).toBe(false)
    })))
})
