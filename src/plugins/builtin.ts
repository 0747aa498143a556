/**
 * The built-in provider plugins — `openai`, `litellm`, `bedrock`, `ollama` — with their
 * pairing tools (`<id>_pair`, `<id>_unpair`) for conversational setup.
 *
 * Pairing stores the key through the `SecretsManager` (never echoing it), sets the model and
 * base URL, enables the plugin and points tiers at the provider by these rules:
 *
 * | provider | tiers it takes when paired |
 * |---|---|
 * | `openai`, `bedrock` | `complex`, `reasoning` (premium models for hard queries) |
 * | `litellm` | `moderate`, `complex`, `reasoning` (a proxy usually fronting several models) |
 * | `ollama` | `simple`, `moderate` (local and free) |
 *
 * Unpairing disables the plugin, points its tiers back at `routing.defaultProvider` (default
 * `ollama`; `openai` when ollama itself is unpaired) and, with `deleteKey`, deletes the key.
 * Both take effect on the next request: the router rebuilds providers when config or secrets
 * change.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Service as ConfigService } from "../config/ConfigManager.js"
import { HttpUrl } from "../config/KernelConfig.js"
import { PluginError } from "../domain/Errors.js"
import type { QueryTier } from "../domain/Message.js"
import * as OpenAiCompatible from "../providers/OpenAiCompatible.js"
import * as RateLimiter from "../providers/RateLimiter.js"
import { withResilience, type ResilienceOptions } from "../providers/Resilience.js"
import { buildProviderKeyName, SecretsManager, type Service as SecretsService } from "../secrets/SecretsManager.js"
import { localTools, tool } from "../tools/LocalTools.js"
import type { ProviderPlugin } from "./ProviderPlugin.js"

const version = "0.1.0"

const read = (config: ConfigService, key: string) => Effect.map(config.get(key), Option.getOrUndefined)

const readString = (config: ConfigService, key: string) =>
  Effect.map(read(config, key), (value) => Predicate.isString(value) && value !== "" ? value : undefined)

/** The retry and timeout policy a provider's config asks for (`providers.<id>.timeouts`). */
const resilienceOf = (config: ConfigService, id: string) =>
  Effect.map(read(config, `providers.${id}.timeouts`), (value): ResilienceOptions => {
    if (!Predicate.isRecord(value)) return {}
    const ms = (key: string) => Predicate.isNumber(value[key]) ? value[key] as number : undefined
    const firstChunk = ms("firstChunkMs")
    const idle = ms("idleMs")
    const request = ms("requestMs")
    return {
      ...(firstChunk !== undefined ? { firstChunkTimeout: firstChunk } : {}),
      ...(idle !== undefined ? { idleTimeout: idle } : {}),
      ...(request !== undefined ? { requestTimeout: request } : {})
    }
  })

const openAiCompatiblePlugin = (options: {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly defaultModel: string
  readonly defaultBaseUrl: (hasKey: boolean) => string
  readonly envVar: string
  readonly pairTiers: ReadonlyArray<QueryTier>
  readonly keyRequired: boolean
}): ProviderPlugin => ({
  id: options.id,
  name: options.name,
  description: options.description,
  type: "provider",
  version,
  createProvider: (secrets, config) =>
    Effect.gen(function*() {
      const id = options.id
      const model = (yield* readString(config, `providers.${id}.model`)) ?? options.defaultModel
      const hasKey = yield* secrets.check(buildProviderKeyName(id)).pipe(Effect.orElseSucceed(() => false))
      const baseUrl = (yield* readString(config, `providers.${id}.baseUrl`)) ?? options.defaultBaseUrl(hasKey)
      const rateLimit = yield* read(config, `providers.${id}.rateLimit`)
      const healthCheck = yield* read(config, `providers.${id}.healthCheck`)
      return yield* OpenAiCompatible.make({
        id,
        model,
        baseUrl,
        name: `${options.name} (${model})`,
        apiKeyEnvVar: options.envVar,
        resilience: yield* resilienceOf(config, id),
        ...(Predicate.isRecord(rateLimit) ? { rateLimit: rateLimit as OpenAiCompatible.OpenAiCompatibleConfig["rateLimit"] & {} } : {}),
        ...(healthCheck === "models" || healthCheck === "liteLLMLiveliness" ? { healthCheck } : {})
      }).pipe(Effect.provideService(SecretsManager, secrets))
    }),
  getPairingTools: (secrets, config) =>
    pairingTools({
      id: options.id,
      name: options.name,
      defaultModel: options.defaultModel,
      tiers: options.pairTiers,
      secrets,
      config,
      parameters: (options.keyRequired
        ? Schema.Struct({
          apiKey: credentialField(`${options.name} API key`),
          model: modelField(options.defaultModel),
          baseUrl: baseUrlField
        })
        : Schema.Struct({
          apiKey: Schema.optional(credentialField(`${options.name} API key (optional)`)),
          model: modelField(options.defaultModel),
          baseUrl: baseUrlField
        })) as Schema.Schema<PairArgs, unknown>,
      store: (args) =>
        args.apiKey !== undefined ? secrets.store(buildProviderKeyName(options.id), Redacted.make(args.apiKey)) : Effect.void
    })
})

/** @since 0.1.0 */
export const openai: ProviderPlugin = openAiCompatiblePlugin({
  id: "openai",
  name: "OpenAI",
  description: "OpenAI GPT models (GPT-4.1, GPT-4o, …) over the OpenAI API.",
  defaultModel: "gpt-4.1",
  defaultBaseUrl: () => "https://api.openai.com",
  envVar: "OPENAI_API_KEY",
  pairTiers: ["complex", "reasoning"],
  keyRequired: true
})

/** @since 0.1.0 */
export const litellm: ProviderPlugin = openAiCompatiblePlugin({
  id: "litellm",
  name: "LiteLLM",
  description: "Any model behind a LiteLLM proxy (base URL from providers.litellm.baseUrl).",
  defaultModel: "gpt-4o-mini",
  defaultBaseUrl: () => "http://127.0.0.1:4000",
  envVar: "LITELLM_API_KEY",
  pairTiers: ["moderate", "complex", "reasoning"],
  keyRequired: false
})

/** @since 0.1.0 */
export const ollama: ProviderPlugin = openAiCompatiblePlugin({
  id: "ollama",
  name: "Ollama",
  description: "Ollama models: local at http://127.0.0.1:11434, or Ollama's cloud with a key.",
  defaultModel: "llama3.2",
  defaultBaseUrl: (hasKey) => hasKey ? "https://ollama.com" : "http://127.0.0.1:11434",
  envVar: "OLLAMA_API_KEY",
  pairTiers: ["simple", "moderate"],
  keyRequired: false
})

/** @since 0.1.0 */
export const bedrock: ProviderPlugin = {
  id: "bedrock",
  name: "AWS Bedrock",
  description: "Models on AWS Bedrock (Claude, Llama, …) through the Converse API.",
  type: "provider",
  version,
  createProvider: (secrets, config) =>
    Effect.gen(function*() {
      const model = (yield* readString(config, "providers.bedrock.model")) ??
        "anthropic.claude-3-5-haiku-20241022-v1:0"
      const region = yield* readString(config, "providers.bedrock.region")
      const endpoint = yield* readString(config, "providers.bedrock.baseUrl")
      const keyError = (error: { readonly message: string }) =>
        new PluginError({
          reason: "LoadFailed",
          pluginId: "bedrock",
          message: `The Bedrock credentials could not be read from the secrets store: ${error.message}`
        })
      const accessKeyId = yield* secrets.retrieve("provider.bedrock.accessKeyId").pipe(Effect.mapError(keyError))
      const secretAccessKey = yield* secrets.retrieve("provider.bedrock.secretAccessKey").pipe(Effect.mapError(keyError))
      const credentials = Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)
        ? { credentials: { accessKeyId: accessKeyId.value, secretAccessKey: secretAccessKey.value } }
        : {}
      // Loaded on first use: the AWS SDK costs most of a second to import.
      const Bedrock = yield* Effect.promise(() => import("../providers/Bedrock.js"))
      const raw = yield* Bedrock.make({
        model,
        ...(region !== undefined ? { region } : {}),
        ...(endpoint !== undefined ? { endpoint } : {}),
        ...credentials
      })
      const rateLimit = yield* read(config, "providers.bedrock.rateLimit")
      const rateLimiter = Predicate.isRecord(rateLimit)
        ? yield* RateLimiter.make(rateLimit as RateLimiter.RateLimitOptions).pipe(
          Effect.mapError((error) =>
            new PluginError({ reason: "LoadFailed", pluginId: "bedrock", message: `providers.bedrock.rateLimit: ${error.message}` })
          )
        )
        : undefined
      return withResilience(raw, {
        model,
        ...(yield* resilienceOf(config, "bedrock")),
        ...(rateLimiter !== undefined ? { rateLimiter } : {})
      })
    }),
  getPairingTools: (secrets, config) =>
    pairingTools({
      id: "bedrock",
      name: "AWS Bedrock",
      defaultModel: "anthropic.claude-3-5-haiku-20241022-v1:0",
      tiers: ["complex", "reasoning"],
      secrets,
      config,
      parameters: Schema.Struct({
        model: modelField("anthropic.claude-3-5-haiku-20241022-v1:0"),
        baseUrl: baseUrlField,
        accessKeyId: Schema.optional(credentialField("AWS access key id (omit to use the default credential chain)")),
        secretAccessKey: Schema.optional(credentialField("AWS secret access key")),
        region: Schema.optional(Schema.NonEmptyTrimmedString.annotations({ description: "AWS region, e.g. us-east-1" }))
      }) as Schema.Schema<PairArgs, unknown>,
      store: (args) =>
        Effect.gen(function*() {
          if (args.accessKeyId !== undefined && args.secretAccessKey !== undefined) {
            yield* secrets.store("provider.bedrock.accessKeyId", Redacted.make(args.accessKeyId))
            yield* secrets.store("provider.bedrock.secretAccessKey", Redacted.make(args.secretAccessKey))
          }
          if (args.region !== undefined) yield* config.set("providers.bedrock.region", args.region)
        })
    })
}

/** All built-in plugins. @since 0.1.0 */
export const builtins: ReadonlyArray<ProviderPlugin> = [openai, litellm, bedrock, ollama]

const defaultProviderOf = (config: ConfigService, unpaired: string) =>
  Effect.map(readString(config, "routing.defaultProvider"), (configured) => {
    const fallback = configured ?? "ollama"
    return fallback === unpaired ? (unpaired === "ollama" ? "openai" : "ollama") : fallback
  })

const tiersAll: ReadonlyArray<QueryTier> = ["simple", "moderate", "complex", "reasoning"]

/**
 * The `<id>_pair` / `<id>_unpair` tools of one provider. `credentials` is the Schema of the
 * provider's own credential fields; `store` saves them.
 */
/** Every field a pairing tool may take; each provider's Schema picks its own. */
interface PairArgs {
  readonly apiKey?: string
  readonly accessKeyId?: string
  readonly secretAccessKey?: string
  readonly region?: string
  readonly model?: string
  readonly baseUrl?: string
}

const modelField = (defaultModel: string) =>
  Schema.optional(Schema.NonEmptyTrimmedString.annotations({ description: `Model to use (default ${defaultModel})` }))
/**
 * A credential as pasted: surrounding whitespace is trimmed rather than refused, because a
 * refusal would quote the value in the error.
 */
const credentialField = (description: string) =>
  Schema.transform(Schema.String.annotations({ description }), Schema.NonEmptyTrimmedString, {
    strict: true,
    decode: (text) => text.trim(),
    encode: (text) => text
  })
/** Checked here, before anything is stored, so a bad URL cannot leave a half-done pairing. */
const baseUrlField = Schema.optional(
  Schema.String.annotations({ description: "Base URL of the API (for proxies and self-hosted servers)" }).pipe(
    Schema.filter((text) => text === "" || Schema.is(HttpUrl)(text) || `must be an http(s) URL such as "http://127.0.0.1:4000", got ${JSON.stringify(text)}`)
  )
)

const pairingTools = (options: {
  readonly id: string
  readonly name: string
  readonly defaultModel: string
  readonly tiers: ReadonlyArray<QueryTier>
  readonly secrets: SecretsService
  readonly config: ConfigService
  /** The provider's own parameters (credentials, model, base URL). */
  readonly parameters: Schema.Schema<PairArgs, unknown>
  readonly store: (args: PairArgs) => Effect.Effect<void, unknown>
}) => {
  const { config, id, secrets } = options
  const fail = (what: string) => (error: unknown) =>
    Effect.fail(`Pairing ${options.name} failed while ${what}: ${Predicate.hasProperty(error, "message") ? String(error.message) : "unknown error"}`)
  const pair = tool({
    name: `${id}_pair`,
    description: `Pair ${options.name} as a model provider: stores its credentials securely, sets the model, ` +
      `enables it and routes the ${options.tiers.join(" and ")} tiers to it. Takes effect on the next request.`,
    parameters: options.parameters,
    sensitive: ["apiKey", "accessKeyId", "secretAccessKey"],
    handler: (args) =>
      Effect.gen(function*() {
        yield* options.store(args).pipe(Effect.catchAll(fail("storing the credentials")))
        const model = args.model ?? (yield* readString(config, `providers.${id}.model`)) ?? options.defaultModel
        yield* config.set(`providers.${id}.model`, model).pipe(Effect.catchAll(fail("setting the model")))
        if (args.baseUrl !== undefined && args.baseUrl !== "") {
          yield* config.set(`providers.${id}.baseUrl`, args.baseUrl).pipe(Effect.catchAll(fail("setting the base URL")))
        }
        const enabled = yield* read(config, "plugins.enabled")
        const list = Array.isArray(enabled) ? enabled.filter(Predicate.isString) : []
        if (!list.includes(id)) {
          yield* config.set("plugins.enabled", [...list, id]).pipe(Effect.catchAll(fail("enabling the plugin")))
        }
        for (const tier of options.tiers) {
          yield* config.set(`routing.tierMapping.${tier}`, id).pipe(Effect.catchAll(fail("updating the tier mapping")))
        }
        return `${options.name} paired (model ${model}). Tiers ${options.tiers.join(", ")} now route to ${id}; ` +
          `this takes effect on the next request.`
      })
  })
  const unpair = tool({
    name: `${id}_unpair`,
    description: `Disconnect ${options.name}: disables it and routes its tiers back to the default provider. ` +
      `Set deleteKey to also delete its stored credentials.`,
    parameters: Schema.Struct({
      deleteKey: Schema.optional(Schema.Boolean.annotations({ description: "Also delete the stored credentials" }))
    }),
    handler: ({ deleteKey }) =>
      Effect.gen(function*() {
        const enabled = yield* read(config, "plugins.enabled")
        const list = Array.isArray(enabled) ? enabled.filter(Predicate.isString) : []
        yield* config.set("plugins.enabled", list.filter((name) => name !== id)).pipe(
          Effect.catchAll(fail("disabling the plugin"))
        )
        const fallback = yield* defaultProviderOf(config, id)
        const moved: Array<QueryTier> = []
        for (const tier of tiersAll) {
          if ((yield* readString(config, `routing.tierMapping.${tier}`)) === id) {
            yield* config.set(`routing.tierMapping.${tier}`, fallback).pipe(Effect.catchAll(fail("updating the tier mapping")))
            moved.push(tier)
          }
        }
        if (deleteKey === true) {
          const keys = yield* secrets.list(`provider.${id}.*`).pipe(Effect.catchAll(fail("listing the credentials")))
          for (const key of keys) yield* secrets.delete(key).pipe(Effect.catchAll(fail("deleting the credentials")))
        }
        return `${options.name} disabled.` +
          (moved.length > 0 ? ` Tiers ${moved.join(", ")} now route to ${fallback}.` : "") +
          (deleteKey === true ? " Its stored credentials were deleted." : "")
      })
  })
  return localTools([pair, unpair], { name: `${id}-pairing` })
}
