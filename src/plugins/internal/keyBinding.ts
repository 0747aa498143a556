/**
 * Binding a stored credential to the base URL it was paired for.
 *
 * A stored key is sent only to the base URL it was paired with: pairing records that URL beside
 * the key in the secrets store (which no model-facing tool can write to except through pairing),
 * and a provider built from a plugin compares it with the configured base URL before the key
 * goes anywhere. A base URL changed afterwards — by hand, by another program, or by a prompt
 * injection that found a way to write the config — does not take the key with it; the provider
 * refuses to start and says how to pair the new URL. A key stored before bindings existed counts
 * as bound to the provider's default base URL.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { PluginError } from "../../domain/Errors.js"
import type { Service as SecretsService } from "../../secrets/SecretsManager.js"

/** The secret that holds the base URL a provider's stored credentials were paired for. */
export const bindingKeyName = (providerId: string): string => `provider.${providerId}.boundBaseUrl`

/**
 * A base URL as it is compared: scheme, host and port lower-cased as URLs do, the path without
 * a trailing slash; query and fragment dropped. `undefined` stands for the provider's own
 * default (Bedrock's regional endpoint).
 */
export const normalizeBaseUrl = (url: string | undefined): string => {
  if (url === undefined || url === "") return "(default)"
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, "")}`
  } catch {
    return url.trim()
  }
}

/** Records that the provider's stored credentials belong to `baseUrl`. */
export const bind = (secrets: SecretsService, providerId: string, baseUrl: string | undefined) =>
  secrets.store(bindingKeyName(providerId), Redacted.make(normalizeBaseUrl(baseUrl)))

/** Forgets the binding, with the credentials it was for. */
export const unbind = (secrets: SecretsService, providerId: string) =>
  Effect.asVoid(secrets.delete(bindingKeyName(providerId)))

/** The base URL the provider's stored credentials were paired for, else `fallback`. */
export const boundBaseUrl = (secrets: SecretsService, providerId: string, fallback: string | undefined) =>
  Effect.map(
    secrets.retrieve(bindingKeyName(providerId)),
    Option.match({ onNone: () => normalizeBaseUrl(fallback), onSome: Redacted.value })
  )

/**
 * Succeeds when the stored credentials may be sent to `baseUrl`; else a `PluginError` saying
 * where they belong and how to pair the new URL. Nothing is sent in either case.
 */
export const checkBinding = (options: {
  readonly secrets: SecretsService
  readonly providerId: string
  readonly baseUrl: string | undefined
  readonly defaultBaseUrl: string | undefined
}): Effect.Effect<void, PluginError> =>
  Effect.gen(function*() {
    const { providerId } = options
    const bound = yield* boundBaseUrl(options.secrets, providerId, options.defaultBaseUrl).pipe(
      Effect.mapError((error) =>
        new PluginError({
          reason: "LoadFailed",
          pluginId: providerId,
          message: `The ${providerId} credentials' pairing could not be read from the secrets store: ${error.message}`
        })
      )
    )
    const target = normalizeBaseUrl(options.baseUrl)
    if (bound === target) return
    return yield* new PluginError({
      reason: "LoadFailed",
      pluginId: providerId,
      message: `The stored ${providerId} credentials were paired for ${bound}, but providers.${providerId}.baseUrl ` +
        `is now ${target}. Credentials are only sent where they were paired, so ${providerId} is not used. Pair the ` +
        `new URL with its key (npx tsx scripts/pair.ts ${providerId} --base-url <url>), or set ` +
        `providers.${providerId}.baseUrl back.`
    })
  })
