/**
 * Advice about the routing config, given when the router starts and again whenever the config
 * changes: an entry of `routing.tierMapping` or `routing.fallbacks` naming a provider that no
 * enabled plugin provides would otherwise show only as a skipped candidate in each request's
 * route, and a mistyped id would quietly send a tier to its fallbacks. A warning rather than an
 * error, since the config may be mid-edit while the program runs.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { ConfigChange, Service as ConfigService } from "../../config/ConfigManager.js"
import { fallbacksKey, keysOverlap, tierMappingKey } from "../../config/KernelConfig.js"
import type { PluginError } from "../../domain/Errors.js"
import { QueryTier } from "../../domain/Message.js"
import { closestName, providerIdOf, type Service as RegistryService } from "../../plugins/ProviderPlugin.js"

/** One provider id named by the routing config, and the key that names it. */
export interface RoutingEntry {
  readonly key: string
  readonly value: string
}

/** What the check knows about the plugins. */
export interface PluginsView {
  /** Provider ids of the enabled plugins that loaded. */
  readonly enabled: ReadonlyArray<string>
  /** Provider ids of every plugin known (built-ins included), enabled or not. */
  readonly known: ReadonlyArray<string>
  readonly failures: ReadonlyArray<PluginError>
}

/** The warning for an entry no enabled plugin provides, or `undefined` when one does. */
export const adviceFor = (entry: RoutingEntry, plugins: PluginsView): string | undefined => {
  if (plugins.enabled.includes(entry.value)) return undefined
  const names = `${entry.key} names "${entry.value}"`
  if (plugins.known.includes(entry.value)) {
    return `${names}, but its plugin is not enabled, so requests skip it. Pair it (npx tsx scripts/pair.ts ${entry.value}) ` +
      `or add "${entry.value}" to plugins.enabled.`
  }
  const suggestion = closestName(entry.value, plugins.enabled) ?? closestName(entry.value, plugins.known)
  const failed = plugins.failures.map((failure) => failure.pluginId)
  return `${names}, but no enabled plugin provides "${entry.value}", so requests skip it.` +
    (suggestion !== undefined ? ` Did you mean "${suggestion}"?` : "") +
    ` Enabled providers: ${plugins.enabled.length > 0 ? plugins.enabled.join(", ") : "none"}.` +
    (failed.length > 0 ? ` Plugins that failed to load: ${failed.join(", ")}.` : "") +
    ` Set ${entry.key} to an enabled provider, or enable the plugin that provides "${entry.value}".`
}

const readEntries = (config: ConfigService) =>
  Effect.gen(function*() {
    const entries: Array<RoutingEntry> = []
    for (const tier of QueryTier.literals) {
      const mapped = yield* config.get(tierMappingKey(tier))
      if (Option.isSome(mapped) && Predicate.isString(mapped.value)) {
        entries.push({ key: tierMappingKey(tier), value: mapped.value })
      }
      const fallbacks = yield* config.get(fallbacksKey(tier))
      if (Option.isSome(fallbacks) && Array.isArray(fallbacks.value)) {
        for (const value of fallbacks.value) if (Predicate.isString(value)) entries.push({ key: fallbacksKey(tier), value })
      }
    }
    return entries
  })

const readPlugins = (registry: RegistryService): Effect.Effect<PluginsView> =>
  Effect.all({
    enabled: Effect.map(registry.enabled, (plugins) => plugins.map(providerIdOf)),
    known: Effect.map(registry.known, (plugins) => plugins.map(providerIdOf)),
    failures: registry.failures
  })

/** Changes that can make an entry valid or invalid. */
const concernsRouting = (change: ConfigChange) => keysOverlap(change.key, "routing") || keysOverlap(change.key, "plugins")

/**
 * Warns now about every entry no enabled plugin provides, then, for as long as the scope lasts,
 * about entries that become so after a config change (each once, until it is fixed).
 */
export const watchRoutingConfig = (
  config: ConfigService,
  registry: RegistryService
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    let reported = new Set<string>()
    const check = Effect.gen(function*() {
      const plugins = yield* readPlugins(registry)
      const current = new Set<string>()
      for (const entry of yield* readEntries(config)) {
        const advice = adviceFor(entry, plugins)
        if (advice === undefined || current.has(advice)) continue
        current.add(advice)
        if (!reported.has(advice)) yield* Effect.logWarning(advice)
      }
      reported = current
    })
    // Subscribed before the first check, so no change between the two goes unseen.
    const changes = yield* config.subscribe
    yield* check
    yield* Queue.takeBetween(changes, 1, Number.MAX_SAFE_INTEGER).pipe(
      Effect.flatMap((batch) => [...batch].some(concernsRouting) ? check : Effect.void),
      Effect.forever,
      Effect.forkScoped
    )
  }).pipe(Effect.annotateLogs("module", "TierRouter"))
