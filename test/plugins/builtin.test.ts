import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import type { ToolEvent } from "../../src/domain/Events.js"
import { bedrock, builtins, litellm, ollama, openai, operatorPairingTools } from "../../src/plugins/builtin.js"
import { type ProviderPlugin, ProviderPluginSchema } from "../../src/plugins/ProviderPlugin.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import * as KeyBinding from "../../src/plugins/internal/keyBinding.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

const KEY = "sk-proj-pairing-test-7c6b5a4d3e2f"
const context = ExecutionContext.make({ contextId: "ctx", taskId: "task", agentId: "agent" })

const stores = (config: Record<string, unknown> = {}, secrets: Record<string, string> = {}) =>
  Layer.merge(ConfigManager.layerMemory(config), SecretsManager.layerMemoryWith({ envFallback: false, initial: secrets }))

/** Runs one of a plugin's pairing tools through a Toolbox, as an agent would (the model's tools). */
const runTool = (plugin: ProviderPlugin, name: string, args: Record<string, unknown>) =>
  Effect.gen(function*() {
    const config = yield* ConfigManager.ConfigManager
    const secrets = yield* SecretsManager.SecretsManager
    const toolbox = yield* Toolbox.make([plugin.getPairingTools!(secrets, config)])
    const events = yield* Stream.runCollect(toolbox.execute({ id: "call-1", name, arguments: args }, context))
    return Chunk.toArray(events) as ReadonlyArray<ToolEvent>
  })

/** Runs one of a provider's pairing tools as `scripts/pair.ts` does (a person at a terminal). */
const runOperatorTool = (plugin: ProviderPlugin, name: string, args: Record<string, unknown>) =>
  Effect.gen(function*() {
    const config = yield* ConfigManager.ConfigManager
    const secrets = yield* SecretsManager.SecretsManager
    const toolbox = yield* Toolbox.make([Option.getOrThrow(operatorPairingTools(plugin.id, secrets, config))])
    const events = yield* Stream.runCollect(toolbox.execute({ id: "call-1", name, arguments: args }, context))
    return Chunk.toArray(events) as ReadonlyArray<ToolEvent>
  })

const outcome = (events: ReadonlyArray<ToolEvent>) => {
  const last = events[events.length - 1]!
  if (last.type === "tool-complete") return { ok: true as const, text: String(last.result) }
  if (last.type === "tool-error") return { ok: false as const, reason: last.reason, text: last.error }
  throw new Error(`not a terminal event: ${JSON.stringify(last)}`)
}

const configValue = (key: string) =>
  Effect.flatMap(ConfigManager.ConfigManager, (config) => Effect.map(config.get(key), Option.getOrUndefined))

const secretValue = (key: string) =>
  Effect.flatMap(
    SecretsManager.SecretsManager,
    (secrets) => Effect.map(secrets.retrieve(key), (value) => Option.getOrUndefined(Option.map(value, Redacted.value)))
  )

const tierMapping = Effect.all({
  simple: configValue("routing.tierMapping.simple"),
  moderate: configValue("routing.tierMapping.moderate"),
  complex: configValue("routing.tierMapping.complex"),
  reasoning: configValue("routing.tierMapping.reasoning")
})

describe("built-in plugins", () => {
  it("are openai, litellm, bedrock and ollama, each a valid provider plugin", () => {
    expect(builtins.map((plugin) => plugin.id)).toEqual(["openai", "litellm", "bedrock", "ollama"])
    for (const plugin of builtins) {
      expect(Either.isRight(Schema.decodeUnknownEither(ProviderPluginSchema)(plugin)), plugin.id).toBe(true)
      expect(plugin.type).toBe("provider")
    }
  })

  it.effect("each offers <id>_pair and <id>_unpair tools", () =>
    Effect.gen(function*() {
      const config = yield* ConfigManager.ConfigManager
      const secrets = yield* SecretsManager.SecretsManager
      for (const plugin of builtins) {
        const tools = yield* plugin.getPairingTools!(secrets, config).getTools
        expect(tools.map((tool) => tool.name)).toEqual([`${plugin.id}_pair`, `${plugin.id}_unpair`])
      }
    }).pipe(Effect.provide(stores())))
})

describe("openai_pair", () => {
  it.effect("stores the key, sets model and base URL, enables openai and routes complex and reasoning to it", () =>
    Effect.gen(function*() {
      const events = yield* runOperatorTool(openai, "openai_pair", { apiKey: KEY, model: "gpt-4.1-mini", baseUrl: "http://127.0.0.1:9999" })
      const result = outcome(events)
      expect(result.ok).toBe(true)
      expect(result.text).toContain("gpt-4.1-mini")
      expect(yield* secretValue("provider.openai.apiKey")).toBe(KEY)
      expect(yield* configValue("providers.openai.model")).toBe("gpt-4.1-mini")
      expect(yield* configValue("providers.openai.baseUrl")).toBe("http://127.0.0.1:9999")
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama", "openai"])
      expect(yield* tierMapping).toEqual({ simple: "ollama", moderate: "ollama", complex: "openai", reasoning: "openai" })
    }).pipe(Effect.provide(stores({ plugins: { enabled: ["ollama"] } }))))

  it.effect("uses the default model when none is given and does not enable openai twice", () =>
    Effect.gen(function*() {
      expect(outcome(yield* runOperatorTool(openai, "openai_pair", { apiKey: KEY })).ok).toBe(true)
      expect(outcome(yield* runOperatorTool(openai, "openai_pair", { apiKey: KEY })).ok).toBe(true)
      expect(yield* configValue("providers.openai.model")).toBe("gpt-4.1")
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama", "openai"])
    }).pipe(Effect.provide(stores({ plugins: { enabled: ["ollama"] } }))))

  it.effect("never shows the key: tool-start redacts it and the answer does not repeat it", () =>
    Effect.gen(function*() {
      const events = yield* runTool(openai, "openai_pair", { apiKey: KEY })
      expect(events.map((event) => event.type)).toEqual(["tool-start", "tool-complete"])
      const start = events[0]!
      expect(start.type === "tool-start" && start.arguments).toEqual({ apiKey: "<redacted>" })
      expect(JSON.stringify(events)).not.toContain(KEY)
    }).pipe(Effect.provide(stores())))

  it.effect("stores a key pasted with surrounding whitespace trimmed, without showing it", () =>
    Effect.gen(function*() {
      const events = yield* runTool(openai, "openai_pair", { apiKey: `  ${KEY}\n` })
      expect(outcome(events).ok).toBe(true)
      expect(yield* secretValue("provider.openai.apiKey")).toBe(KEY)
      expect(JSON.stringify(events)).not.toContain(KEY)
    }).pipe(Effect.provide(stores())))

  it.effect("without an apiKey fails with InvalidArguments and changes nothing", () =>
    Effect.gen(function*() {
      const result = outcome(yield* runTool(openai, "openai_pair", { model: "gpt-4.1" }))
      expect(result).toMatchObject({ ok: false, reason: "InvalidArguments" })
      expect(result.text).toContain("apiKey")
      expect(yield* configValue("providers.openai.model")).toBeUndefined()
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama"])
    }).pipe(Effect.provide(stores())))

  it.effect("refuses a base URL that is not an http(s) URL before storing anything, and the error hides the key", () =>
    Effect.gen(function*() {
      const events = yield* runOperatorTool(openai, "openai_pair", { apiKey: KEY, baseUrl: "api.openai.com" })
      const result = outcome(events)
      expect(result).toMatchObject({ ok: false, reason: "InvalidArguments" })
      expect(result.text).toContain("baseUrl")
      expect(JSON.stringify(events)).not.toContain(KEY)
      expect(yield* secretValue("provider.openai.apiKey")).toBeUndefined()
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama"])
      expect(yield* configValue("routing.tierMapping.complex")).toBe("ollama")
    }).pipe(Effect.provide(stores())))
})

describe("litellm_pair and ollama_pair", () => {
  it.effect("litellm pairs without a key and takes moderate, complex and reasoning", () =>
    Effect.gen(function*() {
      expect(outcome(yield* runOperatorTool(litellm, "litellm_pair", { baseUrl: "http://127.0.0.1:4000" })).ok).toBe(true)
      expect(yield* tierMapping).toEqual({ simple: "ollama", moderate: "litellm", complex: "litellm", reasoning: "litellm" })
      expect(yield* secretValue("provider.litellm.apiKey")).toBeUndefined()
      expect(yield* configValue("providers.litellm.model")).toBe("gpt-4o-mini")
    }).pipe(Effect.provide(stores())))

  it.effect("ollama takes simple and moderate, and stores a cloud key when given one", () =>
    Effect.gen(function*() {
      const events = yield* runTool(ollama, "ollama_pair", { apiKey: KEY, model: "llama3.3" })
      expect(outcome(events).ok).toBe(true)
      expect(JSON.stringify(events)).not.toContain(KEY)
      expect(yield* secretValue("provider.ollama.apiKey")).toBe(KEY)
      expect(yield* tierMapping).toEqual({ simple: "ollama", moderate: "ollama", complex: "openai", reasoning: "openai" })
    }).pipe(Effect.provide(stores({
      plugins: { enabled: ["openai"] },
      routing: { tierMapping: { simple: "openai", moderate: "openai", complex: "openai", reasoning: "openai" } }
    }))))
})

describe("<id>_unpair", () => {
  it.effect("disables the plugin, points its tiers back at the default provider and keeps the key", () =>
    Effect.gen(function*() {
      yield* runTool(openai, "openai_pair", { apiKey: KEY })
      const result = outcome(yield* runTool(openai, "openai_unpair", {}))
      expect(result.ok).toBe(true)
      expect(result.text).toContain("complex, reasoning")
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama"])
      expect(yield* tierMapping).toEqual({ simple: "ollama", moderate: "ollama", complex: "ollama", reasoning: "ollama" })
      expect(yield* secretValue("provider.openai.apiKey")).toBe(KEY)
    }).pipe(Effect.provide(stores())))

  it.effect("with deleteKey also deletes the provider's stored key, and only its own", () =>
    Effect.gen(function*() {
      yield* runTool(openai, "openai_pair", { apiKey: KEY })
      const events = yield* runOperatorTool(openai, "openai_unpair", { deleteKey: true })
      expect(outcome(events).ok).toBe(true)
      expect(JSON.stringify(events)).not.toContain(KEY)
      expect(yield* secretValue("provider.openai.apiKey")).toBeUndefined()
      expect(yield* secretValue("provider.litellm.apiKey")).toBe("sk-litellm-other-key-0000")
    }).pipe(Effect.provide(stores({}, { "provider.litellm.apiKey": "sk-litellm-other-key-0000" }))))

  it.effect("points tiers at routing.defaultProvider when it is set and no other tier is on an enabled provider", () =>
    Effect.gen(function*() {
      yield* runTool(openai, "openai_pair", { apiKey: KEY })
      yield* runTool(openai, "openai_unpair", {})
      expect(yield* tierMapping).toEqual({ simple: "litellm", moderate: "litellm", complex: "litellm", reasoning: "litellm" })
    }).pipe(Effect.provide(stores({
      plugins: { enabled: ["ollama", "litellm"] },
      routing: { defaultProvider: "litellm", tierMapping: { simple: "openai", moderate: "openai" } }
    }))))

  it.effect("unpairing the default provider itself points its tiers at openai", () =>
    Effect.gen(function*() {
      yield* runTool(ollama, "ollama_pair", {})
      yield* runTool(ollama, "ollama_unpair", {})
      expect(yield* tierMapping).toEqual({ simple: "openai", moderate: "openai", complex: "openai", reasoning: "openai" })
      expect(yield* configValue("plugins.enabled")).toEqual([])
    }).pipe(Effect.provide(stores())))
})

describe("bedrock", () => {
  const accessKeyId = "AKIAPAIRINGTEST0001"
  const secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPAIRINGKEY"

  it.effect("bedrock_pair stores accessKeyId and secretAccessKey in the secrets and the region in the config, showing neither", () =>
    Effect.gen(function*() {
      const events = yield* runTool(bedrock, "bedrock_pair", { accessKeyId, secretAccessKey, region: "eu-west-1" })
      expect(outcome(events).ok).toBe(true)
      const start = events[0]!
      expect(start.type === "tool-start" && start.arguments).toEqual({
        accessKeyId: "<redacted>",
        secretAccessKey: "<redacted>",
        region: "eu-west-1"
      })
      const shown = JSON.stringify(events)
      expect(shown).not.toContain(accessKeyId)
      expect(shown).not.toContain(secretAccessKey)
      expect(yield* secretValue("provider.bedrock.accessKeyId")).toBe(accessKeyId)
      expect(yield* secretValue("provider.bedrock.secretAccessKey")).toBe(secretAccessKey)
      expect(yield* configValue("providers.bedrock.region")).toBe("eu-west-1")
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama", "bedrock"])
      expect(yield* tierMapping).toEqual({ simple: "ollama", moderate: "ollama", complex: "bedrock", reasoning: "bedrock" })
    }).pipe(Effect.provide(stores())))

  it.effect("bedrock_unpair with deleteKey deletes both stored credentials", () =>
    Effect.gen(function*() {
      yield* runTool(bedrock, "bedrock_pair", { accessKeyId, secretAccessKey })
      yield* runOperatorTool(bedrock, "bedrock_unpair", { deleteKey: true })
      expect(yield* secretValue("provider.bedrock.accessKeyId")).toBeUndefined()
      expect(yield* secretValue("provider.bedrock.secretAccessKey")).toBeUndefined()
    }).pipe(Effect.provide(stores())))
})

describe("the pairing tools a model is offered cannot move or replace a credential", () => {
  it.effect("a base URL is refused: nothing is stored, enabled or routed", () =>
    Effect.gen(function*() {
      for (const [plugin, name] of [[litellm, "litellm_pair"], [ollama, "ollama_pair"], [openai, "openai_pair"], [bedrock, "bedrock_pair"]] as const) {
        const events = yield* runTool(plugin, name, { apiKey: KEY, baseUrl: "http://127.0.0.1:1/attacker" })
        const result = outcome(events)
        expect(result).toMatchObject({ ok: false, reason: "InvalidArguments" })
        expect(result.text).toContain("baseUrl")
        expect(JSON.stringify(events)).not.toContain(KEY)
      }
      expect(yield* configValue("providers")).toBeUndefined()
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama"])
      expect(yield* secretValue("provider.litellm.apiKey")).toBeUndefined()
    }).pipe(Effect.provide(stores({ plugins: { enabled: ["ollama"] } }))))

  it.effect("a stored key is never replaced, and the answer says the operator does it", () =>
    Effect.gen(function*() {
      const result = outcome(yield* runTool(openai, "openai_pair", { apiKey: "sk-attacker-key-000000" }))
      expect(result.ok).toBe(false)
      expect(result.text).toContain("scripts/pair.ts openai")
      expect(yield* secretValue("provider.openai.apiKey")).toBe(KEY)
      expect(yield* configValue("plugins.enabled")).toEqual(["ollama"])
    }).pipe(Effect.provide(stores({ plugins: { enabled: ["ollama"] } }, { "provider.openai.apiKey": KEY }))))

  it.effect("unpairing cannot delete stored credentials", () =>
    Effect.gen(function*() {
      const result = outcome(yield* runTool(openai, "openai_unpair", { deleteKey: true }))
      expect(result.ok).toBe(false)
      expect(result.text).toContain("scripts/pair.ts openai --unpair --delete-key")
      expect(yield* secretValue("provider.openai.apiKey")).toBe(KEY)
      expect(yield* configValue("plugins.enabled")).toEqual(["openai"])
    }).pipe(Effect.provide(stores({ plugins: { enabled: ["openai"] } }, { "provider.openai.apiKey": KEY }))))

  it.effect("a first key is bound to the base URL the operator configured", () =>
    Effect.gen(function*() {
      expect(outcome(yield* runTool(litellm, "litellm_pair", { apiKey: KEY })).ok).toBe(true)
      expect(yield* secretValue(KeyBinding.bindingKeyName("litellm"))).toBe("http://127.0.0.1:4100")
      expect(yield* configValue("providers.litellm.baseUrl")).toBe("http://127.0.0.1:4100/")
    }).pipe(Effect.provide(stores({ providers: { litellm: { baseUrl: "http://127.0.0.1:4100/" } } }))))
})

describe("operator pairing and the key's base URL", () => {
  it.effect("a new base URL with a new key binds the key to the new URL", () =>
    Effect.gen(function*() {
      yield* runOperatorTool(litellm, "litellm_pair", { apiKey: KEY, baseUrl: "http://127.0.0.1:4000" })
      yield* runOperatorTool(litellm, "litellm_pair", { apiKey: "sk-second-key-0000000", baseUrl: "http://127.0.0.1:4200" })
      expect(yield* secretValue("provider.litellm.apiKey")).toBe("sk-second-key-0000000")
      expect(yield* secretValue(KeyBinding.bindingKeyName("litellm"))).toBe("http://127.0.0.1:4200")
    }).pipe(Effect.provide(stores())))

  it.effect("a new base URL without a key removes the key paired for the old one, and says so", () =>
    Effect.gen(function*() {
      yield* runOperatorTool(litellm, "litellm_pair", { apiKey: KEY, baseUrl: "http://127.0.0.1:4000" })
      const result = outcome(yield* runOperatorTool(litellm, "litellm_pair", { baseUrl: "http://127.0.0.1:4200" }))
      expect(result.ok).toBe(true)
      expect(result.text).toContain("were removed")
      expect(yield* secretValue("provider.litellm.apiKey")).toBeUndefined()
      expect(yield* secretValue(KeyBinding.bindingKeyName("litellm"))).toBeUndefined()
      expect(yield* configValue("providers.litellm.baseUrl")).toBe("http://127.0.0.1:4200")
    }).pipe(Effect.provide(stores())))

  it.effect("a provider whose configured base URL is not the one its stored key was paired for refuses to start", () =>
    Effect.gen(function*() {
      const config = yield* ConfigManager.ConfigManager
      const secrets = yield* SecretsManager.SecretsManager
      const error = yield* Effect.flip(litellm.createProvider(secrets, config)).pipe(Effect.provide(NodeHttpClient.layerUndici), Effect.scoped)
      expect(error.message).toContain("paired for http://127.0.0.1:4000")
      expect(error.message).toContain("http://127.0.0.1:9/elsewhere")
      expect(error.message).toContain("scripts/pair.ts litellm")
      expect(error.message).not.toContain(KEY)
    }).pipe(
      Effect.provide(stores(
        { providers: { litellm: { baseUrl: "http://127.0.0.1:9/elsewhere" } } },
        { "provider.litellm.apiKey": KEY, [KeyBinding.bindingKeyName("litellm")]: "http://127.0.0.1:4000" }
      ))
    ))

  it.effect("a key stored before bindings existed is only sent to the provider's default base URL", () =>
    Effect.gen(function*() {
      const config = yield* ConfigManager.ConfigManager
      const secrets = yield* SecretsManager.SecretsManager
      const error = yield* Effect.flip(openai.createProvider(secrets, config)).pipe(Effect.provide(NodeHttpClient.layerUndici), Effect.scoped)
      expect(error.message).toContain("paired for https://api.openai.com")
    }).pipe(Effect.provide(stores({ providers: { openai: { baseUrl: "http://127.0.0.1:9" } } }, { "provider.openai.apiKey": KEY }))))
})

describe("pairing and unpairing leave every tier a working route", () => {
  it.effect("pairing routes to the paired provider the tiers still mapped to a built-in that is not enabled", () =>
    Effect.gen(function*() {
      const result = outcome(yield* runTool(openai, "openai_pair", { apiKey: KEY }))
      expect(result.ok).toBe(true)
      expect(result.text).toContain("simple, moderate, whose provider was not enabled")
      expect(yield* tierMapping).toEqual({ simple: "openai", moderate: "openai", complex: "openai", reasoning: "openai" })
      expect(yield* configValue("plugins.enabled")).toEqual(["openai"])
    }).pipe(Effect.provide(stores({ plugins: { enabled: [] } }))))

  it.effect("pairing leaves alone the tiers on an enabled provider and on ids of no built-in (an external plugin's)", () =>
    Effect.gen(function*() {
      expect(outcome(yield* runTool(openai, "openai_pair", { apiKey: KEY })).ok).toBe(true)
      expect(yield* tierMapping).toEqual({ simple: "litellm", moderate: "echo", complex: "openai", reasoning: "openai" })
    }).pipe(Effect.provide(stores({
      plugins: { enabled: ["litellm", "@example/plugin-echo"] },
      routing: { tierMapping: { simple: "litellm", moderate: "echo", complex: "ollama", reasoning: "ollama" } }
    }))))

  it.effect("unpairing points each of its tiers at the nearest tier's provider that stays enabled, not at a default that is not enabled", () =>
    Effect.gen(function*() {
      const result = outcome(yield* runTool(openai, "openai_unpair", {}))
      expect(result.ok).toBe(true)
      expect(result.text).toContain("Tier moderate now routes to litellm; complex to bedrock.")
      expect(yield* tierMapping).toEqual({ simple: "litellm", moderate: "litellm", complex: "bedrock", reasoning: "bedrock" })
      expect(yield* configValue("plugins.enabled")).toEqual(["litellm", "bedrock"])
    }).pipe(Effect.provide(stores({
      plugins: { enabled: ["litellm", "openai", "bedrock"] },
      routing: { tierMapping: { simple: "litellm", moderate: "openai", complex: "openai", reasoning: "bedrock" } }
    }))))

  it.effect("at equal distance, unpairing prefers the higher tier's provider, as the router's fallbacks do", () =>
    Effect.gen(function*() {
      yield* runTool(openai, "openai_unpair", {})
      expect(yield* configValue("routing.tierMapping.moderate")).toBe("bedrock")
    }).pipe(Effect.provide(stores({
      plugins: { enabled: ["litellm", "openai", "bedrock"] },
      routing: { tierMapping: { simple: "litellm", moderate: "openai", complex: "bedrock", reasoning: "bedrock" } }
    }))))

  it.effect("when no other tier is on an enabled provider, unpairing uses an enabled built-in rather than the default", () =>
    Effect.gen(function*() {
      yield* runTool(openai, "openai_unpair", {})
      expect(yield* tierMapping).toEqual({ simple: "litellm", moderate: "litellm", complex: "litellm", reasoning: "litellm" })
    }).pipe(Effect.provide(stores({
      plugins: { enabled: ["openai", "litellm"] },
      routing: { tierMapping: { simple: "openai", moderate: "openai", complex: "openai", reasoning: "openai" } }
    }))))
})

describe("providers.<id>.limits", () => {
  it.scoped("bound what a plugin-built provider reads: a stream event past maxEventBytes is InvalidResponse", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["x".repeat(4_000)])) })
      const error = yield* Effect.gen(function*() {
        const config = yield* ConfigManager.ConfigManager
        const secrets = yield* SecretsManager.SecretsManager
        const model = yield* litellm.createProvider(secrets, config)
        return yield* Effect.flip(Stream.runDrain(model.stream([{ role: "user", content: "hi" }])))
      }).pipe(
        Effect.provide(stores({ providers: { litellm: { baseUrl: server.url, limits: { maxEventBytes: 1_024 } } } })),
        Effect.provide(NodeHttpClient.layerUndici)
      )
      expect(error).toMatchObject({ _tag: "ProviderError", reason: "InvalidResponse", retryable: false })
      expect(error.message).toContain("maxEventBytes")
      expect(server.completions).toHaveLength(1)
    }))
})
