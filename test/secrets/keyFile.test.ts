import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as nodeFs from "node:fs"
import { SecretsError } from "../../src/domain/Errors.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"

/** Runs with NodeContext and an empty environment (never the machine's passphrase). */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.scoped,
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
    Effect.provide(NodeContext.layer)
  )

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())

/** A store holding one secret, sealed with its key file; returns the store's path. */
const storeWithOneSecret = (dir: string) =>
  Effect.gen(function*() {
    const path = `${dir}/secrets.enc`
    yield* Effect.scoped(Effect.flatMap(SecretsManager.makeFile({ path }), (s) => s.store("provider.openai.apiKey", "sk-kept")))
    return path
  })

const openError = (path: string) => Effect.flip(Effect.scoped(SecretsManager.makeFile({ path })))

const mode = (path: string) => nodeFs.statSync(path).mode & 0o777

describe("SecretsManager.layerFile key file and directory checks", () => {
  it.live("refuses a key file that is a symbolic link with Io naming it, and leaves the link as it was", () =>
    isolated(Effect.gen(function*() {
      const dir = yield* tempDir
      const path = yield* storeWithOneSecret(dir)
      nodeFs.renameSync(`${path}.key`, `${dir}/elsewhere.key`)
      nodeFs.symlinkSync(`${dir}/elsewhere.key`, `${path}.key`)
      const error = yield* openError(path)
      expect(error).toBeInstanceOf(SecretsError)
      expect(error.reason).toBe("Io")
      expect(error.path).toBe(`${path}.key`)
      expect(error.message).toContain(`The key file ${path}.key is a symbolic link`)
      expect(error.message).toContain("Replace the link with the key file itself")
      expect(nodeFs.readlinkSync(`${path}.key`)).toBe(`${dir}/elsewhere.key`)
    })))

  it.live("refuses a key file with mode 0644 with Io saying to chmod 600 it, and opens once that is done", () =>
    isolated(Effect.gen(function*() {
      const path = yield* storeWithOneSecret(yield* tempDir)
      nodeFs.chmodSync(`${path}.key`, 0o644)
      const error = yield* openError(path)
      expect(error).toBeInstanceOf(SecretsError)
      expect(error.reason).toBe("Io")
      expect(error.path).toBe(`${path}.key`)
      expect(error.message).toContain("has mode 0644")
      expect(error.message).toContain(`chmod 600 ${path}.key`)
      expect(JSON.stringify(error)).not.toContain("sk-kept")
      expect(mode(`${path}.key`)).toBe(0o644)
      nodeFs.chmodSync(`${path}.key`, 0o600)
      const kept = yield* Effect.scoped(
        Effect.flatMap(SecretsManager.makeFile({ path }), (s) => s.retrieve("provider.openai.apiKey"))
      )
      expect(Option.map(kept, Redacted.value)).toEqual(Option.some("sk-kept"))
    })))

  it.live("refuses a key file that appeared before the store was first written, when others can read it", () =>
    isolated(Effect.gen(function*() {
      const dir = yield* tempDir
      const path = `${dir}/secrets.enc`
      nodeFs.writeFileSync(`${path}.key`, Buffer.alloc(32, 7), { mode: 0o644 })
      nodeFs.chmodSync(`${path}.key`, 0o644)
      const error = yield* openError(path)
      expect(error.reason).toBe("Io")
      expect(error.message).toContain(`chmod 600 ${path}.key`)
      expect(nodeFs.existsSync(path)).toBe(false)
    })))

  it.live("refuses a store directory with mode 0777 with Io saying to chmod 700 it, leaving the directory and store as they were", () =>
    isolated(Effect.gen(function*() {
      const dir = `${yield* tempDir}/shared`
      nodeFs.mkdirSync(dir)
      const path = yield* storeWithOneSecret(dir)
      nodeFs.chmodSync(dir, 0o777)
      const before = nodeFs.readFileSync(path)
      const error = yield* openError(path)
      expect(error).toBeInstanceOf(SecretsError)
      expect(error.reason).toBe("Io")
      expect(error.path).toBe(dir)
      expect(error.message).toContain("has mode 0777")
      expect(error.message).toContain(`chmod 700 ${dir}`)
      expect(mode(dir)).toBe(0o777)
      expect(nodeFs.readFileSync(path).equals(before)).toBe(true)
    })))

  it.live("refuses an empty directory with mode 0777 before creating anything in it", () =>
    isolated(Effect.gen(function*() {
      const dir = `${yield* tempDir}/shared`
      nodeFs.mkdirSync(dir)
      nodeFs.chmodSync(dir, 0o777)
      const error = yield* openError(`${dir}/secrets.enc`)
      expect(error.reason).toBe("Io")
      expect(error.message).toContain(`chmod 700 ${dir}`)
      expect(nodeFs.readdirSync(dir)).toEqual([])
    })))
})
