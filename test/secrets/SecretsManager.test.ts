import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { SecretsError } from "../../src/domain/Errors.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"

/** Runs with NodeContext and an environment that holds exactly `env` (never the machine's). */
const withEnv = (env: Record<string, string> = {}) => <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Exclude<R, NodeContext.NodeContext>> =>
  effect.pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.provide(NodeContext.layer)
  )

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())

/** Opens a file store in its own scope, runs `f` with it and closes it again. */
const withFileStore = <A, E, R>(
  options: SecretsManager.FileOptions,
  f: (secrets: SecretsManager.Service) => Effect.Effect<A, E, R>
) => Effect.scoped(Effect.flatMap(SecretsManager.makeFile(options), f))

const openError = (options: SecretsManager.FileOptions) =>
  Effect.flip(Effect.scoped(SecretsManager.makeFile(options)))

const readBytes = (file: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFile(file))
const value = (secret: Option.Option<Redacted.Redacted<string>>) => Option.map(secret, Redacted.value)

/** Collects the next `n` changes; the subscription is live when this returns. */
const collectChanges = (secrets: SecretsManager.Service, n: number) =>
  Effect.gen(function*() {
    const fiber = yield* secrets.changes.pipe(Stream.take(n), Stream.runCollect, Effect.fork)
    while ((yield* Fiber.status(fiber))._tag !== "Suspended") yield* Effect.yieldNow()
    return Effect.map(Fiber.join(fiber), Chunk.toReadonlyArray)
  })

const passphrase = Redacted.make("correct horse battery staple")

describe("SecretsManager (memory)", () => {
  it.scoped("stores, retrieves, checks and deletes, reporting whether the key existed", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory({ envFallback: false })
      yield* secrets.store("provider.openai.apiKey", "sk-one")
      expect(value(yield* secrets.retrieve("provider.openai.apiKey"))).toEqual(Option.some("sk-one"))
      expect(yield* secrets.check("provider.openai.apiKey")).toBe(true)
      expect(yield* secrets.delete("provider.openai.apiKey")).toBe(true)
      expect(yield* secrets.delete("provider.openai.apiKey")).toBe(false)
      expect(yield* secrets.retrieve("provider.openai.apiKey")).toEqual(Option.none())
      expect(yield* secrets.check("provider.openai.apiKey")).toBe(false)
    }))

  it.scoped("lists keys sorted, with * staying inside one dotted segment and ** crossing dots", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory({
        initial: {
          "provider.openai.apiKey": "a",
          "provider.groq.apiKey": "b",
          "provider.bedrock.accessKeyId": "c",
          "provider.nested.deep.apiKey": "d",
          "provider.flag": "e",
          "other.apiKey": "f"
        }
      })
      expect(yield* secrets.list()).toEqual([
        "other.apiKey",
        "provider.bedrock.accessKeyId",
        "provider.flag",
        "provider.groq.apiKey",
        "provider.nested.deep.apiKey",
        "provider.openai.apiKey"
      ])
      expect(yield* secrets.list("provider.*.apiKey")).toEqual(["provider.groq.apiKey", "provider.openai.apiKey"])
      expect(yield* secrets.list("provider.*")).toEqual(["provider.flag"])
      expect(yield* secrets.list("provider.**.apiKey")).toEqual([
        "provider.groq.apiKey",
        "provider.nested.deep.apiKey",
        "provider.openai.apiKey"
      ])
      expect(yield* secrets.list("*.apiKey")).toEqual(["other.apiKey"])
      expect(yield* secrets.list("provider.?roq.apiKey")).toEqual(["provider.groq.apiKey"])
      expect(yield* secrets.list("provider.open(ai).apiKey")).toEqual([])
    }))

  it.scoped("publishes a change after each store and each delete that removed a key, and none for failures", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory()
      const changes = yield* collectChanges(secrets, 3)
      yield* secrets.store("a.key", "1")
      yield* Effect.flip(secrets.store("bad key", "2"))
      yield* secrets.delete("missing.key")
      yield* secrets.delete("a.key")
      yield* secrets.store("b.key", Redacted.make("3"))
      expect(yield* changes).toEqual([
        { key: "a.key", op: "store" },
        { key: "a.key", op: "delete" },
        { key: "b.key", op: "store" }
      ])
    }))

  it.scoped("rejects invalid key names and unencodable values with InvalidKey, without echoing the value", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory()
      for (const key of ["", "has space.x", "a..b", ".lead", "trail.", "glob.*", "q?"]) {
        const error = yield* Effect.flip(secrets.store(key, "sk-never-echoed"))
        expect(error).toBeInstanceOf(SecretsError)
        expect(error.reason).toBe("InvalidKey")
        expect(error.message).toContain("provider.openai.apiKey")
        expect(JSON.stringify(error)).not.toContain("sk-never-echoed")
      }
      const loneSurrogate = yield* Effect.flip(secrets.store("x.y", "sk-secret\uD800"))
      expect(loneSurrogate.reason).toBe("InvalidKey")
      expect(JSON.stringify(loneSurrogate) + loneSurrogate.message).not.toContain("sk-secret")
      expect(yield* secrets.list()).toEqual([])
    }))
})

describe("SecretsManager.resolveProviderKey", () => {
  const env = { OPENAI_API_KEY: "sk-env-openai", MY_LLM_API_KEY: "sk-env-custom", GROQ_API_KEY: "  " }

  it.effect("prefers the stored key, then the conventional variable, else none", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory({ initial: { "provider.openai.apiKey": "sk-stored" } })
      expect(value(yield* secrets.resolveProviderKey("openai"))).toEqual(Option.some("sk-stored"))
      yield* secrets.delete("provider.openai.apiKey")
      expect(value(yield* secrets.resolveProviderKey("openai"))).toEqual(Option.some("sk-env-openai"))
      expect(value(yield* secrets.resolveProviderKey("my-llm"))).toEqual(Option.some("sk-env-custom"))
      expect(yield* secrets.resolveProviderKey("anthropic")).toEqual(Option.none())
      expect(yield* secrets.resolveProviderKey("groq")).toEqual(Option.none())
    }).pipe(Effect.scoped, withEnv(env)))

  it.effect("is traced for a tracer that records spans, with the provider and the key but never the value", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory({ initial: { "provider.openai.apiKey": "sk-stored" } })
      const { spans, tracer } = recordingTracer()
      expect(value(yield* Effect.withTracer(secrets.resolveProviderKey("openai"), tracer))).toEqual(Option.some("sk-stored"))
      expect(spans.map((span) => [span.name, Object.fromEntries(span.attributes)])).toEqual([
        ["SecretsManager.resolveProviderKey", { providerId: "openai" }],
        ["SecretsManager.retrieve", { key: "provider.openai.apiKey" }]
      ])
      expect(spans[1]!.parent._tag === "Some" && spans[1]!.parent.value).toBe(spans[0])
      expect(JSON.stringify(spans.map((span) => [...span.attributes]))).not.toContain("sk-stored")
    }).pipe(Effect.scoped, withEnv(env)))

  it.effect("does not read the environment when the fallback is off", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory({ envFallback: false })
      expect(yield* secrets.resolveProviderKey("openai")).toEqual(Option.none())
    }).pipe(Effect.scoped, withEnv(env)))

  it.effect("rejects a provider id that cannot be a key segment", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeMemory()
      const error = yield* Effect.flip(secrets.resolveProviderKey("open.ai"))
      expect(error.reason).toBe("InvalidKey")
      expect(error.message).toContain("open.ai")
    }).pipe(Effect.scoped, withEnv(env)))

  it("maps provider ids to their documented variables, else <ID>_API_KEY", () => {
    expect(SecretsManager.providerEnvVar("openai")).toBe("OPENAI_API_KEY")
    expect(SecretsManager.providerEnvVar("OpenAI")).toBe("OPENAI_API_KEY")
    expect(SecretsManager.providerEnvVar("litellm")).toBe("LITELLM_API_KEY")
    expect(SecretsManager.providerEnvVar("bedrock")).toBe("AWS_BEARER_TOKEN_BEDROCK")
    expect(SecretsManager.providerEnvVar("cohere")).toBe("CO_API_KEY")
    expect(SecretsManager.providerEnvVar("my-llm")).toBe("MY_LLM_API_KEY")
    expect(SecretsManager.envVarForKey("provider.bedrock.accessKeyId")).toBe("PROVIDER_BEDROCK_ACCESS_KEY_ID")
  })
})

describe("SecretsManager.layerEnv", () => {
  const env = { OPENAI_API_KEY: "sk-env", PROVIDER_BEDROCK_ACCESS_KEY_ID: "AKIA-env", GROQ_API_KEY: "" }

  it.effect("reads keys from their environment variables and lists the providers that are set", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.SecretsManager
      expect(value(yield* secrets.retrieve("provider.openai.apiKey"))).toEqual(Option.some("sk-env"))
      expect(value(yield* secrets.retrieve("provider.bedrock.accessKeyId"))).toEqual(Option.some("AKIA-env"))
      expect(yield* secrets.check("provider.groq.apiKey")).toBe(false)
      expect(value(yield* secrets.resolveProviderKey("openai"))).toEqual(Option.some("sk-env"))
      expect(yield* secrets.list()).toEqual(["provider.openai.apiKey"])
      expect(yield* secrets.list("provider.groq.*")).toEqual([])
    }).pipe(Effect.provide(SecretsManager.layerEnv), withEnv(env)))

  it.effect("fails store and delete with ReadOnly naming the variable to set, never the value", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.SecretsManager
      const stored = yield* Effect.flip(secrets.store("provider.openai.apiKey", "sk-new-value"))
      expect(stored.reason).toBe("ReadOnly")
      expect(stored.message).toContain("OPENAI_API_KEY")
      expect(JSON.stringify(stored) + stored.message).not.toContain("sk-new-value")
      expect((yield* Effect.flip(secrets.delete("provider.openai.apiKey"))).reason).toBe("ReadOnly")
      expect(value(yield* secrets.retrieve("provider.openai.apiKey"))).toEqual(Option.some("sk-env"))
    }).pipe(Effect.provide(SecretsManager.layerEnv), withEnv(env)))
})

describe("SecretsManager (encrypted file)", () => {
  it.scoped("round-trips values, and a new instance on the same file reads what the first wrote", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDir}/secrets.enc`
      yield* withFileStore({ path }, (secrets) =>
        Effect.all([
          secrets.store("provider.openai.apiKey", "sk-first"),
          secrets.store("provider.groq.apiKey", Redacted.make("gsk-ünïcödé ✓")),
          secrets.store("empty.value", "")
        ]))
      const read = yield* withFileStore({ path }, (secrets) =>
        Effect.all({
          values: Effect.forEach(["provider.openai.apiKey", "provider.groq.apiKey", "empty.value"], secrets.retrieve),
          keys: secrets.list()
        }))
      expect(read.values.map(value)).toEqual([Option.some("sk-first"), Option.some("gsk-ünïcödé ✓"), Option.some("")])
      expect(read.keys).toEqual(["empty.value", "provider.groq.apiKey", "provider.openai.apiKey"])
      const deleted = yield* withFileStore({ path }, (secrets) =>
        Effect.zipRight(secrets.delete("provider.groq.apiKey"), secrets.list()))
      expect(deleted).toEqual(["empty.value", "provider.openai.apiKey"])
      expect(yield* withFileStore({ path }, (secrets) => secrets.list())).toEqual(deleted)
    }).pipe(withEnv()))

  it.scoped("loses none of 100 concurrent stores, in the instance and in a fresh one", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDir}/secrets.enc`
      const keys = Array.from({ length: 100 }, (_, i) => `bulk.key${i}`)
      const listed = yield* withFileStore({ path }, (secrets) =>
        Effect.zipRight(
          Effect.forEach(keys, (key) => secrets.store(key, `value-of-${key}`), { concurrency: "unbounded" }),
          secrets.list("bulk.*")
        ))
      expect(listed).toEqual([...keys].sort())
      const values = yield* withFileStore({ path }, (secrets) => Effect.forEach(keys, (key) => secrets.retrieve(key)))
      expect(values.map(value)).toEqual(keys.map((key) => Option.some(`value-of-${key}`)))
    }).pipe(withEnv()))

  it.scoped("never writes a value's or key name's bytes in any encoding to the store or key file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = `${dir}/secrets.enc`
      const secretsToStore = {
        "provider.plaintextprobe.apiKey": "sk-PLAINTEXT-PROBE-0123456789",
        "service.another.token": "ghp_SecondProbeValue_abcdefgh"
      }
      yield* withFileStore({ path }, (secrets) =>
        Effect.forEach(Object.entries(secretsToStore), ([key, v]) => secrets.store(key, v)))
      const files = [yield* readBytes(path), yield* readBytes(`${path}.key`)].map((bytes) => Buffer.from(bytes))
      for (const text of Object.entries(secretsToStore).flat().concat(["plaintextprobe", "another.token"])) {
        for (const needle of [Buffer.from(text, "utf8"), Buffer.from(text, "utf16le"), Buffer.from(Buffer.from(text).toString("base64"))]) {
          for (const file of files) expect(file.includes(needle)).toBe(false)
        }
      }
    }).pipe(withEnv()))

  it.scoped("re-seals with fresh randomness on every write: the same content never gives the same bytes", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDir}/secrets.enc`
      const snapshots = yield* withFileStore({ path }, (secrets) =>
        Effect.forEach([1, 2, 3], () => Effect.zipRight(secrets.store("same.key", "same value"), readBytes(path))))
      const distinct = new Set(snapshots.map((bytes) => Buffer.from(bytes).toString("hex")))
      expect(distinct.size).toBe(3)
      expect(new Set(snapshots.map((bytes) => bytes.length)).size).toBe(1)
    }).pipe(withEnv()))

  it.scoped("creates the store and key file 0600 in a directory it creates 0700, only on the first write", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = `${yield* tempDir}/nested/store`
      const path = `${dir}/secrets.enc`
      const mode = (file: string) => Effect.map(fs.stat(file), (info) => info.mode & 0o777)
      yield* withFileStore({ path }, (secrets) => secrets.list())
      expect(yield* fs.exists(dir)).toBe(false)
      yield* withFileStore({ path }, (secrets) => secrets.store("a.b", "c"))
      expect(yield* mode(dir)).toBe(0o700)
      expect(yield* mode(path)).toBe(0o600)
      expect(yield* mode(`${path}.key`)).toBe(0o600)
      expect((yield* fs.stat(`${path}.key`)).size).toBe(FileSystem.Size(32))
    }).pipe(withEnv()))

  it.scoped("keeps both keys when two instances write the same file in turn", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDir}/secrets.enc`
      const [first, second] = yield* Effect.all([SecretsManager.makeFile({ path }), SecretsManager.makeFile({ path })])
      yield* first.store("from.first", "1")
      yield* second.store("from.second", "2")
      yield* first.store("from.first.again", "3")
      expect(yield* second.list()).toEqual(["from.first", "from.first.again", "from.second"])
      expect(yield* withFileStore({ path }, (fresh) => fresh.list())).toEqual(["from.first", "from.first.again", "from.second"])
    }).pipe(withEnv()))

  it.scoped("opens anywhere: the moved store and key file (or passphrase) still read the same", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const [here, there] = [yield* tempDir, yield* tempDir]
      yield* withFileStore({ path: `${here}/a.enc` }, (s) => s.store("k.v", "by-key-file"))
      yield* withFileStore({ path: `${here}/b.enc`, passphrase }, (s) => s.store("k.v", "by-passphrase"))
      for (const file of ["a.enc", "a.enc.key", "b.enc"]) yield* fs.copyFile(`${here}/${file}`, `${there}/${file}`)
      expect(value(yield* withFileStore({ path: `${there}/a.enc` }, (s) => s.retrieve("k.v")))).toEqual(Option.some("by-key-file"))
      expect(value(yield* withFileStore({ path: `${there}/b.enc`, passphrase }, (s) => s.retrieve("k.v")))).toEqual(
        Option.some("by-passphrase")
      )
    }).pipe(withEnv()))

  it.scoped("takes the passphrase from AGENT_KERNEL_SECRETS_PASSPHRASE and then needs no key file", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/secrets.enc`
      yield* withFileStore({ path }, (s) => s.store("k.v", "sealed")).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([[SecretsManager.passphraseEnvVar, Redacted.value(passphrase)]])))
      )
      expect(yield* fs.exists(`${path}.key`)).toBe(false)
      expect(value(yield* withFileStore({ path, passphrase }, (s) => s.retrieve("k.v")))).toEqual(Option.some("sealed"))
      const without = yield* openError({ path })
      expect(without.reason).toBe("WrongKey")
      expect(without.message).toContain(SecretsManager.passphraseEnvVar)
    }).pipe(withEnv()))

  it.scoped("fails with WrongKey on a wrong passphrase or key file, naming the file and leaving it untouched", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      const sealed = `${dir}/pass.enc`
      yield* withFileStore({ path: sealed, passphrase }, (s) => s.store("k.v", "x"))
      const before = yield* readBytes(sealed)
      const wrong = yield* openError({ path: sealed, passphrase: Redacted.make("not the passphrase") })
      expect(wrong).toMatchObject({ reason: "WrongKey", path: sealed })
      expect(wrong.message).toContain(sealed)
      expect(wrong.message).toContain("passphrase")
      expect(wrong.message).not.toContain("not the passphrase")
      expect(yield* readBytes(sealed)).toEqual(before)

      const keyed = `${dir}/keyed.enc`
      yield* withFileStore({ path: keyed }, (s) => s.store("k.v", "x"))
      const keyedBefore = yield* readBytes(keyed)
      yield* fs.writeFile(`${keyed}.key`, new Uint8Array(32).fill(7))
      const otherKey = yield* openError({ path: keyed })
      expect(otherKey).toMatchObject({ reason: "WrongKey", path: keyed })
      expect(otherKey.message).toContain(`${keyed}.key`)
      yield* fs.remove(`${keyed}.key`)
      const missingKey = yield* openError({ path: keyed })
      expect(missingKey.reason).toBe("WrongKey")
      expect(missingKey.message).toContain("does not exist")
      expect(yield* fs.exists(`${keyed}.key`)).toBe(false)
      expect(yield* readBytes(keyed)).toEqual(keyedBefore)
    }).pipe(withEnv()))

  it.scoped("fails with Corrupt on a truncated file, saying what to do, and leaves it untouched", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/secrets.enc`
      yield* withFileStore({ path }, (s) => s.store("k.v", "some value"))
      const full = yield* readBytes(path)
      for (const length of [0, 3, 40, Math.floor(full.length / 2), full.length - 1]) {
        const truncated = full.slice(0, length)
        yield* fs.writeFile(path, truncated)
        const error = yield* openError({ path })
        expect(error).toMatchObject({ reason: "Corrupt", path })
        expect(error.message).toContain(path)
        expect(error.message).toMatch(/backup/)
        expect(yield* readBytes(path)).toEqual(truncated)
      }
    }).pipe(withEnv()))

  it.scoped("fails with Corrupt, never WrongKey, when any single byte is flipped, and leaves the file untouched", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/secrets.enc`
      yield* withFileStore({ path, passphrase }, (s) => s.store("k.v", "v"))
      const original = yield* readBytes(path)
      for (let i = 0; i < original.length; i++) {
        const flipped = Buffer.from(original)
        flipped[i] = flipped[i]! ^ 0x01
        yield* fs.writeFile(path, flipped)
        const error = yield* openError({ path, passphrase })
        expect({ byte: i, reason: error.reason }).toEqual({ byte: i, reason: "Corrupt" })
        expect(yield* readBytes(path)).toEqual(flipped)
      }
    }).pipe(withEnv()))

  it.scoped("reports an unreadable path as Io naming it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const error = yield* openError({ path: dir })
      expect(error).toMatchObject({ reason: "Io", path: dir })
      expect(error.message).toContain(dir)
    }).pipe(withEnv()))

  it.scoped("publishes changes for writes to the file", () =>
    Effect.gen(function*() {
      const secrets = yield* SecretsManager.makeFile({ path: `${yield* tempDir}/secrets.enc` })
      const changes = yield* collectChanges(secrets, 2)
      yield* secrets.store("a.b", "1")
      yield* secrets.delete("a.b")
      expect(yield* changes).toEqual([{ key: "a.b", op: "store" }, { key: "a.b", op: "delete" }])
    }).pipe(withEnv()))

  it.effect.prop(
    "any set of keys and values round-trips through a fresh instance",
    [fc.uniqueArray(
      fc.tuple(
        fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{1,6}$/), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(".")),
        fc.string({ unit: "grapheme", maxLength: 40 })
      ),
      { selector: ([key]) => key, maxLength: 8 }
    )],
    ([entries]) =>
      Effect.gen(function*() {
        const path = `${yield* tempDir}/secrets.enc`
        yield* withFileStore({ path }, (s) => Effect.forEach(entries, ([key, v]) => s.store(key, v)))
        const read = yield* withFileStore({ path }, (s) =>
          Effect.all({ keys: s.list("**"), values: Effect.forEach(entries, ([key]) => s.retrieve(key)) }))
        expect(read.keys).toEqual(entries.map(([key]) => key).sort())
        expect(read.values.map(value)).toEqual(entries.map(([, v]) => Option.some(v)))
      }).pipe(Effect.scoped, withEnv()),
    { fastCheck: { numRuns: 15 } }
  )
})

describe("SecretsManager.layer", () => {
  it.scoped("stores under $XDG_CONFIG_HOME/effect-agent-kernel, else ~/.config/effect-agent-kernel", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const [xdg, home] = [yield* tempDir, yield* tempDir]
      const storeOne = Effect.gen(function*() {
        const secrets = yield* SecretsManager.SecretsManager
        yield* secrets.store("k.v", "x")
      }).pipe(Effect.provide(SecretsManager.layer))
      yield* storeOne.pipe(withEnv({ XDG_CONFIG_HOME: xdg, HOME: home }))
      expect(yield* fs.exists(`${xdg}/effect-agent-kernel/secrets.enc`)).toBe(true)
      yield* storeOne.pipe(withEnv({ XDG_CONFIG_HOME: "relative/ignored", HOME: home }))
      expect(yield* fs.exists(`${home}/.config/effect-agent-kernel/secrets.enc`)).toBe(true)
    }).pipe(withEnv()))
})
