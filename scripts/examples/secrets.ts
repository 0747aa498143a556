// Store an API key encrypted at rest, read it back as Redacted, resolve a provider's key.
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Option, Redacted } from "effect"
import { SecretsManager } from "effect-agent-kernel"

export const program = (storePath: string) =>
  Effect.gen(function*() {
    const secrets = yield* SecretsManager.SecretsManager
    yield* secrets.store(SecretsManager.buildProviderKeyName("openai"), "sk-example")
    const key = yield* secrets.resolveProviderKey("openai")
    yield* Console.log(`openai key found: ${Option.isSome(key)}, shown as ${String(Option.getOrThrow(key))}`)
    yield* Console.log(`keys: ${(yield* secrets.list("provider.*.apiKey")).join(", ")}`)
    return Redacted.value(Option.getOrThrow(key))
  }).pipe(
    Effect.provide(SecretsManager.layerFile({ path: storePath }).pipe(Layer.provide(NodeContext.layer)))
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program(`${process.env.TMPDIR ?? "/tmp"}/example-secrets.enc`))
}
