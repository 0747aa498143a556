// The agent loop with a scripted model: the model calls a tool, reads its result, answers.
import { Console, Effect, Layer, Schema, Stream } from "effect"
import { Agent, LocalTools, TestModel, Toolbox } from "effect-agent-kernel"

const weather = LocalTools.tool({
  name: "weather",
  description: "Current weather for a city.",
  parameters: Schema.Struct({ city: Schema.String }),
  handler: ({ city }) => Effect.succeed({ city, sky: "sunny", celsius: 21 })
})

const Model = TestModel.layer([
  { toolCalls: [{ name: "weather", arguments: { city: "Lisbon" } }] },
  { text: "It is sunny and 21 °C in Lisbon." }
])

export const program = Agent.run({ prompt: "What's the weather in Lisbon?" }).pipe(
  Stream.tap((event) => Console.log(event.type)),
  Stream.runLast,
  Effect.provide(Layer.merge(Model, Toolbox.layer([LocalTools.localTools([weather])])))
)

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(program)
