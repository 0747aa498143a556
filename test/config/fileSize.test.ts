import * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as nodeFs from "node:fs"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import { ConfigError } from "../../src/domain/Errors.js"

const inTempDir = <A, E>(
  body: (dir: string) => Effect.Effect<A, E, FileSystem.FileSystem | Path.Path | Scope.Scope>
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    return yield* body(yield* fs.makeTempDirectoryScoped({ prefix: "config-size-" }))
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

/** A valid configuration document serialized to exactly `bytes` bytes. */
const documentOfSize = (bytes: number): string => {
  const empty = JSON.stringify({ notes: { blob: "" } })
  return JSON.stringify({ notes: { blob: "x".repeat(bytes - empty.length) } })
}

describe("ConfigManager.layerFile size cap", () => {
  it.scoped("a file over the default 4 MiB cap fails start-up with Io naming the file, its size and the cap, and is left byte-identical", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const size = 4 * 1024 * 1024 + 1
        nodeFs.writeFileSync(path, documentOfSize(size))
        const before = nodeFs.readFileSync(path)
        const error = yield* Effect.flip(Layer.build(ConfigManager.layerFile({ path, watch: false })))
        expect(error).toBeInstanceOf(ConfigError)
        expect(error.reason).toBe("Io")
        expect(error.path).toBe(path)
        expect(error.message).toContain(`The configuration file ${path} is ${size} bytes, over the cap of ${4 * 1024 * 1024} bytes`)
        expect(error.message).toContain("maxFileBytes")
        expect(nodeFs.readFileSync(path).equals(before)).toBe(true)
      })
    ))

  it.scoped("maxFileBytes sets the cap: a file one byte over it fails start-up, a file at it opens", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        nodeFs.writeFileSync(path, documentOfSize(1001))
        const error = yield* Effect.flip(ConfigManager.makeFile({ path, watch: false, maxFileBytes: 1000 }))
        expect(error.reason).toBe("Io")
        expect(error.message).toContain(`is 1001 bytes, over the cap of 1000 bytes`)
        nodeFs.writeFileSync(path, documentOfSize(1000))
        const config = yield* ConfigManager.makeFile({ path, watch: false, maxFileBytes: 1000 })
        expect(yield* config.has("notes.blob")).toBe(true)
      })
    ))

  it.scoped("a set that would grow the file past the cap fails with InvalidValue naming the key, file, size and cap, and changes nothing", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path, watch: false, maxFileBytes: 1000 })
        yield* config.set("ui.theme", "dark")
        const before = nodeFs.readFileSync(path)
        const big = "y".repeat(1000)
        const wouldBe = Buffer.byteLength(`${JSON.stringify({ ui: { theme: "dark" }, notes: { blob: big } }, null, 2)}\n`)
        const error = yield* Effect.flip(config.set("notes.blob", big))
        expect(error).toBeInstanceOf(ConfigError)
        expect(error.reason).toBe("InvalidValue")
        expect(error.key).toBe("notes.blob")
        expect(error.path).toBe(path)
        expect(error.message).toContain(`would grow to ${wouldBe} bytes, over its cap of 1000 bytes (maxFileBytes)`)
        expect(error.message).toContain("Nothing was changed")
        expect(nodeFs.readFileSync(path).equals(before)).toBe(true)
        expect(yield* config.get("notes.blob")).toEqual(Option.none())
      })
    ))

  it.scoped("a file grown past the cap by hand makes the next set fail with Io and is left byte-identical", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path, watch: false, maxFileBytes: 1000 })
        yield* config.set("ui.theme", "dark")
        nodeFs.writeFileSync(path, documentOfSize(1500))
        const before = nodeFs.readFileSync(path)
        const error = yield* Effect.flip(config.set("ui.font", "mono"))
        expect(error.reason).toBe("Io")
        expect(error.path).toBe(path)
        expect(error.message).toContain(`is 1500 bytes, over the cap of 1000 bytes`)
        expect(nodeFs.readFileSync(path).equals(before)).toBe(true)
      })
    ))
})
