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
import type { ChatChunk, QueryTier, RouteAttempt } from "../domain/Message.js"
import { PluginRegistry } from "../plugins/ProviderPlugin.js"
import * as LanguageModel from "../providers/LanguageModel.js"
import { SecretsManager } from "../secrets/SecretsManager.js"
import { HealthBook } from "./internal/health.js"
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
    const availability = new Map<string, Effect.Effect<boolean>>()
    const known = new Set<string>()

    const invalidate = (id: string) =>
      Effect.suspend(() => {
        availability.delete(id)
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
    const applyPendingChanges = Effect.flatMap(
      Queue.takeAll(configChanges),
      (changes) => Effect.forEach(changes, applyChange, { discard: true })
    )
    yield* secrets.changes.pipe(
      Stream.runForEach((change) => {
        const [head, id] = change.key.split(".")
        return head === "provider" && id !== undefined ? invalidate(id) : invalidateAll
      }),
      Effect.forkScoped
    )

    const readMapping = Effect.gen(function*() {
      const mapping: Partial<Record<QueryTier, string>> = {}
      for (const tier of tiers) {
        const value = yield* config.get(`routing.tierMapping.${tier}`)
        if (Option.isSome(value) && Predicate.isString(value.value)) mapping[tier] = value.value
      }
      return mapping
    })
    const readFallbacks = (tier: QueryTier) =>
      Effect.map(config.get(`routing.fallbacks.${tier}`), (value) =>
        Option.getOrUndefined(Option.filter(value, (list): list is ReadonlyArray<string> =>
          Array.isArray(list) && list.every(Predicate.isString))))

    const isAvailable = (id: string, service: LanguageModel.Service): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const cached = availability.get(id)
        if (cached !== undefined) return cached
        return Effect.flatMap(Effect.cachedWithTTL(service.isAvailable, healthTtl), (fresh) => {
          const shared = availability.get(id) ?? fresh
          availability.set(id, shared)
          return shared
        })
      })

    const now = Effect.clockWith((clock) => clock.currentTimeMillis)

    const route = (
      messages: Parameters<LanguageModel.Service["stream"]>[0],
      tools: Parameters<LanguageModel.Service["stream"]>[1],
      chatOptions: LanguageModel.ChatOptions = {}
    ): Stream.Stream<ChatChunk, LanguageModel.ModelError> =>
      Stream.unwrapScoped(
        Effect.gen(function*() {
          yield* applyPendingChanges
          const forced = chatOptions.tier
          const decision = forced !== undefined
            ? { tier: forced, score: 1, confidence: 1, signals: ["forced"] as ReadonlyArray<string> }
            : yield* classifier.classify(messages)
          const candidates = candidatesFor(decision.tier, yield* readMapping, yield* readFallbacks(decision.tier))
          const { tier: _tier, ...providerOptions } = chatOptions
          const attempts: Array<RouteAttempt> = []
          const outer = yield* Effect.scope
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
              const pull = yield* Stream.toPull(
                service.stream(messages, tools, last ? providerOptions : { ...providerOptions, maxAttempts: 1 })
              )
              const first = yield* pull.pipe(
                Effect.catchAll((error) => Option.isNone(error) ? Effect.succeed(Chunk.empty<ChatChunk>()) : Effect.fail(error.value))
              )
              return { first, pull }
            }).pipe(Scope.extend(scope), Effect.either)
            if (attempt._tag === "Right" && attempt.right !== undefined) {
              const { first, pull } = attempt.right
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
              return Stream.fromChunk(Chunk.prepend(first, routeChunk)).pipe(
                Stream.concat(Stream.repeatEffectChunkOption(pull)),
                Stream.tapError((error) =>
                  Effect.flatMap(now, (at) =>
                    Effect.sync(() =>
                      health.record(id, at, false, error._tag === "ProviderError" && isSevere(error))
                    ))
                ),
                Stream.onEnd(Effect.flatMap(now, (at) => Effect.sync(() => health.record(id, at, true))))
              )
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
      ).pipe(Stream.withSpan("TierRouter.stream", { captureStackTrace: false }))

    const service: LanguageModel.Service = LanguageModel.make({
      id: "tier-router",
      name: "Tier router",
      stream: route,
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
    return service
  })

/**
 * The routed `LanguageModel` as a Layer.
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
    Effect.map(LanguageModel.LanguageModel, (routed) =>
      LanguageModel.make({
        id: routed.id,
        name: `${routed.name} (${tier})`,
        stream: (messages, tools, options) => routed.stream(messages, tools, { ...options, tier }),
        isAvailable: routed.isAvailable
      }))
  )
