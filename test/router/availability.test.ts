import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { Availability } from "../../src/router/internal/availability.js"

// A health check that counts its runs and answers when `gate` opens.
const gatedCheck = Effect.gen(function*() {
  const gate = yield* Deferred.make<boolean>()
  let runs = 0
  const started = yield* Deferred.make<void>()
  const check = Effect.suspend(() => {
    runs++
    return Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(gate))
  })
  return { gate, check, started, runs: () => runs }
})

describe("router availability cache", () => {
  it.effect("callers that ask while a check runs share it, and the answer is kept for the TTL", () =>
    Effect.gen(function*() {
      const availability = new Availability(1_000)
      const { check, gate, runs, started } = yield* gatedCheck
      const callers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.fork(availability.check("a", check)))
      yield* Deferred.await(started)
      yield* Deferred.succeed(gate, true)
      expect(yield* Effect.forEach(callers, Fiber.join)).toEqual([true, true, true, true, true])
      expect(runs()).toBe(1)

      yield* TestClock.adjust("999 millis")
      expect(yield* availability.check("a", check)).toBe(true)
      expect(runs()).toBe(1)
      yield* TestClock.adjust("1 milli")
      expect(yield* availability.check("a", Effect.succeed(false))).toBe(false)
    }))

  it.effect("providers are cached apart, and forget makes the next ask check again", () =>
    Effect.gen(function*() {
      const availability = new Availability(60_000)
      expect(yield* availability.check("a", Effect.succeed(true))).toBe(true)
      expect(yield* availability.check("b", Effect.succeed(false))).toBe(false)
      expect(yield* availability.check("a", Effect.succeed(false))).toBe(true)
      availability.forget("a")
      expect(yield* availability.check("a", Effect.succeed(false))).toBe(false)
    }))

  it.effect("when the running check is interrupted, a waiter runs the check itself instead of hanging", () =>
    Effect.gen(function*() {
      const availability = new Availability(60_000)
      const { check, started } = yield* gatedCheck
      const first = yield* Effect.fork(availability.check("a", check))
      yield* Deferred.await(started)
      const waiter = yield* Effect.fork(availability.check("a", Effect.succeed(true)))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      expect(yield* Fiber.join(waiter)).toBe(true)
      // That answer is the one kept.
      expect(yield* availability.check("a", Effect.succeed(false))).toBe(true)
    }))

  it.effect("an answer that arrives after forget goes to its callers but is not kept", () =>
    Effect.gen(function*() {
      const availability = new Availability(60_000)
      const { check, gate, started } = yield* gatedCheck
      const caller = yield* Effect.fork(availability.check("a", check))
      yield* Deferred.await(started)
      availability.forget("a")
      yield* Deferred.succeed(gate, false)
      expect(yield* Fiber.join(caller)).toBe(false)
      expect(yield* availability.check("a", Effect.succeed(true))).toBe(true)
    }))
})
