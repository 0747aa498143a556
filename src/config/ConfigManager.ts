/**
 * The configuration store: dotted keys over one JSON document, known keys typed by a Schema.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { ConfigError } from "../domain/Errors.js"

/** A key changed; `value` is `None` when it was deleted. @since 0.1.0 */
export interface ConfigChange {
  readonly key: string
  readonly value: Option.Option<unknown>
}

/** @since 0.1.0 */
export interface Service {
  /** The value at a dotted key, or the documented default of a known key. */
  readonly get: (key: string) => Effect.Effect<Option.Option<unknown>>
  /** Validates and stores; a wrong value for a known key fails and changes nothing. */
  readonly set: (key: string, value: unknown) => Effect.Effect<void, ConfigError>
  readonly delete: (key: string) => Effect.Effect<void, ConfigError>
  /** Whether a value is set explicitly (defaults do not count). */
  readonly has: (key: string) => Effect.Effect<boolean>
  /** The whole document as stored (without defaults). */
  readonly snapshot: Effect.Effect<Record<string, unknown>>
  /** Every successful change, programmatic or made to the file by hand. */
  readonly changes: Stream.Stream<ConfigChange>
}

/** @since 0.1.0 */
export class ConfigManager extends Context.Tag("effect-agent-kernel/ConfigManager")<ConfigManager, Service>() {}
