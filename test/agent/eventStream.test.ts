import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { eventStream } from "../../src/agent/internal/eventStream.js"

describe("eventStream", () => {
  it.effect("streams the body's events in order and ends when the body does", () =>
    Effect.gen(function*() {
      const stream = eventStream<number, never, never>((emitter) =>
        Effect.gen(function*() {
          yield* emitter.emit(1)
          yield* emitter.emitAll([2, 3])
          yield* Effect.yieldNow()
          yield* emitter.emit(4)
        })
      )
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(stream))).toEqual([1, 2, 3, 4])
    }))

  it.effect("delivers the events emitted before a failure, then fails with it", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      const stream = eventStream<number, string, never>((emitter) =>
        Effect.zipRight(emitter.emitAll([1, 2]), Effect.fail("model down"))
      )
      const error = yield* Effect.flip(Stream.runForEach(stream, (n) => Effect.sync(() => seen.push(n))))
      expect(error).toBe("model down")
      expect(seen).toEqual([1, 2])
    }))

  it.effect("a reader that stops early interrupts the body", () =>
    Effect.gen(function*() {
      const interrupted = yield* Deferred.make<void>()
      const stream = eventStream<number, never, never>((emitter) =>
        Effect.zipRight(emitter.emitAll([1, 2, 3]), Effect.never).pipe(
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
        )
      )
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(stream, 2)))).toEqual([1, 2])
      yield* Deferred.await(interrupted)
    }))

  it.live("a reader in an uninterruptible region that stops early still stops the body", () =>
    Effect.gen(function*() {
      const stream = eventStream<number, never, never>((emitter) => Effect.zipRight(emitter.emit(1), Effect.never))
      const taken = yield* Stream.runCollect(Stream.take(stream, 1)).pipe(
        Effect.uninterruptible,
        Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "the body could not be stopped" })
      )
      expect(Chunk.toReadonlyArray(taken)).toEqual([1])
    }))

  it.effect("interrupting the reader interrupts the body", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const started = yield* Deferred.make<void>()
      const stream = eventStream<number, never, never>((emitter) =>
        Effect.zipRight(
          Effect.zipRight(emitter.emit(1), Deferred.succeed(started, undefined)),
          Effect.never
        ).pipe(Effect.onInterrupt(() => Ref.set(interrupted, true)))
      )
      const fiber = yield* Effect.fork(Stream.runDrain(stream))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(yield* Ref.get(interrupted)).toBe(true)
    }))

  it.effect("a body that emits faster than the reader reads waits once `capacity` events are unread", () =>
    Effect.gen(function*() {
      const emitted = yield* Ref.make(0)
      const stream = eventStream<number, never, never>((emitter) =>
        Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) =>
          Effect.zipRight(emitter.emit(i), Ref.update(emitted, (n) => n + 1)), { discard: true }), 3)
      const gate = yield* Deferred.make<void>()
      const read: Array<number> = []
      const fiber = yield* Effect.fork(
        Stream.runForEach(stream, (n) => Effect.zipRight(Deferred.await(gate), Effect.sync(() => read.push(n))))
      )
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      // The reader took the first chunk and is stuck on it; the body filled the buffer again and waits.
      expect(yield* Ref.get(emitted)).toBeLessThanOrEqual(6)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
      expect(read).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect(yield* Ref.get(emitted)).toBe(10)
    }))

  it.effect("keeps running when the fiber that pulled first is done and another reads on", () =>
    Effect.gen(function*() {
      const stream = eventStream<number, never, never>((emitter) =>
        Effect.gen(function*() {
          yield* emitter.emit(1)
          yield* Effect.sleep("10 millis")
          yield* emitter.emit(2)
        })
      )
      const values = yield* Effect.scoped(Effect.gen(function*() {
        const pull = yield* Stream.toPull(stream)
        // The first pull happens in a fiber that ends right after it.
        const first = yield* Fiber.join(yield* Effect.fork(pull))
        const second = yield* Effect.fork(pull)
        yield* TestClock.adjust("10 millis")
        return [...first, ...(yield* Fiber.join(second))]
      }))
      expect(values).toEqual([1, 2])
    }))

  it.live("no emit is lost when the reader yields between looking and waiting", () =>
    Effect.gen(function*() {
      // A fiber yields every `maxOpsBeforeYield` operations; small values make it yield anywhere
      // (below about 10 the runtime does little else than yield).
      for (let ops = 12; ops <= 60; ops++) {
        for (let round = 0; round < 10; round++) {
          const stream = eventStream<number, never, never>((emitter) =>
            Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => emitter.emit(i), { discard: true }), 2)
          const read = yield* Stream.runCollect(stream).pipe(
            Effect.locally(FiberRef.currentMaxOpsBeforeYield, ops),
            Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => `reader hung (maxOpsBeforeYield ${ops})` })
          )
          expect(Chunk.size(read)).toBe(20)
        }
      }
    }), { timeout: 60_000 })
})
