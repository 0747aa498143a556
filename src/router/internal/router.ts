/**
 * The one router behind both forms of `TierRouter` (over plugins and config, or over Layers the
 * user holds): per request, classify → tier → candidates → the first candidate that is healthy,
 * available and answers, failing over while nothing has reached the caller; passive health and
 * cooldowns; the `route` chunk with the decision. What differs between the forms — where the
 * providers come from, how tiers map to them, what changes between requests — is a `Source`.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import type * as LayerMap from "effect/LayerMap"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"
import { type ProviderError, RoutingError } from "../../domain/Errors.js"
import type { ChatChunk, Message, QueryTier, RouteAttempt, ToolDefinition } from "../../domain/Message.js"
import { makeSpan } from "../../internal/tracing.js"
import * as LanguageModel from "../../providers/LanguageModel.js"
import type { Service as Classifier } from "../QueryClassifier.js"
import { Availability } from "./availability.js"
import { HealthBook } from "./health.js"

/** Forgets what the router knows of providers: their instance, health and availability. */
export interface Invalidator {
  readonly one: (key: string) => Effect.Effect<void>
  readonly all: Effect.Effect<void>
}

/** Where a router's providers come from and how tiers map to them. */
export interface Source {
  /** Provider instances by key, built on first use. */
  readonly providers: LayerMap.LayerMap<string, LanguageModel.LanguageModel, unknown>
  readonly classifier: Classifier
  /** The keys to try for a tier, in order. */
  readonly candidates: (tier: QueryTier) => Effect.Effect<ReadonlyArray<string>>
  /** Every key some tier maps to (for `isAvailable`). */
  readonly mapped: Effect.Effect<ReadonlyArray<string>>
  /** Run at the start of every request: applies what changed since the last one. */
  readonly refresh: (invalidate: Invalidator) => Effect.Effect<void>
  /** What the route calls a provider (default: its key). */
  readonly label?: (key: string) => string
  /** Why a provider could not be built, for the route's reasons; `undefined` for a model error. */
  readonly buildFailure: (error: unknown) => string | undefined
  readonly healthTtlMs: number
  readonly cooldownMs: () => number
}

/** Errors before the first chunk that send the request on to the next provider. */
const movesOn = (error: ProviderError) => error.retryable || error.reason === "Unauthorized" || error.reason === "NotFound"

/** Failures that start a cooldown at once, whatever the recent calls say. */
const isSevere = (error: ProviderError) => error.reason === "Unauthorized" || error.reason === "NotFound"

const isModelError = (error: unknown): error is LanguageModel.ModelError =>
  Predicate.isTagged(error, "ProviderError") || Predicate.isTagged(error, "RoutingError")

/** The routed model over `source`, and what forgets its providers. */
export const make = (source: Source): Effect.Effect<{ readonly service: LanguageModel.Service; readonly invalidate: Invalidator }> =>
  Effect.sync(() => {
    const health = new HealthBook(() => ({ cooldownMs: source.cooldownMs(), windowMs: 60_000, minCalls: 3 }))
    const availability = new Availability(source.healthTtlMs)
    const known = new Set<string>()
    const one = (key: string) =>
      Effect.suspend(() => {
        availability.forget(key)
        health.reset(key)
        return source.providers.invalidate(key)
      })
    const invalidate: Invalidator = { one, all: Effect.suspend(() => Effect.forEach([...known], one, { discard: true })) }
    const refresh = source.refresh(invalidate)
    const now = Effect.clockWith((clock) => clock.currentTimeMillis)
    const name = source.label ?? ((key: string) => key)
    const serviceOf = (key: string) =>
      Effect.map(source.providers.runtime(key), (runtime) => Context.get(runtime.context, LanguageModel.LanguageModel))

    // Chooses a provider and reads the first chunk of its answer, moving on to the next
    // candidate while nothing has reached the caller. Everything the chosen attempt holds lives
    // in `outer`, which the returned reads close.
    const select = (
      outer: Scope.CloseableScope,
      messages: ReadonlyArray<Message>,
      tools: ReadonlyArray<ToolDefinition> | undefined,
      chatOptions: LanguageModel.ChatOptions
    ): Effect.Effect<LanguageModel.Reads, LanguageModel.ModelError> =>
      Effect.gen(function*() {
        yield* refresh
        const forced = chatOptions.tier
        const decision = forced !== undefined
          ? { tier: forced, score: 1, confidence: 1, signals: ["forced"] as ReadonlyArray<string> }
          : yield* source.classifier.classify(messages)
        const candidates = yield* source.candidates(decision.tier)
        const { tier: _tier, ...providerOptions } = chatOptions
        const attempts: Array<RouteAttempt> = []
        for (const key of candidates) {
          known.add(key)
          const admission = health.admit(key, yield* now)
          if (admission === "cooldown") {
            attempts.push({ provider: name(key), reason: "in cooldown after recent failures" })
            continue
          }
          const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
          if (admission === "probe") {
            // A probe that ends undecided (the caller stopped reading or was interrupted) must
            // free the slot, or the provider would stay skipped for good.
            yield* Scope.addFinalizer(scope, Effect.sync(() => health.releaseProbe(key)))
          }
          const last = candidates.indexOf(key) === candidates.length - 1
          const attempt = yield* Effect.gen(function*() {
            const service = yield* serviceOf(key)
            if (admission === "admit" && !(yield* availability.check(key, service.isAvailable))) return undefined
            // While other providers remain, one attempt: failing over beats retrying a dead one.
            // Opened and registered with the attempt's scope in one step, so an interruption in
            // between cannot leave the answer open.
            const reads = yield* Effect.acquireRelease(
              LanguageModel.open(service, messages, tools, last ? providerOptions : { ...providerOptions, maxAttempts: 1 }),
              (reads, exit) => reads.close(exit)
            )
            return { first: yield* reads.next, reads }
          }).pipe(Scope.extend(scope), Effect.either)
          if (attempt._tag === "Right" && attempt.right !== undefined) {
            const { first, reads } = attempt.right
            const routeChunk: ChatChunk = {
              _tag: "route",
              tier: decision.tier,
              provider: name(key),
              score: decision.score,
              confidence: decision.confidence,
              signals: decision.signals,
              forced: forced !== undefined,
              fallbacksTried: attempts
            }
            return routedReads(key, outer, reads, Chunk.prepend(first ?? Chunk.empty(), routeChunk), first === undefined)
          }
          const error = attempt._tag === "Left" ? attempt.left : undefined
          if (Predicate.isTagged(error, "ProviderError")) {
            // Recorded before the scope closes, so a probe is decided here and not released.
            health.record(key, yield* now, false, isSevere(error as ProviderError))
          }
          yield* Scope.close(scope, Exit.void)
          if (error === undefined) {
            attempts.push({ provider: name(key), reason: "unavailable (health check failed)" })
            continue
          }
          if (!isModelError(error)) {
            // A provider that could not be built is not cached: it may be fixed any moment.
            yield* source.providers.invalidate(key)
            attempts.push({ provider: name(key), reason: `not loaded: ${source.buildFailure(error) ?? String(error)}` })
            continue
          }
          if (error._tag === "RoutingError" || !movesOn(error)) return yield* Effect.fail(error)
          attempts.push({ provider: name(key), reason: `${error.reason}: ${error.message}` })
        }
        return yield* Effect.fail(noProvider(decision.tier, candidates, attempts))
      })

    // The chosen provider's answer: the route chunk with its first chunk, then the rest as it
    // comes. Its end or failure is recorded in the provider's health; a caller that stops
    // reading early records nothing.
    const routedReads = (
      key: string,
      outer: Scope.CloseableScope,
      reads: LanguageModel.Reads,
      first: Chunk.Chunk<ChatChunk>,
      over: boolean
    ): LanguageModel.Reads => {
      let pending: Chunk.Chunk<ChatChunk> | undefined = first
      let finished = false
      const ended = (chunk: Chunk.Chunk<ChatChunk> | undefined) => {
        if (chunk !== undefined) return Effect.succeed(chunk)
        finished = true
        return Effect.flatMap(now, (at) => Effect.sync(() => (health.record(key, at, true), undefined)))
      }
      const failed = (error: LanguageModel.ModelError) =>
        Effect.flatMap(now, (at) =>
          Effect.zipRight(
            Effect.sync(() => health.record(key, at, false, error._tag === "ProviderError" && isSevere(error))),
            Effect.fail(error)
          ))
      return {
        next: Effect.suspend(() => {
          const chunk = pending
          if (chunk !== undefined) {
            pending = undefined
            return Effect.succeed(chunk)
          }
          if (finished) return Effect.succeed(undefined)
          // An answer that ended with its first read is not read again.
          return over ? ended(undefined) : Effect.matchEffect(reads.next, { onFailure: failed, onSuccess: ended })
        }),
        close: (exit) => Scope.close(outer, exit),
        ready: () => pending !== undefined || reads.ready?.() === true
      }
    }

    // One routed answer as reads, in a span of its own that ends when the reads are closed (made
    // only for a tracer that records it, see `internal/tracing.ts`).
    const openRoute: LanguageModel.OpenReads = (messages, tools, chatOptions = {}) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(makeSpan("TierRouter.stream", { captureStackTrace: false }), (span) =>
          Effect.flatMap(Scope.make(), (outer) => {
            const end = (exit: Exit.Exit<unknown, unknown>) =>
              Effect.flatMap(Clock.currentTimeNanos, (at) => Effect.sync(() => span!.end(at, exit)))
            const selected = select(outer, messages, tools, chatOptions)
            return Effect.zipRight(
              span === undefined ? Effect.void : Scope.addFinalizerExit(outer, end),
              Effect.onError(
                restore(span === undefined ? selected : Effect.withParentSpan(selected, span)),
                (cause) => Scope.close(outer, Exit.failCause(cause))
              )
            )
          }))
      )

    const isAvailable = Effect.gen(function*() {
      yield* refresh
      for (const key of yield* source.mapped) {
        const available = yield* Effect.scoped(Effect.flatMap(serviceOf(key), (service) => availability.check(key, service.isAvailable)))
          .pipe(Effect.orElseSucceed(() => false))
        if (available) return true
      }
      return false
    })

    return {
      service: LanguageModel.make({ id: "tier-router", name: "Tier router", open: openRoute, isAvailable }),
      invalidate
    }
  })

const noProvider = (tier: QueryTier, candidates: ReadonlyArray<string>, attempts: ReadonlyArray<RouteAttempt>) =>
  new RoutingError({
    reason: "NoProviderAvailable",
    tier,
    attempts,
    message: candidates.length === 0
      ? `No provider is mapped for tier "${tier}". Set routing.tierMapping.${tier} or pair a provider (scripts/pair.ts <provider>).`
      : `No provider could serve tier "${tier}": ` +
        attempts.map((attempt) => `${attempt.provider} (${attempt.reason})`).join("; ") +
        `. Pair a provider (scripts/pair.ts <provider>) or check the ones listed.`
  })
