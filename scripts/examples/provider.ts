// Stream a completion from any OpenAI-compatible endpoint: the LiteLLM proxy at LITELLM_BASE_URL
// (key LITELLM_API_KEY, model LITELLM_MODEL), else a stand-in server started here on 127.0.0.1.
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"
import { LanguageModel, Message, OpenAiCompatible } from "effect-agent-kernel"
import { startLocalModelServer } from "../lib/localModelServer.js"

export const program = (baseUrl: string, model = "gpt-4o-mini") =>
  Effect.gen(function*() {
    const llm = yield* LanguageModel.LanguageModel
    let text = ""
    yield* llm.stream([Message.user("Say hello.")]).pipe(
      Stream.runForEach((chunk) =>
        chunk._tag === "text-delta" ? Effect.sync(() => (text += chunk.delta)) : Effect.void
      )
    )
    yield* Console.log(`${llm.name}: ${text}`)
    return text
  }).pipe(
    Effect.provide(
      OpenAiCompatible.liteLLMProvider({ model, baseUrl }).pipe(Layer.provide(NodeHttpClient.layerUndici))
    )
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  const proxy = process.env.LITELLM_BASE_URL
  NodeRuntime.runMain(
    proxy !== undefined
      ? program(proxy, process.env.LITELLM_MODEL)
      : Effect.scoped(Effect.flatMap(startLocalModelServer("Hello! (a local stand-in server, not a model)"), program))
  )
}
