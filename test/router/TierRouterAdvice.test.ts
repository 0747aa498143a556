import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Queue from "effect/Queue"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import { builtins } from "../../src/plugins/builtin.js"
import * as PluginRegistry from "../../src/plugins/ProviderPlugin.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as QueryClassifier from "../../src/router/QueryClassifier.js"
import * as TierRouter from "../../src/router/TierRouter.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"

/** The real config, secrets, registry and router; providers are built only when asked for. */
const kernel = (config: Record<string, unknown>) =>
  TierRouter.layer.pipe(
    Layer.provideMerge(Layer.merge(PluginRegistry.layer({ builtins }), QueryClassifier.layer)),
    Layer.provideMerge(Layer.mergeAll(
      ConfigManager.layerMemory(config),
      SecretsManager.layerMemoryWith({ envFallback: false }),
      NodeHttpClient.layerUndici
    ))
  )

/** Runs `body` with every warning logged meanwhile (the router's start-up included) in a queue. */
const withWarnings = <A, E>(
  config: Record<string, unknown>,
  body: (warnings: Queue.Queue<string>) => Effect.Effect<A, E, LanguageModel.LanguageModel | ConfigManager.ConfigManager>
) =>
  Effect.gen(function*() {
    const warnings = yield* Queue.unbounded<string>()
    const capture = Logger.make(({ logLevel, message }) => {
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
        warnings.unsafeOffer(Array.isArray(message) ? message.join(" ") : String(message))
      }
    })
    return yield* Effect.flatMap(LanguageModel.LanguageModel, () => body(warnings)).pipe(
      Effect.provide(kernel(config)),
      Effect.provide(Logger.add(capture))
    )
  })

/** The next warning logged that mentions `text`. */
const nextWarningAbout = (warnings: Queue.Queue<string>, text: string): Effect.Effect<string> =>
  Effect.flatMap(Queue.take(warnings), (warning) => warning.includes(text) ? Effect.succeed(warning) : nextWarningAbout(warnings, text))

describe("TierRouter: advice about the routing config", () => {
  it.effect("at start-up, a tier mapped to a mistyped provider is a warning naming the key, the value and the provider meant", () =>
    withWarnings({
      plugins: { enabled: ["ollama", "openai"] },
      routing: { tierMapping: { simple: "ollama", moderate: "ollama", complex: "opnai", reasoning: "openai" } }
    }, (warnings) =>
      Effect.gen(function*() {
        const logged = yield* Queue.takeAll(warnings)
        const advice = [...logged].filter((warning) => warning.includes("routing.tierMapping"))
        expect(advice).toHaveLength(1)
        expect(advice[0]).toContain("routing.tierMapping.complex names \"opnai\"")
        expect(advice[0]).toContain("Did you mean \"openai\"?")
        expect(advice[0]).toContain("Enabled providers: ollama, openai")
      })))

  it.effect("at start-up, a fallback naming a built-in that is not enabled says how to enable it", () =>
    withWarnings({
      plugins: { enabled: ["ollama"] },
      routing: { fallbacks: { complex: ["litellm"] } }
    }, (warnings) =>
      Effect.gen(function*() {
        const advice = [...yield* Queue.takeAll(warnings)].filter((warning) => warning.includes("routing.fallbacks"))
        expect(advice).toHaveLength(1)
        expect(advice[0]).toContain("routing.fallbacks.complex names \"litellm\"")
        expect(advice[0]).toContain("not enabled")
        expect(advice[0]).toContain("scripts/pair.ts litellm")
      })))

  it.effect("a routing config that every enabled plugin covers gives no warning at start-up", () =>
    withWarnings({
      plugins: { enabled: ["ollama", "litellm"] },
      routing: { tierMapping: { complex: "litellm" }, fallbacks: { complex: ["ollama"] } }
    }, (warnings) =>
      Effect.gen(function*() {
        expect([...yield* Queue.takeAll(warnings)]).toEqual([])
      })))

  it.effect("a mapping changed while running to a provider no plugin provides is warned about, each mistake once", () =>
    withWarnings({ plugins: { enabled: ["ollama", "bedrock"] } }, (warnings) =>
      Effect.gen(function*() {
        const config = yield* ConfigManager.ConfigManager
        yield* config.set("routing.tierMapping.simple", "olama")
        const first = yield* Queue.take(warnings)
        expect(first).toContain("routing.tierMapping.simple names \"olama\"")
        expect(first).toContain("Did you mean \"ollama\"?")
        // The next warning is about the next mistake: the first is not repeated.
        yield* config.set("routing.tierMapping.moderate", "bedrok")
        const second = yield* Queue.take(warnings)
        expect(second).toContain("routing.tierMapping.moderate names \"bedrok\"")
        expect(second).toContain("Did you mean \"bedrock\"?")
      })))

  it.effect("disabling a plugin that a tier is mapped to is warned about when the change is made", () =>
    withWarnings({
      plugins: { enabled: ["ollama", "litellm"] },
      routing: { tierMapping: { complex: "litellm" } }
    }, (warnings) =>
      Effect.gen(function*() {
        const config = yield* ConfigManager.ConfigManager
        yield* config.set("plugins.enabled", ["ollama"])
        const warning = yield* nextWarningAbout(warnings, "routing.tierMapping.complex")
        expect(warning).toContain("\"litellm\", but its plugin is not enabled")
      })))
})
