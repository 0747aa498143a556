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
import type * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ProviderError } from "../domain/Errors.js"
import type { ChatChunk, LLMResponse, ToolDefinition } from "../domain/Message.js"
import { recording } from "../internal/tracing.js"
import { SecretsManager } from "../secrets/SecretsManager.js"
import * as LanguageModel from "./LanguageModel.js"
import * as RateLimiter from "./RateLimiter.js"
import { type OpenPull, type Reads, type ResilienceOptions, withPullSource, withResilience } from "./Resilience.js"
import * as Errors from "./internal/openaiErrors.js"
import { BodyReader, nodeBody, readBounded } from "./internal/openaiBody.js"
import { decodeChannel, decodeNext, nextChannel } from "./internal/openaiStream.js"
import { decodeCompletion, requestBody } from "./internal/openaiWire.js"
import { limitsOf, responseTooLarge } from "./internal/responseLimits.js"

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
    const completionsUrl = `${root}/v1/chat/completions`
    const limits = limitsOf(config.limits)
    const envVar = config.apiKeyEnvVar ?? `${providerId.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_API_KEY`

    const resolveKey: Effect.Effect<Option.Option<Redacted.Redacted<string>>, ProviderError> = config.apiKey !== undefined
      ? Effect.succeed(Option.some(config.apiKey))
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
      : keyFromEnv(envVar)

    const authorize = (request: HttpClientRequest.HttpClientRequest, key: Option.Option<Redacted.Redacted<string>>) => {
      const withHeaders = config.headers === undefined ? request : HttpClientRequest.setHeaders(request, config.headers)
      return Option.isSome(key) ? HttpClientRequest.bearerToken(withHeaders, key.value) : withHeaders
    }

    const health = yield* makeHealth(config, root, limits.maxResponseBytes, (url) =>
      Effect.flatMap(
        resolveKey,
        (key) => client.execute(authorize(HttpClientRequest.get(url), key))
      ))

    // The completions request without its body, built again only when the key changes.
    let postFor: string | undefined
    let post: HttpClientRequest.HttpClientRequest | undefined
    const completionsRequest = (key: Option.Option<Redacted.Redacted<string>>, secret: string | undefined) => {
      if (post === undefined || postFor !== secret) {
        post = authorize(HttpClientRequest.post(completionsUrl), key)
        postFor = secret
      }
      return post
    }

    // An error's body is read only as far as its excerpt could need, however much is sent.
    const failed = (response: HttpClientResponse.HttpClientResponse, headers: Headers.Headers, secret: string | undefined) =>
      Effect.gen(function*() {
        const body = yield* Effect.either(readBounded(response, limits.maxErrorBodyBytes, identity))
        const error = Errors.fromStatus({
          providerId,
          status: response.status,
          body: body._tag === "Right" ? body.right.text : "",
          headers,
          now: yield* Clock.currentTimeMillis,
          secret
        })
        if (error.reason === "Unauthorized") yield* health.learn(false)
        return yield* Effect.fail(error)
      })

    // The platform's client makes a span per request (an attribute for every header, random
    // ids, trace headers added to the request): measured at 40-100 µs of CPU a request. With
    // Effect's built-in tracer no span is ever exported, so that span and its trace headers are
    // left out; with a real tracer (OpenTelemetry, say) they are kept.
    const execute = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.withFiberRuntime<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>((fiber) =>
        !recording(fiber)
          ? Effect.withTracerEnabled(client.execute(request), false)
          : client.execute(request)
      )

    // Sends the request and turns a non-2xx answer into a ProviderError; health is learned here.
    // Written without `Effect.gen`: this runs once per model call.
    const send = (body: Record<string, unknown>): Effect.Effect<Sent, ProviderError> =>
      Effect.flatMap(resolveKey, (key) => {
        const secret = Option.isSome(key) ? Redacted.value(key.value) : undefined
        const request = HttpClientRequest.bodyUnsafeJson(completionsRequest(key, secret), body)
        return Effect.matchEffect(execute(request), {
          onFailure: (error) =>
            Effect.zipRight(
              health.learn(false),
              Effect.fail(Errors.network(providerId, root, error.cause ?? error, "before an answer arrived"))
            ),
          onSuccess: (response): Effect.Effect<Sent, ProviderError> => {
            // The platform builds the headers anew on every read.
            const headers = response.headers
            if (response.status < 200 || response.status >= 300) return failed(response, headers, secret)
            return Effect.as(health.learn(true), {
              response,
              secret,
              metadata: Errors.pickMetadata(headers, secret),
              // Some servers ignore `stream: true` and answer whole; that is accepted too.
              whole: (headers["content-type"] ?? "").includes("application/json")
            })
          }
        })
      })

    const readCompletion = (
      response: HttpClientResponse.HttpClientResponse,
      secret: string | undefined,
      metadata: Record<string, string> | undefined,
      tools: ReadonlyArray<ToolDefinition> | undefined
    ): Effect.Effect<LLMResponse, ProviderError> =>
      Effect.flatMap(
        readBounded(response, limits.maxResponseBytes, (cause) =>
          Errors.network(providerId, root, cause, "while reading the answer")),
        ({ complete, text }) => {
          if (!complete) return Effect.fail(responseTooLarge(providerId, "an answer", "maxResponseBytes", limits.maxResponseBytes))
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            return Effect.fail(Errors.invalidResponse(providerId, `the body is not JSON: ${text}`, secret))
          }
          const decoded = decodeCompletion(json, metadata, tools)
          return typeof decoded === "string"
            ? Effect.fail(Errors.invalidResponse(providerId, decoded, secret))
            : Effect.succeed(decoded)
        }
      )

    const streamingFailed = (cause: unknown) =>
      Errors.network(providerId, root, cause, "while the answer was streaming")
    const bodyFailed = (error: HttpClientError.ResponseError) => streamingFailed(error.cause ?? error)

    // The answer as reads of chat chunks. The body is read from undici's `Readable` when there
    // is one (see `internal/openaiBody.ts`), else through `response.stream`.
    const reads = (
      { metadata, response, secret, whole }: Sent,
      tools: ReadonlyArray<ToolDefinition> | undefined
    ): Effect.Effect<Reads> => {
      if (whole) {
        let read = false
        return Effect.succeed({
          next: Effect.suspend(() => {
            if (read) return Effect.succeed(undefined)
            read = true
            return Effect.map(
              readCompletion(response, secret, metadata, tools),
              (completion) => Chunk.fromIterable(LanguageModel.responseToChunks(completion))
            )
          }),
          close: () => Effect.void
        })
      }
      const readable = nodeBody(response)
      if (readable !== undefined) {
        return Effect.sync(() => {
          const reader = new BodyReader(readable, response, streamingFailed)
          const decoded = decodeNext(reader.next, providerId, metadata, secret, limits.maxEventBytes, tools, identity, reader.ready)
          return { next: decoded.next, ready: decoded.ready, close: () => reader.close }
        })
      }
      return Effect.flatMap(Scope.make(), (scope) =>
        Effect.map(Scope.extend(Channel.toPull(Stream.toChannel(response.stream)), scope), (pull) => ({
          next: decodeNext(
            Effect.map(pull, (read) => read._tag === "Right" ? read.right : undefined),
            providerId,
            metadata,
            secret,
            limits.maxEventBytes,
            tools,
            bodyFailed
          ).next,
          close: (exit) => Scope.close(scope, exit)
        })))
    }

    // The answer as one channel: the body's reads decoded and written out, or, without a
    // `Readable`, the body's stream piped straight into the SSE decoder.
    const answer = (
      sent: Sent,
      tools: ReadonlyArray<ToolDefinition> | undefined
    ): Channel.Channel<Chunk.Chunk<ChatChunk>, unknown, ProviderError, unknown, void, unknown> => {
      if (!sent.whole) {
        const readable = nodeBody(sent.response)
        if (readable === undefined) {
          return Channel.pipeTo(
            Stream.toChannel(sent.response.stream),
            decodeChannel(providerId, sent.metadata, sent.secret, limits.maxEventBytes, tools, bodyFailed)
          )
        }
        return Channel.suspend(() => {
          const reader = new BodyReader(readable, sent.response, streamingFailed)
          return Channel.ensuring(
            nextChannel(
              decodeNext(reader.next, providerId, sent.metadata, sent.secret, limits.maxEventBytes, tools, identity, reader.ready)
                .next
            ),
            reader.close
          )
        })
      }
      return Stream.toChannel(Stream.fromIterableEffect(
        Effect.map(readCompletion(sent.response, sent.secret, sent.metadata, tools), LanguageModel.responseToChunks)
      ))
    }

    // The same answer as reads, for `withResilience` (see `Resilience.withPullSource`).
    const open: OpenPull = (messages, tools, options) =>
      Effect.flatMap(send(requestBody(config.model, messages, tools, options, true)), (sent) => reads(sent, tools))

    return withPullSource(
      LanguageModel.make({
        id: providerId,
        name,
        isAvailable: health.isAvailable,
        chat: (messages, tools, options) =>
          Effect.flatMap(
            send(requestBody(config.model, messages, tools, options, false)),
            ({ metadata, response, secret }) => readCompletion(response, secret, metadata, tools)
          ),
        stream: (messages, tools, options) =>
          Stream.fromChannel(
            Channel.unwrap(Effect.map(send(requestBody(config.model, messages, tools, options, true)), (sent) => answer(sent, tools)))
          )
      }),
      open
    )
  })

interface Sent {
  readonly response: HttpClientResponse.HttpClientResponse
  readonly secret: string | undefined
  readonly metadata: Record<string, string> | undefined
  readonly whole: boolean
}

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

const makeHealth = (
  config: OpenAiCompatibleConfig,
  root: string,
  maxBodyBytes: number,
  get: (url: string) => Effect.Effect<HttpClientResponse.HttpClientResponse, unknown>
) =>
  Effect.gen(function*() {
    const ttlMs = Duration.toMillis(Duration.decode(config.healthTtl ?? "30 seconds"))
    const timeout = config.healthTimeout ?? "5 seconds"
    const url = config.healthCheck === "liteLLMLiveliness" ? `${root}/health/liveliness` : `${root}/v1/models`
    const probeLock = yield* Effect.makeSemaphore(1)
    let verdict: { readonly available: boolean; readonly until: number } | undefined

    const learn = (available: boolean) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          verdict = { available, until: clock.unsafeCurrentTimeMillis() + ttlMs }
        })
      )
    const cached = Effect.map(Clock.currentTimeMillis, (now) =>
      verdict !== undefined && now < verdict.until ? Option.some(verdict.available) : Option.none<boolean>())
    const probe = get(url).pipe(
      Effect.flatMap((response) =>
        Effect.as(Effect.ignore(readBounded(response, maxBodyBytes, identity)), response.status >= 200 && response.status < 300)
      ),
      Effect.timeout(timeout),
      Effect.orElseSucceed(() => false),
      Effect.tap(learn)
    )
    const isAvailable = Effect.flatMap(cached, (hit) =>
      Option.isSome(hit)
        ? Effect.succeed(hit.value)
        : probeLock.withPermits(1)(
          Effect.flatMap(cached, (again) => Option.isSome(again) ? Effect.succeed(again.value) : probe)
        )).pipe(Effect.withSpan("LanguageModel.isAvailable", { attributes: { "gen_ai.provider.name": config.id } }))
    return { isAvailable, learn }
  })

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
