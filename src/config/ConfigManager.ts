/**
 * The configuration store: dotted keys over one JSON document, known keys typed by a Schema.
 *
 * `providers.openai.model` addresses `{ "providers": { "openai": { "model": … } } }`. Keys listed
 * in `KernelConfig` are checked on every change (the whole resulting document is validated, so a
 * wrong value fails with a `ConfigError` and changes nothing) and have documented defaults that
 * `get` falls back to; any other key holds any JSON. Every successful change is published on
 * `changes`, including edits made to the configuration file by hand while the program runs.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ConfigManager } from "effect-agent-kernel"
 *
 * const program = Effect.gen(function*() {
 *   const config = yield* ConfigManager.ConfigManager
 *   yield* config.set("providers.openai.model", "gpt-4.1")
 *   return yield* config.get("routing.tierMapping.complex") // Option.some("ollama"), the default
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(ConfigManager.layerMemory())))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { ConfigError } from "../domain/Errors.js"
import { defaultLockOptions } from "../internal/fileLock.js"
import { copyJson, type Document, isJsonObject } from "./internal/document.js"
import * as FileStore from "./internal/fileStore.js"
import * as Store from "./internal/store.js"

/** A key changed; `value` is `None` when it was deleted. @since 0.1.0 */
export interface ConfigChange {
  readonly key: string
  readonly value: Option.Option<unknown>
}

/**
 * The configuration store's operations. Keys are dotted (`routing.tierMapping.simple`); values
 * are JSON and come back as copies, so changing a returned object changes nothing stored.
 *
 * @since 0.1.0
 */
export interface Service {
  /** The value at a dotted key, or the documented default of a known key. */
  readonly get: (key: string) => Effect.Effect<Option.Option<unknown>>
  /**
   * The value at a dotted key (or its default) decoded with `schema`; a value of another shape
   * fails with `InvalidValue` naming the key.
   */
  readonly getAs: <A, I>(key: string, schema: Schema.Schema<A, I, never>) => Effect.Effect<Option.Option<A>, ConfigError>
  /** Validates and stores; a wrong value for a known key fails and changes nothing. */
  readonly set: (key: string, value: unknown) => Effect.Effect<void, ConfigError>
  /** Removes a key (and everything under it); removing an absent key is not a change. */
  readonly delete: (key: string) => Effect.Effect<void, ConfigError>
  /** Whether a value is set explicitly (defaults do not count). */
  readonly has: (key: string) => Effect.Effect<boolean>
  /** The whole document as stored (without defaults). */
  readonly snapshot: Effect.Effect<Record<string, unknown>>
  /**
   * Every successful change, programmatic or made to the file by hand. A `set` or `delete`
   * publishes one change for its key; a hand edit publishes one change per leaf key that differs.
   * A subscriber sees the changes made after it subscribed; use `KernelConfig.keysOverlap` to
   * match a change against the subtree you care about.
   */
  readonly changes: Stream.Stream<ConfigChange>
  /**
   * Subscribes now and reads later: no change made after this returns is missed. Use it to read
   * the current values and then follow changes without a gap between the two.
   */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ConfigChange>, never, Scope.Scope>
  /** An Effect `ConfigProvider` over the current values (see `configProvider`). */
  readonly configProvider: ConfigProvider.ConfigProvider
}

/** @since 0.1.0 */
export class ConfigManager extends Context.Tag("effect-agent-kernel/ConfigManager")<ConfigManager, Service>() {}

/**
 * Builds an in-memory store, optionally seeded with `initial` (which must be JSON and match the
 * Schema, else the result fails with `InvalidValue`). The scope ends the `changes` streams.
 *
 * @since 0.1.0
 */
export const make = (initial: Record<string, unknown> = {}): Effect.Effect<Service, ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const invalid = (problem: string) =>
      new ConfigError({
        reason: "InvalidValue",
        message: `The initial configuration is not valid: ${problem}. Fix the object passed to layerMemory.`
      })
    const document = copyJson(initial)
    if (document._tag === "Left" || !isJsonObject(document.right)) {
      return yield* invalid(document._tag === "Left" ? document.left : "it must be a JSON object")
    }
    const loaded = yield* Store.load(document.right as Document, invalid)
    const { service } = yield* Store.make(loaded, Option.none())
    return service
  }).pipe(Effect.withSpan("ConfigManager.make"))

/**
 * Options of the file-backed store. `path` defaults to `defaultFilePath`; `watch: false` turns
 * off picking up hand edits while running (they are then read at the next `set`/`delete`).
 *
 * @since 0.1.0
 */
export interface FileOptions {
  readonly path?: string
  readonly watch?: boolean
  /**
   * The largest file the store reads or writes, in bytes (default 4 MiB). Every change rewrites
   * the whole file, so a bigger one is refused with a `ConfigError` naming the file, its size and
   * the cap: when read (`Io`), or when a `set` would grow it past the cap (`InvalidValue`, and
   * nothing is written).
   */
  readonly maxFileBytes?: number
  /**
   * How long a `set` or `delete` waits while another process changes the file (default 15
   * seconds) before failing with `Io` naming the lock file and its holder.
   */
  readonly lockTimeout?: Duration.DurationInput
}

/**
 * The default location of the configuration file:
 * `$XDG_CONFIG_HOME/effect-agent-kernel/config.json`, else
 * `~/.config/effect-agent-kernel/config.json` (the environment is read through Effect `Config`).
 *
 * @since 0.1.0
 */
export const defaultFilePath: Effect.Effect<string, never, Path.Path> = FileStore.defaultPath

/**
 * Builds a store kept in a pretty-printed JSON file. A missing file is an empty configuration; a
 * file that is not JSON or does not match the Schema fails with `Corrupt` (naming the file and the
 * problem) and is never overwritten. Writes are atomic (temp file, fsync, rename; file 0600,
 * directory 0700) and serialized with the re-read of the file that precedes each of them, within
 * the process and across processes (a lock file beside it, `<path>.lock`; a holder that died,
 * even by SIGKILL, does not block others), so neither a hand edit nor another process's change
 * is lost to a programmatic one. The file is capped at `maxFileBytes`.
 *
 * @since 0.1.0
 */
export const makeFile = (
  options: FileOptions = {}
): Effect.Effect<Service, ConfigError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const path = options.path ?? (yield* FileStore.defaultPath)
    const { initial, persistence } = yield* FileStore.open(path, {
      maxFileBytes: options.maxFileBytes ?? FileStore.defaultMaxFileBytes,
      lock: { ...defaultLockOptions, ...(options.lockTimeout !== undefined ? { timeout: options.lockTimeout } : {}) }
    })
    const { refresh, service } = yield* Store.make(initial, Option.some(persistence))
    if (options.watch !== false) yield* FileStore.watch(path, refresh)
    return service
  }).pipe(Effect.withSpan("ConfigManager.makeFile"))

/**
 * An in-memory `ConfigManager`, for tests and programs that configure themselves in code.
 *
 * @since 0.1.0
 */
export const layerMemory = (initial?: Record<string, unknown>): Layer.Layer<ConfigManager, ConfigError> =>
  Layer.scoped(ConfigManager, make(initial))

/**
 * A `ConfigManager` kept in a JSON file (see `makeFile`); needs `FileSystem` and `Path`, e.g.
 * from `NodeContext.layer`.
 *
 * @example
 * ```ts
 * import { NodeContext } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { ConfigManager } from "effect-agent-kernel"
 *
 * const ConfigLive = ConfigManager.layerFile().pipe(Layer.provide(NodeContext.layer))
 * ```
 *
 * @since 0.1.0
 */
export const layerFile = (
  options?: FileOptions
): Layer.Layer<ConfigManager, ConfigError, FileSystem.FileSystem | Path.Path> =>
  Layer.scoped(ConfigManager, makeFile(options))

/**
 * An Effect `ConfigProvider` over the store's current values, defaults included: a dot in a config
 * name separates path segments, so `Config.string("providers.openai.model")` reads what
 * `get("providers.openai.model")` returns, and `Config.array(Config.string(), "plugins.enabled")`
 * reads an array. It reads live, so a `Config` evaluated after a change sees the new value. An
 * empty array reads as missing data; give such a `Config` a default.
 *
 * @since 0.1.0
 */
export const configProvider: Effect.Effect<ConfigProvider.ConfigProvider, never, ConfigManager> = Effect.map(
  ConfigManager,
  (service) => service.configProvider
)

/**
 * Makes the store the default `ConfigProvider`, falling back to the provider that was in place
 * before (the environment, by default) for names the store does not hold.
 *
 * @since 0.1.0
 */
export const layerConfigProvider: Layer.Layer<never, never, ConfigManager> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const store = yield* configProvider
    const previous = yield* Effect.configProviderWith(Effect.succeed)
    return Layer.setConfigProvider(ConfigProvider.orElse(store, () => previous))
  })
)
