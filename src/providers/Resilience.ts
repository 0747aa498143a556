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
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { ProviderError } from "../domain/Errors.js"
import type { ChatChunk, LLMResponse, Message, ToolDefinition, Usage } from "../domain/Message.js"
import { withSpan } from "../internal/tracing.js"
import * as LanguageModel from "./LanguageModel.js"
import * as internalReads from "./internal/reads.js"
import type { TimeoutKind } from "./internal/readTimer.js"
import { type Policy, resilientReads } from "./internal/resilientReads.js"
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
        span: { attributes: spanAttributes(providerId, model, messages), captureStackTrace: false },
        annotate: annotateChunk
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
