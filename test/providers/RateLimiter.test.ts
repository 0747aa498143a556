import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ProviderError } from "../../src/domain/Errors.js"
import * as Message from "../../src/domain/Message.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as RateLimiter from "../../src/providers/RateLimiter.js"

/** A provider that records when each request started and can hold requests open. */
const recording = (hold?: Deferred.Deferred<void>) => {
  const starts: Array<number> = []
  let inFlight = 0
  let maxInFlight = 0
  const service = LanguageModel.make({
    id: "limited",
    name: "Limited",
    stream: () =>
      Stream.fromEffect(Effect.gen(function*() {
        starts.push(yield* Clock.currentTimeMillis)
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        if (hold !== undefined) yield* Deferred.await(hold)
        inFlight--
        return { _tag: "text-delta", delta: "ok" } as const
      }))
  })
  return { service, starts, maxInFlight: () => maxInFlight }
}

const maxInAnyMinute = (starts: ReadonlyArray<number>) =>
  Math.max(...starts.map((from) => starts.filter((at) => at >= from && at < from + 60_000).length))

const ask = (service: LanguageModel.Service) => service.chat([Message.user("x")])

describe("RateLimiter", () => {
  it.effect("a burst of 3N requests with N per minute all complete, at most N in any minute", () =>
    Effect.gen(function*() {
      const perMinute = 5
      const limiter = yield* RateLimiter.make({ requestsPerMinute: perMinute })
      const model = recording()
      const limited = RateLimiter.wrap(model.service, limiter)
      const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 3 * perMinute }, () => Effect.either(ask(limited))), {
        concurrency: "unbounded"
      }))
      for (let i = 0; i < 4; i++) yield* TestClock.adjust("1 minute")
      const results = yield* Fiber.join(fiber)
      expect(results.filter(Either.isLeft)).toEqual([])
      expect(model.starts).toHaveLength(3 * perMinute)
      expect(maxInAnyMinute(model.starts)).toBe(perMinute)
      expect(model.starts).toEqual([0, 0, 0, 0, 0, 60_000, 60_000, 60_000, 60_000, 60_000, 120_000, 120_000, 120_000, 120_000, 120_000])
    }))

  it.effect("no more than maxConcurrent requests are in flight; the others wait their turn", () =>
    Effect.gen(function*() {
      const hold = yield* Deferred.make<void>()
      const limiter = yield* RateLimiter.make({ maxConcurrent: 2 })
      const model = recording(hold)
      const limited = RateLimiter.wrap(model.service, limiter)
      const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 6 }, () => ask(limited)), { concurrency: "unbounded" }))
      yield* TestClock.adjust(0)
      expect(model.starts).toHaveLength(2)
      expect((yield* limiter.snapshot).queued).toBe(4)
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(fiber)
      expect(model.starts).toHaveLength(6)
      expect(model.maxInFlight()).toBe(2)
      expect(yield* limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0 })
    }))

  it.effect("a full queue fails fast with RateLimited", () =>
    Effect.gen(function*() {
      const hold = yield* Deferred.make<void>()
      const limiter = yield* RateLimiter.make({ maxConcurrent: 1, maxQueue: 1 })
      const limited = RateLimiter.wrap(recording(hold).service, limiter)
      const running = yield* Effect.fork(ask(limited))
      const queued = yield* Effect.fork(ask(limited))
      yield* TestClock.adjust(0)
      const refused = yield* Effect.flip(ask(limited))
      expect(refused._tag).toBe("ProviderError")
      expect((refused as ProviderError).reason).toBe("RateLimited")
      expect(refused.message).toContain("maxQueue 1")
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(running)
      yield* Fiber.join(queued)
    }))

  it.effect("a wait longer than maxWait is refused at once with the predicted delay", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ requestsPerMinute: 1, maxWait: "30 seconds" })
      const limited = RateLimiter.wrap(recording().service, limiter)
      yield* ask(limited)
      yield* TestClock.adjust("10 seconds")
      const refused = (yield* Effect.flip(ask(limited))) as ProviderError
      expect([refused.reason, refused.retryAfterMs]).toEqual(["RateLimited", 50_000])
      expect(refused.message).toContain("longer than it may wait")
    }))

  it.effect("a concurrency wait longer than maxWait gives up with RateLimited", () =>
    Effect.gen(function*() {
      const hold = yield* Deferred.make<void>()
      const limiter = yield* RateLimiter.make({ maxConcurrent: 1, maxWait: "5 seconds" })
      const limited = RateLimiter.wrap(recording(hold).service, limiter)
      const running = yield* Effect.fork(ask(limited))
      const waiting = yield* Effect.fork(Effect.flip(ask(limited)))
      yield* TestClock.adjust("5 seconds")
      const error = (yield* Fiber.join(waiting)) as ProviderError
      expect(error.reason).toBe("RateLimited")
      expect((yield* limiter.snapshot).queued).toBe(0)
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(running)
    }))

  it.effect("remaining-requests 0 in response metadata holds new requests until the reset", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make()
      const model = recording()
      const limited = RateLimiter.wrap(model.service, limiter)
      yield* limiter.observeMetadata({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s" })
      const fiber = yield* Effect.fork(ask(limited))
      yield* TestClock.adjust("89 seconds")
      expect(model.starts).toEqual([])
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect(model.starts).toEqual([90_000])
    }))

  it.effect("a RateLimited error with retryAfterMs holds the queue for that long", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make()
      const model = recording()
      yield* limiter.observeError(
        new ProviderError({
          reason: "RateLimited",
          providerId: "limited",
          retryable: true,
          message: "429",
          retryAfterMs: 3000
        })
      )
      const fiber = yield* Effect.fork(ask(RateLimiter.wrap(model.service, limiter)))
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(fiber)
      expect(model.starts).toEqual([3000])
    }))

  it.effect("an interrupted waiter leaves the queue and frees its place", () =>
    Effect.gen(function*() {
      const hold = yield* Deferred.make<void>()
      const limiter = yield* RateLimiter.make({ maxConcurrent: 1 })
      const limited = RateLimiter.wrap(recording(hold).service, limiter)
      const running = yield* Effect.fork(ask(limited))
      const waiting = yield* Effect.fork(ask(limited))
      yield* TestClock.adjust(0)
      expect((yield* limiter.snapshot).queued).toBe(1)
      yield* Fiber.interrupt(waiting)
      expect(yield* limiter.snapshot).toMatchObject({ queued: 0, inFlight: 1 })
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(running)
      expect((yield* limiter.snapshot).inFlight).toBe(0)
    }))

  it.effect("invalid limits are a ConfigError naming the option", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(RateLimiter.make({ requestsPerMinute: 0, maxConcurrent: 1.5 }))
      expect(error._tag).toBe("ConfigError")
      expect(error.message).toContain("requestsPerMinute must be a positive integer, got 0")
      expect(error.message).toContain("maxConcurrent must be a positive integer, got 1.5")
    }))

  it("parseResetDuration reads OpenAI-style durations and plain seconds", () => {
    expect(RateLimiter.parseResetDuration("1s")).toBe(1000)
    expect(RateLimiter.parseResetDuration("6m0s")).toBe(360_000)
    expect(RateLimiter.parseResetDuration("20ms")).toBe(20)
    expect(RateLimiter.parseResetDuration("1h2m3.5s")).toBe(3_723_500)
    expect(RateLimiter.parseResetDuration("12")).toBe(12_000)
    expect(RateLimiter.parseResetDuration("soon")).toBeUndefined()
    expect(RateLimiter.parseResetDuration(undefined)).toBeUndefined()
  })
})
