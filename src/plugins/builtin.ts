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
 * Every tier keeps a working route. Pairing also takes the tiers still mapped to a built-in
 * provider that is not enabled (the default `ollama`, when it is not); tiers on an enabled
 * provider, or on an id no built-in has (an external plugin's), are left alone. Unpairing
 * disables the plugin and points each of its tiers at the provider of the nearest tier that
 * stays on an enabled provider (by tier distance, the higher tier first at equal distance, as
 * the router's fallbacks); failing that at `routing.defaultProvider` if it is enabled, else at
 * the first enabled built-in. With `deleteKey` it also deletes the key. Both take effect on the
 * next request: the router rebuilds providers when config or secrets change.
 *
 * A stored key is bound to the base URL it was paired for and is never sent anywhere else: a
 * provider whose configured base URL no longer matches refuses to start and says how to pair the
 * new URL. The tools a plugin offers to a model (`getPairingTools`) cannot change a base URL,
 * replace or delete stored credentials; `operatorPairingTools` can, for a person at a terminal
 * (`scripts/pair.ts`).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Service as ConfigService } from "../config/ConfigManager.js"
import { PluginError } from "../domain/Errors.js"
import type { QueryTier } from "../domain/Message.js"
import type * as LanguageModel from "../providers/LanguageModel.js"
import * as OpenAiCompatible from "../providers/OpenAiCompatible.js"
import * as RateLimiter from "../providers/RateLimiter.js"
import { withResilience, type ResilienceOptions } from "../providers/Resilience.js"
import { buildProviderKeyName, type Service as SecretsService } from "../secrets/SecretsManager.js"
import type { ToolProvider } from "../tools/ToolProvider.js"
import * as KeyBinding from "./internal/keyBinding.js"
import { credentialField, pairingTools, read, readString, storeApiKey, type Trust } from "./internal/pairing.js"
import type { ProviderPlugin } from "./ProviderPlugin.js"

const version = "0.1.0"

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

interface OpenAiCompatiblePluginOptions {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly defaultModel: string
  readonly defaultBaseUrl: (hasKey: boolean) => string
  readonly envVar: string
  readonly pairTiers: ReadonlyArray<QueryTier>
  readonly keyRequired: boolean
}

/** The bounds on what is read of a provider's answers (`providers.<id>.limits`). */
const limitsOf = (config: ConfigService, id: string) =>
  Effect.map(read(config, `providers.${id}.limits`), (value): { readonly limits?: LanguageModel.ResponseLimits } => {
    if (!Predicate.isRecord(value)) return {}
    const limits: { -readonly [K in keyof LanguageModel.ResponseLimits]: number } = {}
    for (const key of ["maxResponseBytes", "maxErrorBodyBytes", "maxEventBytes"] as const) {
      if (Predicate.isNumber(value[key])) limits[key] = value[key] as number
    }
    return { limits }
  })

const openAiCompatiblePlugin = (options: OpenAiCompatiblePluginOptions): ProviderPlugin => ({
  id: options.id,
  name: options.name,
  description: options.description,
  type: "provider",
  version,
  createProvider: (secrets, config) =>
    Effect.gen(function*() {
      const id = options.id
      const model = (yield* readString(config, `providers.${id}.model`)) ?? options.defaultModel
      const storedKey = yield* secrets.retrieve(buildProviderKeyName(id)).pipe(Effect.mapError(storeError(id)))
      const baseUrl = (yield* readString(config, `providers.${id}.baseUrl`)) ??
        options.defaultBaseUrl(Option.isSome(storedKey))
      if (Option.isSome(storedKey)) {
        yield* KeyBinding.checkBinding({ secrets, providerId: id, baseUrl, defaultBaseUrl: options.defaultBaseUrl(true) })
      }
      // The stored key (checked above), else the environment's: the provider reads no store itself,
      // so nothing but this decision picks the key it sends.
      const apiKey = Option.isSome(storedKey) ? storedKey : yield* environmentKey(options.envVar)
      const rateLimit = yield* read(config, `providers.${id}.rateLimit`)
      const healthCheck = yield* read(config, `providers.${id}.healthCheck`)
      return yield* OpenAiCompatible.make({
        id,
        model,
        baseUrl,
        name: `${options.name} (${model})`,
        apiKeyEnvVar: options.envVar,
        ...(Option.isSome(apiKey) ? { apiKey: apiKey.value } : {}),
        resilience: yield* resilienceOf(config, id),
        ...(yield* limitsOf(config, id)),
        ...(Predicate.isRecord(rateLimit) ? { rateLimit: rateLimit as OpenAiCompatible.OpenAiCompatibleConfig["rateLimit"] & {} } : {}),
        ...(healthCheck === "models" || healthCheck === "liteLLMLiveliness" ? { healthCheck } : {})
      })
    }),
  getPairingTools: (secrets, config) => pairingToolsOf(options.id, secrets, config, "model")
})

const openAiCompatiblePairing = (options: OpenAiCompatiblePluginOptions) =>
(secrets: SecretsService, config: ConfigService, trust: Trust): ToolProvider =>
  pairingTools({
    id: options.id,
    name: options.name,
    defaultModel: options.defaultModel,
    tiers: options.pairTiers,
    secrets,
    config,
    trust,
    fields: options.keyRequired
      ? { apiKey: credentialField(`${options.name} API key`) }
      : { apiKey: Schema.optional(credentialField(`${options.name} API key (optional)`)) },
    secretNames: [buildProviderKeyName(options.id)],
    defaultBaseUrl: options.defaultBaseUrl,
    store: storeApiKey(secrets, buildProviderKeyName(options.id))
  })

const storeError = (providerId: string) => (error: { readonly message: string }) =>
  new PluginError({
    reason: "LoadFailed",
    pluginId: providerId,
    message: `The ${providerId} credentials could not be read from the secrets store: ${error.message}`
  })

const environmentKey = (envVar: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>> =>
  Config.option(Config.redacted(envVar)).pipe(
    Effect.map(Option.filter((value) => Redacted.value(value).trim() !== "")),
    Effect.orElseSucceed(() => Option.none())
  )

const openaiOptions: OpenAiCompatiblePluginOptions = {
  id: "openai",
  name: "OpenAI",
  description: "OpenAI GPT models (GPT-4.1, GPT-4o, …) over the OpenAI API.",
  defaultModel: "gpt-4.1",
  defaultBaseUrl: () => "https://api.openai.com",
  envVar: "OPENAI_API_KEY",
  pairTiers: ["complex", "reasoning"],
  keyRequired: true
}

/** @since 0.1.0 */
export const openai: ProviderPlugin = openAiCompatiblePlugin(openaiOptions)

const litellmOptions: OpenAiCompatiblePluginOptions = {
  id: "litellm",
  name: "LiteLLM",
  description: "Any model behind a LiteLLM proxy (base URL from providers.litellm.baseUrl).",
  defaultModel: "gpt-4o-mini",
  defaultBaseUrl: () => "http://127.0.0.1:4000",
  envVar: "LITELLM_API_KEY",
  pairTiers: ["moderate", "complex", "reasoning"],
  keyRequired: false
}

/** @since 0.1.0 */
export const litellm: ProviderPlugin = openAiCompatiblePlugin(litellmOptions)

const ollamaOptions: OpenAiCompatiblePluginOptions = {
  id: "ollama",
  name: "Ollama",
  description: "Ollama models: local at http://127.0.0.1:11434, or Ollama's cloud with a key.",
  defaultModel: "llama3.2",
  defaultBaseUrl: (hasKey) => hasKey ? "https://ollama.com" : "http://127.0.0.1:11434",
  envVar: "OLLAMA_API_KEY",
  pairTiers: ["simple", "moderate"],
  keyRequired: false
}

/** @since 0.1.0 */
export const ollama: ProviderPlugin = openAiCompatiblePlugin(ollamaOptions)

/** @since 0.1.0 */
export const bedrock: ProviderPlugin = {
  id: "bedrock",
  name: "AWS Bedrock",
  description: "Models on AWS Bedrock (Claude, Llama, …) through the Converse API.",
  type: "provider",
  version,
  createProvider: (secrets, config) =>
    Effect.gen(function*() {
      const model = (yield* readString(config, "providers.bedrock.model")) ?? bedrockDefaultModel
      const region = yield* readString(config, "providers.bedrock.region")
      const endpoint = yield* readString(config, "providers.bedrock.baseUrl")
      const accessKeyId = yield* secrets.retrieve("provider.bedrock.accessKeyId").pipe(Effect.mapError(storeError("bedrock")))
      const secretAccessKey = yield* secrets.retrieve("provider.bedrock.secretAccessKey").pipe(
        Effect.mapError(storeError("bedrock"))
      )
      const stored = Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)
      if (stored) {
        yield* KeyBinding.checkBinding({ secrets, providerId: "bedrock", baseUrl: endpoint, defaultBaseUrl: undefined })
      }
      const credentials = stored
        ? { credentials: { accessKeyId: accessKeyId.value, secretAccessKey: secretAccessKey.value } }
        : {}
      // Loaded on first use: the AWS SDK costs most of a second to import.
      const Bedrock = yield* Effect.promise(() => import("../providers/Bedrock.js"))
      const raw = yield* Bedrock.make({
        model,
        ...(region !== undefined ? { region } : {}),
        ...(endpoint !== undefined ? { endpoint } : {}),
        ...(yield* limitsOf(config, "bedrock")),
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
  getPairingTools: (secrets, config) => pairingToolsOf("bedrock", secrets, config, "model")
}

const bedrockDefaultModel = "anthropic.claude-3-5-haiku-20241022-v1:0"

const bedrockPairing = (secrets: SecretsService, config: ConfigService, trust: Trust): ToolProvider =>
  pairingTools({
    id: "bedrock",
    name: "AWS Bedrock",
    defaultModel: bedrockDefaultModel,
    tiers: ["complex", "reasoning"],
    secrets,
    config,
    trust,
    fields: {
      accessKeyId: Schema.optional(credentialField("AWS access key id (omit to use the default credential chain)")),
      secretAccessKey: Schema.optional(credentialField("AWS secret access key")),
      region: Schema.optional(Schema.NonEmptyTrimmedString.annotations({ description: "AWS region, e.g. us-east-1" }))
    },
    secretNames: ["provider.bedrock.accessKeyId", "provider.bedrock.secretAccessKey"],
    defaultBaseUrl: () => undefined,
    store: (args) =>
      Effect.gen(function*() {
        if (args.accessKeyId !== undefined && args.secretAccessKey !== undefined) {
          yield* secrets.store("provider.bedrock.accessKeyId", Redacted.make(args.accessKeyId))
          yield* secrets.store("provider.bedrock.secretAccessKey", Redacted.make(args.secretAccessKey))
        }
        if (args.region !== undefined) yield* config.set("providers.bedrock.region", args.region)
      })
  })

const openAiCompatibleOptions: Record<string, OpenAiCompatiblePluginOptions> = {
  openai: openaiOptions,
  litellm: litellmOptions,
  ollama: ollamaOptions
}

/** All built-in plugins. @since 0.1.0 */
export const builtins: ReadonlyArray<ProviderPlugin> = [openai, litellm, bedrock, ollama]

const pairingToolsOf = (id: string, secrets: SecretsService, config: ConfigService, trust: Trust): ToolProvider =>
  id === "bedrock" ? bedrockPairing(secrets, config, trust) : openAiCompatiblePairing(openAiCompatibleOptions[id]!)(secrets, config, trust)

/**
 * The pairing tools of a built-in provider for a person at a terminal (`scripts/pair.ts`): unlike
 * the ones `getPairingTools` offers to a model, they take a base URL, replace stored credentials
 * and, on unpairing, delete them. Never hand these to a model.
 *
 * @since 0.1.0
 */
export const operatorPairingTools = (
  providerId: string,
  secrets: SecretsService,
  config: ConfigService
): Option.Option<ToolProvider> =>
  builtins.some((plugin) => plugin.id === providerId)
    ? Option.some(pairingToolsOf(providerId, secrets, config, "operator"))
    : Option.none()
