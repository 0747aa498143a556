// A conversation: Agent.make keeps each contextId's history in a ConversationStore between turns.
import { NodeContext } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"
import { Agent, ConversationStore, TestModel, Toolbox } from "effect-agent-kernel"

const Model = TestModel.layer([
  { text: "Nice to meet you, Ada." },
  // The second turn's request carries the first turn: the model finds the name there.
  (request) => ({ text: `You said: "${request.messages.find((message) => message.role === "user")?.content}"` })
])

export const program = (directory: string) =>
  Effect.gen(function*() {
    const agent = yield* Agent.make({
      name: "assistant",
      system: "Answer briefly.",
      toolbox: yield* Toolbox.make([]),
      // One JSON file per conversation: a restarted program picks the conversation up again.
      store: yield* ConversationStore.makeFile({ directory })
    })
    const say = (prompt: string) =>
      agent.run({ prompt, contextId: "conversation-1" }).pipe(
        Stream.runForEach((event) => event.type === "task-complete" ? Console.log(`> ${prompt}\n${event.content}`) : Effect.void)
      )
    yield* say("Hi, I'm Ada.")
    yield* say("What is my name?")
    return yield* agent.history("conversation-1")
  }).pipe(Effect.provide(Layer.merge(Model, NodeContext.layer)))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(program(`${process.env.TMPDIR ?? "/tmp"}/example-conversations`))
}
