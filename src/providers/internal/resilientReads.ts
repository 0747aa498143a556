/**
 * One resilient answer as reads (`Resilience.withResilience`'s `stream` is these reads as a
 * single channel stage). Each attempt takes a rate-limit permit (in a scope of its own, when
 * there is a limiter) and opens the provider's reads; retries, timeouts, the span and its
 * annotations, and the limiter's feedback all happen in plain effects between the caller and
 * those reads. Every stream combinator is a channel stage with a cost per request (a few of them
 * cost more than the HTTP exchange of a short answer), and this runs once per model call, so it
 * is written out by hand.
 *
 * Waits are bounded per read (see `ReadTimer`): the first by the first-chunk timeout (sending
 * the request included), every later one by the idle timeout, all of them by the request
 * deadline. Time the caller spends between reads counts against nothing. Only a chunk moves the
 * deadline: a read that decodes nothing (a keep-alive comment, a partial line, an event without
 * content) keeps the wait it was in, so a server that drips bytes cannot hold a request open.
 */
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type { ProviderError } from "../../domain/Errors.js"
import type { ChatChunk } from "../../domain/Message.js"
import { recording } from "../../internal/tracing.js"
import type { ModelError, Reads } from "../LanguageModel.js"
import type { RateLimiter } from "../RateLimiter.js"
import { type Next, ReadTimer, type TimeoutKind } from "./readTimer.js"

/** The resolved retry and timeout policy, in milliseconds. */
export interface Policy {
  readonly maxAttempts: number
  readonly baseMs: number
  readonly maxDelayMs: number
  readonly maxRetryAfterMs: number
  readonly firstChunkMs: number
  readonly idleMs: number
  readonly requestMs: number
}

/** What one resilient answer needs. */
export interface Options {
  readonly providerId: string
  readonly policy: Policy
  readonly limiter: RateLimiter | undefined
  readonly maxAttempts: number
  readonly open: () => Effect.Effect<Reads, ModelError>
  /** Whether to try again after `error`, and after how long; `None` hands it to the caller. */
  readonly retryDelay: (
    attempt: number,
    error: ModelError,
    deadline: number,
    maxAttempts: number
  ) => Effect.Effect<Option.Option<Duration.Duration>>
  readonly timeoutError: (kind: TimeoutKind) => ProviderError
  readonly onStart: Effect.Effect<void>
  /** The options of the request's span, `LanguageModel.stream`. */
  readonly span: Tracer.SpanOptions
  /** Adds what a chunk says (usage, finish reason) to the span. */
  readonly annotate: (span: Tracer.Span, chunk: ChatChunk) => void
}

/** One resilient answer as reads; nothing starts before the first `next`. */
export const resilientReads = (options: Options): Reads => new ResilientReads(options)

class ResilientReads implements Reads {
  private attempt = 0
  private deadline = 0
  /** A chunk reached the caller: no more retries, and later reads are bounded by the idle timeout. */
  private delivered = false
  /** The next read starts a new wait; otherwise it goes on with the deadline of the read before it. */
  private waitStarts = true
  /**
   * The request's span (what `Stream.withSpan` would make, without a stream stage of its own),
   * and the context that makes it the parent of everything the request runs.
   */
  private span: Tracer.Span | undefined
  private context: Context.Context<never> | undefined
  private timer: ReadTimer | undefined
  /** The current attempt: its permit's scope and its reads (opened by its first read). */
  private permit: Scope.CloseableScope | undefined
  private reads: Reads | undefined
  private started = false

  constructor(private readonly options: Options) {}

  readonly next: Next = Effect.suspend(() => {
    if (this.started) return this.context === undefined ? this.read : this.readInSpan
    this.started = true
    return this.start
  })

  readonly close = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() =>
      Effect.zipRight(
        this.timer === undefined ? Effect.void : this.timer.stop,
        Effect.zipRight(this.closeAttempt(exit), this.endSpan(exit))
      )
    )

  /** The next chunk for the caller; `undefined` at the end of the answer. */
  private readonly read: Next = Effect.suspend(() => {
    const reads = this.reads
    const read = reads === undefined
      ? this.timed(this.openAndRead)
      : reads.ready?.() === true
      ? reads.next
      : this.timed(reads.next)
    return Effect.matchEffect(read, { onFailure: this.failed, onSuccess: this.delivering })
  })

  private readonly readInSpan: Next = Effect.mapInputContext(this.read, (_: Context.Context<never>) => this.context!)

  /** Bounds one read; a read that starts a new wait sets its deadline first. */
  private timed(read: Next): Next {
    const timer = this.timer!
    if (this.waitStarts) {
      this.waitStarts = false
      const { policy } = this.options
      const phaseMs = this.delivered ? policy.idleMs : policy.firstChunkMs
      const remaining = Math.max(0, this.deadline - timer.clock.unsafeCurrentTimeMillis())
      timer.startWait(remaining < phaseMs ? "request" : this.delivered ? "idle" : "first", Math.min(phaseMs, remaining))
    }
    return timer.timed(read)
  }

  /** The attempt's first read also opens it. */
  private readonly openAndRead: Next = Effect.flatMap(Effect.suspend(() => this.options.open()), (opened) => {
    this.reads = opened
    return opened.next
  })

  private readonly takePermit: Effect.Effect<void, ModelError> = Effect.suspend(() => {
    const limiter = this.options.limiter
    if (limiter === undefined) return Effect.void
    return Effect.flatMap(Scope.make(), (scope) => {
      this.permit = scope
      const remaining = Math.max(0, this.deadline - this.timer!.clock.unsafeCurrentTimeMillis())
      return Scope.extend(limiter.acquire(this.options.providerId, Duration.millis(remaining)), scope)
    })
  })

  /** Starts an attempt: a permit first, when there is a limiter, then the first read. */
  private readonly begin: Next = Effect.matchEffect(this.takePermit, { onFailure: (error) => this.failed(error), onSuccess: () => this.read })

  private closeAttempt(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const opened = this.reads
    const scope = this.permit
    this.reads = undefined
    this.permit = undefined
    const closing = opened === undefined ? Effect.void : opened.close(exit)
    return scope === undefined ? closing : Effect.zipRight(closing, Scope.close(scope, exit))
  }

  private readonly failed = (error: ModelError): Next => {
    const { limiter } = this.options
    const observed = limiter !== undefined && error._tag === "ProviderError" ? limiter.observeError(error) : Effect.void
    if (this.delivered) return Effect.zipRight(observed, Effect.fail(error))
    return Effect.zipRight(
      observed,
      Effect.flatMap(this.options.retryDelay(this.attempt, error, this.deadline, this.options.maxAttempts), (delay) =>
        Option.isNone(delay)
          ? Effect.fail(error)
          : Effect.zipRight(
            Effect.suspend(() => this.closeAttempt(Exit.fail(error))),
            Effect.zipRight(Effect.sleep(delay.value), Effect.suspend(() => this.retry()))
          ))
    )
  }

  private retry(): Next {
    this.attempt++
    this.waitStarts = true
    return this.begin
  }

  private readonly delivering = (chunk: Chunk.Chunk<ChatChunk> | undefined): Next => {
    if (chunk === undefined) return Effect.succeed(undefined)
    if (chunk.length === 0) return this.read
    this.delivered = true
    this.waitStarts = true
    let metadata: Record<string, string> | undefined
    for (const item of chunk) {
      if (this.span !== undefined) this.options.annotate(this.span, item)
      if (item._tag === "finish" && item.metadata !== undefined) metadata = item.metadata
    }
    const { limiter } = this.options
    return limiter === undefined || metadata === undefined ? Effect.succeed(chunk) : Effect.as(limiter.observeMetadata(metadata), chunk)
  }

  /** The request's span is made only for a tracer that records it (see `internal/tracing.ts`). */
  private readonly start: Next = Effect.withFiberRuntime((fiber) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    this.timer = new ReadTimer(clock, this.options.timeoutError)
    this.attempt = 1
    this.deadline = clock.unsafeCurrentTimeMillis() + this.options.policy.requestMs
    const body = Effect.zipRight(this.options.onStart, this.begin)
    if (!recording(fiber)) return body
    return Effect.flatMap(Effect.makeSpan("LanguageModel.stream", this.options.span), (made) => {
      this.span = made
      this.context = Context.add(fiber.currentContext, Tracer.ParentSpan, made)
      return Effect.mapInputContext(body, (_: Context.Context<never>) => this.context!)
    })
  })

  private endSpan(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.withFiberRuntime<void>((fiber) => {
      const span = this.span
      if (span !== undefined && span.status._tag !== "Ended") {
        span.end(fiber.getFiberRef(FiberRef.currentTracerTimingEnabled) ? this.timer!.clock.unsafeCurrentTimeNanos() : 0n, exit)
      }
      return Effect.void
    })
  }
}
