import { describe, expect, it } from "@effect/vitest"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type * as Tracer from "effect/Tracer"
import { ProviderError } from "../../src/domain/Errors.js"
import * as Message from "../../src/domain/Message.js"
import type { ChatChunk } from "../../src/domain/Message.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as RateLimiter from "../../src/providers/RateLimiter.js"
import { runForEachChunk, withResilience } from "../../src/providers/Resilience.js"
import { withRecordingTracer } from "../fixtures/recordingTracer.js"

type Attempt = () => Stream.Stream<ChatChunk, ProviderError>

/** A provider that answers its n-th call with the n-th scripted stream and counts its calls. */
const scripted = (...attempts: ReadonlyArray<Attempt>) => {
  let calls = 0
  const service = LanguageModel.make({
    id: "scripted",
    name: "Scripted",
    stream: () => Stream.suspend(() => attempts[Math.min(calls++, attempts.length - 1)]!())
  })
  return { service, calls: () => calls }
}

const failure = (reason: ProviderError["reason"], retryable: boolean, retryAfterMs?: number) =>
  new ProviderError({
    reason,
    providerId: "scripted",
    retryable,
    message: `scripted ${reason}`,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
  })

const text = (delta: string): ChatChunk => ({ _tag: "text-delta", delta })
const finish: ChatChunk = { _tag: "finish", finishReason: "stop" }
const answer: Attempt = () => Stream.make(text("ok"), finish)
const fails = (error: ProviderError): Attempt => () => Stream.fail(error)

const sleepsAfter = (now: number) => Effect.map(TestClock.sleeps(), (sleeps) => Chunk.toArray(sleeps).filter((end) => end > now))

/** Lets forked fibers run until they block, without moving the TestClock. */
const settle = TestClock.adjust(0)

const errorOf = <A>(effect: Effect.Effect<A, LanguageModel.ModelError>) =>
  Effect.map(Effect.either(effect), (result) => Either.getLeft(result).pipe(Option.getOrThrow) as ProviderError)

describe("Resilience", () => {
  it.effect("a retryable error is retried and the later answer returned", () =>
    Effect.gen(function*() {
      const model = scripted(fails(failure("ServerError", true)), fails(failure("Network", true)), answer)
      const fiber = yield* Effect.fork(withResilience(model.service).chat([Message.user("x")]))
      yield* TestClock.adjust("2 seconds")
      const response = yield* Fiber.join(fiber)
      expect(response.content).toBe("ok")
      expect(model.calls()).toBe(3)
    }))

  it.effect("after maxAttempts the last error goes to the caller", () =>
    Effect.gen(function*() {
      const model = scripted(fails(failure("ServerError", true)))
      const fiber = yield* Effect.fork(errorOf(withResilience(model.service, { maxAttempts: 4 }).chat([Message.user("x")])))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("ServerError")
      expect(model.calls()).toBe(4)
    }))

  it.effect("a request's maxAttempts caps the policy for that request only", () =>
    Effect.gen(function*() {
      const model = scripted(fails(failure("ServerError", true)))
      const resilient = withResilience(model.service, { maxAttempts: 4 })
      const capped = yield* errorOf(Stream.runDrain(resilient.stream([Message.user("x")], [], { maxAttempts: 1 })))
      expect([capped.reason, model.calls()]).toEqual(["ServerError", 1])
      const fiber = yield* Effect.fork(errorOf(Stream.runDrain(resilient.stream([Message.user("x")], [], { maxAttempts: 9 }))))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      expect(model.calls()).toBe(1 + 4)
    }))

  it.effect("a non-retryable error is not retried", () =>
    Effect.gen(function*() {
      const model = scripted(fails(failure("Unauthorized", false)), answer)
      const error = yield* errorOf(withResilience(model.service).chat([Message.user("x")]))
      expect(error.reason).toBe("Unauthorized")
      expect(model.calls()).toBe(1)
    }))

  it.effect("backoff doubles from the base delay, each delay scaled by a jitter in [0.5, 1]", () =>
    Effect.gen(function*() {
      const model = scripted(fails(failure("ServerError", true)))
      const resilient = withResilience(model.service, { maxAttempts: 3, baseDelay: "1 second", maxDelay: "20 seconds" })
      const fiber = yield* Effect.fork(Effect.either(resilient.chat([Message.user("x")])))
      yield* settle
      const [first] = yield* sleepsAfter(0)
      expect(first).toBeGreaterThanOrEqual(500)
      expect(first).toBeLessThanOrEqual(1000)
      yield* TestClock.adjust(first!)
      expect(model.calls()).toBe(2)
      const [second] = yield* sleepsAfter(first!)
      expect(second! - first!).toBeGreaterThanOrEqual(1000)
      expect(second! - first!).toBeLessThanOrEqual(2000)
      yield* TestClock.adjust(second! - first!)
      yield* Fiber.join(fiber)
      expect(model.calls()).toBe(3)
    }))

  it.effect("backoff never exceeds maxDelay", () =>
    Effect.gen(function*() {
      const model = scripted(fails(failure("ServerError", true)))
      const resilient = withResilience(model.service, { maxAttempts: 2, baseDelay: "10 seconds", maxDelay: "2 seconds" })
      const fiber = yield* Effect.fork(Effect.either(resilient.chat([Message.user("x")])))
      yield* settle
      const [delay] = yield* sleepsAfter(0)
      expect(delay).toBeLessThanOrEqual(2000)
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(fiber)
    }))

  it.effect("a server's Retry-After is waited for exactly, and one above 60 s is not waited for at all", () =>
    Effect.gen(function*() {
      const honoured = scripted(fails(failure("RateLimited", true, 7_000)), answer)
      const fiber = yield* Effect.fork(withResilience(honoured.service).chat([Message.user("x")]))
      yield* TestClock.adjust("6999 millis")
      expect(honoured.calls()).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(fiber)).content).toBe("ok")
      expect(honoured.calls()).toBe(2)

      const tooLong = scripted(fails(failure("RateLimited", true, 61_000)), answer)
      const error = yield* errorOf(withResilience(tooLong.service).chat([Message.user("x")]))
      expect([error.reason, error.retryAfterMs, tooLong.calls()]).toEqual(["RateLimited", 61_000, 1])
    }))

  it.effect("a stream is retried while nothing reached the caller", () =>
    Effect.gen(function*() {
      const model = scripted(fails(failure("ServerError", true)), answer)
      const fiber = yield* Effect.fork(Stream.runCollect(withResilience(model.service).stream([Message.user("x")])))
      yield* TestClock.adjust("1 second")
      expect(Chunk.toArray(yield* Fiber.join(fiber))).toEqual([text("ok"), finish])
      expect(model.calls()).toBe(2)
    }))

  it.effect("a stream is never retried once a chunk reached the caller", () =>
    Effect.gen(function*() {
      const model = scripted(() => Stream.concat(Stream.make(text("par")), Stream.fail(failure("Network", true))), answer)
      const seen: Array<ChatChunk> = []
      const fiber = yield* Effect.fork(errorOf(
        Stream.runForEach(withResilience(model.service).stream([Message.user("x")]), (chunk) => Effect.sync(() => seen.push(chunk)))
      ))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      expect([error.reason, seen, model.calls()]).toEqual(["Network", [text("par")], 1])
    }))

  it.effect("no first chunk within firstChunkTimeout is a retryable Timeout", () =>
    Effect.gen(function*() {
      const model = scripted(() => Stream.never)
      const resilient = withResilience(model.service, { maxAttempts: 1, firstChunkTimeout: "5 seconds" })
      const fiber = yield* Effect.fork(errorOf(Stream.runDrain(resilient.stream([Message.user("x")]))))
      yield* TestClock.adjust("4999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      expect([error.reason, error.retryable]).toEqual(["Timeout", true])
      expect(error.message).toContain("first-chunk timeout")
    }))

  it.effect("a pause between chunks longer than idleTimeout is a Timeout", () =>
    Effect.gen(function*() {
      const model = scripted(() => Stream.concat(Stream.make(text("a")), Stream.never))
      const resilient = withResilience(model.service, { idleTimeout: "10 seconds" })
      const fiber = yield* Effect.fork(errorOf(Stream.runDrain(resilient.stream([Message.user("x")]))))
      yield* TestClock.adjust("9999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      expect(error.message).toContain("idle timeout")
      expect(model.calls()).toBe(1)
    }))

  it.effect("reads that decode nothing do not move the first-chunk or the idle deadline", () =>
    Effect.gen(function*() {
      // What a provider's reads give for a keep-alive comment or a partial line: an empty chunk.
      const nothing: Stream.Stream<ChatChunk> = Stream.fromChannel(Channel.write(Chunk.empty<ChatChunk>()))
      const drip = Stream.forever(Stream.concat(nothing, Stream.fromEffect(Effect.sleep("1 second")).pipe(Stream.drain)))
      const options = { maxAttempts: 1, firstChunkTimeout: "5 seconds", idleTimeout: "5 seconds" } as const
      const silent = withResilience(scripted(() => drip).service, options)
      const stalled = withResilience(scripted(() => Stream.concat(Stream.make(text("a")), drip)).service, options)
      const first = yield* Effect.fork(errorOf(Stream.runDrain(silent.stream([Message.user("x")]))))
      const idle = yield* Effect.fork(errorOf(Stream.runDrain(stalled.stream([Message.user("x")]))))
      for (let i = 0; i < 5; i++) yield* TestClock.adjust("1 second")
      const errors = [yield* Fiber.join(first), yield* Fiber.join(idle)]
      expect(errors.map((error) => [error.reason, error.message.includes("first-chunk") ? "first" : "idle"]))
        .toEqual([["Timeout", "first"], ["Timeout", "idle"]])
    }))

  it.effect("a slow consumer does not trip the provider's timeouts", () =>
    Effect.gen(function*() {
      const model = scripted(() => Stream.make(text("a"), text("b"), finish).pipe(Stream.rechunk(1)))
      const resilient = withResilience(model.service, { firstChunkTimeout: "1 second", idleTimeout: "1 second" })
      const fiber = yield* Effect.fork(Stream.runCollect(
        resilient.stream([Message.user("x")]).pipe(Stream.rechunk(1), Stream.tap(() => Effect.sleep("5 seconds")))
      ))
      for (let i = 0; i < 3; i++) yield* TestClock.adjust("5 seconds")
      expect(Chunk.toArray(yield* Fiber.join(fiber))).toEqual([text("a"), text("b"), finish])
    }))

  it.effect("a stream that keeps trickling is cut at the request timeout", () =>
    Effect.gen(function*() {
      const trickle = Stream.repeatValue(text(".")).pipe(Stream.schedule(Schedule.spaced("20 seconds")))
      const model = scripted(() => trickle)
      const resilient = withResilience(model.service, { requestTimeout: "2 minutes" })
      const fiber = yield* Effect.fork(errorOf(Stream.runDrain(resilient.stream([Message.user("x")]))))
      for (let i = 0; i < 6; i++) yield* TestClock.adjust("20 seconds")
      const error = yield* Fiber.join(fiber)
      expect([error.reason, error.retryable]).toEqual(["Timeout", false])
      expect(error.message).toContain("request timeout of 2m")
    }))

  it.effect("chat is bounded by the request timeout", () =>
    Effect.gen(function*() {
      const hanging = LanguageModel.make({ id: "hang", name: "Hang", stream: () => Stream.never })
      const fiber = yield* Effect.fork(errorOf(withResilience(hanging, { requestTimeout: "1 minute" }).chat([Message.user("x")])))
      yield* TestClock.adjust("1 minute")
      expect((yield* Fiber.join(fiber)).reason).toBe("Timeout")
    }))

  it.effect("spans carry the provider, model and usage, and logs the model and message count, never message text", () =>
    Effect.gen(function*() {
      let streamSpan: Tracer.Span | undefined
      let chatSpan: Tracer.Span | undefined
      const usage: ChatChunk = { _tag: "usage", usage: { inputTokens: 11, outputTokens: 4 } }
      const finishWithModel: ChatChunk = { _tag: "finish", finishReason: "stop", model: "m-1" }
      const service = LanguageModel.make({
        id: "spy",
        name: "Spy",
        stream: () =>
          Stream.unwrap(Effect.map(Effect.orDie(Effect.currentSpan), (span) => {
            streamSpan = span
            return Stream.make(text("secret answer"), usage, finishWithModel)
          })),
        chat: () =>
          Effect.map(Effect.orDie(Effect.currentSpan), (span) => {
            chatSpan = span
            return { type: "text", content: "secret answer", usage: { inputTokens: 2 }, finishReason: "stop" } as const
          })
      })
      const logs: Array<string> = []
      const logger = Logger.make(({ annotations, message }) => {
        logs.push(JSON.stringify({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) }))
      })
      const resilient = withResilience(service, { model: "m-1" })
      const conversation = [Message.system("top secret system prompt"), Message.user("top secret question")]
      yield* Stream.runDrain(resilient.stream(conversation)).pipe(
        Effect.zipRight(resilient.chat(conversation)),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Debug),
        withRecordingTracer
      )
      expect(streamSpan!.name).toBe("LanguageModel.stream")
      expect(Object.fromEntries(streamSpan!.attributes)).toMatchObject({
        "gen_ai.provider.name": "spy",
        "gen_ai.request.model": "m-1",
        "gen_ai.request.message_count": 2,
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.model": "m-1"
      })
      expect(chatSpan!.name).toBe("LanguageModel.chat")
      expect(Object.fromEntries(chatSpan!.attributes)).toMatchObject({ "gen_ai.usage.input_tokens": 2 })
      expect(logs.some((line) => line.includes("\"messageCount\":2") && line.includes("\"model\":\"m-1\""))).toBe(true)
      const everything = JSON.stringify([...streamSpan!.attributes, ...chatSpan!.attributes]) + logs.join("\n")
      expect(everything).not.toContain("secret")
    }))

  describe("runForEachChunk", () => {
    const each = (service: LanguageModel.Service, options?: LanguageModel.ChatOptions) =>
      Effect.suspend(() => {
        const seen: Array<ChatChunk> = []
        return Effect.as(
          runForEachChunk(service, [Message.user("x")], undefined, options, (chunk) => Effect.sync(() => seen.push(...chunk))),
          seen
        )
      })

    it.effect("reads a resilient provider directly, with the stream's chunks, retries and span", () =>
      Effect.gen(function*() {
        let span: Tracer.AnySpan | undefined
        const model = scripted(
          fails(failure("ServerError", true)),
          () =>
            Stream.unwrap(Effect.map(Effect.orDie(Effect.currentSpan), (current) => {
              span = current
              return Stream.make(text("ok"), finish)
            }))
        )
        const fiber = yield* Effect.fork(withRecordingTracer(each(withResilience(model.service, { model: "m-2" }))))
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(fiber)).toEqual([text("ok"), finish])
        expect(model.calls()).toBe(2)
        expect(span?._tag === "Span" && span.name).toBe("LanguageModel.stream")
        expect(span?._tag === "Span" && Object.fromEntries(span.attributes)).toMatchObject({
          "gen_ai.provider.name": "scripted",
          "gen_ai.request.model": "m-2",
          "gen_ai.response.finish_reason": "stop"
        })
      }))

    it.effect("reads any other provider through its stream", () =>
      Effect.gen(function*() {
        const model = scripted(answer)
        expect(yield* each(model.service)).toEqual([text("ok"), finish])
        const error = yield* errorOf(each(scripted(fails(failure("Unauthorized", false))).service))
        expect(error.reason).toBe("Unauthorized")
      }))

    it.effect("interrupting it releases the provider's answer", () =>
      Effect.gen(function*() {
        let released = false
        const model = scripted(() =>
          Stream.concat(Stream.make(text("a")), Stream.never).pipe(Stream.ensuring(Effect.sync(() => {
            released = true
          })))
        )
        const first = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          runForEachChunk(withResilience(model.service), [Message.user("x")], undefined, undefined, () => Deferred.succeed(first, undefined))
        )
        yield* Deferred.await(first)
        yield* Fiber.interrupt(fiber)
        expect(released).toBe(true)
      }))
  })

  describe("with the live clock", () => {
    it.live("no first chunk within firstChunkTimeout is a Timeout", () =>
      Effect.gen(function*() {
        const model = scripted(() => Stream.never)
        const resilient = withResilience(model.service, { maxAttempts: 1, firstChunkTimeout: "50 millis" })
        const error = yield* errorOf(Stream.runDrain(resilient.stream([Message.user("x")])))
        expect([error.reason, error.retryable]).toEqual(["Timeout", true])
        expect(error.message).toContain("first-chunk timeout")
      }))

    it.live("a pause between chunks longer than idleTimeout is a Timeout, and is not retried", () =>
      Effect.gen(function*() {
        const model = scripted(() => Stream.concat(Stream.make(text("a")), Stream.never))
        const resilient = withResilience(model.service, { idleTimeout: "50 millis" })
        const error = yield* errorOf(runForEachChunk(resilient, [Message.user("x")], undefined, undefined, () => Effect.void))
        expect(error.message).toContain("idle timeout")
        expect(model.calls()).toBe(1)
      }))

    it.live("a slow consumer does not trip the timeouts, and a stream that keeps trickling is cut at the request timeout", () =>
      Effect.gen(function*() {
        const slow = scripted(() => Stream.make(text("a"), text("b"), finish).pipe(Stream.rechunk(1)))
        const resilient = withResilience(slow.service, { firstChunkTimeout: "100 millis", idleTimeout: "100 millis" })
        const chunks = yield* Stream.runCollect(
          resilient.stream([Message.user("x")]).pipe(Stream.rechunk(1), Stream.tap(() => Effect.sleep("200 millis")))
        )
        expect(Chunk.toArray(chunks)).toEqual([text("a"), text("b"), finish])

        const trickle = scripted(() => Stream.repeatValue(text(".")).pipe(Stream.schedule(Schedule.spaced("20 millis"))))
        const cut = withResilience(trickle.service, { requestTimeout: "150 millis" })
        const error = yield* errorOf(Stream.runDrain(cut.stream([Message.user("x")])))
        expect([error.reason, error.retryable]).toEqual(["Timeout", false])
      }))
  })

  it.effect("time spent queueing in a rate limiter does not count against the first-chunk timeout", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ requestsPerMinute: 1 })
      const model = scripted(answer)
      const resilient = withResilience(RateLimiter.wrap(model.service, limiter), { firstChunkTimeout: "30 seconds" })
      yield* resilient.chat([Message.user("first")])
      const fiber = yield* Effect.fork(resilient.chat([Message.user("second")]))
      yield* TestClock.adjust("59 seconds")
      expect(model.calls()).toBe(1)
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).content).toBe("ok")
      expect(model.calls()).toBe(2)
    }))

  it.effect("a stream holds its permit until it ends, and its finish metadata reaches the limiter", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ maxConcurrent: 1 })
      const hold = yield* Deferred.make<void>()
      const quota: ChatChunk = {
        _tag: "finish",
        finishReason: "stop",
        metadata: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "10s" }
      }
      const model = scripted(
        () => Stream.concat(Stream.make(text("a")), Stream.fromEffect(Effect.as(Deferred.await(hold), finish))),
        () => Stream.make(text("b"), quota),
        answer
      )
      const resilient = withResilience(model.service, { rateLimiter: limiter })
      const first = yield* Effect.fork(Stream.runCollect(resilient.stream([Message.user("x")])))
      yield* settle
      const second = yield* Effect.fork(
        runForEachChunk(resilient, [Message.user("x")], undefined, undefined, () => Effect.void)
      )
      yield* settle
      expect([model.calls(), (yield* limiter.snapshot).queued]).toEqual([1, 1])
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(model.calls()).toBe(2)
      const third = yield* Effect.fork(Stream.runDrain(resilient.stream([Message.user("x")])))
      yield* TestClock.adjust("9 seconds")
      expect(model.calls()).toBe(2)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(third)
      expect(model.calls()).toBe(3)
      expect(yield* limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0 })
    }))

  it.effect("each retry takes its own rate-limit permit", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ requestsPerMinute: 1 })
      const model = scripted(fails(failure("ServerError", true)), answer)
      const fiber = yield* Effect.fork(withResilience(model.service, { rateLimiter: limiter }).chat([Message.user("x")]))
      yield* TestClock.adjust("30 seconds")
      expect(model.calls()).toBe(1)
      yield* TestClock.adjust("30 seconds")
      expect((yield* Fiber.join(fiber)).content).toBe("ok")
      expect(model.calls()).toBe(2)
    }))
})
