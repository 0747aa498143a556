/**
 * OpenAI-compatible chat completions over `@effect/platform`'s HttpClient: one implementation
 * behind the `liteLLMProvider`, `openAIProvider` and `ollamaProvider` presets. The provider
 * itself is thin — domain messages to the wire format and back, SSE decoded with
 * `@effect/experimental`'s `Sse` — and `make` puts it behind the kernel's policy
 * (`Resilience.withResilience`, and a `RateLimiter` when `rateLimit` is set).
 *
 * Response headers worth keeping (`x-litellm-*`, `x-ratelimit-*`, `x-request-id`) travel as
 * `metadata` on the `finish` chunk, on `LLMResponse.metadata` and on `ProviderError.metadata`;
 * that is also how the rate limiter learns the server's remaining quota.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Channel from "effect/Channel"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { ProviderError } from "../domain/Errors.js"
import { SecretsManager } from "../secrets/SecretsManager.js"
import * as LanguageModel from "./LanguageModel.js"
import * as RateLimiter from "./RateLimiter.js"
import { type ResilienceOptions, withResilience } from "./Resilience.js"
import { makeAnswers } from "./internal/openaiAnswer.js"
import { authorize, makeSend } from "./internal/openaiExchange.js"
import { makeHealth } from "./internal/openaiHealth.js"
import { keySource } from "./internal/openaiKey.js"
import { requestBody } from "./internal/openaiWire.js"
import { limitsOf } from "./internal/responseLimits.js"

/**
 * How `isAvailable` probes the server: `GET /v1/models` (any OpenAI-compatible server) or
 * LiteLLM's `GET /health/liveliness`. Neither costs a generation.
 *
 * @since 0.1.0
 */
export type HealthCheck = "models" | "liteLLMLiveliness"

/**
 * Everything one OpenAI-compatible provider needs. `baseUrl` may end with `/v1` or not.
 * The API key is taken, per request, from `apiKey`, else the `SecretsManager` in context
 * (`resolveProviderKey(id)`), else the environment variable `apiKeyEnvVar` (default
 * `<ID>_API_KEY`); without one no `Authorization` header is sent.
 *
 * @since 0.1.0
 */
export interface OpenAiCompatibleConfig {
  readonly id: string
  readonly model: string
  readonly baseUrl: string
  readonly name?: string
  readonly apiKey?: Redacted.Redacted<string>
  readonly apiKeyEnvVar?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly healthCheck?: HealthCheck
  /** How long a health verdict is trusted (default 30 s). */
  readonly healthTtl?: Duration.DurationInput
  /** Bound on one health probe (default 5 s); a probe that takes longer means unavailable. */
  readonly healthTimeout?: Duration.DurationInput
  readonly resilience?: ResilienceOptions
  readonly rateLimit?: RateLimiter.RateLimitOptions
  /** Bounds on what is read of the server's answers (defaults: see `LanguageModel.ResponseLimits`). */
  readonly limits?: LanguageModel.ResponseLimits
  /**
   * Whether the model takes images (default `true`). With `false`, a conversation with an image
   * part fails with `InvalidRequest` before anything is sent, instead of with whatever the
   * server makes of it.
   */
  readonly images?: boolean
  /**
   * Whether answers are streamed (default `true`). `false` is for endpoints that cannot stream
   * tool calls: the request says `stream: false` and the whole answer is read, as the same chunks.
   * A request's `ChatOptions.stream` overrides it.
   */
  readonly stream?: boolean
}

/**
 * The options of the presets: the model, and anything of `OpenAiCompatibleConfig` to override
 * (the preset supplies `id`, `baseUrl`, the key's environment variable and the display name).
 *
 * @since 0.1.0
 */
export type ProviderOptions = Partial<Omit<OpenAiCompatibleConfig, "model">> & { readonly model: string }

/**
 * The provider without any policy: no retries, no timeouts, no rate limit. Prefer `make`; this
 * is for callers that bring their own policy.
 *
 * @since 0.1.0
 */
export const makeRaw = (
  config: OpenAiCompatibleConfig
): Effect.Effect<LanguageModel.Service, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const secrets = yield* Effect.serviceOption(SecretsManager)
    const providerId = config.id
    const name = config.name ?? `${config.id} (${config.model})`
    const root = rootUrl(config.baseUrl)
    if (root === undefined) return misconfigured(config, `the base URL "${config.baseUrl}" is not an http(s) URL`)
    const limits = limitsOf(config.limits)
    const resolveKey = keySource({
      providerId,
      apiKey: config.apiKey,
      secrets,
      envVar: config.apiKeyEnvVar ?? `${providerId.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_API_KEY`
    })
    const health = yield* makeHealth(config, root, limits.maxResponseBytes, (url) =>
      Effect.flatMap(resolveKey, (key) => client.execute(authorize(config, HttpClientRequest.get(url), key))))
    const send = makeSend({ client, config, root, limits, resolveKey, health })
    const { answer, readCompletion, reads } = makeAnswers(providerId, root, limits)

    return LanguageModel.make({
      id: providerId,
      name,
      isAvailable: health.isAvailable,
      // The answer as reads: what the agent and the resilience policy read, without a stream.
      open: (messages, tools, options) =>
        Effect.flatMap(send(requestBody(config, messages, tools, options, true)), (sent) => reads(sent, tools)),
      chat: (messages, tools, options) =>
        Effect.flatMap(
          send(requestBody(config, messages, tools, options, false)),
          ({ metadata, response, secret }) => readCompletion(response, secret, metadata, tools)
        ),
      stream: (messages, tools, options) =>
        Stream.fromChannel(
          Channel.unwrap(Effect.map(send(requestBody(config, messages, tools, options, true)), (sent) => answer(sent, tools)))
        )
    })
  })

/**
 * The provider behind the kernel's policy: `Resilience.withResilience` with
 * `config.resilience`, and a `RateLimiter` when `config.rateLimit` is set. A configuration that
 * cannot work (a base URL that is not a URL, an invalid rate limit) does not fail here: every
 * call fails with an `InvalidRequest` that says what to fix, and `isAvailable` is `false`.
 *
 * @since 0.1.0
 */
export const make = (
  config: OpenAiCompatibleConfig
): Effect.Effect<LanguageModel.Service, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const raw = yield* makeRaw(config)
    const resilience: ResilienceOptions = { model: config.model, ...config.resilience }
    if (config.rateLimit === undefined) return withResilience(raw, resilience)
    const limiter = yield* Effect.either(RateLimiter.make({
      ...(config.resilience?.requestTimeout !== undefined ? { maxWait: config.resilience.requestTimeout } : {}),
      ...config.rateLimit
    }))
    if (limiter._tag === "Left") return misconfigured(config, limiter.left.message)
    return withResilience(raw, { ...resilience, rateLimiter: limiter.right })
  })

const preset = (defaults: { readonly id: string; readonly label: string; readonly baseUrl: string; readonly envVar: string }) =>
(options: ProviderOptions): Layer.Layer<LanguageModel.LanguageModel, never, HttpClient.HttpClient> =>
  Layer.effect(
    LanguageModel.LanguageModel,
    make({
      ...options,
      id: options.id ?? defaults.id,
      baseUrl: options.baseUrl ?? defaults.baseUrl,
      apiKeyEnvVar: options.apiKeyEnvVar ?? defaults.envVar,
      name: options.name ?? `${defaults.label} (${options.model})`
    })
  )

/**
 * A LiteLLM proxy (id `litellm`, default `http://127.0.0.1:4000`, key `LITELLM_API_KEY`).
 *
 * @example
 * ```ts
 * const program = Agent.run(input).pipe(
 *   Stream.provideLayer(liteLLMProvider({ model: "openai/gpt-4o-mini" })),
 *   Stream.provideLayer(NodeHttpClient.layerUndici)
 * )
 * ```
 * @since 0.1.0
 */
export const liteLLMProvider = preset({
  id: "litellm",
  label: "LiteLLM",
  baseUrl: "http://127.0.0.1:4000",
  envVar: "LITELLM_API_KEY"
})

/**
 * OpenAI (id `openai`, `https://api.openai.com`, key `OPENAI_API_KEY`).
 *
 * @since 0.1.0
 */
export const openAIProvider = preset({
  id: "openai",
  label: "OpenAI",
  baseUrl: "https://api.openai.com",
  envVar: "OPENAI_API_KEY"
})

/**
 * Ollama's OpenAI-compatible API (id `ollama`, `http://127.0.0.1:11434`, key `OLLAMA_API_KEY`,
 * usually none).
 *
 * @since 0.1.0
 */
export const ollamaProvider = preset({
  id: "ollama",
  label: "Ollama",
  baseUrl: "http://127.0.0.1:11434",
  envVar: "OLLAMA_API_KEY"
})

/** The server root without a trailing `/v1`, or `undefined` when the URL is unusable. */
const rootUrl = (baseUrl: string): string | undefined => {
  let url: URL
  try {
    url = new URL(baseUrl)
  } catch {
    return undefined
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined
  const trimmed = `${url.origin}${url.pathname}`.replace(/\/+$/, "")
  return trimmed.endsWith("/v1") ? trimmed.slice(0, -3) : trimmed
}

/** A provider whose configuration cannot work: every call says what to fix. */
const misconfigured = (config: OpenAiCompatibleConfig, problem: string): LanguageModel.Service => {
  const error = new ProviderError({
    reason: "InvalidRequest",
    providerId: config.id,
    retryable: false,
    message: `Provider "${config.id}" is misconfigured: ${problem}. Fix providers.${config.id} in the configuration.`
  })
  return LanguageModel.make({
    id: config.id,
    name: config.name ?? `${config.id} (${config.model})`,
    isAvailable: Effect.succeed(false),
    chat: () => Effect.fail(error),
    stream: () => Stream.fail(error)
  })
}
