/**
 * The secrets store: API keys and other credentials, always handled as `Redacted`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Stream from "effect/Stream"
import type { SecretsError } from "../domain/Errors.js"

/** A key was stored or deleted (never the value). @since 0.1.0 */
export interface SecretChange {
  readonly key: string
  readonly op: "store" | "delete"
}

/** @since 0.1.0 */
export interface Service {
  readonly store: (key: string, value: string | Redacted.Redacted<string>) => Effect.Effect<void, SecretsError>
  readonly retrieve: (key: string) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError>
  readonly check: (key: string) => Effect.Effect<boolean, SecretsError>
  /** Deletes a key; succeeds with whether it existed. */
  readonly delete: (key: string) => Effect.Effect<boolean, SecretsError>
  /** Key names, optionally filtered by a glob where `*` matches within one dotted segment. */
  readonly list: (glob?: string) => Effect.Effect<ReadonlyArray<string>, SecretsError>
  /** The stored `provider.<id>.apiKey`, else the provider's conventional environment variable. */
  readonly resolveProviderKey: (providerId: string) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError>
  /** Every successful store or delete, for caches that must be rebuilt. */
  readonly changes: Stream.Stream<SecretChange>
}

/** @since 0.1.0 */
export class SecretsManager extends Context.Tag("effect-agent-kernel/SecretsManager")<SecretsManager, Service>() {}

/**
 * The conventional key name of a provider's API key.
 *
 * @since 0.1.0
 */
export const buildProviderKeyName = (providerId: string): string => `provider.${providerId}.apiKey`
