import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as nodeFs from "node:fs"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import type { ConfigError } from "../../src/domain/Errors.js"

const memory = (initial?: Record<string, unknown>) => ConfigManager.make(initial)

const failure = <A, R>(effect: Effect.Effect<A, ConfigError, R>) => Effect.flip(effect)

/** Runs `body` with a fresh temporary directory and the Node platform services. */
const inTempDir = <A, E>(
  body: (dir: string) => Effect.Effect<A, E, FileSystem.FileSystem | Path.Path | Scope.Scope>
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    return yield* body(yield* fs.makeTempDirectoryScoped({ prefix: "config-manager-test-" }))
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const readJson = (path: string): unknown => JSON.parse(nodeFs.readFileSync(path, "utf8"))

/** Waits for the next change; the bound only keeps a broken watcher from hanging the suite. */
const nextChange = (queue: Queue.Dequeue<ConfigManager.ConfigChange>) =>
  Queue.take(queue).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no change arrived") }))

describe("ConfigManager (memory)", () => {
  it.scoped("get falls back to the documented defaults of known keys and is None for unset unknown keys", () =>
    Effect.gen(function*() {
      const config = yield* memory()
      expect(yield* config.get("plugins.enabled")).toEqual(Option.some(["ollama"]))
      expect(yield* config.get("routing.tierMapping.reasoning")).toEqual(Option.some("ollama"))
      expect(yield* config.get("routing.healthTtlMs")).toEqual(Option.some(30_000))
      expect(yield* config.get("agent.maxSteps")).toEqual(Option.some(10))
      expect(yield* config.get("providers.openai.model")).toEqual(Option.none())
      expect(yield* config.get("ui.theme")).toEqual(Option.none())
    }))

  it.scoped("set stores nested values under dotted keys and get reads them back", () =>
    Effect.gen(function*() {
      const config = yield* memory()
      yield* config.set("providers.openai.model", "gpt-4.1")
      yield* config.set("routing.tierMapping.complex", "openai")
      yield* config.set("ui", { theme: "dark", sizes: [1, 2] })
      expect(yield* config.get("providers.openai.model")).toEqual(Option.some("gpt-4.1"))
      expect(yield* config.get("routing.tierMapping.complex")).toEqual(Option.some("openai"))
      expect(yield* config.get("routing.tierMapping.simple")).toEqual(Option.some("ollama"))
      expect(yield* config.get("ui.sizes")).toEqual(Option.some([1, 2]))
      expect(yield* config.snapshot).toEqual({
        providers: { openai: { model: "gpt-4.1" } },
        routing: { tierMapping: { complex: "openai" } },
        ui: { theme: "dark", sizes: [1, 2] }
      })
    }))

  it.scoped("values are copied in and out, so mutating them changes nothing stored", () =>
    Effect.gen(function*() {
      const config = yield* memory()
      const enabled = ["openai"]
      yield* config.set("plugins.enabled", enabled)
      enabled.push("mutated-after-set")
      const read = Option.getOrThrow(yield* config.get("plugins.enabled")) as Array<string>
      read.push("mutated-after-get")
      const snapshot = yield* config.snapshot
      ;(snapshot.plugins as { enabled: Array<string> }).enabled.push("mutated-snapshot")
      expect(yield* config.get("plugins.enabled")).toEqual(Option.some(["openai"]))
    }))

  it.scoped("has reports explicit values only, not defaults", () =>
    Effect.gen(function*() {
      const config = yield* memory()
      expect(yield* config.has("routing.tierMapping.simple")).toBe(false)
      yield* config.set("routing.tierMapping.simple", "openai")
      expect(yield* config.has("routing.tierMapping.simple")).toBe(true)
      expect(yield* config.has("routing.tierMapping")).toBe(true)
      expect(yield* config.has("routing.tierMapping.complex")).toBe(false)
    }))

  it.scoped("delete removes a key and its subtree, after which a known key reads its default again", () =>
    Effect.gen(function*() {
      const config = yield* memory({ routing: { tierMapping: { simple: "openai" } }, ui: { theme: "dark", font: "mono" } })
      yield* config.delete("routing.tierMapping.simple")
      expect(yield* config.has("routing.tierMapping.simple")).toBe(false)
      expect(yield* config.get("routing.tierMapping.simple")).toEqual(Option.some("ollama"))
      yield* config.delete("ui")
      expect(yield* config.get("ui.theme")).toEqual(Option.none())
      expect(yield* config.snapshot).toEqual({ routing: { tierMapping: {} } })
    }))

  it.scoped("a wrong value for a known key fails with InvalidValue naming the key and changes nothing", () =>
    Effect.gen(function*() {
      const config = yield* memory({ routing: { tierMapping: { simple: "openai" } } })
      const error = yield* failure(config.set("routing.tierMapping.simple", 42))
      expect(error.reason).toBe("InvalidValue")
      expect(error.key).toBe("routing.tierMapping.simple")
      expect(error.message).toContain("routing.tierMapping.simple: Expected string, actual 42")
      const viaParent = yield* failure(config.set("routing.tierMapping", { simple: "openai", complex: ["x"] }))
      expect(viaParent.key).toBe("routing.tierMapping")
      expect(viaParent.message).toContain("routing.tierMapping.complex")
      const badUrl = yield* failure(config.set("providers.local.baseUrl", "ftp://127.0.0.1"))
      expect(badUrl.message).toContain("providers.local.baseUrl: must be an http(s) URL")
      expect(yield* config.snapshot).toEqual({ routing: { tierMapping: { simple: "openai" } } })
    }))

  it.scoped("a delete that would leave an invalid document fails and changes nothing", () =>
    Effect.gen(function*() {
      const config = yield* memory({ mcp: { servers: { everything: { command: "npx", args: ["x"] } } } })
      const error = yield* failure(config.delete("mcp.servers.everything.command"))
      expect(error.reason).toBe("InvalidValue")
      expect(error.message).toContain("mcp.servers.everything: an MCP server needs exactly one")
      expect(yield* config.get("mcp.servers.everything.command")).toEqual(Option.some("npx"))
    }))

  it.scoped("values that are not JSON, invalid keys and non-object parents are refused with InvalidValue", () =>
    Effect.gen(function*() {
      const config = yield* memory({ ui: { theme: "dark" } })
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      for (const value of [undefined, () => 1, Number.NaN, 10n, new Date(0), cyclic]) {
        const error = yield* failure(config.set("ui.other", value))
        expect(error.reason).toBe("InvalidValue")
        expect(error.message).toContain("Values must be JSON")
      }
      for (const key of ["", "ui..theme", "ui.__proto__.polluted"]) {
        expect((yield* failure(config.set(key, 1))).message).toContain("invalid key")
      }
      const throughString = yield* failure(config.set("ui.theme.color", "red"))
      expect(throughString.message).toContain("\"ui.theme\" holds a string, not an object")
      expect(yield* config.snapshot).toEqual({ ui: { theme: "dark" } })
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    }))

  it.scoped("getAs decodes with a Schema and fails with InvalidValue when the shape differs", () =>
    Effect.gen(function*() {
      const config = yield* memory({ ui: { size: "large" } })
      const Mapping = Schema.Struct({ simple: Schema.String, complex: Schema.String })
      expect(yield* config.getAs("routing.tierMapping", Mapping)).toEqual(
        Option.some({ simple: "ollama", complex: "ollama" })
      )
      expect(yield* config.getAs("ui.missing", Schema.String)).toEqual(Option.none())
      const error = yield* failure(config.getAs("ui.size", Schema.Number))
      expect(error.reason).toBe("InvalidValue")
      expect(error.key).toBe("ui.size")
    }))

  it.scoped("layerMemory fails with InvalidValue when the initial document does not match the Schema", () =>
    Effect.gen(function*() {
      const error = yield* failure(Layer.build(ConfigManager.layerMemory({ agent: { maxSteps: -1 } })))
      expect(error.reason).toBe("InvalidValue")
      expect(error.message).toContain("agent.maxSteps")
    }))

  it.scoped("changes streams programmatic sets and deletes", () =>
    Effect.gen(function*() {
      const config = yield* memory()
      const received = yield* Queue.unbounded<ConfigManager.ConfigChange>()
      yield* config.changes.pipe(Stream.runForEach((change) => Queue.offer(received, change)), Effect.forkScoped)
      // The stream subscribes when its fiber first runs, so keep setting until it has seen a set.
      yield* config.set("ui.theme", "dark").pipe(
        Effect.zipRight(Effect.yieldNow()),
        Effect.repeat({ until: () => Effect.map(Queue.size(received), (size) => size > 0) })
      )
      yield* config.delete("ui.theme")
      yield* config.set("plugins.enabled", ["openai"])
      const after: Array<ConfigManager.ConfigChange> = []
      while (after.length < 2) {
        const change = yield* Queue.take(received)
        if (after.length === 0 && change.key === "ui.theme" && Option.isSome(change.value)) {
          expect(change.value).toEqual(Option.some("dark"))
          continue
        }
        after.push(change)
      }
      expect(after).toEqual([
        { key: "ui.theme", value: Option.none() },
        { key: "plugins.enabled", value: Option.some(["openai"]) }
      ])
    }))

  it.scoped("a subscriber sees only changes made after it subscribed, in order; deleting an absent key is no change", () =>
    Effect.gen(function*() {
      const config = yield* memory()
      yield* config.set("ui.theme", "light")
      const changes = yield* config.subscribe
      yield* config.delete("ui.absent")
      yield* config.set("ui.theme", "dark")
      yield* config.delete("ui.theme")
      expect(yield* Queue.takeAll(changes).pipe(Effect.map((chunk) => Array.from(chunk)))).toEqual([
        { key: "ui.theme", value: Option.some("dark") },
        { key: "ui.theme", value: Option.none() }
      ])
    }))

  it.scoped("a rejected change is not published", () =>
    Effect.gen(function*() {
      const config = yield* memory()
      const changes = yield* config.subscribe
      yield* Effect.ignore(config.set("agent.maxSteps", "many"))
      yield* config.set("agent.maxSteps", 3)
      expect(Array.from(yield* Queue.takeAll(changes))).toEqual([{ key: "agent.maxSteps", value: Option.some(3) }])
    }))

  it.scoped("configProvider reads the same values as get, defaults and arrays included, and follows changes", () =>
    Effect.gen(function*() {
      const config = yield* memory({ providers: { openai: { model: "gpt-4.1" } } })
      const provider = yield* ConfigManager.configProvider.pipe(Effect.provideService(ConfigManager.ConfigManager, config))
      const read = <A>(c: Config.Config<A>) => Effect.withConfigProvider(c, provider)
      expect(yield* read(Config.string("providers.openai.model"))).toBe("gpt-4.1")
      expect(yield* read(Config.nested(Config.string("model"), "providers.openai"))).toBe("gpt-4.1")
      expect(yield* read(Config.number("routing.healthTtlMs"))).toBe(30_000)
      expect(yield* read(Config.array(Config.string(), "plugins.enabled"))).toEqual(["ollama"])
      expect(yield* read(Config.string("plugins.enabled[0]"))).toBe("ollama")
      expect(yield* read(Config.option(Config.string("providers.bedrock.region")))).toEqual(Option.none())
      yield* config.set("providers.openai.model", "gpt-5")
      yield* config.set("plugins.enabled", ["openai", "litellm"])
      expect(yield* read(Config.string("providers.openai.model"))).toBe("gpt-5")
      expect(yield* read(Config.array(Config.string(), "plugins.enabled"))).toEqual(["openai", "litellm"])
      const objectRead = yield* Effect.flip(read(Config.string("providers.openai")))
      expect(String(objectRead)).toContain("holds an object")
    }))

  it.effect("layerConfigProvider serves the store first and falls back to the previous provider", () =>
    Effect.gen(function*() {
      const both = Config.all([Config.string("providers.openai.model"), Config.string("OUTSIDE_ONLY")])
      const [model, outside] = yield* both.pipe(
        Effect.provide(ConfigManager.layerConfigProvider.pipe(
          Layer.provide(ConfigManager.layerMemory({ providers: { openai: { model: "from-store" } } }))
        )),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["OUTSIDE_ONLY", "from-env"], ["providers.openai.model", "shadowed"]]))
        )
      )
      expect(model).toBe("from-store")
      expect(outside).toBe("from-env")
    }))
})

describe("ConfigManager (file)", () => {
  it.live("100 parallel sets of distinct keys all reach the file", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path })
        yield* Effect.forEach(
          Array.from({ length: 100 }, (_, index) => index),
          (index) => config.set(`bulk.key${index}`, index),
          { concurrency: "unbounded", discard: true }
        )
        const onDisk = readJson(path) as { bulk: Record<string, number> }
        expect(Object.keys(onDisk.bulk)).toHaveLength(100)
        for (let index = 0; index < 100; index++) expect(onDisk.bulk[`key${index}`]).toBe(index)
      })
    ))

  it.scoped("the file is pretty-printed JSON with mode 0600 in a directory with mode 0700", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/nested/effect-agent-kernel/config.json`
        const config = yield* ConfigManager.makeFile({ path, watch: false })
        yield* config.set("providers.openai.model", "gpt-4.1")
        expect(nodeFs.readFileSync(path, "utf8")).toBe(
          `${JSON.stringify({ providers: { openai: { model: "gpt-4.1" } } }, null, 2)}\n`
        )
        expect(nodeFs.statSync(path).mode & 0o777).toBe(0o600)
        expect(nodeFs.statSync(`${dir}/nested/effect-agent-kernel`).mode & 0o777).toBe(0o700)
      })
    ))

  it.scoped("a missing file is an empty configuration and is not created until the first change", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path, watch: false })
        expect(yield* config.snapshot).toEqual({})
        expect(yield* config.get("agent.maxSteps")).toEqual(Option.some(10))
        expect(nodeFs.existsSync(path)).toBe(false)
      })
    ))

  it.scoped("a new layer instance reads what an earlier one wrote", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        yield* Effect.scoped(Effect.gen(function*() {
          const first = yield* ConfigManager.makeFile({ path, watch: false })
          yield* first.set("routing.tierMapping.complex", "openai")
          yield* first.set("ui.theme", "dark")
          yield* first.set("ui.gone", true)
          yield* first.delete("ui.gone")
        }))
        const second = yield* Layer.build(ConfigManager.layerFile({ path, watch: false })).pipe(
          Effect.map((context) => context.unsafeMap.get(ConfigManager.ConfigManager.key) as ConfigManager.Service)
        )
        expect(yield* second.snapshot).toEqual({ routing: { tierMapping: { complex: "openai" } }, ui: { theme: "dark" } })
        expect(yield* second.get("routing.tierMapping.complex")).toEqual(Option.some("openai"))
      })
    ))

  it.scoped("an invalid value is rejected and the old one is kept in memory and in the file", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path, watch: false })
        yield* config.set("providers.openai.baseUrl", "https://api.openai.com/v1")
        const before = nodeFs.readFileSync(path)
        const error = yield* failure(config.set("providers.openai.baseUrl", "api.openai.com"))
        expect(error.reason).toBe("InvalidValue")
        expect(error.key).toBe("providers.openai.baseUrl")
        expect(yield* config.get("providers.openai.baseUrl")).toEqual(Option.some("https://api.openai.com/v1"))
        expect(nodeFs.readFileSync(path).equals(before)).toBe(true)
      })
    ))

  it.scoped.each([
    ["not JSON", "{ \"routing\": { \"tierMapping\": ", "is not valid JSON"],
    ["not an object", "[1, 2, 3]\n", "must hold a JSON object"],
    ["a schema mismatch", JSON.stringify({ agent: { maxSteps: "ten" } }, null, 2), "agent.maxSteps"]
  ])("a file that is %s fails start-up with Corrupt and is left byte-identical", ([, content, problem]) =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        nodeFs.writeFileSync(path, content)
        const before = nodeFs.readFileSync(path)
        const error = yield* failure(Layer.build(ConfigManager.layerFile({ path })))
        expect(error.reason).toBe("Corrupt")
        expect(error.path).toBe(path)
        expect(error.message).toContain(path)
        expect(error.message).toContain(problem)
        expect(nodeFs.readFileSync(path).equals(before)).toBe(true)
      })
    ))

  it.scoped("a set first takes in a hand edit not yet noticed, so the edit is not lost", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path, watch: false })
        yield* config.set("ui.theme", "dark")
        const changes = yield* config.subscribe
        nodeFs.writeFileSync(path, JSON.stringify({ ui: { theme: "dark", font: "mono" } }))
        yield* config.set("agent.maxSteps", 4)
        expect(readJson(path)).toEqual({ ui: { theme: "dark", font: "mono" }, agent: { maxSteps: 4 } })
        expect(Array.from(yield* Queue.takeAll(changes))).toEqual([
          { key: "ui.font", value: Option.some("mono") },
          { key: "agent.maxSteps", value: Option.some(4) }
        ])
      })
    ))

  it.scoped("while the file is broken by hand, set fails with Corrupt and never overwrites it", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path, watch: false })
        yield* config.set("ui.theme", "dark")
        nodeFs.writeFileSync(path, "{ \"ui\": { \"theme\": \"light\" ")
        const before = nodeFs.readFileSync(path)
        const error = yield* failure(config.set("ui.font", "mono"))
        expect(error.reason).toBe("Corrupt")
        expect(error.path).toBe(path)
        expect(nodeFs.readFileSync(path).equals(before)).toBe(true)
        expect(yield* config.get("ui.theme")).toEqual(Option.some("dark"))
      })
    ))

  it.live("hand edits of the running file are published per leaf key, after the program's own edits", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        const config = yield* ConfigManager.makeFile({ path })
        const changes = yield* config.subscribe
        yield* config.set("routing.tierMapping.simple", "openai")
        yield* config.set("ui.theme", "dark")
        const edited = { routing: { tierMapping: { simple: "litellm", complex: "openai" } } }
        nodeFs.writeFileSync(path, JSON.stringify(edited, null, 2))
        const received: Array<ConfigManager.ConfigChange> = []
        while (received.length < 5) received.push(yield* nextChange(changes))
        expect(received).toEqual([
          { key: "routing.tierMapping.simple", value: Option.some("openai") },
          { key: "ui.theme", value: Option.some("dark") },
          { key: "ui.theme", value: Option.none() },
          { key: "routing.tierMapping.complex", value: Option.some("openai") },
          { key: "routing.tierMapping.simple", value: Option.some("litellm") }
        ])
        expect(yield* config.snapshot).toEqual(edited)
      })
    ))

  it.live("the changes stream sees a hand edit made with an editor-style replace", () =>
    inTempDir((dir) =>
      Effect.gen(function*() {
        const path = `${dir}/config.json`
        nodeFs.writeFileSync(path, JSON.stringify({ providers: { openai: { model: "gpt-4.1" } } }))
        const config = yield* ConfigManager.makeFile({ path })
        const seen = yield* config.changes.pipe(
          Stream.take(1),
          Stream.runHead,
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no change arrived") }),
          Effect.fork
        )
        // The stream subscribes as soon as its fiber first runs, which yielding lets happen now.
        yield* Effect.yieldNow()
        nodeFs.writeFileSync(`${path}.swp`, JSON.stringify({ providers: { openai: { model: "gpt-5" } } }))
        nodeFs.renameSync(`${path}.swp`, path)
        expect(yield* seen.await.pipe(Effect.flatten)).toEqual(
          Option.some({ key: "providers.openai.model", value: Option.some("gpt-5") })
        )
      })
    ))

  it.live("a hand edit that breaks the file is logged as a warning and the old values stay", () =>
    Effect.gen(function*() {
      const warnings = yield* Queue.unbounded<string>()
      const capture = Logger.make(({ logLevel, message }) => {
        if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
          Queue.unsafeOffer(warnings, Array.isArray(message) ? message.join(" ") : String(message))
        }
      })
      yield* inTempDir((dir) =>
        Effect.gen(function*() {
          const path = `${dir}/config.json`
          const config = yield* ConfigManager.makeFile({ path })
          yield* config.set("ui.theme", "dark")
          nodeFs.writeFileSync(path, JSON.stringify({ ui: { theme: "light" }, agent: { maxSteps: 0 } }))
          const warning = yield* Queue.take(warnings).pipe(
            Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no warning logged") })
          )
          expect(warning).toContain(path)
          expect(warning).toContain("agent.maxSteps")
          expect(yield* config.get("ui.theme")).toEqual(Option.some("dark"))
          expect(readJson(path)).toEqual({ ui: { theme: "light" }, agent: { maxSteps: 0 } })
        })
      ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    }))

  it.effect("the default path is under XDG_CONFIG_HOME when it is absolute, else under HOME/.config", () =>
    Effect.gen(function*() {
      const at = (entries: Array<[string, string]>) =>
        ConfigManager.defaultFilePath.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries))))
      expect(yield* at([["XDG_CONFIG_HOME", "/xdg"], ["HOME", "/home/u"]])).toBe("/xdg/effect-agent-kernel/config.json")
      expect(yield* at([["XDG_CONFIG_HOME", "relative"], ["HOME", "/home/u"]])).toBe(
        "/home/u/.config/effect-agent-kernel/config.json"
      )
      expect(yield* at([["HOME", "/home/u"]])).toBe("/home/u/.config/effect-agent-kernel/config.json")
    }).pipe(Effect.provide(Path.layer)))
})
