/**
 * Tier-based routing as a `LanguageModel`: each request is classified into a tier (simple,
 * moderate, complex, reasoning), the tier is mapped to a provider through
 * `routing.tierMapping`, and the provider is taken from a `LayerMap` of provider Layers built
 * by the `PluginRegistry`. Code that needs a model never knows it is routed; swapping
 * `TierRouter.layer` for one provider's Layer (or a scripted test model) is the composable
 * selection.
 *
 * @example
 * ```ts
 * const ModelLive = TierRouter.layer.pipe(
 *   Layer.provide(PluginRegistry.layer({ builtins })),
 *   Layer.provide(QueryClassifier.layerConfig)
 * )
 * ```
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as LayerMap from "effect/LayerMap"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type ConfigChange, ConfigManager } from "../config/ConfigManager.js"
import { type ProviderError, RoutingError } from "../domain/Errors.js"
import type { ChatChunk, Message, QueryTier, RouteAttempt, ToolDefinition } from "../domain/Message.js"
import { makeSpan } from "../internal/tracing.js"
import { PluginRegistry } from "../plugins/ProviderPlugin.js"
import * as LanguageModel from "../providers/LanguageModel.js"
import * as Resilience from "../providers/Resilience.js"
import { SecretsManager } from "../secrets/SecretsManager.js"
import { Availability } from "./internal/availability.js"
import { HealthBook } from "./internal/health.js"
import { watchRoutingConfig } from "./internal/mappingCheck.js"
import { QueryClassifier } from "./QueryClassifier.js"

/** The tiers, cheapest first. @since 0.1.0 */
export const tiers: ReadonlyArray<QueryTier> = ["simple", "moderate", "complex", "reasoning"]

/** @since 0.1.0 */
export interface RouterOptions {
  /** How long `isAvailable` answers are trusted (default: `routing.healthTtlMs`, else 30 s). */
  readonly healthTtl?: Duration.DurationInput
  /** How long a failing provider is skipped (default: `routing.cooldownMs`, else 30 s). */
  readonly cooldown?: Duration.DurationInput
  /** How long an unused provider instance is kept (default 5 minutes). */
  readonly idleTimeToLive?: Duration.DurationInput
}

const numberAt = (config: ConfigManager["Type"], key: string, fallback: number) =>
  Effect.map(config.get(key), (value) => Option.getOrElse(Option.filter(value, Predicate.isNumber), () => fallback))

/**
 * The provider ids to try for a tier: its mapped provider, then `routing.fallbacks.<tier>` when
 * set, else the other mapped providers ordered by tier distance (the higher tier first at equal
 * distance).
 *
 * @since 0.1.0
 */
export const candidatesFor = (
  tier: QueryTier,
  mapping: Partial<Record<QueryTier, string>>,
  fallbacks: ReadonlyArray<string> | undefined
): ReadonlyArray<string> => {
  const index = tiers.indexOf(tier)
  const others = fallbacks ?? [...tiers]
    .filter((other) => other !== tier)
    .sort((a, b) => {
      const distance = Math.abs(tiers.indexOf(a) - index) - Math.abs(tiers.indexOf(b) - index)
      return distance !== 0 ? distance : tiers.indexOf(b) - tiers.indexOf(a)
    })
    .flatMap((other) => mapping[other] !== undefined ? [mapping[other]!] : [])
  const primary = mapping[tier]
  return [...new Set([...(primary !== undefined ? [primary] : []), ...others])]
}

/** Errors before the first chunk that send the request on to the next provider. */
const movesOn = (error: ProviderError) => error.retryable || error.reason === "Unauthorized" || error.reason === "NotFound"

/** Failures that start a cooldown at once, whatever the recent calls say. */
const isSevere = (error: ProviderError) => error.reason === "Unauthorized" || error.reason === "NotFound"

/**
 * Builds the routed `LanguageModel`.
 *
 * @since 0.1.0
 */
export const make = (options: RouterOptions = {}) =>
  Effect.gen(function*() {
    const registry = yield* PluginRegistry
    const classifier = yield* QueryClassifier
    const config = yield* ConfigManager
    const secrets = yield* SecretsManager
    const providers = yield* LayerMap.make(
      (id: string) => Layer.scoped(LanguageModel.LanguageModel, registry.createProvider(id)),
      { idleTimeToLive: options.idleTimeToLive ?? "5 minutes" }
    )
    const healthTtl = options.healthTtl !== undefined
      ? Duration.toMillis(options.healthTtl)
      : yield* numberAt(config, "routing.healthTtlMs", 30_000)
    let cooldownMs = options.cooldown !== undefined
      ? Duration.toMillis(options.cooldown)
      : yield* numberAt(config, "routing.cooldownMs", 30_000)
    const health = new HealthBook(() => ({ cooldownMs, windowMs: 60_000, minCalls: 3 }))
    const availability = new Availability(healthTtl)
    const known = new Set<string>()

    const invalidate = (id: string) =>
      Effect.suspend(() => {
        availability.forget(id)
        health.reset(id)
        return providers.invalidate(id)
      })
    const invalidateAll = Effect.suspend(() => Effect.forEach([...known], invalidate, { discard: true }))

    // Pairing, unpairing and edits take effect on the next request: rebuild what they touch.
    const applyChange = (change: ConfigChange) => {
      const [head, id] = change.key.split(".")
      if (head === "providers" && id !== undefined) return invalidate(id)
      if (head === "providers" || head === "plugins") return invalidateAll
      if (change.key === "routing.cooldownMs" || change.key === "routing") {
        return Effect.map(config.get("routing.cooldownMs"), (value) => {
          if (options.cooldown === undefined && Option.isSome(value) && Predicate.isNumber(value.value)) {
            cooldownMs = value.value
          }
        })
      }
      return Effect.void
    }
    // Subscribed now, drained at the start of every request: a change made before a request
    // is always applied to it, whatever the fibers' scheduling.
    const configChanges = yield* config.subscribe
    const takeChanges = Effect.suspend(() => {
      // Nearly always none: then no queue operation at all.
      const size = configChanges.unsafeSize()
      return Option.isSome(size) && size.value === 0 ? Effect.succeed(Chunk.empty<ConfigChange>()) : Queue.takeAll(configChanges)
    })
    const applyPendingChanges = Effect.flatMap(takeChanges, (changes) => {
      if (Chunk.isEmpty(changes)) return Effect.void
      // The tier mapping and fallbacks are read again after any change.
      mappingCache = undefined
      fallbacksCache.clear()
      return Effect.forEach(changes, applyChange, { discard: true })
    })
    // A tier mapped to a provider no enabled plugin provides is said at once, not per request.
    yield* watchRoutingConfig(config, registry)
    yield* secrets.changes.pipe(
      Stream.runForEach((change) => {
        const [head, id] = change.key.split(".")
        return head === "provider" && id !== undefined ? invalidate(id) : invalidateAll
      }),
      Effect.forkScoped
    )

    // Read from the config once, then kept until the config changes (see applyPendingChanges).
    let mappingCache: Partial<Record<QueryTier, string>> | undefined
    const fallbacksCache = new Map<QueryTier, ReadonlyArray<string> | undefined>()
    const readMapping = Effect.suspend(() =>
      mappingCache !== undefined ? Effect.succeed(mappingCache) : Effect.gen(function*() {
        const mapping: Partial<Record<QueryTier, string>> = {}
        for (const tier of tiers) {
          const value = yield* config.get(`routing.tierMapping.${tier}`)
          if (Option.isSome(value) && Predicate.isString(value.value)) mapping[tier] = value.value
        }
        mappingCache = mapping
        return mapping
      })
    )
    const readFallbacks = (tier: QueryTier) =>
      Effect.suspend(() =>
        fallbacksCache.has(tier)
          ? Effect.succeed(fallbacksCache.get(tier))
          : Effect.map(config.get(`routing.fallbacks.${tier}`), (value) => {
            const fallbacks = Option.getOrUndefined(Option.filter(value, (list): list is ReadonlyArray<string> =>
              Array.isArray(list) && list.every(Predicate.isString)))
            fallbacksCache.set(tier, fallbacks)
            return fallbacks
          })
      )

    const isAvailable = (id: string, service: LanguageModel.Service): Effect.Effect<boolean> =>
      availability.check(id, service.isAvailable)

    const now = Effect.clockWith((clock) => clock.currentTimeMillis)

    // Chooses a provider and reads the first chunk of its answer, moving on to the next
    // candidate while nothing has reached the caller. Everything the chosen attempt holds lives
    // in `outer`, which the returned reads close.
    const select = (
      outer: Scope.CloseableScope,
      messages: ReadonlyArray<Message>,
      tools: ReadonlyArray<ToolDefinition> | undefined,
      chatOptions: LanguageModel.ChatOptions
    ): Effect.Effect<Resilience.Reads, LanguageModel.ModelError> =>
      Effect.gen(function*() {
        yield* applyPendingChanges
        const forced = chatOptions.tier
        const decision = forced !== undefined
          ? { tier: forced, score: 1, confidence: 1, signals: ["forced"] as ReadonlyArray<string> }
          : yield* classifier.classify(messages)
        const candidates = candidatesFor(decision.tier, yield* readMapping, yield* readFallbacks(decision.tier))
        const { tier: _tier, ...providerOptions } = chatOptions
        const attempts: Array<RouteAttempt> = []
        for (const id of candidates) {
          known.add(id)
          const admission = health.admit(id, yield* now)
          if (admission === "cooldown") {
            attempts.push({ provider: id, reason: "in cooldown after recent failures" })
            continue
          }
          const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
          if (admission === "probe") {
            // A probe that ends undecided (the caller stopped reading or was interrupted) must
            // free the slot, or the provider would stay skipped for good.
            yield* Scope.addFinalizer(scope, Effect.sync(() => health.releaseProbe(id)))
          }
          const attempt = yield* Effect.gen(function*() {
            const runtime = yield* providers.runtime(id)
            const service = Context.get(runtime.context, LanguageModel.LanguageModel)
            if (admission === "admit" && !(yield* isAvailable(id, service))) {
              return undefined
            }
            // While other providers remain, one attempt: failing over beats retrying a dead one.
            const last = candidates.indexOf(id) === candidates.length - 1
            // Opened and registered with the attempt's scope in one step, so an interruption
            // in between cannot leave the answer open.
            const reads = yield* Effect.acquireRelease(
              Resilience.openReads(service, messages, tools, last ? providerOptions : { ...providerOptions, maxAttempts: 1 }),
              (reads, exit) => reads.close(exit)
            )
            return { first: yield* reads.next, reads }
          }).pipe(Scope.extend(scope), Effect.either)
          if (attempt._tag === "Right" && attempt.right !== undefined) {
            const routeChunk: ChatChunk = {
              _tag: "route",
              tier: decision.tier,
              provider: id,
              score: decision.score,
              confidence: decision.confidence,
              signals: decision.signals,
              forced: forced !== undefined,
              fallbacksTried: attempts
            }
            const { first, reads } = attempt.right
            return routedReads(id, outer, reads, Chunk.prepend(first ?? Chunk.empty(), routeChunk), first === undefined)
          }
          if (attempt._tag === "Left" && attempt.left._tag === "ProviderError") {
            // Recorded before the scope closes, so a probe is decided here and not released.
            health.record(id, yield* now, false, isSevere(attempt.left))
          }
          yield* Scope.close(scope, Exit.void)
          if (attempt._tag === "Right") {
            attempts.push({ provider: id, reason: "unavailable (health check failed)" })
            continue
          }
          const error = attempt.left
          if (error._tag === "PluginError") {
            // A provider that could not be built is not cached: it may be enabled any moment.
            yield* providers.invalidate(id)
            attempts.push({ provider: id, reason: `not loaded: ${error.message}` })
            continue
          }
          if (error._tag === "RoutingError") return yield* Effect.fail(error)
          if (!movesOn(error)) return yield* Effect.fail(error)
          attempts.push({ provider: id, reason: `${error.reason}: ${error.message}` })
        }
        return yield* Effect.fail(
          new RoutingError({
            reason: "NoProviderAvailable",
            tier: decision.tier,
            attempts,
            message: candidates.length === 0
              ? `No provider is mapped for tier "${decision.tier}". Set routing.tierMapping.${decision.tier} or pair a provider (scripts/pair.ts <provider>).`
              : `No provider could serve tier "${decision.tier}": ` +
                attempts.map((attempt) => `${attempt.provider} (${attempt.reason})`).join("; ") +
                `. Pair a provider (scripts/pair.ts <provider>) or check the ones listed.`
          })
        )
      })

    // The chosen provider's answer: the route chunk with its first chunk, then the rest as it
    // comes. Its end or failure is recorded in the provider's health; a caller that stops
    // reading early records nothing.
    const routedReads = (
      id: string,
      outer: Scope.CloseableScope,
      reads: Resilience.Reads,
      first: Chunk.Chunk<ChatChunk>,
      over: boolean
    ): Resilience.Reads => {
      let pending: Chunk.Chunk<ChatChunk> | undefined = first
      let finished = false
      const ended = (chunk: Chunk.Chunk<ChatChunk> | undefined) => {
        if (chunk !== undefined) return Effect.succeed(chunk)
        finished = true
        return Effect.flatMap(now, (at) =>
          Effect.sync(() => {
            health.record(id, at, true)
            return undefined
          }))
      }
      const failed = (error: LanguageModel.ModelError) =>
        Effect.flatMap(now, (at) =>
          Effect.zipRight(
            Effect.sync(() => health.record(id, at, false, error._tag === "ProviderError" && isSevere(error))),
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
    const openRoute: Resilience.OpenPull = (messages, tools, chatOptions = {}) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(makeSpan("TierRouter.stream", { captureStackTrace: false }), (span) => {
          const end = (exit: Exit.Exit<unknown, unknown>) =>
            Effect.flatMap(Clock.currentTimeNanos, (at) => Effect.sync(() => span!.end(at, exit)))
          return Effect.flatMap(Scope.make(), (outer) =>
            Effect.zipRight(
              span === undefined ? Effect.void : Scope.addFinalizerExit(outer, end),
              Effect.onError(
                restore(
                  span === undefined
                    ? select(outer, messages, tools, chatOptions)
                    : Effect.withParentSpan(select(outer, messages, tools, chatOptions), span)
                ),
                (cause) => Scope.close(outer, Exit.failCause(cause))
              )
            ))
        })
      )

    const service: LanguageModel.Service = LanguageModel.make({
      id: "tier-router",
      name: "Tier router",
      stream: (messages, tools, chatOptions) => Resilience.readsStream(openRoute(messages, tools, chatOptions)),
      isAvailable: Effect.gen(function*() {
        yield* applyPendingChanges
        const mapping = yield* readMapping
        for (const id of new Set(Object.values(mapping))) {
          const available = yield* Effect.scoped(
            Effect.flatMap(providers.runtime(id), (runtime) =>
              isAvailable(id, Context.get(runtime.context, LanguageModel.LanguageModel)))
          ).pipe(Effect.orElseSucceed(() => false))
          if (available) return true
        }
        return false
      })
    })
    return Resilience.withPullSource(service, openRoute)
  })

/**
 * The routed `LanguageModel` as a Layer. When it starts, and whenever the config changes, an
 * entry of `routing.tierMapping` or `routing.fallbacks` that no enabled plugin provides is
 * logged as a warning naming the key, the value and the provider most likely meant.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<
  LanguageModel.LanguageModel,
  never,
  PluginRegistry | QueryClassifier | ConfigManager | SecretsManager
> = Layer.scoped(LanguageModel.LanguageModel, make())

/** The routed model with options. @since 0.1.0 */
export const layerWith = (options: RouterOptions) => Layer.scoped(LanguageModel.LanguageModel, make(options))

/**
 * A `LanguageModel` pinned to one tier: every request is routed as `tier`, skipping the
 * classifier (fallbacks still apply). Provide it on top of a routed model.
 *
 * @since 0.1.0
 */
export const forTier = (tier: QueryTier): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Layer.effect(
    LanguageModel.LanguageModel,
    Effect.map(LanguageModel.LanguageModel, (routed) => {
      const pinned = LanguageModel.make({
        id: routed.id,
        name: `${routed.name} (${tier})`,
        stream: (messages, tools, options) => routed.stream(messages, tools, { ...options, tier }),
        isAvailable: routed.isAvailable
      })
      // Read directly as the routed model is, when it can be.
      const open = Resilience.pullSourceOf(routed)
      return open === undefined
        ? pinned
        : Resilience.withPullSource(pinned, (messages, tools, options) => open(messages, tools, { ...options, tier }))
    })
  )
