import * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as nodeFs from "node:fs"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import { ConfigError } from "../../src/domain/Errors.js"
import { spawnFixture } from "../fixtures/crossProcessChild.js"

const inTempDir = <A, E>(
  body: (dir: string) => Effect.Effect<A, E, FileSystem.FileSystem | Path.Path | Scope.Scope>
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    return yield* body(yield* fs.makeTempDirectoryScoped({ prefix: "config-cross-process-" }))
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const readJson = (path: string): unknown => JSON.parse(nodeFs.readFileSync(path, "utf8"))

describe("ConfigManager.layerFile across processes", () => {
  it.live("two processes setting 100 distinct keys each into one file keep all 200", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const writers = yield* Effect.all([
          spawnFixture("crossProcessWriter.ts", ["config", path, "procA", "100"]),
          spawnFixture("crossProcessWriter.ts", ["config", path, "procB", "100"])
        ])
        yield* Effect.forEach(writers, (writer) => writer.waitForLine("ready"))
        yield* Effect.forEach(writers, (writer) => writer.send("go"))
        yield* Effect.forEach(writers, (writer) => writer.waitForLine("done", "60 seconds"), { concurrency: "unbounded" })
        const expected = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`key${i}`, i]))
        expect(readJson(path)).toEqual({ procA: expected, procB: expected })
      })
    ), 90_000)

  it.live("a set waits a bounded time for a live process holding the lock, then fails with Io naming the lock file and holder", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const holder = yield* spawnFixture("crossProcessLockHolder.ts", [path])
        yield* holder.waitForLine("locked")
        const config = yield* ConfigManager.makeFile({ path, watch: false, lockTimeout: "200 millis" })
        const error = yield* Effect.flip(config.set("ui.theme", "dark"))
        expect(error).toBeInstanceOf(ConfigError)
        expect(error.reason).toBe("Io")
        expect(error.path).toBe(path)
        expect(error.message).toContain(`${path}.lock`)
        expect(error.message).toContain(`process ${holder.pid}`)
        expect(nodeFs.existsSync(path)).toBe(false)
        expect(yield* config.get("ui.theme")).toEqual(Option.none())
      })
    ))

  it.live("a process killed with SIGKILL while holding the lock does not block the next set, which takes the lock over and releases it", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const holder = yield* spawnFixture("crossProcessLockHolder.ts", [path])
        yield* holder.waitForLine("locked")
        yield* holder.kill("SIGKILL")
        expect((yield* holder.exited()).signal).toBe("SIGKILL")
        expect(nodeFs.existsSync(`${path}.lock`)).toBe(true)
        const config = yield* ConfigManager.makeFile({ path, watch: false })
        // The bound only keeps a lock that is never recovered from hanging the suite.
        yield* config.set("ui.theme", "dark").pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the set was still blocked") })
        )
        expect(readJson(path)).toEqual({ ui: { theme: "dark" } })
        expect(nodeFs.existsSync(`${path}.lock`)).toBe(false)
      })
    ))
})
