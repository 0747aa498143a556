/**
 * The kernel's one retry loop and its bounded waits, applied to any provider from outside so
 * providers stay thin (wire format in, domain out). `withResilience` retries only retryable
 * `ProviderError`s, with exponential backoff and jitter or the server's `Retry-After`, and never
 * retries a stream once a chunk has reached the caller. Every wait is bounded: until the first
 * chunk, between chunks and for the whole request (retries, backoff and rate-limit queueing
 * included). Calls get a span (`LanguageModel.chat` / `LanguageModel.stream`) with the provider
 * id, model and token usage, and a debug log with the model and message count — never message
 * text or a key. `runForEachChunk` consumes an answer the way `Stream.runForEachChunk` does, but
 * reads providers that allow it directly, without running a stream.
 *
 * @since 0.1.0
 */
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { ProviderError } from "../domain/Errors.js"
import type { ChatChunk, LLMResponse, Message, ToolDefinition, Usage } from "../domain/Message.js"
import { recording, withSpan } from "../internal/tracing.js"
import * as LanguageModel from "./LanguageModel.js"
import * as internalReads from "./internal/reads.js"
import * as RateLimiter from "./RateLimiter.js"

/**
 * The policy's knobs; every field is optional. Defaults: 3 attempts, 500 ms base delay doubling
 * up to 20 s (each delay scaled by a random factor in [0.5, 1]), a server's `Retry-After`
 * honoured up to 60 s (a longer one is not waited for: the error goes to the caller, who may
 * route elsewhere), 30 s until the first chunk, 60 s between chunks and 10 min for the whole
 * request. A chunk is something decoded (text, a tool call's part, usage, the finish): bytes
 * that decode to nothing, such as keep-alive comments, do not count. `rateLimiter` makes every attempt take a permit first; `model` names the default
 * model in spans and logs when a request does not override it.
 *
 * @since 0.1.0
 */
export interface ResilienceOptions {
  readonly maxAttempts?: number
  readonly baseDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
  readonly maxRetryAfter?: Duration.DurationInput
  readonly firstChunkTimeout?: Duration.DurationInput
  readonly idleTimeout?: Duration.DurationInput
  readonly requestTimeout?: Duration.DurationInput
  readonly rateLimiter?: RateLimiter.RateLimiter
  readonly model?: string
}

interface Policy {
  readonly maxAttempts: number
  readonly baseMs: number
  readonly maxDelayMs: number
  readonly maxRetryAfterMs: number
  readonly firstChunkMs: number
  readonly idleMs: number
  readonly requestMs: number
}

const toMs = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput): number =>
  Duration.toMillis(Duration.decode(input ?? fallback))

const policyOf = (options: ResilienceOptions): Policy => ({
  maxAttempts: Math.max(1, Math.floor(options.maxAttempts ?? 3)),
  baseMs: toMs(options.baseDelay, "500 millis"),
  maxDelayMs: toMs(options.maxDelay, "20 seconds"),
  maxRetryAfterMs: toMs(options.maxRetryAfter, "60 seconds"),
  firstChunkMs: toMs(options.firstChunkTimeout, "30 seconds"),
  idleMs: toMs(options.idleTimeout, "60 seconds"),
  requestMs: toMs(options.requestTimeout, "10 minutes")
})

/**
 * Wraps a provider with the retry policy, timeouts, spans and logs. A provider already put
 * behind `RateLimiter.wrap` keeps its limiter, now taken once per attempt and outside the
 * attempt's timeouts; `options.rateLimiter` does the same for an unwrapped provider.
 *
 * @example
 * ```ts
 * const provider = Resilience.withResilience(raw, { maxAttempts: 5, firstChunkTimeout: "10 seconds" })
 * ```
 * @since 0.1.0
 */
export const withResilience = (
  service: LanguageModel.Service,
  options: ResilienceOptions = {}
): LanguageModel.Service => {
  const unwrapped = RateLimiter.unwrap(service)
  const inner = unwrapped?.inner ?? service
  const limiter = options.rateLimiter ?? unwrapped?.limiter
  const policy = policyOf(options)
  const providerId = inner.id

  const timeoutError = (kind: TimeoutKind) =>
    new ProviderError({
      reason: "Timeout",
      providerId,
      retryable: kind !== "request",
      message: kind === "first"
        ? `Provider "${providerId}" sent no answer within ${fmt(policy.firstChunkMs)} (first-chunk timeout). ` +
          `The server may be overloaded or unreachable; try again, or raise firstChunkTimeout.`
        : kind === "idle"
        ? `Provider "${providerId}" stalled: no chunk for ${fmt(policy.idleMs)} mid-answer (idle timeout). ` +
          `Try again, or raise idleTimeout.`
        : `Provider "${providerId}" did not finish within the request timeout of ${fmt(policy.requestMs)}, ` +
          `retries and queueing included. Try again, or raise requestTimeout.`
    })

  // Decides whether to try again and after how long; `None` hands the error to the caller.
  const retryDelay = (attempt: number, error: LanguageModel.ModelError, deadline: number, maxAttempts: number) =>
    Effect.gen(function*() {
      if (attempt >= maxAttempts || error._tag !== "ProviderError" || !error.retryable) return Option.none()
      let delayMs: number
      if (error.retryAfterMs !== undefined) {
        if (error.retryAfterMs > policy.maxRetryAfterMs) return Option.none()
        delayMs = Math.max(0, error.retryAfterMs)
      } else {
        const exponential = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** (attempt - 1))
        delayMs = Math.round(exponential * (0.5 + 0.5 * (yield* Random.next)))
      }
      const now = yield* Clock.currentTimeMillis
      if (now + delayMs >= deadline) return Option.none()
      yield* Effect.logDebug("model request failed, retrying").pipe(
        Effect.annotateLogs({ provider: providerId, reason: error.reason, attempt, delayMs })
      )
      return Option.some(Duration.millis(delayMs))
    })

  const attemptsFor = (chatOptions: LanguageModel.ChatOptions | undefined) =>
    chatOptions?.maxAttempts !== undefined
      ? Math.max(1, Math.min(policy.maxAttempts, Math.floor(chatOptions.maxAttempts)))
      : policy.maxAttempts

  const remainingUntil = (deadline: number) =>
    Effect.map(Clock.currentTimeMillis, (now) => Math.max(0, deadline - now))

  const acquirePermit = (deadline: number) =>
    limiter === undefined
      ? Effect.void
      : Effect.flatMap(remainingUntil(deadline), (remaining) => limiter.acquire(providerId, Duration.millis(remaining)))

  const observeError = (error: LanguageModel.ModelError) =>
    limiter !== undefined && error._tag === "ProviderError" ? limiter.observeError(error) : Effect.void

  const chat: LanguageModel.Service["chat"] = (messages, tools, chatOptions) => {
    const model = chatOptions?.model ?? options.model
    const attemptOnce = (deadline: number) =>
      Effect.scoped(
        Effect.zipRight(
          acquirePermit(deadline),
          Effect.flatMap(remainingUntil(deadline), (remaining) =>
            inner.chat(messages, tools, chatOptions).pipe(
              Effect.timeoutFail({ duration: Duration.millis(remaining), onTimeout: () => timeoutError("request") })
            ))
        )
      ).pipe(
        Effect.tap((response) => limiter === undefined ? Effect.void : limiter.observeMetadata(response.metadata)),
        Effect.tapError(observeError)
      )
    return Effect.gen(function*() {
      yield* logRequest("chat", providerId, model, messages, tools)
      const deadline = (yield* Clock.currentTimeMillis) + policy.requestMs
      for (let attempt = 1;; attempt++) {
        const result = yield* Effect.either(attemptOnce(deadline))
        if (result._tag === "Right") {
          yield* annotateResponse(result.right, attempt)
          return result.right
        }
        const delay = yield* retryDelay(attempt, result.left, deadline, attemptsFor(chatOptions))
        if (Option.isNone(delay)) {
          yield* Effect.annotateCurrentSpan("gen_ai.attempts", attempt)
          return yield* Effect.fail(result.left)
        }
        yield* Effect.sleep(delay.value)
      }
    }).pipe(withSpan("LanguageModel.chat", {
      attributes: spanAttributes(providerId, model, messages),
      captureStackTrace: false
    }))
  }

  const reads: OpenPull = (messages, tools, chatOptions) => {
    const model = chatOptions?.model ?? options.model
    return Effect.sync(() =>
      resilientReads({
        providerId,
        policy,
        limiter,
        maxAttempts: attemptsFor(chatOptions),
        open: () => openReads(inner, messages, tools, chatOptions),
        retryDelay,
        timeoutError,
        onStart: logRequest("stream", providerId, model, messages, tools),
        span: { attributes: spanAttributes(providerId, model, messages), captureStackTrace: false }
      })
    )
  }

  const stream: LanguageModel.Service["stream"] = (messages, tools, chatOptions) =>
    readsStream(reads(messages, tools, chatOptions))

  return withPullSource({ id: inner.id, name: inner.name, isAvailable: inner.isAvailable, chat, stream }, reads)
}

/**
 * One answer of a provider as reads; see `LanguageModel.Reads`.
 *
 * @since 0.1.0
 */
export type Reads = LanguageModel.Reads

/**
 * How one answer of a provider is opened as reads; see `LanguageModel.OpenReads`.
 *
 * @since 0.1.0
 */
export type OpenPull = LanguageModel.OpenReads

/**
 * `service` with `open` as its reads (`LanguageModel.Service.reads`), standing for its `stream`.
 * What `open` reads must be what `service.stream` streams, with the same failures.
 *
 * @since 0.1.0
 */
export const withPullSource = (service: LanguageModel.Service, open: OpenPull): LanguageModel.Service => ({
  ...service,
  reads: { open, stream: service.stream }
})

/**
 * The way `service`'s answers are read directly, if it has one; see `LanguageModel.readsOf`.
 *
 * @since 0.1.0
 */
export const pullSourceOf: (service: LanguageModel.Service) => OpenPull | undefined = LanguageModel.readsOf

/**
 * Opens one answer of `service` as reads; see `LanguageModel.open`.
 *
 * @since 0.1.0
 */
export const openReads = LanguageModel.open

/**
 * Reads as a stream of one channel stage, for a provider whose `stream` is its reads.
 *
 * @since 0.1.0
 */
export const readsStream: <R>(
  open: Effect.Effect<Reads, LanguageModel.ModelError, R>
) => Stream.Stream<ChatChunk, LanguageModel.ModelError, R> = internalReads.readsStream

type TimeoutKind = "first" | "idle" | "request"

type Next = Effect.Effect<Chunk.Chunk<ChatChunk> | undefined, LanguageModel.ModelError>

// Effect's own clock: its sleeps are `setTimeout`s, so a timer can be one too.
const liveClock = Object.getPrototypeOf(Clock.make())
const maxTimerMs = 2 ** 31 - 1

/**
 * One resilient answer as reads (`stream` is these reads as a single channel stage). Each
 * attempt takes a rate-limit permit (in a scope of its own, when there is a limiter) and opens
 * the provider's reads; retries, timeouts, the span and its annotations, and the limiter's
 * feedback all happen in plain effects between the caller and those reads. Every stream
 * combinator is a channel stage with a cost per request (a few of them cost more than the HTTP
 * exchange of a short answer), and this runs once per model call, so it is written out by hand.
 *
 * Waits are bounded per read: the first by the first-chunk timeout (sending the request
 * included), every later one by the idle timeout, all of them by the request deadline. A read
 * runs in a fiber of its own, so that it can be interrupted, and one timer per answer interrupts
 * it when it is due: a `setTimeout` with Effect's own clock, else (a `TestClock`, say) a
 * watchdog fiber sleeping on the clock in context. Racing every read against a sleep cost more
 * than the whole SSE decoding (measured: about 0.8 ms a read). Time the caller spends between
 * reads counts against nothing. Only a chunk moves the deadline: a read that decodes nothing (a
 * keep-alive comment, a partial line, an event without content) keeps the wait it was in, so a
 * server that drips bytes cannot hold a request open past the first-chunk or idle timeout.
 */
const resilientReads = (options: {
  readonly providerId: string
  readonly policy: Policy
  readonly limiter: RateLimiter.RateLimiter | undefined
  readonly maxAttempts: number
  readonly open: () => Effect.Effect<Reads, LanguageModel.ModelError>
  readonly retryDelay: (
    attempt: number,
    error: LanguageModel.ModelError,
    deadline: number,
    maxAttempts: number
  ) => Effect.Effect<Option.Option<Duration.Duration>>
  readonly timeoutError: (kind: TimeoutKind) => ProviderError
  readonly onStart: Effect.Effect<void>
  /** The options of the request's span, `LanguageModel.stream`. */
  readonly span: Tracer.SpanOptions
}): Reads => {
  const { limiter, policy, timeoutError } = options
  type ReadFiber = Fiber.RuntimeFiber<Chunk.Chunk<ChatChunk> | undefined, LanguageModel.ModelError>
  let attempt = 0
  let deadline = 0
  // A chunk reached the caller: no more retries, and later reads are bounded by the idle timeout.
  let delivered = false
  // The next read starts a new wait (the first of an attempt, or the first after a chunk);
  // otherwise it goes on with the deadline of the read before it.
  let waitStarts = true
  // The request's span (what `Stream.withSpan` would make, without a stream stage of its own),
  // and the context that makes it the parent of everything the request runs.
  let span: Tracer.Span | undefined
  let context: Context.Context<never> | undefined
  let clock: Clock.Clock | undefined
  let live = false
  // The current attempt: its permit's scope and its reads (opened by its first read).
  let permit: Scope.CloseableScope | undefined
  let reads: Reads | undefined
  // The timer's view: the running read, when it is due and what its timeout is called.
  let current: ReadFiber | undefined
  let due = 0
  let kind: TimeoutKind = "first"
  let fired: { readonly read: ReadFiber; readonly error: ProviderError } | undefined
  // When the timer fires next; Infinity when none is set.
  let armedUntil = Infinity
  let timer: ReturnType<typeof setTimeout> | undefined
  let watchdog: Fiber.RuntimeFiber<void> | undefined

  // Whether the running read is due: if so it is interrupted and `fired` says why.
  const expire = (now: number): boolean => {
    if (current === undefined || now < due) return false
    fired = { read: current, error: timeoutError(kind) }
    return true
  }

  const onTimer = () => {
    timer = undefined
    armedUntil = Infinity
    if (current === undefined) return
    const now = clock!.unsafeCurrentTimeMillis()
    if (expire(now)) fired!.read.unsafeInterruptAsFork(FiberId.none)
    else setTimer(now)
  }
  const setTimer = (now: number) => {
    if (timer !== undefined) clearTimeout(timer)
    armedUntil = due
    timer = setTimeout(onTimer, Math.min(due - now, maxTimerMs))
  }

  const watch: Effect.Effect<void> = Effect.suspend(() => {
    const now = clock!.unsafeCurrentTimeMillis()
    if (current === undefined || now >= due) {
      armedUntil = Infinity
      watchdog = undefined
      return expire(now) ? Fiber.interrupt(fired!.read) : Effect.void
    }
    armedUntil = due
    return Effect.zipRight(clock!.sleep(Duration.millis(due - now)), watch)
  })
  const rearm = Effect.suspend(() => {
    const previous = watchdog
    armedUntil = due
    return Effect.flatMap(Effect.forkDaemon(watch), (fiber) => {
      watchdog = fiber
      return previous === undefined ? Effect.void : Fiber.interruptFork(previous)
    })
  })

  // Runs one read in a fiber of its own, bounded as described above.
  const timed = (read: Next): Next =>
    Effect.suspend(() => {
      const now = clock!.unsafeCurrentTimeMillis()
      if (waitStarts) {
        waitStarts = false
        const phaseMs = delivered ? policy.idleMs : policy.firstChunkMs
        const remaining = Math.max(0, deadline - now)
        kind = remaining < phaseMs ? "request" : delivered ? "idle" : "first"
        due = now + Math.min(phaseMs, remaining)
      }
      return Effect.flatMap(Effect.fork(read), (fiber) => {
        current = fiber
        const settled = Effect.flatMap(Fiber.await(fiber), (exit): Next => {
          current = undefined
          const timedOut = fired !== undefined && fired.read === fiber ? fired.error : undefined
          fired = undefined
          return Exit.isSuccess(exit) || timedOut === undefined ? exit : Effect.fail(timedOut)
        })
        if (due >= armedUntil) return settled
        if (!live) return Effect.zipRight(rearm, settled)
        setTimer(now)
        return settled
      })
    })

  // The attempt's first read also opens it.
  const openAndRead: Next = Effect.flatMap(Effect.suspend(options.open), (opened) => {
    reads = opened
    return opened.next
  })

  const takePermit: Effect.Effect<void, LanguageModel.ModelError> = Effect.suspend(() => {
    if (limiter === undefined) return Effect.void
    return Effect.flatMap(Scope.make(), (scope) => {
      permit = scope
      const remaining = Math.max(0, deadline - clock!.unsafeCurrentTimeMillis())
      return Scope.extend(limiter.acquire(options.providerId, Duration.millis(remaining)), scope)
    })
  })

  const closeAttempt = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const opened = reads
      const scope = permit
      reads = undefined
      permit = undefined
      const closing = opened === undefined ? Effect.void : opened.close(exit)
      return scope === undefined ? closing : Effect.zipRight(closing, Scope.close(scope, exit))
    })

  const failed = (error: LanguageModel.ModelError): Next => {
    const observed = limiter !== undefined && error._tag === "ProviderError" ? limiter.observeError(error) : Effect.void
    if (delivered) return Effect.zipRight(observed, Effect.fail(error))
    return Effect.zipRight(
      observed,
      Effect.flatMap(options.retryDelay(attempt, error, deadline, options.maxAttempts), (delay) => {
        if (Option.isNone(delay)) return Effect.fail(error)
        return Effect.zipRight(
          closeAttempt(Exit.fail(error)),
          Effect.zipRight(
            Effect.sleep(delay.value),
            Effect.suspend(() => {
              attempt++
              waitStarts = true
              return begin
            })
          )
        )
      })
    )
  }

  const delivering = (chunk: Chunk.Chunk<ChatChunk> | undefined): Next => {
    if (chunk === undefined) return Effect.succeed(undefined)
    if (chunk.length === 0) return next
    delivered = true
    waitStarts = true
    let metadata: Record<string, string> | undefined
    for (const item of chunk) {
      if (span !== undefined) annotateChunk(span, item)
      if (item._tag === "finish" && item.metadata !== undefined) metadata = item.metadata
    }
    return limiter === undefined || metadata === undefined
      ? Effect.succeed(chunk)
      : Effect.as(limiter.observeMetadata(metadata), chunk)
  }

  // The next chunk for the caller; `undefined` at the end of the answer.
  const next: Next = Effect.suspend(() =>
    Effect.matchEffect(
      reads === undefined ? timed(openAndRead) : reads.ready?.() === true ? reads.next : timed(reads.next),
      { onFailure: failed, onSuccess: delivering }
    )
  )

  // Starts an attempt: a permit first, when there is a limiter, then the first read.
  const begin: Next = Effect.matchEffect(takePermit, { onFailure: failed, onSuccess: () => next })

  // The request's span is made only for a tracer that records it (see `internal/tracing.ts`).
  const start = Effect.withFiberRuntime<Chunk.Chunk<ChatChunk> | undefined, LanguageModel.ModelError>((fiber) => {
    clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    live = Object.getPrototypeOf(clock) === liveClock
    attempt = 1
    deadline = clock.unsafeCurrentTimeMillis() + policy.requestMs
    if (!recording(fiber)) return Effect.zipRight(options.onStart, begin)
    return Effect.flatMap(Effect.makeSpan("LanguageModel.stream", options.span), (made) => {
      span = made
      context = Context.add(fiber.currentContext, Tracer.ParentSpan, made)
      return Effect.mapInputContext(Effect.zipRight(options.onStart, begin), (_: Context.Context<never>) => context!)
    })
  })

  const endSpan = (exit: Exit.Exit<unknown, unknown>) =>
    Effect.withFiberRuntime<void>((fiber) => {
      if (span !== undefined && span.status._tag !== "Ended") {
        span.end(fiber.getFiberRef(FiberRef.currentTracerTimingEnabled) ? clock!.unsafeCurrentTimeNanos() : 0n, exit)
      }
      return Effect.void
    })

  const close = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const running = current
      const sleeping = watchdog
      current = undefined
      watchdog = undefined
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      return Effect.zipRight(
        running === undefined ? Effect.void : Fiber.interrupt(running),
        Effect.zipRight(
          closeAttempt(exit),
          Effect.zipRight(sleeping === undefined ? Effect.void : Fiber.interrupt(sleeping), endSpan(exit))
        )
      )
    })

  const nextInSpan = Effect.mapInputContext(next, (_: Context.Context<never>) => context!)
  let started = false
  return {
    next: Effect.suspend(() => {
      if (started) return context === undefined ? next : nextInSpan
      started = true
      return start
    }),
    close
  }
}

/**
 * Runs `f` on every chunk of one answer of `service`; see `LanguageModel.runForEachChunk`.
 *
 * @since 0.1.0
 */
export const runForEachChunk = LanguageModel.runForEachChunk

const spanAttributes = (providerId: string, model: string | undefined, messages: ReadonlyArray<Message>) => ({
  "gen_ai.provider.name": providerId,
  "gen_ai.request.model": model ?? "default",
  "gen_ai.request.message_count": messages.length
})

const usageAttributes = {
  inputTokens: "gen_ai.usage.input_tokens",
  outputTokens: "gen_ai.usage.output_tokens",
  totalTokens: "gen_ai.usage.total_tokens",
  cachedInputTokens: "gen_ai.usage.cached_input_tokens",
  reasoningTokens: "gen_ai.usage.reasoning_tokens"
} as const

const annotateUsage = (span: Tracer.Span, usage: Usage) => {
  for (const key of Object.keys(usageAttributes) as Array<keyof typeof usageAttributes>) {
    const value = usage[key]
    if (value !== undefined) span.attribute(usageAttributes[key], value)
  }
}

const annotateChunk = (span: Tracer.Span, chunk: ChatChunk) => {
  if (chunk._tag === "usage") annotateUsage(span, chunk.usage)
  else if (chunk._tag === "finish") {
    span.attribute("gen_ai.response.finish_reason", chunk.finishReason)
    if (chunk.model !== undefined) span.attribute("gen_ai.response.model", chunk.model)
  }
}

const annotateResponse = (response: LLMResponse, attempts: number) =>
  Effect.flatMap(Effect.option(Effect.currentSpan), (span) =>
    Effect.sync(() => {
      if (Option.isNone(span)) return
      span.value.attribute("gen_ai.attempts", attempts)
      span.value.attribute("gen_ai.response.finish_reason", response.finishReason)
      if (response.model !== undefined) span.value.attribute("gen_ai.response.model", response.model)
      annotateUsage(span.value, response.usage)
    }))

// Logging with annotations costs even when the level is off (the annotations are set on the
// fiber before the logger looks at the level), so the level is checked first.
const logRequest = (
  operation: "chat" | "stream",
  providerId: string,
  model: string | undefined,
  messages: ReadonlyArray<Message>,
  tools: ReadonlyArray<ToolDefinition> | undefined
) =>
  Effect.flatMap(FiberRef.get(FiberRef.currentMinimumLogLevel), (minimum) =>
    LogLevel.greaterThan(minimum, LogLevel.Debug)
      ? Effect.void
      : Effect.logDebug(`model ${operation} request`).pipe(
        Effect.annotateLogs({
          provider: providerId,
          model: model ?? "default",
          messageCount: messages.length,
          toolCount: tools?.length ?? 0
        })
      ))

const fmt = (ms: number): string => Duration.format(Duration.millis(ms))
