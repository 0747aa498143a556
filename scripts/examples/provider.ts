// Stream a completion from any OpenAI-compatible endpoint (a LiteLLM proxy by default).
import { NodeHttpClient } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"
import { LanguageModel, Message, OpenAiCompatible } from "effect-agent-kernel"

export const program = (baseUrl: string) =>
  Effect.gen(function*() {
    const model = yield* LanguageModel.LanguageModel
    let text = ""
    yield* model.stream([Message.user("Say hello.")]).pipe(
      Stream.runForEach((chunk) =>
        chunk._tag === "text-delta" ? Effect.sync(() => (text += chunk.delta)) : Effect.void
      )
    )
    yield* Console.log(`${model.name}: ${text}`)
    return text
  }).pipe(
    Effect.provide(
      OpenAiCompatible.liteLLMProvider({ model: "gpt-4o-mini", baseUrl }).pipe(Layer.provide(NodeHttpClient.layerUndici))
    )
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(program(process.env.LITELLM_BASE_URL ?? "http://127.0.0.1:4000"))
}
