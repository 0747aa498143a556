// Route between two models: greetings and lookups to a small local model, hard questions to a
// large one. Each tier is served by a LanguageModel Layer of its own; here two stand-in servers
// on 127.0.0.1 play the models, so the example runs with no keys.
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"
import { Agent, OpenAiCompatible, TierRouter, Toolbox } from "effect-agent-kernel"
import { startLocalModelServer } from "../lib/localModelServer.js"

export const program = (smallUrl: string, largeUrl: string) => {
  const small = OpenAiCompatible.ollamaProvider({ id: "small", model: "llama3.2", baseUrl: smallUrl })
  const large = OpenAiCompatible.openAIProvider({ id: "large", model: "gpt-4.1", baseUrl: largeUrl })
  const Model = TierRouter.fromLayers({
    tiers: { simple: small, moderate: small, complex: large, reasoning: large }
  }).pipe(Layer.provide(NodeHttpClient.layerUndici))
  const ask = (prompt: string) =>
    Agent.run({ prompt }).pipe(
      Stream.runFold("", (route, event) => event.type === "route-selected" ? `${event.tier} → ${event.provider}` : route),
      Effect.tap((route) => Console.log(`${prompt.slice(0, 40)}… ${route}`))
    )
  return Effect.all([
    ask("Hi there!"),
    ask("Prove that there are infinitely many primes, then analyse the proof's complexity step by step.")
  ]).pipe(Effect.provide(Layer.merge(Model, Toolbox.layer([]))))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(Effect.scoped(Effect.gen(function*() {
    const small = yield* startLocalModelServer("Hello from the small model (a stand-in).")
    const large = yield* startLocalModelServer("An answer from the large model (a stand-in).")
    return yield* program(small, large)
  })))
}
