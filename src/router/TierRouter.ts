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
import * as Layer from "effect/Layer"
import * as LayerMap from "effect/LayerMap"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { type ConfigChange, ConfigManager } from "../config/ConfigManager.js"
import type { PluginError } from "../domain/Errors.js"
import type { QueryTier } from "../domain/Message.js"
import { PluginRegistry } from "../plugins/ProviderPlugin.js"
import * as LanguageModel from "../providers/LanguageModel.js"
import * as Resilience from "../providers/Resilience.js"
import { SecretsManager } from "../secrets/SecretsManager.js"
import { watchRoutingConfig } from "./internal/mappingCheck.js"
import * as Router from "./internal/router.js"
import { make as QueryClassifierMake, QueryClassifier, type Service as QueryClassifierService } from "./QueryClassifier.js"

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

/**
 * Builds the routed `LanguageModel` over the enabled plugins: `routing.tierMapping` maps tiers
 * to plugin ids, `routing.fallbacks` orders the rest, and each provider is built by the
 * `PluginRegistry` when first used and rebuilt when its config or secrets change.
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
    const healthTtlMs = options.healthTtl !== undefined
      ? Duration.toMillis(options.healthTtl)
      : yield* numberAt(config, "routing.healthTtlMs", 30_000)
    let cooldownMs = options.cooldown !== undefined
      ? Duration.toMillis(options.cooldown)
      : yield* numberAt(config, "routing.cooldownMs", 30_000)

    // Pairing, unpairing and edits take effect on the next request: rebuild what they touch.
    const applyChange = (invalidate: Router.Invalidator) => (change: ConfigChange) => {
      const [head, id] = change.key.split(".")
      if (head === "providers" && id !== undefined) return invalidate.one(id)
      if (head === "providers" || head === "plugins") return invalidate.all
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
    const refresh = (invalidate: Router.Invalidator) =>
      Effect.flatMap(takeChanges, (changes) => {
        if (Chunk.isEmpty(changes)) return Effect.void
        // The tier mapping and fallbacks are read again after any change.
        mappingCache = undefined
        fallbacksCache.clear()
        return Effect.forEach(changes, applyChange(invalidate), { discard: true })
      })
    // A tier mapped to a provider no enabled plugin provides is said at once, not per request.
    yield* watchRoutingConfig(config, registry)

    // Read from the config once, then kept until the config changes (see `refresh`).
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

    const { invalidate, service } = yield* Router.make({
      providers,
      classifier,
      candidates: (tier) =>
        Effect.flatMap(readMapping, (mapping) => Effect.map(readFallbacks(tier), (fallbacks) => candidatesFor(tier, mapping, fallbacks))),
      mapped: Effect.map(readMapping, (mapping) => [...new Set(Object.values(mapping))]),
      refresh,
      buildFailure: (error) => Predicate.isTagged(error, "PluginError") ? (error as PluginError).message : undefined,
      healthTtlMs,
      cooldownMs: () => cooldownMs
    })
    yield* secrets.changes.pipe(
      Stream.runForEach((change) => {
        const [head, id] = change.key.split(".")
        return head === "provider" && id !== undefined ? invalidate.one(id) : invalidate.all
      }),
      Effect.forkScoped
    )
    return service
  })

/**
 * How `fromLayers` routes: a provider Layer per tier (one Layer given for several tiers is built
 * once), the tiers to fall back to, and the classifier.
 *
 * @since 0.1.0
 */
export interface LayersOptions<L extends Layer.Layer<LanguageModel.LanguageModel, any, any>> extends RouterOptions {
  readonly tiers: Partial<Record<QueryTier, L>>
  /**
   * The tiers whose providers a request falls back to, in order (default: the other tiers'
   * providers by tier distance, the higher tier first at equal distance).
   */
  readonly fallbacks?: Partial<Record<QueryTier, ReadonlyArray<QueryTier>>>
  /** Classifies each request (default: `QueryClassifier` with its default settings). */
  readonly classifier?: QueryClassifierService
}

/**
 * The tier router over `LanguageModel` Layers you hold: each request is classified and served by
 * its tier's provider, with the same fallbacks, health checks, cooldowns and `route` decision as
 * the router over plugins. Every Layer is built when the router starts (so a bad one fails it)
 * and again after `idleTimeToLive` unused; the route names the provider by its `id`.
 *
 * @example
 * ```ts
 * const Model = TierRouter.fromLayers({
 *   tiers: {
 *     simple: OpenAiCompatible.ollamaProvider({ model: "llama3.2" }),
 *     complex: OpenAiCompatible.openAIProvider({ model: "gpt-4.1" })
 *   }
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 * ```
 * @since 0.1.0
 */
export const fromLayers = <L extends Layer.Layer<LanguageModel.LanguageModel, any, any>>(
  options: LayersOptions<L>
): Layer.Layer<LanguageModel.LanguageModel, Layer.Layer.Error<L>, Layer.Layer.Context<L>> =>
  // The providers' own requirements are taken from the context the router is built in.
  Layer.scoped(
    LanguageModel.LanguageModel,
    Effect.gen(function*() {
      // One key per distinct Layer: the first tier it serves.
      const keyOf = new Map<L, string>()
      const layerOf = new Map<string, L>()
      const mapping: Partial<Record<QueryTier, string>> = {}
      for (const tier of tiers) {
        const layer = options.tiers[tier]
        if (layer === undefined) continue
        if (!keyOf.has(layer)) {
          keyOf.set(layer, tier)
          layerOf.set(tier, layer)
        }
        mapping[tier] = keyOf.get(layer)!
      }
      const providers = yield* LayerMap.make((key: string) => layerOf.get(key)!, {
        idleTimeToLive: options.idleTimeToLive ?? "5 minutes"
      })
      // Built now, so a Layer that cannot be built fails the router's start; the route names
      // each provider by its id.
      const idOf = new Map<string, string>()
      for (const key of layerOf.keys()) {
        const runtime = yield* Effect.scoped(providers.runtime(key))
        idOf.set(key, Context.get(runtime.context as Context.Context<LanguageModel.LanguageModel>, LanguageModel.LanguageModel).id)
      }
      const fallbacks = (tier: QueryTier) => {
        const listed = options.fallbacks?.[tier]
        return listed === undefined ? undefined : listed.flatMap((other) => mapping[other] !== undefined ? [mapping[other]!] : [])
      }
      const candidates = new Map(tiers.map((tier) => [tier, candidatesFor(tier, mapping, fallbacks(tier))] as const))
      const mapped = [...layerOf.keys()]
      const { service } = yield* Router.make({
        providers: providers as unknown as LayerMap.LayerMap<string, LanguageModel.LanguageModel, unknown>,
        classifier: options.classifier ?? (yield* Effect.orDie(QueryClassifierMake())),
        candidates: (tier) => Effect.succeed(candidates.get(tier)!),
        mapped: Effect.succeed(mapped),
        refresh: () => Effect.void,
        label: (key) => idOf.get(key) ?? key,
        buildFailure: (error) => Predicate.hasProperty(error, "message") ? String(error.message) : String(error),
        healthTtlMs: options.healthTtl !== undefined ? Duration.toMillis(options.healthTtl) : 30_000,
        cooldownMs: () => options.cooldown !== undefined ? Duration.toMillis(options.cooldown) : 30_000
      })
      return service
    })
  ) as unknown as Layer.Layer<LanguageModel.LanguageModel, Layer.Layer.Error<L>, Layer.Layer.Context<L>>

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
