import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import { EventBuffer } from "../../../src/tools/internal/eventBuffer.js"

/**
 * Reads until `finished` holds and nothing is left, as a run's reader does. Each element costs
 * the reader a few operations, so where its fiber yields moves from one pull to the next.
 */
const readAll = <A>(buffer: EventBuffer<A>, finished: () => boolean): Effect.Effect<Array<A>> =>
  Effect.suspend(() => {
    const read: Array<A> = []
    const loop: Effect.Effect<Array<A>> = Effect.suspend(() => {
      const chunk = buffer.take()
      const handled = chunk === undefined
        ? Effect.void
        : Effect.forEach(chunk, (element) => Effect.sync(() => read.push(element)), { discard: true })
      return Effect.zipRight(
        handled,
        Effect.suspend(() =>
          finished() && buffer.size === 0 ? Effect.succeed(read) : Effect.zipRight(buffer.waitForNews, loop)
        )
      )
    })
    return loop
  })

describe("EventBuffer", () => {
  it.effect("hands out everything pushed as one chunk, in order, and nothing when empty", () =>
    Effect.sync(() => {
      const buffer = new EventBuffer<number>()
      expect(buffer.take()).toBeUndefined()
      buffer.push(1)
      buffer.push(2)
      expect(buffer.size).toBe(2)
      expect(Chunk.toReadonlyArray(buffer.take()!)).toEqual([1, 2])
      expect(buffer.size).toBe(0)
      expect(buffer.take()).toBeUndefined()
    }))

  it.effect("a waiting reader wakes for a push from another fiber", () =>
    Effect.gen(function*() {
      const buffer = new EventBuffer<string>()
      const reader = yield* Effect.fork(Effect.zipRight(buffer.waitForNews, Effect.sync(() => buffer.take())))
      yield* Effect.yieldNow()
      expect(reader.unsafePoll()).toBeNull()
      buffer.push("event")
      const taken = yield* Fiber.join(reader)
      expect(Chunk.toReadonlyArray(taken!)).toEqual(["event"])
    }))

  it.effect("a waiting reader wakes for news that is not an event, and does not wait when there is news already", () =>
    Effect.gen(function*() {
      let ended = false
      const buffer = new EventBuffer<string>(() => ended)
      const reader = yield* Effect.fork(buffer.waitForNews)
      yield* Effect.yieldNow()
      expect(reader.unsafePoll()).toBeNull()
      ended = true
      buffer.wake()
      yield* Fiber.join(reader)
      yield* buffer.waitForNews
      expect(buffer.take()).toBeUndefined()
    }))

  it.effect("a writer that offers waits while `capacity` events are unread, and goes on once they are taken", () =>
    Effect.gen(function*() {
      const buffer = new EventBuffer<number>(undefined, 2)
      let offered = 0
      const writer = yield* Effect.fork(
        Effect.forEach([1, 2, 3, 4, 5], (n) => Effect.zipRight(buffer.offer(n), Effect.sync(() => offered++)), {
          discard: true
        })
      )
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      // The second offer filled the buffer: the writer waits inside it.
      expect(offered).toBe(1)
      expect(Chunk.toReadonlyArray(buffer.take()!)).toEqual([1, 2])
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      expect(offered).toBe(3)
      expect(Chunk.toReadonlyArray(buffer.take()!)).toEqual([3, 4])
      yield* Fiber.join(writer)
      expect(Chunk.toReadonlyArray(buffer.take()!)).toEqual([5])
      expect(offered).toBe(5)
    }))

  it.effect("a reader interrupted while it waits is not woken later", () =>
    Effect.gen(function*() {
      const buffer = new EventBuffer<number>()
      const reader = yield* Effect.fork(buffer.waitForNews)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(reader)
      buffer.push(1)
      const next = yield* Effect.fork(Effect.zipRight(buffer.waitForNews, Effect.sync(() => buffer.take())))
      expect(Chunk.toReadonlyArray((yield* Fiber.join(next))!)).toEqual([1])
    }))

  it.live("no push or wake is lost when the reader yields between looking and waiting", () =>
    Effect.gen(function*() {
      // A fiber yields every `maxOpsBeforeYield` operations; small values make it yield anywhere
      // (below about 10 the runtime does little else than yield).
      for (let ops = 12; ops <= 60; ops++) {
        for (let round = 0; round < 10; round++) {
          let ended = false
          const buffer = new EventBuffer<number>(() => ended)
          const writer = Effect.zipRight(
            Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
              Effect.zipRight(Effect.sync(() => buffer.push(i)), Effect.yieldNow()), {
              discard: true
            }),
            Effect.sync(() => {
              ended = true
              buffer.wake()
            })
          )
          const read = yield* Effect.zipRight(Effect.fork(writer), readAll(buffer, () => ended)).pipe(
            Effect.locally(FiberRef.currentMaxOpsBeforeYield, ops),
            Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => `reader hung (maxOpsBeforeYield ${ops})` })
          )
          expect(read).toEqual(Array.from({ length: 20 }, (_, i) => i))
        }
      }
    }), { timeout: 60_000 })

  it.live("no offer is lost, and no writer stays stuck, when both sides yield anywhere", () =>
    Effect.gen(function*() {
      for (let ops = 12; ops <= 60; ops++) {
        for (let round = 0; round < 10; round++) {
          let ended = false
          const buffer = new EventBuffer<number>(() => ended, 2)
          const writer = Effect.zipRight(
            Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => buffer.offer(i), { discard: true }),
            Effect.sync(() => {
              ended = true
              buffer.wake()
            })
          )
          const read = yield* Effect.zipRight(Effect.fork(writer), readAll(buffer, () => ended)).pipe(
            Effect.locally(FiberRef.currentMaxOpsBeforeYield, ops),
            Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => `hung (maxOpsBeforeYield ${ops})` })
          )
          expect(read).toEqual(Array.from({ length: 20 }, (_, i) => i))
        }
      }
    }), { timeout: 60_000 })
})
