import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import type { PluginError } from "../../src/domain/Errors.js"
import { type ChatChunk, textOf } from "../../src/domain/Message.js"
import { builtins } from "../../src/plugins/builtin.js"
import {
  closestName,
  loadModule,
  type ModuleLoader,
  PluginRegistry,
  type ProviderPlugin,
  layer as registryLayer
} from "../../src/plugins/ProviderPlugin.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"

/** An external plugin as a module would export it: its provider answers from memory. */
const echoPlugin: ProviderPlugin = {
  id: "@example/plugin-echo",
  providerId: "echo",
  name: "Echo",
  description: "Repeats the last message.",
  type: "provider",
  version: "1.0.0",
  createProvider: () =>
    Effect.succeed(LanguageModel.make({
      id: "echo",
      name: "Echo",
      stream: (messages) =>
        Stream.fromIterable<ChatChunk>([
          { _tag: "text-delta", delta: textOf(messages.at(-1) ?? { content: "" }) },
          { _tag: "finish", finishReason: "stop" }
        ])
    }))
}

const modules: Record<string, unknown> = {
  "@example/plugin-echo": { default: echoPlugin },
  "@example/plugin-named-export": { plugin: { ...echoPlugin, id: "@example/plugin-named-export", providerId: "named" } },
  "@example/plugin-malformed": { default: { id: "malformed", name: "Malformed", type: "tool", version: "1.0.0" } }
}

/** Known modules from the table above; anything else goes to the real dynamic import. */
const loader: ModuleLoader = (specifier) => specifier in modules ? Promise.resolve(modules[specifier]) : import(specifier)

const registry = (enabled: ReadonlyArray<string>) =>
  registryLayer({ builtins, loader }).pipe(
    Layer.provideMerge(Layer.mergeAll(
      ConfigManager.layerMemory({ plugins: { enabled } }),
      SecretsManager.layerMemoryWith({ envFallback: false }),
      NodeHttpClient.layerUndici
    ))
  )

const ids = (plugins: ReadonlyArray<ProviderPlugin>) => plugins.map((plugin) => plugin.id)

const failureOf = <A>(effect: Effect.Effect<A, PluginError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.dieMessage("expected a PluginError"))

describe("PluginRegistry", () => {
  it.effect("loads the built-ins named in plugins.enabled by id, and knows every built-in", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      expect(ids(yield* plugins.enabled)).toEqual(["litellm", "ollama"])
      expect(ids(yield* plugins.known)).toEqual(["openai", "litellm", "bedrock", "ollama"])
      expect(yield* plugins.failures).toEqual([])
    }).pipe(Effect.provide(registry(["litellm", "ollama"]))))

  it.effect("loads an external plugin by module specifier (default or `plugin` export) and creates its provider", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      expect(ids(yield* plugins.enabled)).toEqual(["ollama", "@example/plugin-echo", "@example/plugin-named-export"])
      expect(ids(yield* plugins.known)).toContain("@example/plugin-echo")
      const echo = yield* plugins.createProvider("echo")
      expect((yield* echo.chat([{ role: "user", content: "ping" }])).content).toBe("ping")
      expect((yield* plugins.createProvider("named")).id).toBe("echo")
    }).pipe(Effect.scoped, Effect.provide(registry(["ollama", "@example/plugin-echo", "@example/plugin-named-export"]))))

  it.effect("a module that cannot be imported gives a NotFound PluginError naming it, and the others still load", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      const failures = yield* plugins.failures
      expect(failures).toHaveLength(1)
      expect(failures[0]).toMatchObject({ _tag: "PluginError", reason: "NotFound", pluginId: "@example/not-installed" })
      expect(failures[0]!.message).toContain("\"@example/not-installed\" could not be imported")
      expect(failures[0]!.message).toContain("plugins.enabled")
      expect(ids(yield* plugins.enabled)).toEqual(["ollama", "@example/plugin-echo"])
    }).pipe(Effect.provide(registry(["ollama", "@example/not-installed", "@example/plugin-echo"]))))

  it.effect("a module that exports no valid plugin gives an Invalid PluginError naming it and what is wrong", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      const failures = yield* plugins.failures
      expect(failures.map((failure) => [failure.pluginId, failure.reason])).toEqual([
        ["@example/plugin-malformed", "Invalid"],
        ["effect/Duration", "Invalid"]
      ])
      expect(failures[0]!.message).toContain("\"@example/plugin-malformed\" does not export a valid provider plugin")
      expect(failures[0]!.message).toContain("type")
      expect(ids(yield* plugins.enabled)).toEqual(["openai"])
    }).pipe(Effect.provide(registry(["@example/plugin-malformed", "effect/Duration", "openai"]))))

  it.effect("createProvider of a provider whose plugin failed to load fails with that plugin's error", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      const error = yield* failureOf(Effect.scoped(plugins.createProvider("@example/not-installed")))
      expect(error.reason).toBe("NotFound")
      expect(error.pluginId).toBe("@example/not-installed")
    }).pipe(Effect.provide(registry(["@example/not-installed"]))))

  it.effect("createProvider of a provider that is not enabled fails with NotConfigured, saying how to fix it", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      const error = yield* failureOf(Effect.scoped(plugins.createProvider("openai")))
      expect(error.reason).toBe("NotConfigured")
      expect(error.pluginId).toBe("openai")
      expect(error.message).toContain("scripts/pair.ts openai")
    }).pipe(Effect.provide(registry(["ollama"]))))

  it.effect("a change of plugins.enabled is seen by the next call", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      const config = yield* ConfigManager.ConfigManager
      yield* config.set("plugins.enabled", ["ollama", "@example/plugin-echo"])
      expect(ids(yield* plugins.enabled)).toEqual(["ollama", "@example/plugin-echo"])
      expect((yield* Effect.scoped(plugins.createProvider("echo"))).id).toBe("echo")
      yield* config.set("plugins.enabled", [])
      expect(yield* plugins.enabled).toEqual([])
      expect((yield* failureOf(Effect.scoped(plugins.createProvider("echo")))).reason).toBe("NotConfigured")
    }).pipe(Effect.provide(registry(["ollama"]))))

  it.effect("pairingTools offers every built-in's tools, enabled or not", () =>
    Effect.gen(function*() {
      const plugins = yield* PluginRegistry
      const providers = yield* plugins.pairingTools
      const names = (yield* Effect.forEach(providers, (provider) => provider.getTools)).flat().map((tool) => tool.name)
      expect(names).toEqual([
        "openai_pair",
        "openai_unpair",
        "litellm_pair",
        "litellm_unpair",
        "bedrock_pair",
        "bedrock_unpair",
        "ollama_pair",
        "ollama_unpair"
      ])
    }).pipe(Effect.provide(registry([]))))
})

describe("loadModule", () => {
  it.effect("imports a real module that is not a plugin and reports it as Invalid", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(loadModule("effect/Duration"))
      expect(error).toMatchObject({ reason: "Invalid", pluginId: "effect/Duration" })
    }))

  it.effect("reports a module that does not exist as NotFound, with the import's own reason", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(loadModule("@example/no-such-provider-plugin"))
      expect(error).toMatchObject({ reason: "NotFound", pluginId: "@example/no-such-provider-plugin" })
      expect(error.message).toMatch(/Cannot find (package|module)/)
    }))
})

describe("a plugins.enabled entry that cannot be loaded", () => {
  const firstFailure = Effect.flatMap(PluginRegistry, (plugins) => Effect.map(plugins.failures, (failures) => failures[0]!))

  it.effect("a mistyped built-in says which one it likely meant, lists the built-ins, and never suggests installing the typo", () =>
    Effect.gen(function*() {
      const failure = yield* firstFailure
      expect(failure).toMatchObject({ reason: "NotFound", pluginId: "opnai" })
      expect(failure.message).toContain("Did you mean \"openai\"?")
      expect(failure.message).toContain("openai, litellm, bedrock, ollama")
      expect(failure.message).toContain("plugins.enabled")
      expect(failure.message).not.toContain("npm install")
    }).pipe(Effect.provide(registry(["opnai"]))))

  it.effect("a bare name close to no built-in lists the built-ins without a guess, and does not suggest installing it", () =>
    Effect.gen(function*() {
      const failure = yield* firstFailure
      expect(failure.message).not.toContain("Did you mean")
      expect(failure.message).toContain("openai, litellm, bedrock, ollama")
      expect(failure.message).not.toContain("npm install")
    }).pipe(Effect.provide(registry(["anthropic-claude"]))))

  it.effect("a scoped package that is not installed is suggested for installing by its exact name", () =>
    Effect.gen(function*() {
      const failure = yield* firstFailure
      expect(failure.message).toContain("npm install @example/not-installed")
    }).pipe(Effect.provide(registry(["@example/not-installed"]))))

  it.effect("a file path that does not exist is reported as a path to check, not a package to install", () =>
    Effect.gen(function*() {
      const failure = yield* firstFailure
      expect(failure.message).toContain("\"./plugins/missing.js\" could not be imported")
      expect(failure.message).toContain("absolute path")
      expect(failure.message).not.toContain("npm install")
    }).pipe(Effect.provide(registry(["./plugins/missing.js"]))))
})

describe("closestName", () => {
  it("finds the name a typo most likely meant, ignoring case, and none when nothing is close", () => {
    const ids = ["openai", "litellm", "bedrock", "ollama"]
    expect(closestName("opnai", ids)).toBe("openai")
    expect(closestName("OLAMA", ids)).toBe("ollama")
    expect(closestName("lite-llm", ids)).toBe("litellm")
    expect(closestName("anthropic", ids)).toBeUndefined()
    expect(closestName("gpt", ids)).toBeUndefined()
  })
})
