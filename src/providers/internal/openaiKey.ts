/**
 * Where an OpenAI-compatible provider's key comes from, read per request: the configured key,
 * else the secrets store's provider key, else the environment variable.
 */
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { ProviderError } from "../../domain/Errors.js"
import type { Service as SecretsService } from "../../secrets/SecretsManager.js"

/** The key to send, per request. */
export const keySource = (options: {
  readonly providerId: string
  readonly apiKey: Redacted.Redacted<string> | undefined
  readonly secrets: Option.Option<SecretsService>
  readonly envVar: string
}): Effect.Effect<Option.Option<Redacted.Redacted<string>>, ProviderError> => {
  const { providerId, secrets } = options
  return options.apiKey !== undefined
    ? Effect.succeed(Option.some(options.apiKey))
    : Option.isSome(secrets)
    ? secrets.value.resolveProviderKey(providerId).pipe(
      Effect.mapError((error) =>
        new ProviderError({
          reason: "Unauthorized",
          providerId,
          retryable: false,
          message: `Provider "${providerId}": the API key could not be read from the secrets store ` +
            `(${error.message}). Fix the store, or run scripts/pair.ts ${providerId}.`
        })
      )
    )
    : keyFromEnv(options.envVar)
}

/** The configuration every fiber has unless another is provided: the environment. */
const environment = Effect.runSync(Effect.configProviderWith(Effect.succeed))

/**
 * The key in the environment variable `envVar`, read per request (a key set later is used).
 * `Config` is the general way and is used whenever another configuration provider is in place;
 * with the environment itself, reading `process.env` is what it comes down to, at a fraction of
 * the cost.
 */
const keyFromEnv = (envVar: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>> => {
  const viaConfig = Config.option(Config.redacted(envVar)).pipe(Effect.orElseSucceed(() => Option.none()))
  let seen: string | undefined
  let key: Option.Option<Redacted.Redacted<string>> = Option.none()
  return Effect.withFiberRuntime((fiber) => {
    if (Context.get(fiber.currentDefaultServices, ConfigProvider.ConfigProvider) !== environment) return viaConfig
    const value = process.env[envVar]
    if (value !== seen) {
      seen = value
      key = value === undefined ? Option.none() : Option.some(Redacted.make(value))
    }
    return Effect.succeed(key)
  })
}

