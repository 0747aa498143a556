import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Agent from "../../src/agent/Agent.js"
import type { ChatChunk } from "../../src/domain/Message.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as RateLimiter from "../../src/providers/RateLimiter.js"
import { withResilience } from "../../src/providers/Resilience.js"
import * as Toolbox from "../../src/tools/Toolbox.js"

const answer: ReadonlyArray<ChatChunk> = [
  { _tag: "text-delta", delta: "hello" },
  { _tag: "finish", finishReason: "stop" }
]

/** A provider made from its reads, counting how often its reads and a stream of its are opened. */
const counted = () => {
  const counts = { reads: 0, stream: 0 }
  const model = LanguageModel.make({
    id: "counted",
    name: "Counted",
    open: () =>
      Effect.sync(() => {
        counts.reads++
        let done = false
        return {
          next: Effect.sync(() => {
            if (done) return undefined
            done = true
            return Chunk.fromIterable(answer)
          }),
          close: () => Effect.void
        }
      })
  })
  // The same provider with every stream of it counted (the derived one reads through `open`).
  const service = LanguageModel.make({
    id: model.id,
    name: model.name,
    open: model.reads!.open,
    stream: (...args) => Stream.suspend(() => (counts.stream++, model.stream(...args)))
  })
  return { counts, service }
}

const runAgent = (model: LanguageModel.Service) =>
  Agent.run({ prompt: "hi" }).pipe(
    Stream.runCollect,
    Effect.map((events) => [...events].find((event) => event.type === "task-complete")),
    Effect.provide(Layer.merge(LanguageModel.layer(model), Toolbox.layer([])))
  )

describe("LanguageModel.make from the primitive", () => {
  it.effect("derives stream and chat from open", () =>
    Effect.gen(function*() {
      const { service } = counted()
      expect(Chunk.toArray(yield* Stream.runCollect(service.stream([])))).toEqual(answer)
      expect((yield* service.chat([])).content).toBe("hello")
    }))

  it.effect("the agent reads a provider's answer through its reads, not a stream", () =>
    Effect.gen(function*() {
      const { counts, service } = counted()
      const complete = yield* runAgent(service)
      expect(complete?.type === "task-complete" && complete.content).toBe("hello")
      expect(counts).toEqual({ reads: 1, stream: 0 })
    }))

  it.effect("a spread copy, a user's wrapping Layer, the resilience policy and a rate limiter keep the direct path", () =>
    Effect.gen(function*() {
      const { counts, service } = counted()
      const limiter = yield* RateLimiter.make({ maxConcurrent: 4 })
      const wrappingLayer = Layer.effect(
        LanguageModel.LanguageModel,
        Effect.map(LanguageModel.LanguageModel, (inner) => ({ ...inner, name: `logged ${inner.name}` }))
      ).pipe(Layer.provide(LanguageModel.layer(service)))
      const layered = yield* LanguageModel.LanguageModel.pipe(Effect.provide(wrappingLayer))
      for (const copy of [{ ...service, name: "copy" }, layered, withResilience(service), withResilience(RateLimiter.wrap(service, limiter))]) {
        yield* runAgent(copy)
      }
      expect(counts).toEqual({ reads: 4, stream: 0 })
    }))

  it.effect("a copy whose stream was replaced is read through that stream", () =>
    Effect.gen(function*() {
      const { counts, service } = counted()
      let replaced = 0
      const decorated: LanguageModel.Service = {
        ...service,
        stream: (...args) => Stream.suspend(() => (replaced++, service.stream(...args)))
      }
      yield* runAgent(decorated)
      expect(replaced).toBe(1)
      expect(counts.stream).toBe(1)
      expect(LanguageModel.readsOf(decorated)).toBeUndefined()
    }))
})
