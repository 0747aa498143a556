// A client tool: the run pauses until the caller (a UI, a person) answers, then resumes.
import { Chunk, Console, Effect, Layer, Option, Stream } from "effect"
import { Agent, ClientTools, TestModel, Toolbox } from "effect-agent-kernel"

const confirm = ClientTools.ClientToolProvider({
  tools: [{
    name: "confirm",
    description: "Ask the user to confirm an action.",
    parameters: { type: "object", properties: { action: { type: "string" } }, required: ["action"] }
  }]
})

const Model = TestModel.layer([
  { toolCalls: [{ name: "confirm", arguments: { action: "delete the old logs" } }] },
  { text: "Confirmed, so the old logs are deleted." }
])

export const program = Effect.gen(function*() {
  const agent = yield* Agent.make({ name: "ops", toolbox: yield* Toolbox.make([confirm]) })
  // The first run ends paused, its last event a task-status "waiting-input".
  const paused = yield* Stream.runCollect(agent.run({ prompt: "Clean up the old logs.", contextId: "ops-1" }))
  const asked = Chunk.findFirst(paused, (event) => event.type === "tool-input-required").pipe(Option.getOrThrow)
  yield* Console.log(`waiting for ${asked.toolName} ${JSON.stringify(asked.arguments)}`)
  // Later (also after a restart, with ConversationStore.makeFile): the user's answer resumes it.
  const done = yield* agent.resume("ops-1", { toolCallId: asked.toolCallId, result: { success: true, result: "yes" } }).pipe(
    Stream.runLast,
    Effect.map(Option.getOrThrow)
  )
  yield* Console.log(done.type === "task-complete" ? done.content : done.type)
  return { paused: Chunk.toReadonlyArray(paused), done }
}).pipe(Effect.provide(Layer.merge(Model, ClientTools.ClientToolResults.layer)))

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(program)
