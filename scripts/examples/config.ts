// Typed, dotted configuration with change notifications.
import { Console, Effect, Option, Queue } from "effect"
import { ConfigManager } from "effect-agent-kernel"

export const program = Effect.gen(function*() {
  const config = yield* ConfigManager.ConfigManager
  const changes = yield* config.subscribe
  yield* config.set("routing.tierMapping.complex", "openai")
  const complex = yield* config.get("routing.tierMapping.complex")
  const simple = yield* config.get("routing.tierMapping.simple") // a documented default
  const rejected = yield* Effect.flip(config.set("plugins.enabled", "openai")) // must be a list
  const show = Option.getOrElse(() => "(not set)")
  yield* Console.log(`complex → ${show(complex)}, simple → ${show(simple)}`)
  yield* Console.log(`rejected: ${rejected.message}`)
  return { changes: yield* Queue.takeAll(changes), rejected }
}).pipe(Effect.scoped, Effect.provide(ConfigManager.layerMemory()))

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(program)
