// A Schema-typed local tool, executed through a Toolbox as a stream of tool events.
import { Console, Effect, Schema, Stream } from "effect"
import { ExecutionContext, LocalTools, Toolbox } from "effect-agent-kernel"

const add = LocalTools.tool({
  name: "add",
  description: "Adds two numbers.",
  parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
  handler: ({ a, b }, { progress }) => progress({ message: "adding" }).pipe(Effect.as({ sum: a + b }))
})

export const program = Effect.gen(function*() {
  const toolbox = yield* Toolbox.Toolbox
  const context = ExecutionContext.make({ contextId: "c1", taskId: "t1", agentId: "example" })
  const good = { id: "call-1", name: "add", arguments: { a: 2, b: 3 } }
  const bad = { id: "call-2", name: "add", arguments: { a: "two" } }
  const events = yield* Stream.runCollect(toolbox.executeBatch([good, bad], context))
  for (const event of events) yield* Console.log(event.type, event.toolCallId)
  return [...events]
}).pipe(Effect.provide(Toolbox.layer([LocalTools.localTools([add])])))

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(program)
