/**
 * Provider plugins (seed 003): a plugin knows how to create one LLM provider from the secrets
 * and configuration, and may offer pairing tools for conversational setup. The
 * `PluginRegistry` loads the plugins named in `plugins.enabled` — built-ins by id, others by
 * module specifier — and creates their providers on demand.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ConfigManager, type Service as ConfigService } from "../config/ConfigManager.js"
import { PluginError } from "../domain/Errors.js"
import type * as LanguageModel from "../providers/LanguageModel.js"
import { SecretsManager, type Service as SecretsService } from "../secrets/SecretsManager.js"
import type { ToolProvider } from "../tools/ToolProvider.js"

/**
 * The plugin contract, Effect-typed. `providerId` is the id used in the tier mapping; it
 * defaults to `id`. `createProvider` may read `providers.<providerId>.*` from the config.
 *
 * @since 0.1.0
 */
export interface ProviderPlugin {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly type: "provider"
  readonly version: string
  readonly providerId?: string
  readonly createProvider: (
    secrets: SecretsService,
    config: ConfigService
  ) => Effect.Effect<LanguageModel.Service, PluginError, HttpClient.HttpClient | Scope.Scope>
  readonly getPairingTools?: (secrets: SecretsService, config: ConfigService) => ToolProvider
}

/** The provider id a plugin serves. @since 0.1.0 */
export const providerIdOf = (plugin: ProviderPlugin): string => plugin.providerId ?? plugin.id

/**
 * What a module must export (as `default` or `plugin`) to be loaded as a plugin.
 *
 * @since 0.1.0
 */
export const ProviderPluginSchema = Schema.Struct({
  id: Schema.NonEmptyString,
  name: Schema.String,
  description: Schema.String,
  type: Schema.Literal("provider"),
  version: Schema.String,
  providerId: Schema.optional(Schema.NonEmptyString),
  createProvider: Schema.declare(Predicate.isFunction, { identifier: "function" }),
  getPairingTools: Schema.optional(Schema.declare(Predicate.isFunction, { identifier: "function" }))
})

/** @since 0.1.0 */
export interface Service {
  /** The enabled plugins that loaded. */
  readonly enabled: Effect.Effect<ReadonlyArray<ProviderPlugin>>
  /** Every plugin known: the built-ins and the enabled external ones. */
  readonly known: Effect.Effect<ReadonlyArray<ProviderPlugin>>
  /** Plugins named in `plugins.enabled` that failed to load, with why. */
  readonly failures: Effect.Effect<ReadonlyArray<PluginError>>
  /** Creates the provider with this id from its enabled plugin; scoped to the caller. */
  readonly createProvider: (providerId: string) => Effect.Effect<LanguageModel.Service, PluginError, Scope.Scope>
  /** Every known plugin's pairing tools. */
  readonly pairingTools: Effect.Effect<ReadonlyArray<ToolProvider>>
  /**
   * Loads the plugins again even if `plugins.enabled` did not change (for example after a plugin
   * module was installed); a change of `plugins.enabled` is noticed by every read on its own.
   */
  readonly reload: Effect.Effect<void>
}

/** @since 0.1.0 */
export class PluginRegistry extends Context.Tag("effect-agent-kernel/PluginRegistry")<PluginRegistry, Service>() {}

/** Imports a module by specifier; replaceable so tests need not touch the module system. @since 0.1.0 */
export type ModuleLoader = (specifier: string) => Promise<unknown>

const defaultLoader: ModuleLoader = (specifier) => import(specifier)

const decodePlugin = Schema.decodeUnknownEither(ProviderPluginSchema)

/**
 * The name among `candidates` that `name` most likely misspells (by edit distance, ignoring
 * case), for "did you mean …?" advice; `undefined` when none is close (more than a third of its
 * letters off).
 *
 * @since 0.1.0
 */
export const closestName = (name: string, candidates: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance && distance <= Math.max(1, Math.floor(Math.max(name.length, candidate.length) / 3))) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

/** A path to a file rather than a package name. */
const isPath = (specifier: string) => /^(\.{1,2}\/|\/|file:)/.test(specifier)

/**
 * What to do about a `plugins.enabled` entry that could not be imported. Installing is suggested
 * only for a name that is clearly a package of its own (scoped, or with a `/`): for a bare name
 * it would send the user to install whatever is published under their typo.
 */
const notImported = (specifier: string, cause: unknown, builtinIds: ReadonlyArray<string>): string => {
  const why = cause instanceof Error ? cause.message : String(cause)
  if (isPath(specifier)) {
    return `Plugin module "${specifier}" could not be imported (${why}). Check that the file exists; a relative ` +
      `path is resolved from the kernel's own module, so give an absolute path. Or remove it from plugins.enabled.`
  }
  if (specifier.includes("/")) {
    return `Plugin module "${specifier}" could not be imported (${why}). ` +
      `Install it (npm install ${specifier}) or remove it from plugins.enabled.`
  }
  const suggestion = closestName(specifier, builtinIds)
  return `plugins.enabled names "${specifier}", which is neither a built-in plugin nor a module that could be imported.` +
    (suggestion !== undefined ? ` Did you mean "${suggestion}"?` : "") +
    (builtinIds.length > 0 ? ` The built-in plugins are ${builtinIds.join(", ")}.` : "") +
    ` Correct the name in plugins.enabled or remove it; an external plugin is named by its package (usually ` +
    `scoped, @scope/name) or its file path.`
}

/**
 * Loads one external plugin module and validates what it exports. `builtinIds` are the names a
 * mistyped entry is compared with.
 *
 * @since 0.1.0
 */
export const loadModule = (specifier: string, loader: ModuleLoader = defaultLoader, builtinIds: ReadonlyArray<string> = []) =>
  Effect.tryPromise({
    try: () => loader(specifier),
    catch: (cause) => new PluginError({ reason: "NotFound", pluginId: specifier, message: notImported(specifier, cause, builtinIds) })
  }).pipe(
    Effect.flatMap((module) => {
      const exported = Predicate.isRecord(module) ? (module.default ?? module.plugin) : undefined
      const decoded = decodePlugin(exported)
      if (decoded._tag === "Right") return Effect.succeed(exported as ProviderPlugin)
      return Effect.fail(
        new PluginError({
          reason: "Invalid",
          pluginId: specifier,
          message: `Plugin module "${specifier}" does not export a valid provider plugin as default or \`plugin\`: ` +
            ParseResult.TreeFormatter.formatErrorSync(decoded.left)
        })
      )
    })
  )

const readEnabled = (config: ConfigService) =>
  config.get("plugins.enabled").pipe(
    Effect.map((value) =>
      Option.match(value, {
        onNone: (): ReadonlyArray<string> => [],
        onSome: (list) => Array.isArray(list) ? list.filter(Predicate.isString) : []
      })
    )
  )

const sameNames = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && a.every((name, index) => name === b[index])

interface Loaded {
  /** The `plugins.enabled` list this state was loaded from. */
  readonly names: ReadonlyArray<string>
  readonly enabled: ReadonlyArray<ProviderPlugin>
  readonly external: ReadonlyArray<ProviderPlugin>
  readonly failures: ReadonlyArray<PluginError>
}

/**
 * Builds the registry over the given built-in plugins. Each name in `plugins.enabled` is a
 * built-in plugin's id (or provider id) or a module specifier; a missing or malformed plugin is
 * reported (logged and listed in `failures`) and the others still load. Changes of
 * `plugins.enabled` take effect at once.
 *
 * @since 0.1.0
 */
export const make = (options: { readonly builtins: ReadonlyArray<ProviderPlugin>; readonly loader?: ModuleLoader }) =>
  Effect.gen(function*() {
    const config = yield* ConfigManager
    const secrets = yield* SecretsManager
    const context = yield* Effect.context<HttpClient.HttpClient>()
    const byName = new Map<string, ProviderPlugin>()
    for (const plugin of options.builtins) {
      byName.set(plugin.id, plugin)
      byName.set(providerIdOf(plugin), plugin)
    }
    const builtinIds = [...byName.keys()]

    const load = Effect.gen(function*() {
      const names = yield* readEnabled(config)
      const results = yield* Effect.forEach(names, (name) => {
        const builtin = byName.get(name)
        const found = builtin !== undefined
          ? Effect.succeed({ plugin: builtin, builtin: true })
          : Effect.map(loadModule(name, options.loader, builtinIds), (plugin) => ({ plugin, builtin: false }))
        return Effect.either(found)
      }, { concurrency: 4 })
      const loaded: Loaded = {
        names,
        enabled: results.flatMap((result) => result._tag === "Right" ? [result.right.plugin] : []),
        external: results.flatMap((result) => result._tag === "Right" && !result.right.builtin ? [result.right.plugin] : []),
        failures: results.flatMap((result) => result._tag === "Left" ? [result.left] : [])
      }
      for (const failure of loaded.failures) yield* Effect.logWarning(failure.message)
      return loaded
    })

    const state = yield* Ref.make(yield* load)
    const reloadLock = yield* Effect.makeSemaphore(1)
    const reload = reloadLock.withPermits(1)(Effect.flatMap(load, (loaded) => Ref.set(state, loaded)))
    // Every read checks `plugins.enabled` first, so a change applies to the very next request.
    const current = Effect.gen(function*() {
      const loaded = yield* Ref.get(state)
      const names = yield* readEnabled(config)
      if (sameNames(names, loaded.names)) return loaded
      return yield* reloadLock.withPermits(1)(Effect.gen(function*() {
        const again = yield* Ref.get(state)
        if (sameNames(yield* readEnabled(config), again.names)) return again
        const fresh = yield* load
        yield* Ref.set(state, fresh)
        return fresh
      }))
    })

    const service: Service = {
      enabled: Effect.map(current, (loaded) => loaded.enabled),
      known: Effect.map(current, (loaded) => [...options.builtins, ...loaded.external]),
      failures: Effect.map(current, (loaded) => loaded.failures),
      createProvider: (providerId) =>
        Effect.gen(function*() {
          const loaded = yield* current
          const plugin = loaded.enabled.find((candidate) => providerIdOf(candidate) === providerId)
          if (plugin === undefined) {
            const failure = loaded.failures.find((error) => error.pluginId === providerId)
            return yield* Effect.fail(
              failure ?? new PluginError({
                reason: "NotConfigured",
                pluginId: providerId,
                message: `No enabled plugin provides "${providerId}". Pair it (scripts/pair.ts ${providerId}) ` +
                  `or add it to plugins.enabled.`
              })
            )
          }
          return yield* plugin.createProvider(secrets, config).pipe(
            Effect.provide(context),
            Effect.withSpan("PluginRegistry.createProvider", { attributes: { providerId } })
          )
        }),
      pairingTools: Effect.map(
        current,
        (loaded) =>
          [...options.builtins, ...loaded.external].flatMap((plugin) =>
            plugin.getPairingTools !== undefined ? [plugin.getPairingTools(secrets, config)] : []
          )
      ),
      reload
    }
    return service
  })

/**
 * The registry as a Layer; needs the config, the secrets and an HTTP client for the providers.
 *
 * @since 0.1.0
 */
export const layer = (options: { readonly builtins: ReadonlyArray<ProviderPlugin>; readonly loader?: ModuleLoader }) =>
  Layer.scoped(PluginRegistry, make(options))
