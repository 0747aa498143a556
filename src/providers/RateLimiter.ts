/**
 * Client-side rate limiting for one provider (seed 003: respect rate limits, queue requests):
 * at most `requestsPerMinute` request starts in any 60-second window and at most
 * `maxConcurrent` requests in flight. Requests over the limit wait in a bounded FIFO queue; a
 * full queue, or a wait longer than the request may wait, is a `ProviderError` `RateLimited`.
 *
 * The limiter also listens to the server. Providers expose the response headers worth keeping
 * as `metadata` (lower-case header names) on the `finish` chunk of a stream, on
 * `LLMResponse.metadata` and on `ProviderError.metadata`. When that metadata reports
 * `x-ratelimit-remaining-requests: 0`, new requests wait until `x-ratelimit-reset-requests` has
 * elapsed instead of spending a request on a 429; a `RateLimited` error with a `retryAfterMs`
 * holds the queue for that long too.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ConfigError, ProviderError } from "../domain/Errors.js"
import type { ChatChunk } from "../domain/Message.js"
import type * as LanguageModel from "./LanguageModel.js"

/**
 * The per-provider limits, as configured under `providers.<id>.rateLimit`. Unset limits do not
 * apply; `maxQueue` defaults to 100 waiting requests and `maxWait` to 10 minutes (the default
 * request timeout).
 *
 * @since 0.1.0
 */
export interface RateLimitOptions {
  readonly requestsPerMinute?: number
  readonly maxConcurrent?: number
  readonly maxQueue?: number
  readonly maxWait?: Duration.DurationInput
}

/**
 * A limiter shared by every request to one provider.
 *
 * @since 0.1.0
 */
export interface RateLimiter {
  /**
   * Waits for this request's turn and holds a permit until the surrounding scope closes. Fails
   * with `RateLimited` when the queue is full or the wait would exceed `maxWait` (default: the
   * limiter's own `maxWait`).
   */
  readonly acquire: (
    providerId: string,
    maxWait?: Duration.DurationInput
  ) => Effect.Effect<void, ProviderError, Scope.Scope>
  /** Learns the server's remaining quota from response metadata (lower-case header names). */
  readonly observeMetadata: (metadata: Readonly<Record<string, string>> | undefined) => Effect.Effect<void>
  /** Learns from a failed request: a `RateLimited` error holds the queue for its `retryAfterMs`. */
  readonly observeError: (error: ProviderError) => Effect.Effect<void>
  /** What the limiter holds now, for diagnostics and tests. */
  readonly snapshot: Effect.Effect<{ readonly inFlight: number; readonly queued: number; readonly blockedUntil: number }>
}

const windowMs = 60_000
const defaultMaxQueue = 100
const defaultMaxWait = Duration.minutes(10)

interface Waiter {
  admitted: boolean
}

/**
 * Builds a limiter. Limits must be positive integers (`maxQueue` may be 0: no waiting at all);
 * anything else is a `ConfigError` naming the offending option.
 *
 * @example
 * ```ts
 * const limiter = yield* RateLimiter.make({ requestsPerMinute: 60, maxConcurrent: 4 })
 * const limited = RateLimiter.wrap(provider, limiter)
 * ```
 * @since 0.1.0
 */
export const make = (options: RateLimitOptions = {}): Effect.Effect<RateLimiter, ConfigError> =>
  Effect.gen(function*() {
    yield* validate(options)
    const rpm = options.requestsPerMinute ?? Infinity
    const maxConcurrent = options.maxConcurrent ?? Infinity
    const maxQueue = options.maxQueue ?? defaultMaxQueue
    const limiterMaxWait = Duration.decode(options.maxWait ?? defaultMaxWait)

    let inFlight = 0
    let blockedUntil = 0
    const starts: Array<number> = []
    const queue: Array<Waiter> = []
    // Every state change completes the current deferred and replaces it, so a waiter that read
    // the state and then awaits the deferred it saw cannot miss a wake-up.
    let changed = Deferred.unsafeMake<void>(FiberId.none)
    const notify = () => {
      const previous = changed
      changed = Deferred.unsafeMake<void>(FiberId.none)
      Deferred.unsafeDone(previous, Effect.void)
    }

    const prune = (now: number) => {
      while (starts.length > 0 && starts[0]! <= now - windowMs) starts.shift()
    }
    // The earliest instant a request could start if it were first in line, ignoring concurrency.
    const nextStart = (now: number): number => {
      prune(now)
      const byWindow = starts.length >= rpm ? starts[starts.length - rpm]! + windowMs : now
      return Math.max(now, blockedUntil, byWindow)
    }
    const admit = (waiter: Waiter, now: number) => {
      waiter.admitted = true
      inFlight++
      if (rpm !== Infinity) starts.push(now)
    }
    // Predicts when the request at `position` in the queue starts, from the window alone:
    // concurrency waits cannot be predicted, so they are bounded by the timeout instead.
    const estimateStart = (now: number, position: number): number => {
      if (rpm === Infinity) return Math.max(now, blockedUntil)
      const times = starts.slice()
      let at = Math.max(now, blockedUntil)
      for (let k = 0; k <= position; k++) {
        if (times.length >= rpm) at = Math.max(at, times[times.length - rpm]! + windowMs)
        times.push(at)
      }
      return at
    }
    const rateLimited = (providerId: string, message: string, retryAfterMs?: number) =>
      new ProviderError({
        reason: "RateLimited",
        providerId,
        retryable: true,
        message,
        ...(retryAfterMs !== undefined ? { retryAfterMs: Math.max(0, Math.ceil(retryAfterMs)) } : {})
      })

    const release = (waiter: Waiter) =>
      Effect.sync(() => {
        if (waiter.admitted) {
          waiter.admitted = false
          inFlight--
        } else {
          const index = queue.indexOf(waiter)
          if (index >= 0) queue.splice(index, 1)
        }
        notify()
      })

    const awaitTurn = (waiter: Waiter): Effect.Effect<void> =>
      Effect.suspend(() => {
        const now = Clock.currentTimeMillis
        return Effect.flatMap(now, (now) => {
          const wake = changed
          if (queue[0] === waiter && inFlight < maxConcurrent) {
            const at = nextStart(now)
            if (at <= now) {
              queue.shift()
              admit(waiter, now)
              notify()
              return Effect.void
            }
            return Effect.zipRight(
              Effect.raceFirst(Deferred.await(wake), Effect.sleep(Duration.millis(at - now))),
              awaitTurn(waiter)
            )
          }
          return Effect.zipRight(Deferred.await(wake), awaitTurn(waiter))
        })
      })

    const acquire = (providerId: string, maxWait?: Duration.DurationInput) =>
      Effect.gen(function*() {
        const waitBound = maxWait === undefined ? limiterMaxWait : Duration.decode(maxWait)
        const boundMs = Duration.toMillis(waitBound)
        const now = yield* Clock.currentTimeMillis
        const waiter: Waiter = { admitted: false }
        yield* Effect.addFinalizer(() => release(waiter))
        if (queue.length === 0 && inFlight < maxConcurrent && nextStart(now) <= now) {
          admit(waiter, now)
          return
        }
        if (queue.length >= maxQueue) {
          return yield* Effect.fail(rateLimited(
            providerId,
            `Provider "${providerId}" has ${queue.length} requests waiting for its rate limit (maxQueue ${maxQueue}); ` +
              `the request was refused rather than queued. Try again later or raise providers.${providerId}.rateLimit.maxQueue.`,
            Math.max(0, nextStart(now) - now)
          ))
        }
        const predicted = estimateStart(now, queue.length) - now
        if (predicted > boundMs) {
          return yield* Effect.fail(rateLimited(
            providerId,
            `Provider "${providerId}" is rate limited: this request could start only in ${formatMs(predicted)}, ` +
              `longer than it may wait (${formatMs(boundMs)}). Try again later, or raise the request timeout or ` +
              `providers.${providerId}.rateLimit.`,
            predicted
          ))
        }
        queue.push(waiter)
        yield* awaitTurn(waiter).pipe(
          Effect.timeoutFail({
            duration: waitBound,
            onTimeout: () =>
              rateLimited(
                providerId,
                `Provider "${providerId}" is rate limited: the request waited ${formatMs(boundMs)} for a free slot ` +
                  `(at most ${maxConcurrent} concurrent requests) and gave up. Try again later or raise ` +
                  `providers.${providerId}.rateLimit.maxConcurrent.`
              )
          })
        )
      })

    const holdUntil = (until: number) => {
      if (until > blockedUntil) {
        blockedUntil = until
        notify()
      }
    }

    const observeMetadata = (metadata: Readonly<Record<string, string>> | undefined) =>
      metadata === undefined || metadata["x-ratelimit-remaining-requests"] === undefined
        ? Effect.void
        : Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            if (Number(metadata["x-ratelimit-remaining-requests"]) > 0) return
            const resetMs = parseResetDuration(metadata["x-ratelimit-reset-requests"])
            if (resetMs !== undefined) holdUntil(now + resetMs)
          }))

    const observeError = (error: ProviderError) =>
      Effect.zipRight(
        observeMetadata(error.metadata),
        error.reason === "RateLimited" && error.retryAfterMs !== undefined
          ? Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => holdUntil(now + error.retryAfterMs!)))
          : Effect.void
      )

    return {
      acquire,
      observeMetadata,
      observeError,
      snapshot: Effect.sync(() => ({ inFlight, queued: queue.length, blockedUntil }))
    } satisfies RateLimiter
  })

/**
 * The provider and limiter behind a service made by `wrap`: a field of the service itself (under
 * a symbol, so it stays out of the way), kept by a copy of the service.
 */
const LimitedBy: unique symbol = Symbol.for("effect-agent-kernel/RateLimiter/LimitedBy")

interface Limited extends LanguageModel.Service {
  readonly [LimitedBy]: {
    readonly inner: LanguageModel.Service
    readonly limiter: RateLimiter
    readonly stream: LanguageModel.Service["stream"]
  }
}

/**
 * Puts a provider behind a limiter: every `chat` and `stream` takes a permit first (held until
 * the answer is complete) and feeds response metadata and errors back to the limiter.
 * `Resilience.withResilience` recognises a wrapped provider and takes one permit per attempt,
 * outside the attempt's timeouts, so queueing never counts as a slow first chunk.
 *
 * @since 0.1.0
 */
export const wrap = (service: LanguageModel.Service, limiter: RateLimiter): LanguageModel.Service => {
  const stream: LanguageModel.Service["stream"] = (messages, tools, options) =>
    Stream.unwrapScoped(Effect.as(limiter.acquire(service.id), observeStream(service.stream(messages, tools, options), limiter)))
  const limited: Limited = {
    id: service.id,
    name: service.name,
    isAvailable: service.isAvailable,
    chat: (messages, tools, options) =>
      Effect.scoped(Effect.zipRight(
        limiter.acquire(service.id),
        service.chat(messages, tools, options).pipe(
          Effect.tap((response) => limiter.observeMetadata(response.metadata)),
          Effect.tapError((error) => error._tag === "ProviderError" ? limiter.observeError(error) : Effect.void)
        )
      )),
    stream,
    [LimitedBy]: { inner: service, limiter, stream }
  }
  return limited
}

/**
 * The provider and limiter behind a service made by `wrap` (or a copy of it), if it is one.
 *
 * @since 0.1.0
 */
export const unwrap = (
  service: LanguageModel.Service
): { readonly inner: LanguageModel.Service; readonly limiter: RateLimiter } | undefined => {
  const limited = (service as Partial<Limited>)[LimitedBy]
  // A copy whose stream was replaced is no longer what `wrap` made.
  return limited !== undefined && limited.stream === service.stream ? limited : undefined
}

/**
 * Feeds a stream's `finish` metadata and its error to the limiter, without touching the chunks.
 *
 * @since 0.1.0
 */
export const observeStream = <E, R>(
  stream: Stream.Stream<ChatChunk, E, R>,
  limiter: RateLimiter
): Stream.Stream<ChatChunk, E, R> =>
  stream.pipe(
    Stream.tapError((error) => error instanceof ProviderError ? limiter.observeError(error) : Effect.void),
    Stream.mapChunksEffect((chunks) => {
      let metadata: Record<string, string> | undefined
      for (const chunk of chunks) if (chunk._tag === "finish") metadata = chunk.metadata
      return metadata === undefined ? Effect.succeed(chunks) : Effect.as(limiter.observeMetadata(metadata), chunks)
    })
  )

/**
 * Parses a quota reset as servers send it: OpenAI-style durations (`1s`, `6m0s`, `20ms`,
 * `1h2m3.5s`) or a plain number of seconds. Returns milliseconds, or `undefined` when unreadable.
 *
 * @since 0.1.0
 */
export const parseResetDuration = (value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (trimmed === "") return undefined
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }
  const pattern = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy
  let total = 0
  let consumed = 0
  for (const match of trimmed.matchAll(pattern)) {
    total += Number(match[1]) * unitMs[match[2]!]!
    consumed += match[0].length
  }
  return consumed === trimmed.length ? total : undefined
}

const validate = (options: RateLimitOptions): Effect.Effect<void, ConfigError> => {
  const problems: Array<string> = []
  const positive = (name: string, value: number | undefined, allowZero = false) => {
    if (value === undefined) return
    if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
      problems.push(`${name} must be ${allowZero ? "a non-negative" : "a positive"} integer, got ${value}`)
    }
  }
  positive("requestsPerMinute", options.requestsPerMinute)
  positive("maxConcurrent", options.maxConcurrent)
  positive("maxQueue", options.maxQueue, true)
  return problems.length === 0 ? Effect.void : Effect.fail(
    new ConfigError({
      reason: "InvalidValue",
      key: "rateLimit",
      message: `Invalid rate limit: ${problems.join("; ")}. Fix providers.<id>.rateLimit.`
    })
  )
}

const formatMs = (ms: number): string => Duration.format(Duration.millis(Math.ceil(ms)))
