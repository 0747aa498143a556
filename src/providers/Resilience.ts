/**
 * The kernel's one retry loop and its bounded waits, applied to any provider from outside so
 * providers stay thin (wire format in, domain out). `withResilience` retries only retryable
 * `ProviderError`s, with exponential backoff and jitter or the server's `Retry-After`, and never
 * retries a stream once a chunk has reached the caller. Every wait is bounded: until the first
 * chunk, between chunks and for the whole request (retries, backoff and rate-limit queueing
 * included). Calls get a span (`LanguageModel.chat` / `LanguageModel.stream`) with the provider
 * id, model and token usage, and a debug log with the model and message count — never message
 * text or a key.
 *
 * @since 0.1.0
 */
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { ProviderError } from "../domain/Errors.js"
import type { ChatChunk, LLMResponse, Message, ToolDefinition, Usage } from "../domain/Message.js"
import type * as LanguageModel from "./LanguageModel.js"
import * as RateLimiter from "./RateLimiter.js"

/**
 * The policy's knobs; every field is optional. Defaults: 3 attempts, 500 ms base delay doubling
 * up to 20 s (each delay scaled by a random factor in [0.5, 1]), a server's `Retry-After`
 * honoured up to 60 s (a longer one is not waited for: the error goes to the caller, who may
 * route elsewhere), 30 s until the first chunk, 60 s between chunks and 10 min for the whole
 * request. `rateLimiter` makes every attempt take a permit first; `model` names the default
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
    }).pipe(Effect.withSpan("LanguageModel.chat", { attributes: spanAttributes(providerId, model, messages) }))
  }

  const stream: LanguageModel.Service["stream"] = (messages, tools, chatOptions) => {
    const model = chatOptions?.model ?? options.model
    return Stream.unwrap(Effect.gen(function*() {
      yield* logRequest("stream", providerId, model, messages, tools)
      const span = yield* Effect.option(Effect.currentSpan)
      const deadline = (yield* Clock.currentTimeMillis) + policy.requestMs
      let delivered = false
      const attemptFrom = (attempt: number): Stream.Stream<ChatChunk, LanguageModel.ModelError> => {
        const once = Stream.unwrapScoped(Effect.as(
          acquirePermit(deadline),
          bounded(inner.stream(messages, tools, chatOptions), policy, deadline, timeoutError)
        ))
        const observed = limiter === undefined ? once : RateLimiter.observeStream(once, limiter)
        return Stream.catchAll(observed, (error) =>
          delivered
            ? Stream.fail(error)
            : Stream.unwrap(Effect.map(
              retryDelay(attempt, error, deadline, attemptsFor(chatOptions)),
              Option.match({
                onNone: () => Stream.fail(error),
                onSome: (delay) => Stream.unwrap(Effect.as(Effect.sleep(delay), attemptFrom(attempt + 1)))
              })
            )))
      }
      return Stream.mapChunks(attemptFrom(1), (chunks) => {
        if (chunks.length > 0) delivered = true
        if (Option.isSome(span)) for (const chunk of chunks) annotateChunk(span.value, chunk)
        return chunks
      })
    })).pipe(Stream.withSpan("LanguageModel.stream", { attributes: spanAttributes(providerId, model, messages) }))
  }

  return { id: inner.id, name: inner.name, isAvailable: inner.isAvailable, chat, stream }
}

type TimeoutKind = "first" | "idle" | "request"

/**
 * Bounds a stream's waits: the first pull by the first-chunk timeout, every later pull by the
 * idle timeout, and all of them by the request deadline. Racing every pull against a timer
 * cost more than the whole SSE decoding (measured: about 0.8 ms a pull), so one watchdog fiber
 * per stream sleeps until the current pull is due and interrupts it if it is still running;
 * a pull only forks itself (so it can be interrupted) and moves the due time forward.
 */
const bounded = (
  stream: Stream.Stream<ChatChunk, LanguageModel.ModelError>,
  policy: Policy,
  deadline: number,
  timeoutError: (kind: TimeoutKind) => ProviderError
): Stream.Stream<ChatChunk, LanguageModel.ModelError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const pull = yield* Stream.toPull(stream)
    const scope = yield* Effect.scope
    type Pull = Fiber.RuntimeFiber<Chunk.Chunk<ChatChunk>, Option.Option<LanguageModel.ModelError>>
    let started = false
    let due = 0
    let kind: TimeoutKind = "first"
    let current: Pull | undefined
    let fired: { readonly pull: Pull; readonly error: ProviderError } | undefined
    // When the watchdog wakes next; Infinity when none is running.
    let armedUntil = Infinity
    let watchdog: Fiber.RuntimeFiber<void> | undefined

    const watch: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (current === undefined || now >= due) {
        armedUntil = Infinity
        watchdog = undefined
        if (current === undefined) return Effect.void
        fired = { pull: current, error: timeoutError(kind) }
        return Fiber.interrupt(current)
      }
      armedUntil = due
      return Effect.zipRight(Effect.sleep(Duration.millis(due - now)), watch)
    })
    const rearm = Effect.suspend(() => {
      const previous = watchdog
      armedUntil = due
      return Effect.flatMap(Effect.forkIn(watch, scope), (fiber) => {
        watchdog = fiber
        return previous === undefined ? Effect.void : Fiber.interruptFork(previous)
      })
    })
    const next = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const phaseMs = started ? policy.idleMs : policy.firstChunkMs
      const remaining = Math.max(0, deadline - now)
      kind = remaining < phaseMs ? "request" : started ? "idle" : "first"
      due = now + Math.min(phaseMs, remaining)
      return Effect.flatMap(Effect.fork(pull), (fiber) => {
        current = fiber
        return Effect.zipRight(
          due < armedUntil ? rearm : Effect.void,
          Effect.flatMap(Fiber.await(fiber), (exit) => {
            current = undefined
            const timedOut = fired !== undefined && fired.pull === fiber ? fired.error : undefined
            fired = undefined
            if (Exit.isSuccess(exit)) {
              if (exit.value.length > 0) started = true
              return Effect.succeed(exit.value)
            }
            return timedOut !== undefined ? Effect.fail(Option.some<LanguageModel.ModelError>(timedOut)) : Effect.failCause(exit.cause)
          })
        )
      })
    })
    return Stream.repeatEffectChunkOption(next)
  }))

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

const logRequest = (
  operation: "chat" | "stream",
  providerId: string,
  model: string | undefined,
  messages: ReadonlyArray<Message>,
  tools: ReadonlyArray<ToolDefinition> | undefined
) =>
  Effect.logDebug(`model ${operation} request`).pipe(
    Effect.annotateLogs({
      provider: providerId,
      model: model ?? "default",
      messageCount: messages.length,
      toolCount: tools?.length ?? 0
    })
  )

const fmt = (ms: number): string => Duration.format(Duration.millis(ms))
